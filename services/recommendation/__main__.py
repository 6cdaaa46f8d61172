"""Run RecommendationService: ``python -m tryon.services.recommendation``.

Reads ``TRYON_RECOMMENDATION_*`` settings, logs JSON lines to stdout and serves at once with
health NOT_SERVING. It then loads the artifacts under ``<data_dir>/artifacts`` (or, when
there are none, trains them on a simulated catalogue and shoppers and saves them there),
restores the last state snapshot, starts consuming the interaction, garment, user and body
topics from the snapshot's offsets, and turns SERVING once the consumer has reached the end
of the topics as they were at start. State is snapshotted with the consumer's offsets
(``snapshot_interval_seconds``) and once more on SIGTERM, after the calls have drained.
Events go to ``KAFKA_BOOTSTRAP_SERVERS`` or, when it is unset, to an embedded broker.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from tryon.services.recommendation.domain import RecommendationDomain
from tryon.services.recommendation.handlers import KafkaInteractionPublisher, event_handlers
from tryon.services.recommendation.index import disable_interrupt_checks, set_search_threads
from tryon.services.recommendation.recommender import ModelArtifacts, Recommender, read_snapshot, write_snapshot
from tryon.services.recommendation.servicer import SERVICE_FULL_NAME, RecommendationServicer, add_to_server
from tryon.services.recommendation.settings import PREFIX, RecommendationSettings
from tryon.shared.broker import ensure_topics
from tryon.shared.events import ConsumerCheckpoint, EventConsumer
from tryon.shared.lifecycle import Resources, connect_kafka, event_producer, run_service
from tryon.shared.server import ServiceRegistration
from tryon.shared.settings import settings_or_exit
from tryon.shared.topics import BODIES, GARMENTS, INTERACTIONS, USERS

logger = logging.getLogger("tryon.services.recommendation")

CONSUMED_TOPICS = (INTERACTIONS, GARMENTS, USERS, BODIES)
CONTENT_LATENT_DIM = 16
"""Size of the simulated content latents when the service trains on a simulated catalogue."""


def load_or_train_artifacts(settings: RecommendationSettings) -> ModelArtifacts:
    """The artifacts under the data folder, or ones trained on a simulated catalogue and saved there."""
    if ModelArtifacts.exists(settings.artifacts_dir):
        artifacts = ModelArtifacts.load(settings.artifacts_dir, nprobe=settings.nprobe, ef_search=settings.ef_search)
        logger.info("recommendation artifacts loaded", extra={"garments": len(artifacts.item_index)})
        return artifacts
    from tryon.services.recommendation.catalogue import synthetic_catalogue
    from tryon.services.recommendation.simulator import ShopperSimulator
    from tryon.services.recommendation.train import SERVING_CONFIG, train_artifacts

    logger.info("no recommendation artifacts found; training on a simulated catalogue",
                extra={"garments": settings.demo_garments, "shoppers": settings.demo_shoppers})
    started = time.monotonic()
    catalogue = synthetic_catalogue(settings.demo_garments, CONTENT_LATENT_DIM, seed=settings.train_seed)
    simulator = ShopperSimulator(catalogue, seed=settings.train_seed)
    interactions = simulator.interactions_table(simulator.make_shoppers(settings.demo_shoppers))
    config = replace(SERVING_CONFIG, epochs=settings.train_epochs)
    artifacts = train_artifacts(interactions, catalogue, config, settings.index_factory, settings.train_seed, progress=False)
    artifacts.save(settings.artifacts_dir)
    interactions.to_parquet(settings.data_dir / "simulated_interactions.parquet", index=False)
    logger.info("recommendation artifacts trained and saved", extra={"seconds": round(time.monotonic() - started, 1)})
    return artifacts


def _position_key(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def _parse_position_key(key: str) -> tuple[str, int]:
    topic, _, partition = key.rpartition(":")
    return topic, int(partition)


class Snapshotter:
    """Writes the recommender's state with the consumer's checkpoint, at most once per interval."""

    def __init__(self, recommender: Recommender, path: Path, interval_seconds: float) -> None:
        self._recommender = recommender
        self._path = path
        self._interval = interval_seconds
        self._last = 0.0
        self._lock = threading.Lock()

    def on_checkpoint(self, checkpoint: ConsumerCheckpoint) -> None:
        """Called by the consumer between batches: no handler runs while the state is copied."""
        if time.monotonic() - self._last >= self._interval:
            self.write(checkpoint)

    def write(self, checkpoint: ConsumerCheckpoint) -> None:
        """Snapshot now."""
        with self._lock:
            state = self._recommender.state()
            state["consumer_applied_event_ids"] = list(checkpoint.applied_event_ids)
            offsets = {_position_key(t, p): offset for (t, p), offset in checkpoint.positions.items()}
            write_snapshot(self._path, state, offsets)
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


def prepare(
    settings: RecommendationSettings,
    servicer: RecommendationServicer,
    resources: Resources,
    bootstrap_servers: str | None = None,
) -> Recommender:
    """Load, restore, consume and catch up, then hand the domain to the servicer.

    At shutdown the consumer stops and a last snapshot is written before the producer
    and an embedded broker are released.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    set_search_threads(settings.faiss_threads)
    disable_interrupt_checks()
    recommender = Recommender(load_or_train_artifacts(settings))
    positions, applied = restore_snapshot(recommender, settings.snapshot_path)
    if bootstrap_servers is None:
        bootstrap_servers = connect_kafka(resources, CONSUMED_TOPICS)
    else:
        ensure_topics(bootstrap_servers, CONSUMED_TOPICS)
    targets = end_offsets(bootstrap_servers, CONSUMED_TOPICS, timeout=10.0)
    producer = event_producer(resources, bootstrap_servers, client_id="tryon-recommendation")
    snapshotter = Snapshotter(recommender, settings.snapshot_path, settings.snapshot_interval_seconds)
    consumer = EventConsumer(
        bootstrap_servers,
        settings.consumer_group,
        event_handlers(recommender),
        start_positions=positions,
        applied_event_ids=applied,
        on_checkpoint=snapshotter.on_checkpoint,
        remembered_event_ids=100_000,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )

    def stop_consuming() -> None:
        consumer.stop()
        snapshotter.write(consumer.checkpoint())
        logger.info("final state snapshot written")

    resources.adopt(consumer.start(), stop_consuming)
    consumer.wait_until_ready(timeout=30.0)
    if not wait_until_caught_up(consumer, targets, settings.catch_up_timeout_seconds):
        logger.warning("consumer did not catch up within the timeout; serving anyway")
    servicer.attach(RecommendationDomain(recommender, KafkaInteractionPublisher(producer)))
    logger.info(
        "recommendation service ready",
        extra={"garments": recommender.garment_count, "shoppers": len(recommender.histories)},
    )
    return recommender


def main() -> int:
    """Start the service and block until SIGTERM/SIGINT has drained it."""
    settings = settings_or_exit(RecommendationSettings, PREFIX)
    servicer = RecommendationServicer()
    registration = ServiceRegistration(SERVICE_FULL_NAME, add_to_server(servicer))
    return run_service(
        "recommendation", [registration], settings, lambda resources: prepare(settings, servicer, resources)
    )


if __name__ == "__main__":
    raise SystemExit(main())
