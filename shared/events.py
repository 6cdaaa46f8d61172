"""Publishing and consuming the suite's protobuf events, with a dead-letter topic and idempotency.

Wire format: the value is the serialized protobuf event, the key is the entity id in UTF-8
(the topic catalogue in ``tryon.shared.topics`` says which), and the header ``event-type``
holds the event's full proto name (``tryon.v1.InteractionRecorded``), by which a consumer
decodes it.

How a consumer takes its partitions, and why
--------------------------------------------
With kafka-python against Tansu, a consumer that joins a consumer group with ``subscribe()``
gets its first record only seconds after it starts: the broker answers the first JoinGroup
late. ``tests/benchmarks/bench_group_join.py`` measures it. The delay was reported to follow
the rebalance timeout (``max_poll_interval_ms``); measured, it does not: it comes in steps
of half the session timeout, one step and now and then two (3 or 6 s at
``session_timeout_ms=6000``, 5 s at 10000, 10 s at 20000, 23 s at kafka-python's default
45000) whatever ``max_poll_interval_ms`` is (1 to 300 s tried), while a partition taken with
``assign()`` yields its first record within about 20 ms. So, by default, ``EventConsumer``
assigns itself every partition of its topics (partition count from the broker's metadata,
read once at start: partitions added later are read after a restart) and keeps its positions
itself. It still commits offsets under its group id, so that on start it resumes from, in
this order: positions given explicitly (restored from a service snapshot), else the group's
committed offset, else the earliest offset. Two replicas in this mode would each read
everything, so a deployment that scales one service out over several replicas sets
``assignment="group"``: partitions are then shared out by the group protocol
(``session_timeout_ms`` bounds the join delay on Tansu), and explicit start positions apply
to the partitions it receives.

Delivery guarantees
-------------------
At least once: a record's offset is committed only after its handler returned (or after the
record went to the dead-letter topic), once per polled batch. Duplicates are skipped by
``event_id``: the consumer remembers a bounded number of recently applied ids, which a service
snapshots with ``positions()`` and restores through the constructor, together with its state,
from the ``on_checkpoint`` callback (called in the consumer thread after each batch, so no
handler runs while the service takes its snapshot).

Dead letters
------------
An undecodable payload, a missing or unknown ``event-type`` header, a missing ``event_id`` or a
handler raising ``InvalidEvent`` sends the original bytes to ``<topic>.dlq`` with the headers
``dlq-reason`` (a sentence), ``dlq-source-topic``, ``dlq-source-partition`` and
``dlq-source-offset``, and the consumer goes on with the next record. Any other exception from a
handler is taken as transient: the handler is called again ``handler_attempts`` times in all,
with exponential backoff, and then the record goes to the dead-letter topic with the exception's
text. A consumer stopped during those retries leaves the record uncommitted, so it is delivered
again on restart. A record of a known event type that this consumer has no handler for is
skipped (its offset advances). Log lines name topic, partition, offset and event type; never a
payload.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from prometheus_client import Counter

from tryon.shared.errors import InvalidEvent
from tryon.shared.topics import DLQ_SUFFIX, EVENT_TYPES_BY_NAME, TOPIC_BY_EVENT, dlq_topic, topic_of

logger = logging.getLogger(__name__)

EVENT_TYPE_HEADER = "event-type"
DLQ_REASON_HEADER = "dlq-reason"
DLQ_SOURCE_TOPIC_HEADER = "dlq-source-topic"
DLQ_SOURCE_PARTITION_HEADER = "dlq-source-partition"
DLQ_SOURCE_OFFSET_HEADER = "dlq-source-offset"

EVENTS_PUBLISHED = Counter("tryon_events_published", "Events handed to the Kafka producer.", ["topic"])
EVENTS_CONSUMED = Counter(
    "tryon_events_consumed",
    "Records taken from Kafka by outcome: applied, duplicate, unhandled or dead_lettered.",
    ["topic", "outcome"],
)

Handler = Callable[[Message], None]
TopicPartitionKey = tuple[str, int]


def new_event_id() -> str:
    """A fresh, unique event identifier."""
    return str(uuid.uuid4())


def timestamp_now() -> Timestamp:
    """The current time as a protobuf Timestamp."""
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


class PublishError(RuntimeError):
    """Events handed to ``EventProducer.publish`` were not acknowledged by the broker."""


class EventProducer:
    """Publishes tryon.v1 events to their topics, keyed by entity id.

    ``publish`` queues the event; ``flush`` waits for the broker's acknowledgements and raises
    ``PublishError`` when any event queued since the previous flush was not written.
    """

    def __init__(
        self, bootstrap_servers: str, client_id: str, *, linger_ms: int = 0, max_block_ms: int = 10_000
    ) -> None:
        # max_block_ms bounds how long publish() waits for metadata when the broker is away
        # (kafka-python's default is a minute, longer than any caller would wait).
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            acks="all",
            linger_ms=linger_ms,
            max_block_ms=max_block_ms,
        )
        self._failures: list[str] = []
        self._failures_lock = threading.Lock()

    def publish(self, event: Message, key: str) -> None:
        """Queue ``event`` for its topic with ``key`` (the entity id it is about).

        Raises ``ValueError`` for an event that cannot be routed, and ``PublishError`` when the
        broker cannot take it (no metadata within ``max_block_ms``, buffer full).
        """
        topic = topic_of(type(event))
        if not getattr(event, "event_id", ""):
            raise ValueError(f"{event.DESCRIPTOR.full_name} needs an event_id; set it with new_event_id()")
        if not key:
            raise ValueError(f"{event.DESCRIPTOR.full_name} needs a non-empty key (the entity id)")
        try:
            future = self._producer.send(
                topic,
                value=event.SerializeToString(),
                key=key.encode("utf-8"),
                headers=[(EVENT_TYPE_HEADER, event.DESCRIPTOR.full_name.encode("utf-8"))],
            )
        except KafkaError as error:
            raise PublishError(f"{event.DESCRIPTOR.full_name} was not published to {topic}: {error}") from error
        future.add_errback(self._record_failure, topic)
        EVENTS_PUBLISHED.labels(topic).inc()

    def _record_failure(self, error: BaseException, topic: str) -> None:
        logger.error("event not published to %s: %s", topic, error, extra={"topic": topic})
        with self._failures_lock:
            self._failures.append(f"{topic}: {error}")

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued event is acknowledged; raise ``PublishError`` on any failure
        or when ``timeout`` s pass first."""
        try:
            self._producer.flush(timeout=timeout)
        except KafkaError as error:
            raise PublishError(f"queued events were not acknowledged in time: {error}") from error
        with self._failures_lock:
            failures, self._failures = self._failures, []
        if failures:
            raise PublishError(f"{len(failures)} event(s) were not published, first: {failures[0]}")

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued and close the connection."""
        self._producer.close(timeout=timeout)

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class RecentEventIds:
    """The most recently applied event ids, oldest forgotten first, for idempotent consumption."""

    def __init__(self, capacity: int, initial: Iterable[str] = ()) -> None:
        if capacity < 1:
            raise ValueError(f"the capacity of remembered event ids must be at least 1, got {capacity}")
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        for event_id in initial:
            self.add(event_id)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: str) -> None:
        """Remember ``event_id``, forgetting the oldest one beyond capacity."""
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)

    def snapshot(self) -> tuple[str, ...]:
        """The remembered ids, oldest first (restore by passing them to the constructor)."""
        return tuple(self._ids)


class ConsumerCheckpoint:
    """What a service stores with its state snapshot to resume exactly where it was.

    ``positions`` maps (topic, partition) to the next offset to apply; ``applied_event_ids``
    are the recently applied event ids, oldest first. A checkpoint handed to ``on_checkpoint``
    copies the ids only when they are read (a copy of many ids costs milliseconds, and most
    callbacks snapshot only now and then), so read them inside the callback; afterwards they
    are gone, since later handlers have changed them.
    """

    def __init__(
        self,
        positions: Mapping[TopicPartitionKey, int],
        applied_event_ids: tuple[str, ...] | None = None,
        *,
        live_ids: RecentEventIds | None = None,
    ) -> None:
        self.positions: Mapping[TopicPartitionKey, int] = positions
        self._applied_event_ids = applied_event_ids
        self._live_ids = live_ids

    @property
    def applied_event_ids(self) -> tuple[str, ...]:
        """The recently applied event ids, oldest first."""
        if self._applied_event_ids is None:
            if self._live_ids is None:
                raise RuntimeError("read applied_event_ids inside on_checkpoint; later handlers have changed them")
            self._applied_event_ids = self._live_ids.snapshot()
        return self._applied_event_ids

    def _expire(self) -> None:
        self._live_ids = None


class _Undeliverable(Exception):
    """A record that must go to the dead-letter topic; the message is the reason."""


class _StopRequested(Exception):
    """The consumer was asked to stop while a record was still being retried."""


class EventConsumer:
    """Consumes tryon.v1 events in a background thread and calls a handler per event type.

    ``handlers`` maps event classes (``events_pb2.InteractionRecorded``...) to callables taking
    the decoded event; the consumer reads every topic those events are published to. See the
    module docstring for positions, commits, retries and dead letters. Options:

    - ``start_positions``: next offset per (topic, partition), from a snapshot; wins over commits.
    - ``applied_event_ids``: ids restored from the same snapshot, treated as already applied.
    - ``on_checkpoint``: called in the consumer thread after each batch with a ``ConsumerCheckpoint``.
    - ``remembered_event_ids``: how many recent ids are kept for skipping duplicates.
    - ``handler_attempts`` / ``retry_backoff_s``: calls of a failing handler before the record
      goes to the dead-letter topic, and the first wait between them (doubling each time).
    - ``assignment``: ``"manual"`` (every partition, no group join) or ``"group"`` (subscribe).
    - ``max_poll_interval_ms`` / ``session_timeout_ms``: group-membership timeouts (group mode).
    - ``poll_timeout_ms`` / ``fetch_max_wait_ms``: how long one poll, and the broker, wait for records.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        group_id: str,
        handlers: Mapping[type[Message], Handler],
        *,
        start_positions: Mapping[TopicPartitionKey, int] | None = None,
        applied_event_ids: Iterable[str] = (),
        on_checkpoint: Callable[[ConsumerCheckpoint], None] | None = None,
        remembered_event_ids: int = 10_000,
        handler_attempts: int = 3,
        retry_backoff_s: float = 0.2,
        assignment: Literal["manual", "group"] = "manual",
        max_poll_interval_ms: int = 300_000,
        session_timeout_ms: int = 45_000,
        poll_timeout_ms: int = 200,
        fetch_max_wait_ms: int = 100,
        client_id: str | None = None,
    ) -> None:
        if not handlers:
            raise ValueError("an EventConsumer needs at least one handler")
        for event_type, handler in handlers.items():
            if event_type not in TOPIC_BY_EVENT:
                raise ValueError(f"{event_type!r} is not a tryon.v1 event type; handlers must map event classes")
            if not callable(handler):
                raise ValueError(f"the handler of {event_type.DESCRIPTOR.full_name} is not callable")
        if handler_attempts < 1:
            raise ValueError(f"handler_attempts must be at least 1, got {handler_attempts}")
        if assignment not in ("manual", "group"):
            raise ValueError(f"assignment must be 'manual' or 'group', got {assignment!r}")
        self._bootstrap_servers = bootstrap_servers
        self._group_id = group_id
        self._handlers = dict(handlers)
        self._topics = sorted({topic_of(event_type) for event_type in handlers})
        self._start_positions = dict(start_positions or {})
        self._applied = RecentEventIds(remembered_event_ids, applied_event_ids)
        self._on_checkpoint = on_checkpoint
        self._handler_attempts = handler_attempts
        self._retry_backoff_s = retry_backoff_s
        self._assignment = assignment
        self._max_poll_interval_ms = max_poll_interval_ms
        self._session_timeout_ms = session_timeout_ms
        self._poll_timeout_ms = poll_timeout_ms
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._client_id = client_id or f"{group_id}-consumer"

        self._positions: dict[TopicPartitionKey, int] = {}
        self._committed: dict[TopicPartitionKey, int] = {}
        self._state_lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: KafkaConsumer | None = None
        self._dlq_producer: KafkaProducer | None = None
        self._last_error: str | None = None

    @property
    def topics(self) -> list[str]:
        """The topics this consumer reads."""
        return list(self._topics)

    def start(self) -> EventConsumer:
        """Start the background thread (returns at once; see ``wait_until_ready``)."""
        if self._thread is not None:
            raise RuntimeError("this EventConsumer was already started; create a new one to restart")
        self._thread = threading.Thread(target=self._run, name=f"events-{self._group_id}", daemon=True)
        self._thread.start()
        return self

    def wait_until_ready(self, timeout: float) -> None:
        """Block until the consumer holds its partitions at their start positions.

        Raises ``TimeoutError`` (with the last connection error, if any) after ``timeout`` s.
        """
        if not self._ready.wait(timeout):
            detail = f": {self._last_error}" if self._last_error else ""
            raise TimeoutError(f"the event consumer {self._group_id!r} was not ready within {timeout:.1f} s{detail}")

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the record in hand, commit what was applied, and close the connections."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("event consumer %s did not stop within %.1f s", self._group_id, timeout)

    def positions(self) -> dict[TopicPartitionKey, int]:
        """The next offset to apply per (topic, partition), for a snapshot."""
        with self._state_lock:
            return dict(self._positions)

    def applied_event_ids(self) -> tuple[str, ...]:
        """The remembered applied event ids, oldest first, for a snapshot."""
        with self._state_lock:
            return self._applied.snapshot()

    def checkpoint(self) -> ConsumerCheckpoint:
        """Positions and applied event ids taken together (a copy, valid at any later time)."""
        with self._state_lock:
            return ConsumerCheckpoint(dict(self._positions), self._applied.snapshot())

    # The consumer thread.

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._consumer is None:
                    self._connect()
                self._poll_once()
            except KafkaError as error:
                self._last_error = f"{type(error).__name__}: {error}"
                logger.warning("event consumer %s lost Kafka (%s); reconnecting", self._group_id, self._last_error)
                self._disconnect(commit=False)
                self._stop.wait(1.0)
            except Exception as error:  # noqa: BLE001 - the thread must outlive any failure
                self._last_error = f"{type(error).__name__}: {error}"
                logger.exception("event consumer %s failed; reconnecting", self._group_id)
                self._disconnect(commit=False)
                self._stop.wait(1.0)
        self._disconnect(commit=True)

    def _connect(self) -> None:
        consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap_servers,
            group_id=self._group_id,
            client_id=self._client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            max_poll_interval_ms=self._max_poll_interval_ms,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=min(3_000, self._session_timeout_ms // 3),
        )
        self._consumer = consumer
        self._dlq_producer = KafkaProducer(
            bootstrap_servers=self._bootstrap_servers,
            client_id=f"{self._client_id}-dlq",
            acks="all",
            # A cluster that does not create topics on first use blocks a send to a missing
            # dead-letter topic; give up after 10 s and retry the record rather than hang a minute.
            max_block_ms=10_000,
        )
        if self._assignment == "group":
            consumer.subscribe(self._topics, listener=_RebalanceListener(self))
            return
        partitions = self._all_partitions(consumer)
        consumer.assign(partitions)
        with self._state_lock:
            for partition in partitions:
                key = (partition.topic, partition.partition)
                # After a reconnect the positions reached win over the ones given at start.
                start = self._positions.get(key, self._start_positions.get(key))
                if start is None:
                    start = consumer.committed(partition)
                if start is None:
                    consumer.seek_to_beginning(partition)
                    start = consumer.position(partition)
                else:
                    consumer.seek(partition, start)
                self._positions[key] = start
                self._committed[key] = start
        logger.info(
            "event consumer %s assigned %d partitions of %s",
            self._group_id, len(partitions), ", ".join(self._topics),
        )
        self._ready.set()

    def _all_partitions(self, consumer: KafkaConsumer) -> list[TopicPartition]:
        partitions = []
        for topic in self._topics:
            ids = consumer.partitions_for_topic(topic)
            if not ids:
                raise KafkaError(f"topic {topic} does not exist yet; create it with ensure_topics()")
            partitions.extend(TopicPartition(topic, partition) for partition in sorted(ids))
        return partitions

    def _disconnect(self, *, commit: bool) -> None:
        consumer, self._consumer = self._consumer, None
        producer, self._dlq_producer = self._dlq_producer, None
        if consumer is not None:
            if commit:
                try:
                    self._commit(consumer)
                except Exception:  # noqa: BLE001 - committing again on restart is harmless
                    logger.warning("event consumer %s could not commit on close", self._group_id, exc_info=True)
            consumer.close(autocommit=False)
        if producer is not None:
            producer.close(timeout=5)

    def _poll_once(self) -> None:
        consumer = self._consumer
        batches = consumer.poll(timeout_ms=self._poll_timeout_ms)
        if not batches:
            return
        applied_any = False
        for partition, records in batches.items():
            for record in records:
                if self._stop.is_set():
                    break
                try:
                    self._process(record)
                except _StopRequested:
                    break
                except (KafkaError, PublishError):
                    # The dead-letter write failed: the record stays unapplied and is fetched again.
                    logger.exception(
                        "dead-letter write failed for %s[%d]@%d; retrying",
                        record.topic, record.partition, record.offset,
                    )
                    self._rewind(consumer, partition)
                    self._stop.wait(self._retry_backoff_s)
                    break
                applied_any = True
            if self._stop.is_set():
                break
        if applied_any:
            self._commit(consumer)
            if self._on_checkpoint is not None:
                with self._state_lock:
                    checkpoint = ConsumerCheckpoint(dict(self._positions), live_ids=self._applied)
                try:
                    self._on_checkpoint(checkpoint)
                except Exception:  # noqa: BLE001 - a failed snapshot is retried after the next batch
                    logger.exception("checkpoint callback of event consumer %s failed", self._group_id)
                finally:
                    checkpoint._expire()

    def _rewind(self, consumer: KafkaConsumer, partition: TopicPartition) -> None:
        with self._state_lock:
            position = self._positions.get((partition.topic, partition.partition))
        if position is not None:
            consumer.seek(partition, position)

    def _process(self, record) -> None:
        """Apply one record, or send it to the dead-letter topic; then advance its position."""
        key = (record.topic, record.partition)
        outcome = "applied"
        try:
            event_type, event = self._decode(record)
            handler = self._handlers.get(event_type)
            if handler is None:
                outcome = "unhandled"
            elif event.event_id in self._applied:
                outcome = "duplicate"
                logger.info(
                    "duplicate event skipped at %s[%d]@%d", record.topic, record.partition, record.offset,
                    extra={"event_type": event_type.DESCRIPTOR.full_name},
                )
            else:
                self._call_handler(handler, event, record)
        except _Undeliverable as reason:
            outcome = "dead_lettered"
            self._dead_letter(record, str(reason))
        with self._state_lock:
            if outcome == "applied":
                self._applied.add(event.event_id)
            self._positions[key] = record.offset + 1
        EVENTS_CONSUMED.labels(record.topic, outcome).inc()

    def _decode(self, record) -> tuple[type[Message], Message]:
        header = dict(record.headers or []).get(EVENT_TYPE_HEADER)
        if not header:
            raise _Undeliverable(f"the record has no {EVENT_TYPE_HEADER!r} header naming its event type")
        type_name = header.decode("utf-8", errors="replace")
        event_type = EVENT_TYPES_BY_NAME.get(type_name)
        if event_type is None:
            raise _Undeliverable(
                f"the {EVENT_TYPE_HEADER!r} header names {type_name!r}, which is not one of "
                f"{', '.join(sorted(EVENT_TYPES_BY_NAME))}"
            )
        if record.topic != topic_of(event_type):
            raise _Undeliverable(f"{type_name} belongs on {topic_of(event_type)}, not on {record.topic}")
        try:
            event = event_type.FromString(record.value or b"")
        except (DecodeError, ValueError, TypeError) as error:
            # Protobuf reports most garbage as DecodeError, some (bad UTF-8 in a string) as ValueError.
            raise _Undeliverable(f"the payload is not a valid {type_name}: {error}") from None
        if not event.event_id:
            raise _Undeliverable(f"the {type_name} has no event_id")
        return event_type, event

    def _call_handler(self, handler: Handler, event: Message, record) -> None:
        for attempt in range(1, self._handler_attempts + 1):
            try:
                handler(event)
                return
            except InvalidEvent as error:
                raise _Undeliverable(f"the handler rejected the event: {error}") from None
            except Exception as error:  # noqa: BLE001 - a handler bug must not kill the consumer
                logger.warning(
                    "handler failed on %s[%d]@%d (attempt %d of %d): %s",
                    record.topic, record.partition, record.offset, attempt, self._handler_attempts,
                    type(error).__name__, exc_info=True,
                )
                if attempt == self._handler_attempts:
                    raise _Undeliverable(
                        f"the handler failed {attempt} times, last with {type(error).__name__}: {error}"
                    ) from None
                if self._stop.wait(self._retry_backoff_s * 2 ** (attempt - 1)):
                    raise _StopRequested from None

    def _dead_letter(self, record, reason: str) -> None:
        headers = [(name, value) for name, value in (record.headers or []) if not name.startswith("dlq-")]
        headers += [
            (DLQ_REASON_HEADER, reason.encode("utf-8")),
            (DLQ_SOURCE_TOPIC_HEADER, record.topic.encode("utf-8")),
            (DLQ_SOURCE_PARTITION_HEADER, str(record.partition).encode("ascii")),
            (DLQ_SOURCE_OFFSET_HEADER, str(record.offset).encode("ascii")),
        ]
        future = self._dlq_producer.send(
            dlq_topic(record.topic), value=record.value or b"", key=record.key, headers=headers,
        )
        future.get(timeout=10)
        logger.warning(
            "record %s[%d]@%d sent to the dead-letter topic: %s",
            record.topic, record.partition, record.offset, reason,
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
        )

    def _commit(self, consumer: KafkaConsumer) -> None:
        with self._state_lock:
            pending = {key: offset for key, offset in self._positions.items() if self._committed.get(key) != offset}
        if not pending:
            return
        consumer.commit({
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
            for (topic, partition), offset in pending.items()
        })
        with self._state_lock:
            self._committed.update(pending)

    def _on_assigned(self, consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
        """Group mode: seek newly assigned partitions to their explicit start positions."""
        with self._state_lock:
            for partition in partitions:
                key = (partition.topic, partition.partition)
                start = self._start_positions.get(key)
                if start is not None:
                    consumer.seek(partition, start)
                    self._positions[key] = start
        logger.info("event consumer %s was given %d partitions", self._group_id, len(partitions))
        self._ready.set()

    def _on_revoked(self, consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
        """Group mode: commit what was applied before another member takes the partitions."""
        try:
            self._commit(consumer)
        except KafkaError:
            logger.warning("event consumer %s could not commit on revocation", self._group_id, exc_info=True)
        with self._state_lock:
            for partition in partitions:
                key = (partition.topic, partition.partition)
                self._positions.pop(key, None)
                self._committed.pop(key, None)


class _RebalanceListener(ConsumerRebalanceListener):
    """Forwards group rebalances to the owning EventConsumer."""

    def __init__(self, owner: EventConsumer) -> None:
        self._owner = owner

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._owner._on_assigned(self._owner._consumer, assigned)

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._owner._on_revoked(self._owner._consumer, revoked)


@dataclass(frozen=True)
class DeadLetter:
    """A record of a dead-letter topic: why it is there, where it came from, and its bytes."""

    reason: str
    source_topic: str
    source_partition: int
    source_offset: int
    event_type: str | None
    key: bytes | None
    value: bytes


def read_dlq(bootstrap_servers: str, topic: str, timeout: float = 10.0) -> list[DeadLetter]:
    """Every record of ``topic``'s dead-letter topic (or of ``topic`` itself if it is one).

    Reads from the beginning up to the high watermark reported by the broker's fetch answers;
    raises ``TimeoutError`` if that is not reached within ``timeout`` s. A missing dead-letter
    topic holds no records.
    """
    dead_letter_topic = topic if topic.endswith(DLQ_SUFFIX) else dlq_topic(topic)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=50)
    try:
        partition_ids = consumer.partitions_for_topic(dead_letter_topic)
        if not partition_ids:
            return []
        partitions = [TopicPartition(dead_letter_topic, partition) for partition in sorted(partition_ids)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        letters: list[DeadLetter] = []
        deadline = time.monotonic() + timeout
        while True:
            for records in consumer.poll(timeout_ms=100).values():
                letters.extend(_dead_letter_of(record) for record in records)
            # Tansu's ListOffsets answer is wrong once records are batched; Fetch's high watermark is right.
            caught_up = all(
                consumer.highwater(partition) is not None
                and consumer.position(partition) >= consumer.highwater(partition)
                for partition in partitions
            )
            if caught_up:
                return letters
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dead_letter_topic} was not read to its end within {timeout:.1f} s")
    finally:
        consumer.close(autocommit=False)


def _dead_letter_of(record) -> DeadLetter:
    headers = {name: value.decode("utf-8", errors="replace") for name, value in (record.headers or [])}
    return DeadLetter(
        reason=headers.get(DLQ_REASON_HEADER, ""),
        source_topic=headers.get(DLQ_SOURCE_TOPIC_HEADER, ""),
        source_partition=int(headers.get(DLQ_SOURCE_PARTITION_HEADER, "-1")),
        source_offset=int(headers.get(DLQ_SOURCE_OFFSET_HEADER, "-1")),
        event_type=headers.get(EVENT_TYPE_HEADER),
        key=record.key,
        value=record.value or b"",
    )
