"""BodyService with a real broker: events on Kafka, deletion without a trace, and restarts.

One test serves in-process on port 0; the others run ``python -m tryon.services.body`` as a
process to cover start-up (NOT_SERVING while the model is trained, a failed start), SIGTERM
and persistence across a restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tryon.services.body.domain import BodyDomain
from tryon.services.body.events import KafkaBodyEvents
from tryon.services.body.servicer import SERVICE_FULL_NAME, BodyServicer, registration
from tryon.services.body.sizing import shipped_charts
from tryon.services.body.store import BodyStore
from tryon.shared.broker import ensure_topics, free_loopback_port
from tryon.shared.events import EventConsumer, EventPublisher
from tryon.shared.outbox import Outbox
from tryon.shared.proto import body_service_pb2 as pb
from tryon.shared.proto import body_service_pb2_grpc, common_pb2, events_pb2
from tryon.shared.server import serve
from tryon.shared.healthcheck import wait_until_serving
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
    publisher = EventPublisher(kafka_bootstrap, "body-test", Outbox(tmp_path / "outbox.sqlite")).start()
    events = KafkaBodyEvents(publisher)
    store = BodyStore(tmp_path / "bodies")
    servicer = BodyServicer(BodyDomain(trained_body_model, store, events))
    running = serve("body", [registration(servicer)],
                    ServerSettings(port=0))
    try:
        with BodyEventLog(kafka_bootstrap) as log, grpc.insecure_channel(running.address) as channel:
            stub = body_service_pb2_grpc.BodyServiceStub(channel)
            body = stub.CreateBody(create_request(), timeout=30).body
            updated = log.wait_for(events_pb2.BodyUpdated, body.body_id)
            assert updated.sex == common_pb2.SEX_FEMALE
            assert list(updated.body_latent) == pytest.approx(list(store.get(body.body_id).latent), abs=1e-6)
            assert len(updated.body_latent) == trained_body_model.latent_dim
            assert updated.event_id and updated.occurred_at.seconds > 0
            # Only the latent code and the fit profile travel: no measurement is carried by the event.
            assert {field.name for field, _ in updated.ListFields()} == {
                "event_id", "occurred_at", "body_id", "sex", "body_latent", "fit_profile"}
            assert {chart.chart_id for chart in updated.fit_profile} == set(shipped_charts())
            for chart in updated.fit_profile:
                assert list(chart.size_labels) == [size.label for size in shipped_charts()[chart.chart_id].sizes]
                assert len(chart.probabilities) == len(chart.size_labels)
                assert chart.recommended_size in chart.size_labels

            path = store.path_of(body.body_id)
            assert path.exists()
            stub.DeleteBody(pb.DeleteBodyRequest(body_id=body.body_id), timeout=30)
            deleted = log.wait_for(events_pb2.BodyDeleted, body.body_id)
            assert deleted.event_id != updated.event_id
            with pytest.raises(grpc.RpcError) as missing:
                stub.GetBody(pb.GetBodyRequest(body_id=body.body_id), timeout=30)
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
            assert not path.exists()
            assert list((tmp_path / "bodies").iterdir()) == []
    finally:
        running.stop(grace=1)
        publisher.close()


def _log_tail(data_dir) -> str:
    path = data_dir / "service.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def _stop(process: subprocess.Popen) -> int:
    """SIGTERM, as an orchestrator stops the service; its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    return process.returncode


def test_the_service_process_keeps_bodies_across_a_restart(kafka_bootstrap, trained_body_model, tmp_path):
    trained_body_model.save(tmp_path / "model")
    environment = {"publish_events": "true", "advice_samples": "200"}
    port = free_loopback_port()
    process = _spawn_service(tmp_path, port, kafka_bootstrap, **environment)
    try:
        wait_until_serving(f"127.0.0.1:{port}", SERVICE_FULL_NAME, deadline_s=120)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = body_service_pb2_grpc.BodyServiceStub(channel)
            body = stub.CreateBody(create_request(1801.0, 77.0), timeout=30).body
    finally:
        status = _stop(process)
    assert status == 0, "SIGTERM must drain and exit cleanly:\n" + _log_tail(tmp_path)

    with BodyEventLog(kafka_bootstrap) as log:
        log.wait_for(events_pb2.BodyUpdated, body.body_id)
        port = free_loopback_port()
        process = _spawn_service(tmp_path, port, kafka_bootstrap, **environment)
        try:
            wait_until_serving(f"127.0.0.1:{port}", SERVICE_FULL_NAME, deadline_s=120)
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = body_service_pb2_grpc.BodyServiceStub(channel)
                assert stub.GetBody(pb.GetBodyRequest(body_id=body.body_id), timeout=30).body == body
                stub.DeleteBody(pb.DeleteBodyRequest(body_id=body.body_id), timeout=30)
                log.wait_for(events_pb2.BodyDeleted, body.body_id)
        finally:
            status = _stop(process)
        assert status == 0, _log_tail(tmp_path)
        assert not (tmp_path / "bodies" / f"{body.body_id}.json").exists()


def _health_status(address: str) -> int | None:
    try:
        with grpc.insecure_channel(address) as channel:
            request = health_pb2.HealthCheckRequest(service=SERVICE_FULL_NAME)
            return health_pb2_grpc.HealthStub(channel).Check(request, timeout=1).status
    except grpc.RpcError:
        return None


def _spawn_service(data_dir, port: int, kafka_bootstrap: str = "", **settings: str) -> subprocess.Popen:
    """``python -m tryon.services.body`` on ``port``; events off unless settings turn them on."""
    env = {**os.environ, "TRYON_BODY_DATA_DIR": str(data_dir), "TRYON_BODY_PORT": str(port),
           "TRYON_BODY_PUBLISH_EVENTS": "false", "OMP_NUM_THREADS": "1", KAFKA_BOOTSTRAP_VARIABLE: kafka_bootstrap}
    env.update({f"TRYON_BODY_{name.upper()}": value for name, value in settings.items()})
    with (data_dir / "service.log").open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "tryon.services.body"], env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def test_a_fresh_service_trains_its_model_while_not_serving(tmp_path):
    port = free_loopback_port()
    process = _spawn_service(tmp_path, port, train_epochs="1")
    seen = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            health = _health_status(f"127.0.0.1:{port}")
            if health is not None and (not seen or seen[-1] != health):
                seen.append(health)
            if health == health_pb2.HealthCheckResponse.SERVING:
                break
            time.sleep(0.1)
        assert seen == [health_pb2.HealthCheckResponse.NOT_SERVING, health_pb2.HealthCheckResponse.SERVING]
        assert (tmp_path / "model" / "body_model.json").exists()
    finally:
        status = _stop(process)
    assert status == 0, _log_tail(tmp_path)


def test_a_service_that_cannot_load_its_model_exits_with_failure(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "body_model.json").write_text("{broken")
    process = _spawn_service(tmp_path, free_loopback_port())
    try:
        assert process.wait(timeout=60) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
