"""BodyService with a real broker: events on Kafka, deletion without a trace, and restarts.

One test serves in-process on port 0; the other runs ``python -m tryon.services.body`` as a
process (through the suite launcher) to cover start-up, SIGTERM and persistence across a restart.
"""

from __future__ import annotations

import threading
import time
import uuid

import grpc
import pytest

from tryon.services.body.domain import BodyDomain
from tryon.services.body.events import KafkaBodyEvents
from tryon.services.body.servicer import SERVICE_FULL_NAME, BodyServicer, add_to_server
from tryon.services.body.store import BodyStore
from tryon.shared.broker import ensure_topics
from tryon.shared.events import EventConsumer, EventProducer
from tryon.shared.launcher import LocalSuite
from tryon.shared.proto import body_service_pb2 as pb
from tryon.shared.proto import body_service_pb2_grpc, common_pb2, events_pb2
from tryon.shared.server import ServiceRegistration, serve
from tryon.shared.settings import KAFKA_BOOTSTRAP_VARIABLE, ServerSettings
from tryon.shared.topics import BODIES

pytestmark = pytest.mark.integration


class BodyEventLog:
    """Every body event on the broker, read by a consumer of its own group."""

    def __init__(self, bootstrap: str) -> None:
        self.events: list = []
        self._lock = threading.Lock()
        self._consumer = EventConsumer(
            bootstrap,
            group_id=f"body-test-{uuid.uuid4().hex}",
            handlers={events_pb2.BodyUpdated: self._keep, events_pb2.BodyDeleted: self._keep},
        )

    def _keep(self, event) -> None:
        with self._lock:
            self.events.append(event)

    def __enter__(self) -> BodyEventLog:
        self._consumer.start()
        self._consumer.wait_until_ready(20)
        return self

    def __exit__(self, *exc_info) -> None:
        self._consumer.stop()

    def wait_for(self, event_type, body_id: str, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for event in self.events:
                    if isinstance(event, event_type) and event.body_id == body_id:
                        return event
            time.sleep(0.05)
        raise AssertionError(f"no {event_type.DESCRIPTOR.name} for {body_id} within {timeout} s")


def create_request(stature: float = 1720.0, weight: float = 64.0) -> pb.CreateBodyRequest:
    return pb.CreateBodyRequest(
        measurements=[common_pb2.MeasurementValue(name="stature", value=stature),
                      common_pb2.MeasurementValue(name="weight", value=weight)],
        sex=common_pb2.SEX_FEMALE,
    )


def test_create_and_delete_are_announced_on_kafka(kafka_bootstrap, trained_body_model, tmp_path):
    ensure_topics(kafka_bootstrap, [BODIES])
    events = KafkaBodyEvents(EventProducer(kafka_bootstrap, client_id="body-test"))
    store = BodyStore(tmp_path / "bodies")
    servicer = BodyServicer(BodyDomain(trained_body_model, store, events))
    running = serve("body", [ServiceRegistration(SERVICE_FULL_NAME, lambda s: add_to_server(servicer, s))],
                    ServerSettings(port=0))
    try:
        with BodyEventLog(kafka_bootstrap) as log, grpc.insecure_channel(running.address) as channel:
            stub = body_service_pb2_grpc.BodyServiceStub(channel)
            body = stub.CreateBody(create_request()).body
            updated = log.wait_for(events_pb2.BodyUpdated, body.body_id)
            assert updated.sex == common_pb2.SEX_FEMALE
            assert list(updated.body_latent) == pytest.approx(list(store.get(body.body_id).latent), abs=1e-6)
            assert len(updated.body_latent) == trained_body_model.latent_dim
            assert updated.event_id and updated.occurred_at.seconds > 0
            # Only the latent code travels: no measurement is carried by the event.
            assert {field.name for field, _ in updated.ListFields()} == {
                "event_id", "occurred_at", "body_id", "sex", "body_latent"}

            path = store.path_of(body.body_id)
            assert path.exists()
            stub.DeleteBody(pb.DeleteBodyRequest(body_id=body.body_id))
            deleted = log.wait_for(events_pb2.BodyDeleted, body.body_id)
            assert deleted.event_id != updated.event_id
            with pytest.raises(grpc.RpcError) as missing:
                stub.GetBody(pb.GetBodyRequest(body_id=body.body_id))
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
            assert not path.exists()
            assert list((tmp_path / "bodies").iterdir()) == []
    finally:
        running.stop(grace=1)
        events.close()


def test_the_service_process_keeps_bodies_across_a_restart(kafka_bootstrap, trained_body_model, tmp_path,
                                                           monkeypatch):
    monkeypatch.setenv(KAFKA_BOOTSTRAP_VARIABLE, kafka_bootstrap)
    trained_body_model.save(tmp_path / "body" / "model")
    extra = {"TRYON_BODY_ADVICE_SAMPLES": "200", "OMP_NUM_THREADS": "1"}
    with LocalSuite(tmp_path, services=("body",), extra_env=extra, startup_timeout_s=120) as suite:
        with grpc.insecure_channel(suite.address("body")) as channel:
            body = body_service_pb2_grpc.BodyServiceStub(channel).CreateBody(create_request(1801.0, 77.0)).body
        assert suite.stop() == {"body": 0}, "SIGTERM must drain and exit cleanly"

    with BodyEventLog(kafka_bootstrap) as log:
        log.wait_for(events_pb2.BodyUpdated, body.body_id)
        with LocalSuite(tmp_path, services=("body",), extra_env=extra, startup_timeout_s=120) as suite:
            with grpc.insecure_channel(suite.address("body")) as channel:
                stub = body_service_pb2_grpc.BodyServiceStub(channel)
                assert stub.GetBody(pb.GetBodyRequest(body_id=body.body_id)).body == body
                stub.DeleteBody(pb.DeleteBodyRequest(body_id=body.body_id))
                log.wait_for(events_pb2.BodyDeleted, body.body_id)
            assert not (tmp_path / "body" / "bodies" / f"{body.body_id}.json").exists()
