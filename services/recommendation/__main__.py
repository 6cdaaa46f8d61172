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
from tryon.services.recommendation.recommender import ModelArtifacts, Recommender, read_snapshot, write_snapshot
from tryon.services.recommendation.servicer import SERVICE_FULL_NAME, RecommendationServicer, add_to_server
from tryon.services.recommendation.settings import PREFIX, RecommendationSettings
from tryon.shared.events import ConsumerCheckpoint, EventConsumer, EventProducer
from tryon.shared.logs import configure_logging
from tryon.shared.server import RunningServer, ServiceRegistration, serve
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


class RecommendationRuntime:
    """Everything the running service holds besides the gRPC server; ``close`` releases it in order."""

    def __init__(self) -> None:
        self.broker = None
        self.producer: EventProducer | None = None
        self.consumer: EventConsumer | None = None
        self.snapshotter: Snapshotter | None = None
        self.recommender: Recommender | None = None
        self.closed = False
        self.failed = False
        self._lock = threading.Lock()

    def start(self, settings: RecommendationSettings, servicer: RecommendationServicer, running: RunningServer,
              bootstrap_servers: str | None = None) -> None:
        """Load, restore, consume, catch up, then report SERVING (stops the server on failure)."""
        try:
            from tryon.shared.broker import ensure_topics, resolve_bootstrap

            settings.data_dir.mkdir(parents=True, exist_ok=True)
            recommender = Recommender(load_or_train_artifacts(settings))
            positions, applied = restore_snapshot(recommender, settings.snapshot_path)
            if bootstrap_servers is None:
                bootstrap_servers, broker = resolve_bootstrap()
                with self._lock:
                    self.broker = broker
                    if self.closed:
                        if broker is not None:
                            broker.stop()
                        return
            ensure_topics(bootstrap_servers, CONSUMED_TOPICS)
            targets = end_offsets(bootstrap_servers, CONSUMED_TOPICS, timeout=10.0)
            with self._lock:
                if self.closed:
                    return
                self.recommender = recommender
                self.producer = EventProducer(bootstrap_servers, client_id="tryon-recommendation")
                self.snapshotter = Snapshotter(recommender, settings.snapshot_path, settings.snapshot_interval_seconds)
                self.consumer = EventConsumer(
                    bootstrap_servers,
                    settings.consumer_group,
                    event_handlers(recommender),
                    start_positions=positions,
                    applied_event_ids=applied,
                    on_checkpoint=self.snapshotter.on_checkpoint,
                    remembered_event_ids=100_000,
                    fetch_max_wait_ms=settings.fetch_max_wait_ms,
                ).start()
            self.consumer.wait_until_ready(timeout=30.0)
            if not wait_until_caught_up(self.consumer, targets, settings.catch_up_timeout_seconds):
                logger.warning("consumer did not catch up within the timeout; serving anyway")
            servicer.attach(RecommendationDomain(recommender, KafkaInteractionPublisher(self.producer)))
            if self.closed:
                return
            running.set_serving(True)
            logger.info("recommendation service ready", extra={"garments": recommender.garment_count,
                                                                 "shoppers": len(recommender.histories)})
        except Exception:
            logger.exception("recommendation service failed to start; stopping")
            self.failed = True
            running.stop(grace=0)

    def close(self) -> None:
        """Stop consuming, write the last snapshot, close the producer, stop an embedded broker."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        if self.consumer is not None:
            self.consumer.stop()
            self.snapshotter.write(self.consumer.checkpoint())
            logger.info("final state snapshot written")
        if self.producer is not None:
            self.producer.close()
        if self.broker is not None:
            self.broker.stop()


def main() -> int:
    """Start the service and block until SIGTERM/SIGINT has drained it."""
    settings = settings_or_exit(RecommendationSettings, PREFIX)
    configure_logging("recommendation", settings.log_level)
    servicer = RecommendationServicer()
    running = serve("recommendation", [ServiceRegistration(SERVICE_FULL_NAME, add_to_server(servicer))], settings)
    running.set_serving(False)
    logger.info("recommendation service listening", extra={"address": running.address})
    runtime = RecommendationRuntime()
    running.install_signal_handlers(on_shutdown=runtime.close)
    threading.Thread(target=runtime.start, args=(settings, servicer, running), name="startup", daemon=True).start()
    running.wait()
    return 1 if runtime.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
