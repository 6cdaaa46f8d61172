"""The three services as processes while the broker is killed with -9 and restarted empty.

The services run as `make demo` runs them (the suite launcher, the shipped weights) against
an embedded broker of this test. A stream of RecordInteractions, CreateBody and RegisterGarment
calls goes on while the broker is killed and, later, restarted on the same port with an empty
log. Every call answers OK (its event is in the broker's log or in the service's outbox) or
UNAVAILABLE, never INTERNAL, and within a few seconds; the producers recover without a process
restart; every accepted event reaches the recommender once (shopper histories, registered
garments); and the recommender's health is NOT_SERVING while the broker is away.

Before the kill the stream pauses until the recommender has applied what was accepted so far:
the embedded broker keeps its log in memory, so what it had acknowledged and nobody had read
yet dies with it, and that loss belongs to the broker's storage, not to the services.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import grpc
import pytest
from PIL import Image, ImageDraw

from tryon.shared.broker import EmbeddedBroker
from tryon.shared.healthcheck import check
from tryon.shared.launcher import SERVICE_NAMES, LocalSuite
from tryon.shared.proto import (
    body_service_pb2 as body_pb,
    body_service_pb2_grpc,
    common_pb2,
    garment_service_pb2 as garment_pb,
    garment_service_pb2_grpc,
    recommendation_service_pb2 as rec_pb,
    recommendation_service_pb2_grpc,
)

pytestmark = pytest.mark.integration

CALL_DEADLINE_S = 10.0
# The longest a call may take: the publisher waits 2 s for the broker's acknowledgement.
SLOWEST_CALL_S = 5.0
SHOPPERS = ("ann", "bob", "cy")


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.1)


def garment_png() -> bytes:
    picture = Image.new("L", (60, 80), 255)
    ImageDraw.Draw(picture).polygon([(10, 10), (50, 10), (58, 30), (46, 30), (46, 75), (14, 75), (14, 30), (2, 30)], fill=40)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Stream:
    """Calls of the three services in a loop, each outcome recorded, until stopped."""

    suite: LocalSuite
    garment_ids: list[str]
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    outcomes: list[tuple[str, grpc.StatusCode, float]] = field(default_factory=list)
    accepted_interactions: Counter = field(default_factory=Counter)
    accepted_bodies: list[str] = field(default_factory=list)
    accepted_garments: list[str] = field(default_factory=list)
    running: threading.Event = field(default_factory=threading.Event)
    idle: threading.Event = field(default_factory=threading.Event)
    stopped: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._channels = [grpc.insecure_channel(self.suite.address(name)) for name in SERVICE_NAMES]
        body, garment, recommendation = self._channels
        self.bodies = body_service_pb2_grpc.BodyServiceStub(body)
        self.garments = garment_service_pb2_grpc.GarmentServiceStub(garment)
        self.recommendations = recommendation_service_pb2_grpc.RecommendationServiceStub(recommendation)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def user(self, shopper: str) -> str:
        return f"{shopper}-{self.run_id}"

    def start(self) -> None:
        self.running.set()
        self._thread.start()

    def pause(self) -> None:
        """Let the call in flight finish and start no other until ``resume``."""
        self.running.clear()
        assert self.idle.wait(CALL_DEADLINE_S + 5)

    def resume(self) -> None:
        self.running.set()

    def stop(self) -> None:
        self.stopped.set()
        self.running.set()
        self._thread.join(CALL_DEADLINE_S + 5)
        for channel in self._channels:
            channel.close()

    def _run(self) -> None:
        number = 0
        while not self.stopped.is_set():
            self.idle.set()
            self.running.wait()
            self.idle.clear()
            if self.stopped.is_set():
                return
            kind = ("interaction", "interaction", "body", "garment")[number % 4]
            self._call(kind, number)
            number += 1

    def _call(self, kind: str, number: int) -> None:
        started = time.monotonic()
        try:
            if kind == "interaction":
                user_id = self.user(SHOPPERS[number % len(SHOPPERS)])
                self.recommendations.RecordInteractions(
                    rec_pb.RecordInteractionsRequest(interactions=[rec_pb.Interaction(
                        user_id=user_id, garment_id=self.garment_ids[number % len(self.garment_ids)],
                        type=common_pb2.INTERACTION_TYPE_VIEW,
                    )]),
                    timeout=CALL_DEADLINE_S,
                )
                self.accepted_interactions[user_id] += 1
            elif kind == "body":
                body = self.bodies.CreateBody(
                    body_pb.CreateBodyRequest(measurements=[
                        common_pb2.MeasurementValue(name="stature", value=1600.0 + number),
                        common_pb2.MeasurementValue(name="weight", value=60.0),
                    ]),
                    timeout=CALL_DEADLINE_S,
                ).body
                self.accepted_bodies.append(body.body_id)
            else:
                garment = self.garments.RegisterGarment(
                    garment_pb.RegisterGarmentRequest(
                        image=garment_png(), name=f"Fault tee {number}",
                        category=common_pb2.GARMENT_CATEGORY_T_SHIRT_TOP,
                        price=common_pb2.Money(currency_code="EUR", amount_minor=1000),
                    ),
                    timeout=CALL_DEADLINE_S,
                ).garment
                self.accepted_garments.append(garment.garment_id)
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code = error.code()
        self.outcomes.append((kind, code, time.monotonic() - started))

    def calls_since(self, count: int) -> int:
        return len(self.outcomes) - count


@pytest.fixture
def broker_and_suite(tmp_path, shipped_weights):
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log").start()
    suite = LocalSuite(
        tmp_path / "suite", bootstrap_servers=broker.bootstrap_servers, startup_timeout_s=600,
    )
    brokers = [broker]
    try:
        with suite:
            yield brokers, suite
    finally:
        for each in brokers:
            each.stop()


def test_calls_stay_answered_and_no_accepted_event_is_lost_when_the_broker_dies_and_returns_empty(
    broker_and_suite, tmp_path
):
    brokers, suite = broker_and_suite
    port = int(brokers[0].bootstrap_servers.rpartition(":")[2])
    recommendation = suite.address("recommendation")
    stub = recommendation_service_pb2_grpc.RecommendationServiceStub(grpc.insecure_channel(recommendation))
    catalogue = stub.RecommendGarments(rec_pb.RecommendGarmentsRequest(user_id="catalogue-reader", k=20))
    stream = Stream(suite, [garment.garment_id for garment in catalogue.garments])

    def history_sizes() -> dict[str, int]:
        return {
            user_id: stub.RecommendGarments(rec_pb.RecommendGarmentsRequest(user_id=user_id, k=1)).history_size
            for user_id in map(stream.user, SHOPPERS)
        }

    def serving() -> bool:
        return check(recommendation, SERVICE_NAMES["recommendation"], timeout=1.0)

    stream.start()
    try:
        wait_for(lambda: len(stream.outcomes) >= 8, 30, "the first calls")
        stream.pause()
        wait_for(lambda: history_sizes() == dict(stream.accepted_interactions), 20, "the first events applied")
        for garment_id in stream.accepted_garments:
            wait_for(lambda: _known(stub, garment_id), 20, "the first garments applied")

        brokers[0].kill()
        down_at = len(stream.outcomes)
        stream.resume()
        wait_for(lambda: not serving(), 15, "the recommender NOT_SERVING")
        wait_for(lambda: stream.calls_since(down_at) >= 8, 40, "calls while the broker is away")
        refused_while_down = [code for _, code, _ in stream.outcomes[down_at:] if code != grpc.StatusCode.OK]

        brokers.append(EmbeddedBroker(log_path=tmp_path / "broker-restarted.log", port=port).start())
        wait_for(serving, 30, "the recommender SERVING again")
        back_at = len(stream.outcomes)
        wait_for(lambda: stream.calls_since(back_at) >= 8, 40, "calls after the restart")
    finally:
        stream.stop()

    assert {code for _, code, _ in stream.outcomes} <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, stream.outcomes
    assert max(seconds for _, _, seconds in stream.outcomes) < SLOWEST_CALL_S, stream.outcomes
    # The outbox takes events while the broker is away: calls then are accepted, not refused.
    assert refused_while_down == []
    # Producers recovered in the same processes: calls after the restart are OK.
    assert all(code == grpc.StatusCode.OK for _, code, _ in stream.outcomes[back_at:]), stream.outcomes[back_at:]

    wait_for(lambda: history_sizes() == dict(stream.accepted_interactions), 30, "every accepted interaction applied once")
    for garment_id in stream.accepted_garments:
        wait_for(lambda: _known(stub, garment_id), 30, f"garment {garment_id} known to the recommender")
    bodies = body_service_pb2_grpc.BodyServiceStub(grpc.insecure_channel(suite.address("body")))
    for body_id in stream.accepted_bodies:
        assert bodies.GetBody(body_pb.GetBodyRequest(body_id=body_id)).body.body_id == body_id
    # Applied once: the sizes stay where they are once every outbox is empty and read again.
    time.sleep(2)
    assert history_sizes() == dict(stream.accepted_interactions)
    assert all(process.process.poll() is None for process in suite.running.values())


def _known(stub, garment_id: str) -> bool:
    try:
        stub.SimilarGarments(rec_pb.SimilarGarmentsRequest(garment_id=garment_id, k=1))
        return True
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return False
        raise
