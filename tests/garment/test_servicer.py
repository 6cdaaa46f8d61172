"""GarmentService end to end over gRPC on loopback: every RPC, its answers and its refusals.

The server is the shared `serve()` on port 0 with the real servicer and domain; the models are
the suite's small trained garment models; body meshes of known girths come from an in-process
source, so RenderTryOn's pixels come from a real drawn mesh.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from tryon.services.garment import images
from tryon.services.garment.body_client import BodyServiceClient
from tryon.services.garment.catalogue import Catalogue, Garment
from tryon.services.garment.categories import label_from_name
from tryon.services.garment.dataset import load_fashion_mnist
from tryon.services.garment.domain import GarmentDomain
from tryon.services.garment.events import GarmentEventPublisher
from tryon.services.garment.servicer import GarmentServicer, registration
from tryon.services.garment.mesh_render import BodyMesh
from tryon.services.garment.tryon_render import decode_rgba_png
from tryon.shared.errors import NotFound
from tryon.shared.events import PublishError
from tryon.shared.broker import free_loopback_port as free_port
from tryon.shared.contract import category_to_proto
from tryon.shared.proto import common_pb2, garment_service_pb2 as pb, garment_service_pb2_grpc
from tryon.shared.server import STARTING_MESSAGE, serve
from tryon.shared.settings import ServerSettings

pytestmark = pytest.mark.integration


class MeshesOfBodies:
    """Body meshes by id: "narrow" is the small test body, "wide" the large one; others are unknown."""

    def __init__(self, meshes: dict[str, BodyMesh]) -> None:
        self.meshes = {"narrow": meshes["small"], "wide": meshes["large"]}
        self.calls = 0

    def __call__(self, body_id: str) -> BodyMesh:
        self.calls += 1
        if body_id not in self.meshes:
            raise NotFound(f"body {body_id!r} is not known")
        return self.meshes[body_id]


@pytest.fixture(scope="module")
def fashion_test_images() -> dict[str, np.ndarray]:
    """A few real Fashion-MNIST test images by category name (uint8 28 x 28)."""
    pictures, labels = load_fashion_mnist("test")
    return {
        name: pictures[np.flatnonzero(labels == label_from_name(name))[:3]]
        for name in ("t_shirt_top", "trouser", "sneaker", "dress", "bag")
    }


def png_of(picture: np.ndarray) -> bytes:
    return images.encode_png(np.asarray(picture, np.float32) / 255.0)


@pytest.fixture(scope="module")
def published() -> list[Garment]:
    return []


@pytest.fixture(scope="module")
def domain(
    trained_garment_models, tmp_path_factory: pytest.TempPathFactory, published: list[Garment], body_meshes
) -> GarmentDomain:
    catalogue = Catalogue(tmp_path_factory.mktemp("catalogue"))
    return GarmentDomain(catalogue, trained_garment_models, published.append, MeshesOfBodies(body_meshes))


@pytest.fixture(scope="module")
def stub(domain: GarmentDomain) -> Iterator[garment_service_pb2_grpc.GarmentServiceStub]:
    running = serve("garment", [registration(GarmentServicer(domain))], ServerSettings(port=0, grace_seconds=1.0))
    channel = grpc.insecure_channel(running.address)
    try:
        yield garment_service_pb2_grpc.GarmentServiceStub(channel)
    finally:
        channel.close()
        running.stop(0)


def status_of(call, request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=30)
    return caught.value.code(), caught.value.details()


TOP = common_pb2.GARMENT_CATEGORY_T_SHIRT_TOP
TROUSER = common_pb2.GARMENT_CATEGORY_TROUSER


def register(stub, png: bytes, category: int, name: str = "classic tee", amount: int = 1999) -> pb.Garment:
    request = pb.RegisterGarmentRequest(
        image=png, name=name, category=category, price=common_pb2.Money(currency_code="EUR", amount_minor=amount)
    )
    return stub.RegisterGarment(request, timeout=30).garment


def test_generate_is_deterministic_per_seed(stub, trained_garment_models) -> None:
    request = pb.GenerateGarmentsRequest(category=TROUSER, count=4, seed=11)
    first, again = stub.GenerateGarments(request, timeout=30), stub.GenerateGarments(request, timeout=30)
    other = stub.GenerateGarments(pb.GenerateGarmentsRequest(category=TROUSER, count=4, seed=12), timeout=30)
    assert len(first.garments) == 4
    assert [g.png for g in first.garments] == [g.png for g in again.garments]
    assert [g.png for g in first.garments] != [g.png for g in other.garments]
    for garment in first.garments:
        assert garment.category == TROUSER
        assert len(garment.latent) == trained_garment_models.latent_dim
        assert images.decode_png(garment.png).shape == (28, 28)


def test_generate_with_the_gan(stub) -> None:
    vae = stub.GenerateGarments(pb.GenerateGarmentsRequest(category=TOP, count=2, seed=3), timeout=30)
    gan = stub.GenerateGarments(
        pb.GenerateGarmentsRequest(category=TOP, count=2, seed=3, generator=common_pb2.GENERATOR_GAN), timeout=30
    )
    assert len(gan.garments) == 2
    assert [g.png for g in gan.garments] != [g.png for g in vae.garments]


@pytest.mark.parametrize(
    "request_, field",
    [
        (pb.GenerateGarmentsRequest(count=1), "category"),
        (pb.GenerateGarmentsRequest(category=99, count=1), "category"),
        (pb.GenerateGarmentsRequest(category=TOP, count=0), "count"),
        (pb.GenerateGarmentsRequest(category=TOP, count=65), "count"),
        (pb.GenerateGarmentsRequest(category=TOP, count=1, generator=9), "generator"),
        (pb.GenerateGarmentsRequest(category=TOP, count=1, seed=2**64 - 1), "seed"),
    ],
)
def test_generate_refusals_name_the_field(stub, request_, field: str) -> None:
    code, details = status_of(stub.GenerateGarments, request_)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in details


def test_encode_matches_the_models_and_predicts_a_category(stub, trained_garment_models, fashion_test_images) -> None:
    picture = fashion_test_images["trouser"][0]
    response = stub.EncodeGarment(pb.EncodeGarmentRequest(image=png_of(picture)), timeout=30)
    expected_label = int(trained_garment_models.predict(picture[None] / 255.0)[0])
    assert response.category == category_to_proto(expected_label)
    expected = trained_garment_models.encode(picture[None].astype(np.float32) / 255.0, np.array([expected_label]))[0]
    np.testing.assert_allclose(np.array(response.latent), expected, atol=1e-4)
    assert images.decode_png(response.reconstruction_png).shape == (28, 28)
    given = stub.EncodeGarment(pb.EncodeGarmentRequest(image=png_of(picture), category=TOP), timeout=30)
    assert given.category == TOP


@pytest.mark.parametrize(
    "image, words",
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n garbage", "PNG or JPEG"),
    ],
)
def test_encode_refuses_bad_pictures(stub, image: bytes, words: str) -> None:
    code, details = status_of(stub.EncodeGarment, pb.EncodeGarmentRequest(image=image))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert words in details


def test_oversized_picture_is_refused_before_decoding(stub) -> None:
    code, details = status_of(stub.EncodeGarment, pb.EncodeGarmentRequest(image=b"x" * (8 * 1024 * 1024 + 1)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "8 MiB" in details


def test_register_get_list_and_publish(stub, fashion_test_images, published: list[Garment]) -> None:
    png = png_of(fashion_test_images["t_shirt_top"][0])
    chart = common_pb2.SizeChart(
        sizes=[
            common_pb2.SizeChartSize(
                label="M", ranges=[common_pb2.MeasurementRange(measurement="chest_circumference", min=900, max=1000)]
            )
        ]
    )
    request = pb.RegisterGarmentRequest(
        image=png, name="  Striped tee ", category=TOP,
        price=common_pb2.Money(currency_code="EUR", amount_minor=2500), size_chart=chart,
    )
    garment = stub.RegisterGarment(request, timeout=30).garment
    assert garment.name == "Striped tee"
    assert garment.size_chart == chart
    fetched = stub.GetGarment(pb.GetGarmentRequest(garment_id=garment.garment_id), timeout=30).garment
    assert fetched == garment
    encoded = stub.EncodeGarment(pb.EncodeGarmentRequest(image=png, category=TOP), timeout=30)
    np.testing.assert_allclose(garment.content_latent, encoded.latent, atol=1e-6)
    assert published[-1].garment_id == garment.garment_id
    np.testing.assert_allclose(published[-1].content_latent, encoded.latent, atol=1e-6)
    listed = stub.ListGarments(pb.ListGarmentsRequest(page_size=1000, categories=[TOP]), timeout=30)
    assert garment.garment_id in [g.garment_id for g in listed.garments]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"category": 0}, "category"),
        ({"price": common_pb2.Money(currency_code="EUR", amount_minor=-1)}, "amount_minor"),
        ({"price": common_pb2.Money(currency_code="euro", amount_minor=1)}, "currency_code"),
        ({"price": None}, "price"),
        ({"image": b"not a picture"}, "image"),
        (
            {"size_chart": common_pb2.SizeChart(sizes=[common_pb2.SizeChartSize(label="S", ranges=[common_pb2.MeasurementRange(measurement="chest_circumference", min=5, max=1)])])},
            "size_chart",
        ),
        ({"size_chart": common_pb2.SizeChart(chart_id="eu_nowhere_tops")}, "eu_mens_tops"),
        (
            {"size_chart": common_pb2.SizeChart(chart_id="eu_mens_tops", sizes=[common_pb2.SizeChartSize(label="S")])},
            "not both",
        ),
        ({"name": "tee\x00\nDROP"}, "name must not hold control characters"),
        ({"name": "tee\u202egnp.exe"}, "U+202E"),
        (
            {"size_chart": common_pb2.SizeChart(sizes=[common_pb2.SizeChartSize(label="M\x1b[31m")])},
            "size_chart.sizes[0].label must not hold control characters",
        ),
    ],
)
def test_register_refusals_store_and_publish_nothing(stub, fashion_test_images, published, change, field) -> None:
    fields = {
        "image": png_of(fashion_test_images["t_shirt_top"][1]),
        "name": "tee",
        "category": TOP,
        "price": common_pb2.Money(currency_code="EUR", amount_minor=100),
    }
    fields.update(change)
    fields = {key: value for key, value in fields.items() if value is not None}
    before_events = len(published)
    before = len(stub.ListGarments(pb.ListGarmentsRequest(page_size=1000), timeout=30).garments)
    code, details = status_of(stub.RegisterGarment, pb.RegisterGarmentRequest(**fields))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in details
    assert len(published) == before_events
    assert len(stub.ListGarments(pb.ListGarmentsRequest(page_size=1000), timeout=30).garments) == before


def test_register_keeps_a_shipped_chart_id(stub, fashion_test_images) -> None:
    request = pb.RegisterGarmentRequest(
        image=png_of(fashion_test_images["t_shirt_top"][2]), name="Oxford shirt", category=TOP,
        price=common_pb2.Money(currency_code="EUR", amount_minor=4900),
        size_chart=common_pb2.SizeChart(chart_id="eu_mens_tops"),
    )
    garment = stub.RegisterGarment(request, timeout=30).garment
    assert garment.size_chart.chart_id == "eu_mens_tops"
    assert stub.GetGarment(pb.GetGarmentRequest(garment_id=garment.garment_id), timeout=30).garment == garment


def test_unknown_garment_is_not_found_and_named(stub) -> None:
    code, details = status_of(stub.GetGarment, pb.GetGarmentRequest(garment_id="no-such-garment"))
    assert code == grpc.StatusCode.NOT_FOUND and "no-such-garment" in details
    code, _ = status_of(stub.GetGarment, pb.GetGarmentRequest())
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_list_pages_by_token_and_refuses_foreign_tokens(stub, fashion_test_images) -> None:
    for picture in fashion_test_images["sneaker"]:
        register(stub, png_of(picture), common_pb2.GARMENT_CATEGORY_SNEAKER, name="runner")
    ids, token = [], ""
    while True:
        page = stub.ListGarments(
            pb.ListGarmentsRequest(page_size=2, page_token=token, categories=[common_pb2.GARMENT_CATEGORY_SNEAKER]),
            timeout=30,
        )
        ids += [g.garment_id for g in page.garments]
        assert all(g.category == common_pb2.GARMENT_CATEGORY_SNEAKER for g in page.garments)
        token = page.next_page_token
        if not token:
            break
    assert len(ids) == len(set(ids)) == 3
    code, details = status_of(stub.ListGarments, pb.ListGarmentsRequest(page_token="bogus"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in details
    code, _ = status_of(stub.ListGarments, pb.ListGarmentsRequest(page_size=1001))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_interpolate_by_id_and_by_image(stub, fashion_test_images) -> None:
    start = register(stub, png_of(fashion_test_images["t_shirt_top"][2]), TOP)
    end_png = png_of(fashion_test_images["dress"][0])
    response = stub.InterpolateGarments(
        pb.InterpolateGarmentsRequest(
            start=pb.GarmentRef(garment_id=start.garment_id), end=pb.GarmentRef(image=end_png), steps=5
        ),
        timeout=30,
    )
    assert len(response.frames) == 5
    np.testing.assert_allclose(response.frames[0].latent, start.content_latent, atol=1e-5)
    assert response.frames[0].category == TOP
    assert response.frames[0].png != response.frames[-1].png


@pytest.mark.parametrize(
    "request_, code, words",
    [
        (pb.InterpolateGarmentsRequest(start=pb.GarmentRef(garment_id="nope"), end=pb.GarmentRef(garment_id="nope"), steps=3), grpc.StatusCode.NOT_FOUND, "nope"),
        (pb.InterpolateGarmentsRequest(end=pb.GarmentRef(garment_id="nope"), steps=3), grpc.StatusCode.INVALID_ARGUMENT, "start"),
        (pb.InterpolateGarmentsRequest(start=pb.GarmentRef(image=b"x"), end=pb.GarmentRef(image=b"x"), steps=1), grpc.StatusCode.INVALID_ARGUMENT, "steps"),
        (pb.InterpolateGarmentsRequest(start=pb.GarmentRef(image=b"x"), end=pb.GarmentRef(image=b"x"), steps=33), grpc.StatusCode.INVALID_ARGUMENT, "steps"),
        (pb.InterpolateGarmentsRequest(start=pb.GarmentRef(image=b"x"), end=pb.GarmentRef(image=b"x"), steps=3), grpc.StatusCode.INVALID_ARGUMENT, "start.image"),
    ],
)
def test_interpolate_refusals(stub, request_, code, words) -> None:
    got_code, details = status_of(stub.InterpolateGarments, request_)
    assert got_code == code
    assert words in details


def test_try_on_changes_with_the_body_and_the_garments(stub, fashion_test_images) -> None:
    top = register(stub, png_of(fashion_test_images["t_shirt_top"][0]), TOP)
    trousers = register(stub, png_of(fashion_test_images["trouser"][0]), TROUSER, name="chinos")

    def picture(body_id: str, *garment_ids: str) -> np.ndarray:
        response = stub.RenderTryOn(pb.RenderTryOnRequest(body_id=body_id, garment_ids=garment_ids), timeout=30)
        return decode_rgba_png(response.png)

    with_top = picture("narrow", top.garment_id)
    assert with_top.shape == (512, 256, 4)
    with_both = picture("narrow", top.garment_id, trousers.garment_id)
    changed_rows = np.flatnonzero((np.abs(with_both.astype(int) - with_top.astype(int)).max(axis=2) > 30).any(axis=1))
    assert changed_rows.size > 100 and changed_rows.max() > 400  # the trousers reach the ankles
    wide_top = picture("wide", top.garment_id)
    assert not np.array_equal(wide_top, with_top)
    assert (wide_top[:, :, 3] > 127).sum() > (with_top[:, :, 3] > 127).sum()
    sized = stub.RenderTryOn(pb.RenderTryOnRequest(body_id="wide", garment_ids=[top.garment_id], width=128, height=300), timeout=30)
    assert decode_rgba_png(sized.png).shape == (300, 128, 4)


def test_try_on_refusals(stub, fashion_test_images) -> None:
    top = register(stub, png_of(fashion_test_images["t_shirt_top"][0]), TOP)
    code, details = status_of(stub.RenderTryOn, pb.RenderTryOnRequest(body_id="narrow", garment_ids=[top.garment_id, "missing-id"]))
    assert code == grpc.StatusCode.NOT_FOUND and "missing-id" in details
    code, details = status_of(stub.RenderTryOn, pb.RenderTryOnRequest(body_id="nobody", garment_ids=[top.garment_id]))
    assert code == grpc.StatusCode.NOT_FOUND and "nobody" in details
    for request_ in (
        pb.RenderTryOnRequest(body_id="narrow"),
        pb.RenderTryOnRequest(body_id="narrow", garment_ids=[top.garment_id] * 9),
        pb.RenderTryOnRequest(body_id="", garment_ids=[top.garment_id]),
        pb.RenderTryOnRequest(body_id="narrow", garment_ids=[top.garment_id], width=5000),
    ):
        code, _ = status_of(stub.RenderTryOn, request_)
        assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_try_on_without_body_service(tmp_path: Path, trained_garment_models, fashion_test_images) -> None:
    catalogue = Catalogue(tmp_path)
    unreachable = f"127.0.0.1:{free_port()}"
    client = BodyServiceClient(unreachable, timeout_seconds=2.0)
    for bodies, words in ((None, "TRYON_GARMENT_BODY_SERVICE_ADDRESS"), (client, unreachable)):
        domain = GarmentDomain(catalogue, trained_garment_models, None, bodies)
        running = serve("garment", [registration(GarmentServicer(domain))], ServerSettings(port=0, grace_seconds=0.5))
        try:
            with grpc.insecure_channel(running.address) as channel:
                stub = garment_service_pb2_grpc.GarmentServiceStub(channel)
                garment = register(stub, png_of(fashion_test_images["dress"][1]), common_pb2.GARMENT_CATEGORY_DRESS)
                code, details = status_of(stub.RenderTryOn, pb.RenderTryOnRequest(body_id="b", garment_ids=[garment.garment_id]))
                assert code == grpc.StatusCode.FAILED_PRECONDITION
                assert words in details
        finally:
            running.stop(0)
    client.close()


def test_model_rpcs_answer_unavailable_until_start_up_attaches_the_domain_and_the_catalogue_answers_already(
    tmp_path: Path, trained_garment_models, fashion_test_images
) -> None:
    catalogue = Catalogue(tmp_path)
    servicer = GarmentServicer(catalogue=GarmentDomain(catalogue))
    running = serve("garment", [registration(servicer)], ServerSettings(port=0, grace_seconds=0.5))
    try:
        with grpc.insecure_channel(running.address) as channel:
            stub = garment_service_pb2_grpc.GarmentServiceStub(channel)
            png = png_of(fashion_test_images["dress"][0])
            for call, request_ in (
                (stub.GenerateGarments, pb.GenerateGarmentsRequest(category=TOP, count=1)),
                (stub.EncodeGarment, pb.EncodeGarmentRequest(image=png)),
                (stub.RegisterGarment, pb.RegisterGarmentRequest(image=png, name="dress", category=common_pb2.GARMENT_CATEGORY_DRESS)),
            ):
                assert status_of(call, request_) == (grpc.StatusCode.UNAVAILABLE, STARTING_MESSAGE)
            assert list(stub.ListGarments(pb.ListGarmentsRequest(), timeout=10).garments) == []
            assert status_of(stub.GetGarment, pb.GetGarmentRequest(garment_id="g-1"))[0] == grpc.StatusCode.NOT_FOUND
            servicer.attach(GarmentDomain(catalogue, trained_garment_models))
            assert len(stub.GenerateGarments(pb.GenerateGarmentsRequest(category=TOP, count=1), timeout=30).garments) == 1
    finally:
        running.stop(0)


class RefusingPublisher:
    """An event publisher that can keep nothing (a stand-in for a broker down and a full outbox)."""

    def __init__(self) -> None:
        self.published = []

    def publish(self, events) -> None:
        self.published.extend(events)
        raise PublishError("events were not accepted: the outbox holds 100000 events waiting for the broker; retry later")


def test_registration_the_broker_refuses_stores_nothing(tmp_path: Path, trained_garment_models, fashion_test_images) -> None:
    publisher = RefusingPublisher()
    domain = GarmentDomain(Catalogue(tmp_path), trained_garment_models, GarmentEventPublisher(publisher))
    running = serve("garment", [registration(GarmentServicer(domain))], ServerSettings(port=0, grace_seconds=0.5))
    try:
        with grpc.insecure_channel(running.address) as channel:
            stub = garment_service_pb2_grpc.GarmentServiceStub(channel)
            request = pb.RegisterGarmentRequest(
                image=png_of(fashion_test_images["bag"][0]), name="tote", category=common_pb2.GARMENT_CATEGORY_BAG,
                price=common_pb2.Money(currency_code="EUR", amount_minor=4500),
            )
            code, details = status_of(stub.RegisterGarment, request)
            assert code == grpc.StatusCode.UNAVAILABLE and "retry" in details
            event, key = publisher.published[0]
            assert key == event.garment_id and event.name == "tote"
            assert list(stub.ListGarments(pb.ListGarmentsRequest(), timeout=10).garments) == []
    finally:
        running.stop(0)
