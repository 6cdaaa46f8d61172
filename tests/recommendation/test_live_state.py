"""The snapshotter (at most one snapshot per interval, a burst's last positions written once it is quiet),
and the consumer that start-up starts."""

from __future__ import annotations

import time

from tryon.services.recommendation.live_state import CONSUMED_TOPICS, Snapshotter, follow_events
from tryon.services.recommendation.recommender import read_snapshot
from tryon.services.recommendation.settings import RecommendationSettings
from tryon.shared import events
from tryon.shared.broker import ensure_topics
from tryon.shared.events import ConsumerCheckpoint
from tryon.shared.lifecycle import Resources


class CountingState:
    """Stands in for the recommender: its state says how often it was taken."""

    def __init__(self) -> None:
        self.taken = 0

    def state(self) -> dict:
        self.taken += 1
        return {"taken": self.taken}


def offer(snapshotter: Snapshotter, offset: int) -> None:
    snapshotter.on_checkpoint(ConsumerCheckpoint({("tryon.interactions.v1", 0): offset}, ()))


def test_the_last_positions_of_a_burst_are_written_once_the_interval_has_passed(tmp_path):
    state = CountingState()
    path = tmp_path / "snapshot.json"
    snapshotter = Snapshotter(state, path, interval_seconds=0.3)
    offer(snapshotter, 5)
    offer(snapshotter, 9)  # within the interval: not written yet
    assert read_snapshot(path)[1] == {"tryon.interactions.v1:0": 5}
    time.sleep(0.35)
    offer(snapshotter, 9)  # the same positions, offered by an idle poll
    assert read_snapshot(path)[1] == {"tryon.interactions.v1:0": 9}
    time.sleep(0.35)
    offer(snapshotter, 9)  # nothing new: no snapshot
    assert state.taken == 2


def test_the_consumer_that_start_up_starts_creates_no_topic_again(fresh_kafka_bootstrap, tmp_path, monkeypatch):
    # start_live_domain creates the topics before it reads their ends and follows them.
    ensure_topics(fresh_kafka_bootstrap, CONSUMED_TOPICS)
    created: list[list[str]] = []

    def ensure_and_record(bootstrap_servers, topics, *args, **kwargs):
        created.append(sorted(topics))
        ensure_topics(bootstrap_servers, topics, *args, **kwargs)

    monkeypatch.setattr(events, "ensure_topics", ensure_and_record)
    resources = Resources()
    try:
        consumer = follow_events(
            CountingState(), RecommendationSettings(data_dir=tmp_path), fresh_kafka_bootstrap, CONSUMED_TOPICS, resources
        )
        assert {topic for topic, _ in consumer.positions()} == set(CONSUMED_TOPICS)
    finally:
        resources.close()
    assert created == []
