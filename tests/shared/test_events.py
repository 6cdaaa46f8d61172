"""Events through a real embedded broker: round trip, dead letters, retries, idempotency, restarts."""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaTimeoutError
from kafka.future import Future

from tryon.shared import events as events_module
from tryon.shared.broker import DEFAULT_PARTITIONS, EmbeddedBroker, ensure_topics, free_loopback_port
from tryon.shared.errors import InvalidEvent
from tryon.shared.events import (
    ConsumerCheckpoint,
    EVENT_TYPE_HEADER,
    EventConsumer,
    EventPublisher,
    PublishError,
    RecentEventIds,
    new_event_id,
    read_dlq,
    timestamp_now,
)
from tryon.shared.outbox import Outbox, OutboxUnavailable
from tryon.shared.proto import common_pb2, events_pb2
from tryon.shared.server import serve
from tryon.shared.settings import ServerSettings
from tryon.shared.topics import BODIES, INTERACTIONS, USERS

READY_TIMEOUT = 15.0
DELIVERY_TIMEOUT = 15.0


def wait_for(condition: Callable[[], bool], timeout: float = DELIVERY_TIMEOUT, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.02)


def interaction(user_id: str = "u1", garment_id: str = "g1", event_id: str | None = None) -> events_pb2.InteractionRecorded:
    return events_pb2.InteractionRecorded(
        event_id=event_id or new_event_id(),
        occurred_at=timestamp_now(),
        user_id=user_id,
        garment_id=garment_id,
        type=common_pb2.INTERACTION_TYPE_PURCHASE,
    )


class Recorder:
    """A handler that records the events it was given, thread-safely."""

    def __init__(self, fail_with: Callable[[object], Exception | None] = lambda event: None) -> None:
        self.events: list = []
        self.calls = 0
        self._fail_with = fail_with
        self._lock = threading.Lock()

    def __call__(self, event) -> None:
        with self._lock:
            self.calls += 1
        error = self._fail_with(event)
        if error is not None:
            raise error
        with self._lock:
            self.events.append(event)

    def user_ids(self) -> list[str]:
        with self._lock:
            return [event.user_id for event in self.events]


@pytest.fixture
def kafka(fresh_kafka_bootstrap: str) -> str:
    ensure_topics(fresh_kafka_bootstrap, [INTERACTIONS, BODIES, USERS], partitions=2)
    return fresh_kafka_bootstrap


@pytest.fixture
def publisher(kafka: str, tmp_path) -> Iterator[EventPublisher]:
    with EventPublisher(kafka, "test-publisher", Outbox(tmp_path / "outbox.sqlite"), ack_wait_s=0) as started_publisher:
        yield started_publisher


@pytest.fixture
def raw_producer(kafka: str) -> Iterator[KafkaProducer]:
    plain = KafkaProducer(bootstrap_servers=kafka)
    yield plain
    plain.close()


def started(consumer: EventConsumer, request: pytest.FixtureRequest) -> EventConsumer:
    """Start ``consumer``, stop it at the end of the test, and wait until it holds its partitions."""
    consumer.start()
    request.addfinalizer(consumer.stop)
    consumer.wait_until_ready(READY_TIMEOUT)
    return consumer


def publish(publisher: EventPublisher, *events: events_pb2.InteractionRecorded) -> None:
    """Publish ``events`` keyed by shopper, in order, and wait until the broker has them all."""
    publisher.publish([(event, event.user_id) for event in events])
    assert publisher.wait_until_sent(timeout=10)


pytestmark = pytest.mark.integration


def test_round_trip_delivers_the_event_keyed_by_entity_with_its_type_header(
    kafka: str, publisher: EventPublisher, request: pytest.FixtureRequest
) -> None:
    recorder = Recorder()
    started(EventConsumer(kafka, "round-trip", {events_pb2.InteractionRecorded: recorder}), request)
    sent = interaction(user_id="shopper-42", garment_id="g-7")
    publish(publisher, sent)

    wait_for(lambda: len(recorder.events) == 1, what="delivery")
    assert recorder.events[0] == sent

    raw = KafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False)
    partitions = [TopicPartition(INTERACTIONS, p) for p in raw.partitions_for_topic(INTERACTIONS)]
    raw.assign(partitions)
    raw.seek_to_beginning(*partitions)
    records = []
    wait_for(lambda: records.extend(r for batch in raw.poll(100).values() for r in batch) or records, what="raw read")
    raw.close()
    assert records[0].key == b"shopper-42"
    assert dict(records[0].headers)[EVENT_TYPE_HEADER] == b"tryon.v1.InteractionRecorded"
    assert events_pb2.InteractionRecorded.FromString(records[0].value) == sent


def test_bad_records_go_to_the_dead_letter_topic_and_the_next_good_one_is_applied(
    kafka: str, publisher: EventPublisher, raw_producer: KafkaProducer, request: pytest.FixtureRequest
) -> None:
    recorder = Recorder()
    started(EventConsumer(kafka, "garbage", {events_pb2.InteractionRecorded: recorder}), request)
    interaction_header = [(EVENT_TYPE_HEADER, b"tryon.v1.InteractionRecorded")]
    # All on partition 0 so that their order, and thus their offsets, are known.
    bad_records = [
        (b"\xff\xfe not protobuf", interaction_header, "not a valid tryon.v1.InteractionRecorded"),
        (interaction().SerializeToString(), [], "has no 'event-type' header"),
        (interaction().SerializeToString(), [(EVENT_TYPE_HEADER, b"tryon.v1.Nope")], "'tryon.v1.Nope', which is not one of"),
        (interaction(event_id="x").SerializeToString()[3:], interaction_header, "has no event_id"),
        (b"\x1a\x02\xc3\x28", interaction_header, "not a valid tryon.v1.InteractionRecorded"),
        (interaction().SerializeToString(), [(EVENT_TYPE_HEADER, b"")], "has no 'event-type' header"),
    ]
    for value, headers, _ in bad_records:
        raw_producer.send(INTERACTIONS, value=value, key=b"bad", headers=headers, partition=0)
    raw_producer.flush()
    good = interaction(user_id="after-the-garbage")
    publish(publisher, good)

    wait_for(lambda: recorder.user_ids() == ["after-the-garbage"], what="the good event")
    letters = read_dlq(kafka, INTERACTIONS, timeout=10)
    assert len(letters) == len(bad_records)
    for letter, (value, _, reason) in zip(sorted(letters, key=lambda l: l.source_offset), bad_records):
        assert reason in letter.reason
        assert letter.value == value
        assert letter.key == b"bad"
        assert (letter.source_topic, letter.source_partition) == (INTERACTIONS, 0)
    assert sorted(letter.source_offset for letter in letters) == list(range(len(bad_records)))


def test_a_handler_raising_invalid_event_sends_it_to_the_dead_letter_topic(
    kafka: str, publisher: EventPublisher, request: pytest.FixtureRequest
) -> None:
    def reject_unknown_garments(event):
        return InvalidEvent("garment_id 'missing' is not in the catalogue") if event.garment_id == "missing" else None

    recorder = Recorder(fail_with=reject_unknown_garments)
    started(EventConsumer(kafka, "invalid", {events_pb2.InteractionRecorded: recorder}), request)
    rejected = interaction(user_id="u1", garment_id="missing")
    publish(publisher, rejected, interaction(user_id="u1", garment_id="g1"))

    wait_for(lambda: recorder.user_ids() == ["u1"], what="the valid event")
    [letter] = read_dlq(kafka, INTERACTIONS, timeout=10)
    assert "garment_id 'missing' is not in the catalogue" in letter.reason
    assert letter.event_type == "tryon.v1.InteractionRecorded"
    assert events_pb2.InteractionRecorded.FromString(letter.value) == rejected
    assert recorder.calls == 2


def test_a_transient_handler_failure_is_retried_and_a_persistent_one_dead_lettered(
    kafka: str, publisher: EventPublisher, request: pytest.FixtureRequest
) -> None:
    failures = {"flaky": 1, "broken": 10}

    def fail_a_few_times(event):
        if failures.get(event.user_id, 0) > 0:
            failures[event.user_id] -= 1
            return ConnectionError(f"store unavailable for {event.user_id}")
        return None

    recorder = Recorder(fail_with=fail_a_few_times)
    consumer = EventConsumer(
        kafka, "retries", {events_pb2.InteractionRecorded: recorder}, handler_attempts=3, retry_backoff_s=0.01
    )
    started(consumer, request)
    publish(publisher, interaction(user_id="flaky"), interaction(user_id="broken"))

    wait_for(lambda: recorder.calls == 2 + 3, what="all attempts")
    assert recorder.user_ids() == ["flaky"]
    [letter] = read_dlq(kafka, INTERACTIONS, timeout=10)
    assert "failed 3 times" in letter.reason and "ConnectionError: store unavailable for broken" in letter.reason


def test_a_duplicate_event_id_is_applied_once(
    kafka: str, publisher: EventPublisher, request: pytest.FixtureRequest
) -> None:
    recorder = Recorder()
    consumer = started(EventConsumer(kafka, "dupes", {events_pb2.InteractionRecorded: recorder}), request)
    first = interaction(user_id="u1", event_id="event-1")
    publish(publisher, first, first, interaction(user_id="u1", garment_id="g2"))

    wait_for(lambda: sum(consumer.positions().values()) == 3, what="three records consumed")
    assert [event.garment_id for event in recorder.events] == ["g1", "g2"]
    assert "event-1" in consumer.applied_event_ids()


def test_a_consumer_restarted_from_reported_positions_continues_without_loss_or_duplicate(
    kafka: str, publisher: EventPublisher, request: pytest.FixtureRequest
) -> None:
    checkpoints = []

    def take_snapshot(checkpoint: ConsumerCheckpoint) -> None:
        checkpoints.append(ConsumerCheckpoint(checkpoint.positions, checkpoint.applied_event_ids))

    first_recorder = Recorder()
    first = EventConsumer(
        kafka, "snapshot-a", {events_pb2.InteractionRecorded: first_recorder}, on_checkpoint=take_snapshot
    )
    started(first, request)
    publish(publisher, *(interaction(user_id=f"before-{n}") for n in range(4)))
    wait_for(lambda: len(first_recorder.events) == 4, what="the first four events")
    wait_for(lambda: checkpoints and sum(checkpoints[-1].positions.values()) == 4, what="a checkpoint")
    first.stop()
    snapshot = checkpoints[-1]
    assert len(snapshot.applied_event_ids) == 4

    later = [interaction(user_id=f"after-{n}") for n in range(3)]
    replayed = interaction(user_id="before-replayed", event_id=snapshot.applied_event_ids[0])
    publish(publisher, *later, replayed)

    # Another group id: nothing committed helps it, so it can only resume from the snapshot.
    second_recorder = Recorder()
    second = EventConsumer(
        kafka,
        "snapshot-b",
        {events_pb2.InteractionRecorded: second_recorder},
        start_positions=snapshot.positions,
        applied_event_ids=snapshot.applied_event_ids,
    )
    started(second, request)
    wait_for(lambda: sum(second.positions().values()) == 8, what="the rest of the topic")
    assert sorted(second_recorder.user_ids()) == sorted(event.user_id for event in later)

    # Positions alone, without the remembered ids: nothing before the snapshot is applied again.
    positions_only = Recorder()
    third = EventConsumer(
        kafka, "snapshot-c", {events_pb2.InteractionRecorded: positions_only}, start_positions=snapshot.positions
    )
    started(third, request)
    wait_for(lambda: sum(third.positions().values()) == 8, what="the rest of the topic")
    assert sorted(positions_only.user_ids()) == sorted([event.user_id for event in later] + ["before-replayed"])


def test_a_consumer_of_the_same_group_resumes_from_the_committed_offsets(
    kafka: str, publisher: EventPublisher, request: pytest.FixtureRequest
) -> None:
    first_recorder = Recorder()
    first = started(EventConsumer(kafka, "committed", {events_pb2.InteractionRecorded: first_recorder}), request)
    publish(publisher, interaction(user_id="one"), interaction(user_id="two"))
    wait_for(lambda: len(first_recorder.events) == 2, what="the first events")
    first.stop()
    publish(publisher, interaction(user_id="three"))

    second_recorder = Recorder()
    started(EventConsumer(kafka, "committed", {events_pb2.InteractionRecorded: second_recorder}), request)
    wait_for(lambda: second_recorder.user_ids() == ["three"], what="the new event")


def test_an_event_whose_handler_failed_before_the_commit_is_delivered_again_after_restart(
    kafka: str, publisher: EventPublisher, request: pytest.FixtureRequest
) -> None:
    failing = Recorder(fail_with=lambda event: OSError("disk full"))
    first = EventConsumer(
        kafka, "redeliver", {events_pb2.InteractionRecorded: failing}, handler_attempts=1000, retry_backoff_s=0.01
    )
    started(first, request)
    sent = interaction(user_id="u-retry")
    publish(publisher, sent)
    wait_for(lambda: failing.calls >= 2, what="the retries")
    positions_before_stop = first.positions()
    first.stop()
    assert sum(positions_before_stop.values()) == 0
    assert sum(first.positions().values()) == 0

    working = Recorder()
    started(EventConsumer(kafka, "redeliver", {events_pb2.InteractionRecorded: working}), request)
    wait_for(lambda: working.events == [sent], what="the redelivery")
    assert read_dlq(kafka, INTERACTIONS, timeout=10) == []


def test_a_known_event_type_without_a_handler_is_skipped(
    kafka: str, publisher: EventPublisher, request: pytest.FixtureRequest
) -> None:
    deleted = Recorder()
    consumer = started(EventConsumer(kafka, "bodies", {events_pb2.BodyDeleted: deleted}), request)
    update = events_pb2.BodyUpdated(event_id=new_event_id(), body_id="b1", body_latent=[0.1, 0.2])
    deletion = events_pb2.BodyDeleted(event_id=new_event_id(), body_id="b1")
    publisher.publish([(update, "b1"), (deletion, "b1")])
    assert publisher.wait_until_sent(timeout=10)
    wait_for(lambda: sum(consumer.positions().values()) == 2, what="both records consumed")
    assert deleted.events == [deletion]
    assert read_dlq(kafka, BODIES, timeout=10) == []


def test_group_mode_receives_partitions_from_the_group_protocol(
    kafka: str, publisher: EventPublisher, request: pytest.FixtureRequest
) -> None:
    recorder = Recorder()
    consumer = EventConsumer(
        kafka, "group-mode", {events_pb2.UserDeleted: recorder}, assignment="group", session_timeout_ms=2_000
    )
    started(consumer, request)
    deletion = events_pb2.UserDeleted(event_id=new_event_id(), user_id="u9")
    publisher.publish([(deletion, "u9")])
    assert publisher.wait_until_sent(timeout=10)
    wait_for(lambda: recorder.events == [deletion], what="delivery in group mode")


def test_a_consumer_creates_missing_topics_with_the_suites_partition_count(fresh_kafka_bootstrap: str) -> None:
    # A broker's own default (Tansu: 4 partitions on first use) would spread keys differently.
    consumer = EventConsumer(fresh_kafka_bootstrap, "no-topic", {events_pb2.UserDeleted: Recorder()}).start()
    try:
        consumer.wait_until_ready(READY_TIMEOUT)
        assert {topic for topic, _ in consumer.positions()} == {USERS}
        assert len(consumer.positions()) == DEFAULT_PARTITIONS
    finally:
        consumer.stop()


def test_read_dlq_of_a_topic_without_dead_letters(fresh_kafka_bootstrap: str) -> None:
    assert read_dlq(fresh_kafka_bootstrap, INTERACTIONS, timeout=5) == []
    ensure_topics(fresh_kafka_bootstrap, [INTERACTIONS])
    assert read_dlq(fresh_kafka_bootstrap, INTERACTIONS, timeout=5) == []


@pytest.mark.parametrize(
    ("event", "key", "message"),
    [
        (events_pb2.UserDeleted(user_id="u1"), "u1", "needs an event_id"),
        (events_pb2.UserDeleted(event_id="e1", user_id="u1"), "", "non-empty key"),
        (common_pb2.Money(), "k", "is not an event of tryon.v1"),
    ],
)
def test_the_publisher_refuses_events_it_cannot_route(publisher: EventPublisher, event, key, message) -> None:
    with pytest.raises(ValueError, match=message):
        publisher.publish([(event, key)])
    assert len(publisher.outbox) == 0


def test_the_consumer_refuses_handlers_that_are_not_for_events(kafka: str) -> None:
    with pytest.raises(ValueError, match="not a tryon.v1 event type"):
        EventConsumer(kafka, "bad", {common_pb2.Money: Recorder()})


def test_recent_event_ids_forget_the_oldest_beyond_capacity() -> None:
    remembered = RecentEventIds(capacity=3, initial=["a", "b"])
    for event_id in ["c", "d", "b"]:
        remembered.add(event_id)
    assert remembered.snapshot() == ("c", "d", "b")
    assert "a" not in remembered
    assert RecentEventIds(3, remembered.snapshot()).snapshot() == ("c", "d", "b")


def test_a_checkpoint_copies_the_ids_read_inside_the_callback_and_refuses_them_later() -> None:
    live = RecentEventIds(capacity=10, initial=["a"])
    read_inside = ConsumerCheckpoint({(INTERACTIONS, 0): 1}, live_ids=live)
    unread = ConsumerCheckpoint({(INTERACTIONS, 0): 1}, live_ids=live)
    assert read_inside.applied_event_ids == ("a",)
    read_inside._expire()
    unread._expire()
    live.add("b")
    assert read_inside.applied_event_ids == ("a",)
    with pytest.raises(RuntimeError, match="inside on_checkpoint"):
        unread.applied_event_ids


def test_published_and_consumed_events_are_counted_on_metrics(kafka: str, tmp_path, request) -> None:
    running = serve("metrics-test", [], ServerSettings(port=0, metrics_port=0))
    publisher = EventPublisher(kafka, "metrics-test", Outbox(tmp_path / "outbox.sqlite")).start()
    recorder = Recorder()
    consumer = started(EventConsumer(kafka, "metrics-test", {events_pb2.UserDeleted: recorder}), request)
    try:
        publisher.publish([(events_pb2.UserDeleted(event_id=new_event_id(), user_id="m1"), "m1")])
        wait_for(lambda: recorder.events, what="the event consumed")
        page = urllib.request.urlopen(f"http://127.0.0.1:{running.metrics_port}/metrics", timeout=5).read().decode()
        assert f'tryon_events_published_total{{topic="{USERS}"}}' in page
        assert f'tryon_events_consumed_total{{outcome="applied",topic="{USERS}"}}' in page
    finally:
        consumer.stop()
        publisher.close()
        running.stop(grace=0)


def test_a_consumer_without_a_broker_warns_once_then_says_when_it_is_back(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="tryon.shared.events")
    port = free_loopback_port()
    consumer = EventConsumer(f"127.0.0.1:{port}", "lost-broker", {events_pb2.UserDeleted: Recorder()}).start()
    broker = None
    try:
        # Reconnection is tried about once a second: four tries, one line.
        time.sleep(4.0)
        lost = [r for r in caplog.records if "lost Kafka" in r.getMessage()]
        assert [r.levelname for r in lost] == ["WARNING"]
        broker = EmbeddedBroker(log_path=tmp_path / "broker.log", port=port).start()
        consumer.wait_until_ready(READY_TIMEOUT)
        wait_for(lambda: any("reached Kafka again" in r.getMessage() for r in caplog.records), what="the line saying so")
        back = next(r for r in caplog.records if "reached Kafka again" in r.getMessage())
        assert back.levelname == "INFO"
        assert len([r for r in caplog.records if "lost Kafka" in r.getMessage()]) == 1
    finally:
        consumer.stop()
        if broker is not None:
            broker.stop()


class BatchingProducer:
    """Stands in for kafka-python's producer in the sender: groups each partition's records into
    batches of at most ``batch_size`` bytes, as its accumulator does, and sends them on flush; the
    broker (``log``) appends a batch whole or fails it whole. The first batch the first producer
    flushes fails, as one whose request timed out does."""

    instances = 0

    def __init__(self, log: list[bytes], **config) -> None:
        self.log = log
        self.batch_size = config.get("batch_size", 16_384)
        self.fail_first = BatchingProducer.instances == 0
        BatchingProducer.instances += 1
        self.batches: dict[bytes, list[list]] = {}

    def send(self, topic, value, key, headers):
        future = Future()
        open_batches = self.batches.setdefault(key, [[]])
        size = len(key) + len(value) + sum(len(n) + len(v) for n, v in headers)
        if sum(entry[2] for entry in open_batches[-1]) + size > self.batch_size:
            open_batches.append([])
        open_batches[-1].append((value, future, size))
        return future

    def flush(self, timeout=None):
        for batches in self.batches.values():
            for batch in batches:
                if self.fail_first:
                    self.fail_first = False
                    for _, future, _ in batch:
                        future.failure(KafkaTimeoutError("the request timed out"))
                    continue
                for value, future, _ in batch:
                    self.log.append(value)
                    future.success(None)
        self.batches.clear()

    def close(self, timeout=None):
        self.batches.clear()


def test_events_of_one_key_keep_their_order_when_a_batch_fails(tmp_path, monkeypatch, caplog) -> None:
    log: list[bytes] = []
    BatchingProducer.instances = 0
    monkeypatch.setattr(events_module, "accepts_connections", lambda servers: True)
    monkeypatch.setattr(events_module, "ensure_topics", lambda *args, **kwargs: None)
    monkeypatch.setattr(events_module, "kafka_producer", lambda *args, **config: BatchingProducer(log, **config))
    publisher = EventPublisher("127.0.0.1:9", "order-test", Outbox(tmp_path / "outbox.sqlite"), ack_wait_s=0)
    sent = [interaction(user_id="ann", garment_id=f"g{n}") for n in range(400)]
    publisher.publish([(event, event.user_id) for event in sent])
    publisher.start()
    try:
        assert publisher.wait_until_sent(timeout=10)
    finally:
        publisher.close()
    assert BatchingProducer.instances == 2
    [failed] = [record for record in caplog.records if "cannot reach Kafka" in record.getMessage()]
    assert failed.levelname == "WARNING" and failed.topic == INTERACTIONS
    assert "the request timed out" in failed.getMessage()
    first_seen = list(dict.fromkeys(events_pb2.InteractionRecorded.FromString(value).event_id for value in log))
    assert first_seen == [event.event_id for event in sent]


def test_a_producer_dropped_with_records_pending_stops_its_network_thread(tmp_path):
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        ensure_topics(broker.bootstrap_servers, [INTERACTIONS])
        publisher = EventPublisher(
            broker.bootstrap_servers, "drop-test", Outbox(tmp_path / "outbox.sqlite"), ack_wait_s=0
        ).start()
        publisher.publish([(interaction(), "u1")])
        assert publisher.wait_until_sent(timeout=10)
        broker.kill()
        publisher.publish([(interaction(), "u1")])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and publisher.broker_reachable:
            time.sleep(0.05)
        assert not publisher.broker_reachable
        time.sleep(0.5)
        network_threads = [t for t in threading.enumerate() if t.name == "drop-test-network-thread" and t.is_alive()]
        publisher.close(timeout=1)
        assert network_threads == []


def test_a_sender_that_outlives_close_lets_go_of_the_outbox_when_its_send_ends(tmp_path, monkeypatch) -> None:
    entered, gate = threading.Event(), threading.Event()

    def slow_topic_creation(*args, **kwargs):
        entered.set()
        gate.wait(10)
        raise KafkaTimeoutError("the broker did not answer")

    monkeypatch.setattr(events_module, "accepts_connections", lambda servers: True)
    monkeypatch.setattr(events_module, "ensure_topics", slow_topic_creation)
    path = tmp_path / "outbox.sqlite"
    publisher = EventPublisher("127.0.0.1:9", "slow-test", Outbox(path), ack_wait_s=0).start()
    publisher.publish([(interaction(), "u1")])
    assert entered.wait(10)
    publisher.close(timeout=0.1)
    with pytest.raises(OutboxUnavailable, match="another"):
        Outbox(path)
    gate.set()
    deadline = time.monotonic() + 10
    while True:
        try:
            reopened = Outbox(path)
            break
        except OutboxUnavailable:
            assert time.monotonic() < deadline, "the outbox stayed locked after the send ended"
            time.sleep(0.05)
    try:
        assert len(reopened) == 1
    finally:
        reopened.close()
    with pytest.raises(PublishError, match="is closed"):
        publisher.publish([(interaction(), "u2")])


def test_a_consumer_told_its_topics_exist_creates_them_only_when_it_reconnects(tmp_path, monkeypatch) -> None:
    created: list[list[str]] = []

    def ensure_and_record(bootstrap_servers, topics, *args, **kwargs):
        created.append(list(topics))
        ensure_topics(bootstrap_servers, topics, *args, **kwargs)

    monkeypatch.setattr(events_module, "ensure_topics", ensure_and_record)
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log").start()
    port = int(broker.bootstrap_servers.rpartition(":")[2])
    # Start-up creates the topics once, then starts the consumer.
    ensure_topics(broker.bootstrap_servers, [USERS])
    recorder = Recorder()
    consumer = EventConsumer(
        broker.bootstrap_servers, "topics-ensured", {events_pb2.UserDeleted: recorder}, topics_ensured=True
    ).start()
    restarted = None
    try:
        consumer.wait_until_ready(READY_TIMEOUT)
        assert created == []
        broker.kill()
        restarted = EmbeddedBroker(log_path=tmp_path / "broker-restarted.log", port=port).start()
        # Retried until the restarted broker answers: each try creates this consumer's topic alone.
        wait_for(lambda: created and all(topics == [USERS] for topics in created),
                 what="the reconnected consumer creating its topic on the emptied broker")
        with EventPublisher(
            restarted.bootstrap_servers, "topics-ensured", Outbox(tmp_path / "outbox.sqlite"), ack_wait_s=0
        ) as publisher:
            deletion = events_pb2.UserDeleted(event_id=new_event_id(), user_id="u7")
            publisher.publish([(deletion, "u7")])
            wait_for(lambda: recorder.events == [deletion], what="delivery after the restart")
    finally:
        consumer.stop()
        (restarted or broker).stop()
        broker.stop()
