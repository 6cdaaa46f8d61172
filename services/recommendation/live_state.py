"""The recommender's live state: snapshots with the consumer's positions, restore, and catch-up.

State changed by events is written with the consumer positions it reflects (``Snapshotter``,
called between the consumer's batches), restored at start (``restore_snapshot``), and start-up
waits until the consumer has reached the end of the topics as they were at start
(``end_offsets``, ``wait_until_caught_up``) before the service answers SERVING.
``start_live_domain`` is the service's whole start-up: it returns the domain to attach.

Replicas are read replicas: each reads every partition of the consumed topics into its own
state, resumes from the positions in its own snapshot (from the log's start without one, never
from a commit its state does not hold) and commits under its own group, so any replica answers
for any shopper and one that dies leaves the others' answers whole. Why not a consumer group
with calls routed by user id: every replica needs the whole catalogue and all garment vectors
anyway (fold-in scores every garment), histories are the only state a group would split, and
``tests/benchmarks/bench_replica_memory.py`` measures what they cost (docs/results.md,
``recommender_replicas``).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from tryon.services.recommendation.domain import RecommendationDomain
from tryon.services.recommendation.handlers import KafkaInteractionPublisher, event_handlers
from tryon.services.recommendation.index import disable_interrupt_checks, set_search_threads
from tryon.services.recommendation.models_store import load_or_train_artifacts
from tryon.services.recommendation.recommender import Recommender, read_snapshot, write_snapshot
from tryon.services.recommendation.settings import RecommendationSettings
from tryon.shared.broker import ensure_topics
from tryon.shared.events import ConsumerCheckpoint, EventConsumer
from tryon.shared.lifecycle import Resources, connect_kafka, event_publisher
from tryon.shared.topics import BODIES, GARMENTS, INTERACTIONS, USERS

logger = logging.getLogger("tryon.services.recommendation")

CONSUMED_TOPICS = (INTERACTIONS, GARMENTS, USERS, BODIES)


def _position_key(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def _parse_position_key(key: str) -> tuple[str, int]:
    topic, _, partition = key.rpartition(":")
    return topic, int(partition)


class Snapshotter:
    """Writes the recommender's state with the consumer's checkpoint, at most once per interval.

    The consumer offers a checkpoint after every poll; one whose positions were written already
    is passed over, so a quiet stream costs nothing and the last burst's state is written once
    the interval has passed.
    """

    def __init__(self, recommender: Recommender, path: Path, interval_seconds: float) -> None:
        self._recommender = recommender
        self._path = path
        self._interval = interval_seconds
        self._last = 0.0
        self._written_positions: dict[tuple[str, int], int] | None = None
        self._lock = threading.Lock()

    def on_checkpoint(self, checkpoint: ConsumerCheckpoint) -> None:
        """Called by the consumer between polls: no handler runs while the state is copied."""
        if checkpoint.positions == self._written_positions:
            return
        if time.monotonic() - self._last >= self._interval:
            self.write(checkpoint)

    def write(self, checkpoint: ConsumerCheckpoint) -> None:
        """Snapshot now."""
        with self._lock:
            state = self._recommender.state()
            state["consumer_applied_event_ids"] = list(checkpoint.applied_event_ids)
            offsets = {_position_key(t, p): offset for (t, p), offset in checkpoint.positions.items()}
            write_snapshot(self._path, state, offsets)
            self._written_positions = dict(checkpoint.positions)
            self._last = time.monotonic()


def restore_snapshot(recommender: Recommender, path: Path) -> tuple[dict[tuple[str, int], int], list[str]]:
    """Restore the recommender from the snapshot at ``path``; the consumer's start positions and applied ids."""
    snapshot = read_snapshot(path)
    if snapshot is None:
        return {}, []
    state, offsets = snapshot
    recommender.restore(state)
    logger.info("state snapshot restored", extra={"shoppers": len(recommender.histories), "partitions": len(offsets)})
    positions = {_parse_position_key(key): offset for key, offset in offsets.items()}
    return positions, list(state.get("consumer_applied_event_ids", []))


def end_offsets(bootstrap_servers: str, topics: tuple[str, ...], timeout: float) -> dict[tuple[str, int], int]:
    """The high watermark of every partition of ``topics``, read from fetch answers.

    Fetch answers carry the high watermark reliably on every broker the suite runs against
    (Tansu's ListOffsets is not reliable once records are batched).
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=50,
                             max_partition_fetch_bytes=1024)
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while True:
            consumer.poll(timeout_ms=100, max_records=1)
            marks = {p: consumer.highwater(p) for p in partitions}
            if all(mark is not None for mark in marks.values()) or time.monotonic() > deadline:
                return {(p.topic, p.partition): mark or 0 for p, mark in marks.items()}
    finally:
        consumer.close(autocommit=False)


def wait_until_caught_up(consumer: EventConsumer, targets: dict[tuple[str, int], int], timeout: float) -> bool:
    """Wait until the consumer's positions reach ``targets``; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        positions = consumer.positions()
        if all(positions.get(key, 0) >= mark for key, mark in targets.items()):
            return True
        time.sleep(0.05)
    return False


def follow_events(
    recommender: Recommender,
    settings: RecommendationSettings,
    bootstrap_servers: str,
    topics: tuple[str, ...],
    resources: Resources,
) -> EventConsumer:
    """Restore the last snapshot, consume ``topics`` from its positions and wait until caught up.

    ``topics`` exist already (start-up creates them before reading their ends), so the
    consumer's first connection does not create them again; its reconnections do.

    The consumer is adopted by ``resources``: at shutdown it stops and a last snapshot is
    written. While it cannot reach the broker, ``resources.health`` hears of it (NOT_SERVING). Returns once the consumer has reached the end of the topics as they were now,
    or after ``settings.catch_up_timeout_seconds`` (logged).
    """
    positions, applied = restore_snapshot(recommender, settings.snapshot_path)
    targets = end_offsets(bootstrap_servers, topics, timeout=10.0)
    snapshotter = Snapshotter(recommender, settings.snapshot_path, settings.snapshot_interval_seconds)
    consumer = EventConsumer(
        bootstrap_servers,
        settings.replica_group,
        event_handlers(recommender),
        start_positions=positions,
        resume_from_committed=False,
        applied_event_ids=applied,
        on_checkpoint=snapshotter.on_checkpoint,
        remembered_event_ids=100_000,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        on_health=resources.health.callback("event consumer"),
        topics_ensured=True,
    )

    def stop_consuming() -> None:
        consumer.stop()
        snapshotter.write(consumer.checkpoint())
        logger.info("final state snapshot written")

    resources.adopt(consumer.start(), stop_consuming)
    consumer.wait_until_ready(timeout=30.0)
    if not wait_until_caught_up(consumer, targets, settings.catch_up_timeout_seconds):
        logger.warning("consumer did not catch up within the timeout; serving anyway")
    return consumer


def start_live_domain(
    settings: RecommendationSettings, resources: Resources, bootstrap_servers: str | None = None
) -> RecommendationDomain:
    """Load the artifacts, restore the last snapshot, consume and catch up: the domain to attach.

    Kafka is ``bootstrap_servers`` when given, else the configured cluster or an embedded
    broker. At shutdown the consumer stops and a last snapshot is written before the
    publisher and an embedded broker are released.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    set_search_threads(settings.faiss_threads)
    disable_interrupt_checks()
    recommender = Recommender(load_or_train_artifacts(settings))
    if bootstrap_servers is None:
        bootstrap_servers = connect_kafka(resources, CONSUMED_TOPICS)
    else:
        ensure_topics(bootstrap_servers, CONSUMED_TOPICS)
    publisher = event_publisher(resources, bootstrap_servers, "tryon-recommendation", settings.data_dir)
    follow_events(recommender, settings, bootstrap_servers, CONSUMED_TOPICS, resources)
    logger.info(
        "recommendation service ready",
        extra={"garments": recommender.garment_count, "shoppers": len(recommender.histories)},
    )
    return RecommendationDomain(recommender, KafkaInteractionPublisher(publisher))
