"""Two recommender replicas on one broker: read replicas, each applying every event once.

Two RecommendationService processes (replica ids "a" and "b", each with its own data folder and
snapshot) run against an embedded broker of this test, from the shipped weights. A client sends
RecordInteractions to the replicas in turn (falling over to the other when one fails) while
replica b is killed with SIGKILL mid-stream. The reference is the interactions topic itself,
read to its end: the distinct event ids per shopper. Then:

- within 30 s of the kill, replica a serves every shopper with every event in the log (read
  replicas: a replica's shoppers are every replica's shoppers); an event b accepted into its
  outbox but had not sent reaches the log when b starts again, as the outbox promises;
- replica b, started again on its own snapshot, and replica a end with history sizes equal to
  the log's events per shopper, and equal histories: each event applied exactly once per state;
- every event id a call was answered with is in the log: nothing accepted is lost;
- each replica commits its progress through the whole log under its own group.

A call in flight to b when it dies may have published its event before the client saw the
failure and sent the interaction again to a: the log then holds two events, and both count.
"""

from __future__ import annotations

import random
import threading
import time

import grpc
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from tryon.services.recommendation.catalogue import Catalogue
from tryon.services.recommendation.models_store import WEIGHTS_DIR
from tryon.services.recommendation.recommender import CATALOGUE_FILE, read_snapshot
from tryon.shared.broker import EmbeddedBroker
from tryon.shared.launcher import LocalSuite
from tryon.shared.proto import common_pb2, events_pb2
from tryon.shared.proto import recommendation_service_pb2 as pb
from tryon.shared.proto import recommendation_service_pb2_grpc as pb_grpc
from tryon.shared.topics import INTERACTIONS

pytestmark = pytest.mark.integration

SHOPPERS = [f"replica-shopper-{number}" for number in range(12)]
SERVED_AGAIN_WITHIN_S = 30.0
CALL_DEADLINE_S = 5.0


class Replica:
    """One recommender process of its own LocalSuite, and a stub to it."""

    def __init__(self, name: str, root, bootstrap: str) -> None:
        self.name = name
        self.suite = LocalSuite(
            root / name,
            services=("recommendation",),
            bootstrap_servers=bootstrap,
            startup_timeout_s=120.0,
            grace_s=10.0,
            extra_env={
                "TRYON_RECOMMENDATION_REPLICA_ID": name,
                "TRYON_RECOMMENDATION_SNAPSHOT_INTERVAL_SECONDS": "0.2",
                "OMP_NUM_THREADS": "1",
            },
        )
        self.channel: grpc.Channel | None = None

    def start(self) -> None:
        self.suite.start()
        self._connect()

    def _connect(self) -> None:
        self.channel = grpc.insecure_channel(self.suite.address("recommendation"))
        self.stub = pb_grpc.RecommendationServiceStub(self.channel)

    @property
    def snapshot_path(self):
        return self.suite.data_dir / "recommendation" / "snapshot.json"

    def history_size(self, user_id: str) -> int:
        request = pb.RecommendGarmentsRequest(user_id=user_id, k=1)
        return self.stub.RecommendGarments(request, timeout=CALL_DEADLINE_S).history_size

    def kill(self) -> None:
        # The channel stays open: calls in flight then fail as a client of a dead server sees it.
        process = self.suite.running.pop("recommendation").process
        process.kill()
        process.wait(timeout=10)

    def restart(self) -> None:
        self.channel.close()
        self.suite.add("recommendation")
        self._connect()

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
        self.suite.stop()


def start_together(replicas: list[Replica]) -> None:
    """Start the replicas at once, as a Deployment's pods start; raise the first start-up failure (with its log)."""
    failures: list[BaseException] = []

    def start(replica: Replica) -> None:
        try:
            replica.start()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            failures.append(error)

    threads = [threading.Thread(target=start, args=(replica,)) for replica in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def wait_for(condition, timeout: float, what: str) -> float:
    """Seconds until ``condition`` held; fails the test after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.1)
    return time.monotonic() - started


def logged_interactions(bootstrap: str, timeout: float = 15.0) -> dict[str, str]:
    """Every InteractionRecorded in the log, read to its end: user id by event id."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    try:
        partitions = [TopicPartition(INTERACTIONS, p) for p in sorted(consumer.partitions_for_topic(INTERACTIONS))]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        users: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        while True:
            for records in consumer.poll(timeout_ms=100).values():
                for record in records:
                    event = events_pb2.InteractionRecorded.FromString(record.value)
                    users[event.event_id] = event.user_id
            # The fetch answers' high watermark: the embedded broker's ListOffsets is unreliable.
            if all(consumer.highwater(p) is not None and consumer.position(p) >= consumer.highwater(p) for p in partitions):
                return users
            assert time.monotonic() < deadline, "the interactions topic was not read to its end"
    finally:
        consumer.close(autocommit=False)


def sizes_per_shopper(users_by_event: dict[str, str]) -> dict[str, int]:
    return {user_id: sum(1 for user in users_by_event.values() if user == user_id) for user_id in SHOPPERS}


def sizes_match(replica: Replica, expected: dict[str, int]) -> bool:
    try:
        return {user_id: replica.history_size(user_id) for user_id in SHOPPERS} == expected
    except grpc.RpcError:
        return False


def test_two_read_replicas_apply_every_event_once_and_serve_a_killed_replicas_shoppers(shipped_weights, tmp_path) -> None:
    garments = Catalogue.load(WEIGHTS_DIR / "artifacts" / CATALOGUE_FILE).garment_ids
    rng = random.Random(4)
    accepted: set[str] = set()
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        replicas = [Replica(name, tmp_path, broker.bootstrap_servers) for name in ("a", "b")]
        first, second = replicas
        try:
            start_together(replicas)
            alive = list(replicas)

            def record(number: int) -> None:
                """One RecordInteractions, to the replicas in turn; the other takes it when one fails."""
                user_id = SHOPPERS[number % len(SHOPPERS)]
                request = pb.RecordInteractionsRequest(interactions=[
                    pb.Interaction(user_id=user_id, garment_id=rng.choice(garments), type=common_pb2.INTERACTION_TYPE_VIEW)
                ])
                for replica in (alive[number % len(alive)], *alive):
                    try:
                        response = replica.stub.RecordInteractions(request, timeout=CALL_DEADLINE_S)
                    except grpc.RpcError as error:
                        assert error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), error
                        continue
                    accepted.update(response.event_ids)
                    return
                pytest.fail("no replica accepted a RecordInteractions")

            for number in range(60):
                record(number)
            wait_for(lambda: read_snapshot(second.snapshot_path) is not None
                     and sum(e["count"] for e in read_snapshot(second.snapshot_path)[0]["histories"].values()) > 0,
                     20, "replica b's first snapshot with histories")

            stop_stream = threading.Event()
            streamed = []

            def stream() -> None:
                number = 60
                while not stop_stream.is_set():
                    record(number)
                    streamed.append(number)
                    number += 1

            streaming = threading.Thread(target=stream)
            streaming.start()
            wait_for(lambda: len(streamed) >= 20, 20, "calls during the stream")
            alive.remove(second)
            second.kill()
            killed_at = time.monotonic()
            wait_for(lambda: len(streamed) >= 60, 30, "calls after the kill")
            stop_stream.set()
            streaming.join(timeout=30)

            # Replica a holds every shopper, those whose calls went to b included.
            in_log = sizes_per_shopper(logged_interactions(broker.bootstrap_servers))
            wait_for(lambda: sizes_match(first, in_log), SERVED_AGAIN_WITHIN_S - (time.monotonic() - killed_at),
                     "replica a serving every event of the log")
            assert time.monotonic() - killed_at <= SERVED_AGAIN_WITHIN_S

            second.restart()
            alive.append(second)
            for number in range(20):
                record(number)
            # b's outbox sends what it had accepted but not sent before it died: then nothing is missing.
            wait_for(lambda: accepted <= logged_interactions(broker.bootstrap_servers).keys(), 30,
                     "every accepted event in the log")
            logged = logged_interactions(broker.bootstrap_servers)
            expected = sizes_per_shopper(logged)
            for replica in replicas:
                wait_for(lambda replica=replica: sizes_match(replica, expected), 30,
                         f"replica {replica.name} applying every event of the log once")
            assert len(accepted) == 60 + len(streamed) + 20
        finally:
            for replica in replicas:
                replica.stop()

        states = [read_snapshot(replica.snapshot_path)[0]["histories"] for replica in replicas]
        assert states[0] == states[1]
        assert {user_id: entry["count"] for user_id, entry in states[0].items()} == expected
        log_b = (tmp_path / "b" / "recommendation.log").read_text(encoding="utf-8", errors="replace")
        assert "state snapshot restored" in log_b
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        try:
            committed = {
                name: sum(
                    mark.offset
                    for partition, mark in admin.list_group_offsets(f"tryon-recommendation.{name}")[f"tryon-recommendation.{name}"].items()
                    if partition.topic == INTERACTIONS
                )
                for name in ("a", "b")
            }
        finally:
            admin.close()
        # Each replica commits its own progress through the whole topic (records sent twice by an outbox count too).
        assert committed["a"] == committed["b"] >= len(logged)
