"""A read replica's consumer resumes from its own snapshot only, never from a commit its state lacks."""

from __future__ import annotations

import time

import pytest

from tryon.services.recommendation.settings import RecommendationSettings
from tryon.shared.broker import ensure_topics
from tryon.shared.events import EventConsumer, EventPublisher, new_event_id
from tryon.shared.outbox import Outbox
from tryon.shared.proto import events_pb2
from tryon.shared.topics import USERS

pytestmark = pytest.mark.integration


def deletion(user_id: str) -> events_pb2.UserDeleted:
    return events_pb2.UserDeleted(event_id=new_event_id(), user_id=user_id)


def consume_until(consumer: EventConsumer, seen: list[str], count: int, timeout: float = 15.0) -> None:
    consumer.start()
    try:
        consumer.wait_until_ready(timeout)
        deadline = time.monotonic() + timeout
        while len(seen) < count and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        consumer.stop()


def test_a_consumer_without_a_snapshot_reads_the_log_from_its_start_despite_the_groups_commits(
    fresh_kafka_bootstrap: str, tmp_path
) -> None:
    ensure_topics(fresh_kafka_bootstrap, [USERS], partitions=2)
    with EventPublisher(fresh_kafka_bootstrap, "replica-test", Outbox(tmp_path / "outbox.sqlite"), ack_wait_s=0) as publisher:
        publisher.publish([(deletion(user), user) for user in ("one", "two")])
        assert publisher.wait_until_sent(timeout=10)
        first: list[str] = []
        consume_until(EventConsumer(fresh_kafka_bootstrap, "replica", {events_pb2.UserDeleted: lambda e: first.append(e.user_id)}), first, 2)
        assert sorted(first) == ["one", "two"]
        publisher.publish([(deletion("three"), "three")])
        assert publisher.wait_until_sent(timeout=10)

    # The same group has committed the first two; a replica whose snapshot was lost must read them again.
    fresh: list[str] = []
    consumer = EventConsumer(
        fresh_kafka_bootstrap, "replica", {events_pb2.UserDeleted: lambda e: fresh.append(e.user_id)},
        resume_from_committed=False,
    )
    consume_until(consumer, fresh, 3)
    assert sorted(fresh) == ["one", "three", "two"]


def test_each_replica_commits_under_its_own_group() -> None:
    assert RecommendationSettings(replica_id="recommendation-1").replica_group == "tryon-recommendation.recommendation-1"
    assert RecommendationSettings().replica_group == "tryon-recommendation"
