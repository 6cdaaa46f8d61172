"""The embedded broker killed with -9 and restarted on the same port (an empty log) during a stream.

The stream goes through the services' EventPublisher (outbox) to an EventConsumer: every call
is accepted quickly while the broker is away, every accepted event is applied exactly once and
in order per key, the consumer says it found a log behind its positions and starts that log from
its beginning, and its health goes down and comes back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict

import pytest

from tryon.shared.broker import EmbeddedBroker
from tryon.shared.events import EventConsumer, EventPublisher, new_event_id, timestamp_now
from tryon.shared.outbox import Outbox
from tryon.shared.proto import common_pb2, events_pb2

pytestmark = pytest.mark.integration

KEYS = ("ann", "bob", "cy")


def interaction(user_id: str, n: int) -> events_pb2.InteractionRecorded:
    return events_pb2.InteractionRecorded(
        event_id=new_event_id(), occurred_at=timestamp_now(), user_id=user_id, garment_id=f"g{n}",
        type=common_pb2.INTERACTION_TYPE_VIEW,
    )


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.05)


class Applied:
    """Handler recording each applied event, thread-safely."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[events_pb2.InteractionRecorded] = []

    def __call__(self, event) -> None:
        with self.lock:
            self.events.append(event)

    def ids(self) -> Counter:
        with self.lock:
            return Counter(event.event_id for event in self.events)


def test_no_accepted_event_is_lost_or_applied_twice_when_the_broker_restarts_empty(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="tryon.shared.events")
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log").start()
    port = int(broker.bootstrap_servers.rpartition(":")[2])
    health: list[bool] = []
    applied = Applied()
    publisher = EventPublisher(broker.bootstrap_servers, "faults", Outbox(tmp_path / "outbox.sqlite")).start()
    consumer = EventConsumer(
        broker.bootstrap_servers, "faults", {events_pb2.InteractionRecorded: applied},
        fetch_max_wait_ms=20, on_health=health.append, unreachable_after_s=1.0,
    ).start()
    restarted = None
    accepted: list[events_pb2.InteractionRecorded] = []
    call_seconds: list[float] = []

    def publish(count: int) -> None:
        for _ in range(count):
            event = interaction(KEYS[len(accepted) % len(KEYS)], len(accepted))
            started = time.monotonic()
            publisher.publish([(event, event.user_id)])
            call_seconds.append(time.monotonic() - started)
            accepted.append(event)

    try:
        consumer.wait_until_ready(15.0)
        publish(30)
        # Memory storage loses what the broker held; let the consumer have it before the crash.
        wait_for(lambda: len(applied.ids()) == 30, 10.0, "the first events applied")
        broker.kill()
        publish(30)
        wait_for(lambda: health[-1:] == [False], 10.0, "health down")
        assert len(publisher.outbox) > 0
        restarted = EmbeddedBroker(log_path=tmp_path / "broker2.log", port=port).start()
        publish(30)
        wait_for(lambda: set(applied.ids()) == {e.event_id for e in accepted}, 20.0, "every accepted event applied")
        wait_for(lambda: health[-1:] == [True], 10.0, "health back")
    finally:
        consumer.stop()
        publisher.close()
        (restarted or broker).stop()
        broker.stop()

    assert max(applied.ids().values()) == 1
    order = defaultdict(list)
    for event in applied.events:
        order[event.user_id].append(int(event.garment_id[1:]))
    assert all(numbers == sorted(numbers) for numbers in order.values()), dict(order)
    # Accepted at once while the broker was away: no call waited for it.
    assert max(call_seconds) < 3.0
    assert any("log behind its positions" in r.getMessage() for r in caplog.records)
    assert False in health
