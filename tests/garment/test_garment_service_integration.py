"""GarmentService with its real neighbours: the Kafka broker and BodyService, all on loopback.

RegisterGarment must publish GarmentRegistered on tryon.garments.v1 carrying the same content
latent that EncodeGarment gives for the same picture; RenderTryOn must fetch real body meshes
from a running BodyService and judge one size differently on bodies of different build.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tryon.services.body.body_model import BodyModel, BodyModelConfig
from tryon.services.body.cvae import CVAEConfig
from tryon.services.body.dataset import load_subset
from tryon.services.body.domain import BodyDomain
from tryon.services.body.gan import GANConfig
from tryon.services.body.meshes import BodyMeshes
from tryon.services.body.servicer import BodyServicer, registration as body_registration
from tryon.services.body.store import BodyStore
from tryon.services.garment import images
from tryon.services.garment.body_client import BodyServiceClient
from tryon.services.garment.catalogue import CATALOGUE_DB, Catalogue
from tryon.services.garment.categories import label_from_name
from tryon.services.garment.dataset import load_fashion_mnist
from tryon.services.garment.domain import GarmentDomain
from tryon.services.garment.events import GarmentEventPublisher
from tryon.services.garment.servicer import GarmentServicer, registration
from tryon.services.garment.tryon_render import decode_rgba_png
from tryon.shared.broker import ensure_topics, free_loopback_port
from tryon.shared.events import EventConsumer, EventPublisher
from tryon.shared.outbox import Outbox
from tryon.shared.proto import (
    body_service_pb2,
    body_service_pb2_grpc,
    common_pb2,
    events_pb2,
    garment_service_pb2 as pb,
    garment_service_pb2_grpc,
)
from tryon.shared.server import serve
from tryon.shared.settings import ServerSettings
from tryon.shared.topics import GARMENTS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fashion_pictures() -> dict[str, bytes]:
    """PNG bytes of real Fashion-MNIST test pictures by category name."""
    pictures, labels = load_fashion_mnist("test")
    return {
        name: images.encode_png(pictures[np.flatnonzero(labels == label_from_name(name))[5]] / 255.0)
        for name in ("t_shirt_top", "trouser", "sneaker", "coat")
    }


@pytest.fixture(scope="module")
def body_address(tmp_path_factory: pytest.TempPathFactory, body_mesh_model) -> Iterator[str]:
    """A real BodyService on port 0 with a body model trained for seconds on 400 survey subjects and
    the body mesh model."""
    config = BodyModelConfig(
        cvae=CVAEConfig(hidden=48, layers=2, latent_dim=4, batch_size=64, prediction_samples=16),
        gan=GANConfig(hidden=48, layers=2, batch_size=64),
    )
    frame = load_subset().sample(n=400, random_state=7).reset_index(drop=True)
    model = BodyModel.train(frame, config, epochs=8, seed=0, progress=False, gan_epochs=1)
    meshes = BodyMeshes.ready(body_mesh_model)
    servicer = BodyServicer(BodyDomain(model, BodyStore(tmp_path_factory.mktemp("bodies")), meshes=meshes))
    running = serve("body", [body_registration(servicer)], ServerSettings(port=0, grace_seconds=0.5))
    try:
        yield running.address
    finally:
        running.stop(0)


@pytest.fixture(scope="module")
def garment_stub(
    trained_garment_models, kafka_bootstrap: str, body_address: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[garment_service_pb2_grpc.GarmentServiceStub]:
    """GarmentService on port 0 publishing to the suite's shared broker and drawing BodyService's bodies."""
    ensure_topics(kafka_bootstrap, [GARMENTS])
    publisher = EventPublisher(
        kafka_bootstrap, "garment-integration-test", Outbox(tmp_path_factory.mktemp("outbox") / "outbox.sqlite")
    ).start()
    body_client = BodyServiceClient(body_address, timeout_seconds=10.0)
    domain = GarmentDomain(
        Catalogue(tmp_path_factory.mktemp("catalogue")),
        trained_garment_models,
        GarmentEventPublisher(publisher),
        body_client,
    )
    running = serve("garment", [registration(GarmentServicer(domain))], ServerSettings(port=0, grace_seconds=0.5))
    channel = grpc.insecure_channel(running.address)
    try:
        yield garment_service_pb2_grpc.GarmentServiceStub(channel)
    finally:
        channel.close()
        running.stop(0)
        body_client.close()
        publisher.close()


def test_registered_garment_is_published_with_its_encoding(garment_stub, kafka_bootstrap, fashion_pictures) -> None:
    png = fashion_pictures["coat"]
    registered = garment_stub.RegisterGarment(
        pb.RegisterGarmentRequest(
            image=png, name="Wool coat", category=common_pb2.GARMENT_CATEGORY_COAT,
            price=common_pb2.Money(currency_code="EUR", amount_minor=12900),
        ),
        timeout=30,
    ).garment
    encoded = garment_stub.EncodeGarment(
        pb.EncodeGarmentRequest(image=png, category=common_pb2.GARMENT_CATEGORY_COAT), timeout=30
    )

    received: list[events_pb2.GarmentRegistered] = []
    found = threading.Event()

    def on_registered(event: events_pb2.GarmentRegistered) -> None:
        received.append(event)
        if event.garment_id == registered.garment_id:
            found.set()

    consumer = EventConsumer(
        kafka_bootstrap, group_id=f"garment-test-{registered.garment_id}",
        handlers={events_pb2.GarmentRegistered: on_registered},
    )
    consumer.start()
    try:
        assert found.wait(30), "GarmentRegistered did not arrive within 30 s"
    finally:
        consumer.stop()
    event = next(e for e in received if e.garment_id == registered.garment_id)
    assert event.event_id
    assert event.category == common_pb2.GARMENT_CATEGORY_COAT
    assert event.name == "Wool coat"
    assert event.price.amount_minor == 12900 and event.price.currency_code == "EUR"
    assert event.occurred_at.ToDatetime().year >= 2024
    np.testing.assert_allclose(np.array(event.content_latent), np.array(encoded.latent), atol=1e-6)
    np.testing.assert_allclose(np.array(event.content_latent), np.array(registered.content_latent), atol=1e-6)


def create_body(body_address: str, weight: float, breadth: float) -> str:
    """A body of 1.75 m whose shoulder, chest, waist and hip breadths scale with ``breadth``."""
    with grpc.insecure_channel(body_address) as channel:
        stub = body_service_pb2_grpc.BodyServiceStub(channel)
        values = {
            "stature": 1750.0, "weight": weight, "shoulder_breadth": 400.0 * breadth,
            "chest_breadth": 300.0 * breadth, "waist_breadth": 310.0 * breadth, "hip_breadth": 340.0 * breadth,
        }
        request = body_service_pb2.CreateBodyRequest(
            measurements=[common_pb2.MeasurementValue(name=k, value=v) for k, v in values.items()],
            sex=common_pb2.SEX_MALE,
        )
        return stub.CreateBody(request, timeout=30).body.body_id


def test_try_on_with_a_running_body_service(garment_stub, body_address, fashion_pictures) -> None:
    def register(name: str, category: int, chart: str) -> str:
        request = pb.RegisterGarmentRequest(
            image=fashion_pictures[name], name=name, category=category,
            price=common_pb2.Money(currency_code="EUR", amount_minor=1000),
            size_chart=common_pb2.SizeChart(chart_id=chart),
        )
        return garment_stub.RegisterGarment(request, timeout=30).garment.garment_id

    top = register("t_shirt_top", common_pb2.GARMENT_CATEGORY_T_SHIRT_TOP, "en13402_mens_tops")
    trousers = register("trouser", common_pb2.GARMENT_CATEGORY_TROUSER, "us_mens_trousers")
    slim = create_body(body_address, weight=62.0, breadth=0.9)
    broad = create_body(body_address, weight=110.0, breadth=1.15)

    def render(body_id: str, *garments: tuple[str, str]) -> pb.RenderTryOnResponse:
        request = pb.RenderTryOnRequest(body_id=body_id, garments=[pb.TryOnGarment(garment_id=g, size_label=s) for g, s in garments])
        return garment_stub.RenderTryOn(request, timeout=60)

    def chest(response: pb.RenderTryOnResponse) -> pb.MeasurementFit:
        return next(m for m in response.fits[-1].measurements if m.measurement == "chest_circumference")

    slim_top, broad_top = render(slim, (top, "L")), render(broad, (top, "L"))
    assert decode_rgba_png(slim_top.png).shape == (512, 256, 4)
    # One size on two builds: the broad body's chest, measured on its mesh, leaves less ease.
    assert chest(broad_top).body_mm > chest(slim_top).body_mm + 100
    assert chest(broad_top).ease_mm < chest(slim_top).ease_mm - 100
    assert chest(broad_top).verdict == pb.FIT_VERDICT_TIGHT
    outfit = render(slim, (trousers, "30/32"), (top, "L"))
    assert [fit.garment_id for fit in outfit.fits] == [trousers, top]
    changed = np.abs(decode_rgba_png(outfit.png).astype(int) - decode_rgba_png(slim_top.png).astype(int)).max(axis=2) > 30
    changed_rows = np.flatnonzero(changed.any(axis=1))
    assert changed_rows.size > 100 and changed_rows.max() > 400  # the trousers reach the ankles

    unknown = str(uuid.uuid4())
    for body_id, code, words in (
        (unknown, grpc.StatusCode.NOT_FOUND, unknown),
        ("not-a-uuid", grpc.StatusCode.INVALID_ARGUMENT, "body_id"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            garment_stub.RenderTryOn(pb.RenderTryOnRequest(body_id=body_id, garment_ids=[top]), timeout=30)
        assert caught.value.code() == code
        assert words in caught.value.details()


def health_status(address: str) -> str | None:
    """The GarmentService health status name, or None while nothing answers."""
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="tryon.v1.GarmentService"), timeout=1.0
            )
        except grpc.RpcError:
            return None
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def test_process_trains_missing_models_then_serves_and_drains_on_sigterm(tmp_path, kafka_bootstrap) -> None:
    address = f"127.0.0.1:{free_loopback_port()}"
    environment = dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        TRYON_GARMENT_PORT=address.rsplit(":", 1)[1],
        TRYON_GARMENT_DATA_DIR=str(tmp_path),
        TRYON_GARMENT_TRAIN_EPOCHS="1",
        TRYON_GARMENT_TRAIN_IMAGES="300",
        TRYON_GARMENT_GRACE_SECONDS="2",
        OMP_NUM_THREADS="1",
    )
    log_path = tmp_path / "garment.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tryon.services.garment"], env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        statuses: list[str] = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            status = health_status(address)
            if status is not None and (not statuses or statuses[-1] != status):
                statuses.append(status)
            if status == "SERVING":
                break
            time.sleep(0.1)
        assert statuses and statuses[-1] == "SERVING", log_path.read_text()[-3000:]
        assert statuses[0] == "NOT_SERVING"
        assert (tmp_path / "models" / "config.json").is_file()
        with grpc.insecure_channel(address) as channel:
            stub = garment_service_pb2_grpc.GarmentServiceStub(channel)
            generated = stub.GenerateGarments(
                pb.GenerateGarmentsRequest(category=common_pb2.GARMENT_CATEGORY_BAG, count=2, seed=5), timeout=30
            )
            assert len(generated.garments) == 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        # Closed at shutdown: SQLite folds its write-ahead log into the database file and removes it.
        assert (tmp_path / CATALOGUE_DB).is_file()
        assert not (tmp_path / f"{CATALOGUE_DB}-wal").exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
