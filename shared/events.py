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
committed offset, else the earliest offset. A consumer whose positions belong with a state
kept elsewhere (a service snapshot) sets ``resume_from_committed=False``: without given
positions it reads from the earliest offset, never from a commit that its empty state does not
reflect, and its commits only show its lag. Several such consumers are read replicas: each reads
everything into its own state (the recommender's replicas work so, each under its own group
id). A deployment that would rather share partitions out sets ``assignment="group"``: the group
protocol then assigns them (``session_timeout_ms`` bounds the join delay on Tansu), and
explicit start positions apply to the partitions it receives.

Delivery guarantees
-------------------
At least once: a record's offset is committed only after its handler returned (or after the
record went to the dead-letter topic), once per polled batch. Duplicates are skipped by
``event_id``: the consumer remembers a bounded number of recently applied ids, which a service
snapshots with ``positions()`` and restores through the constructor, together with its state,
from the ``on_checkpoint`` callback (called in the consumer thread after each poll, so no
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError, KafkaTimeoutError, OffsetOutOfRangeError
from kafka.structs import OffsetAndMetadata

from tryon.shared.broker import accepts_connections, ensure_topics
from tryon.shared.errors import InvalidEvent, Unavailable
from tryon.shared.metrics import EVENTS_CONSUMED, EVENTS_PUBLISHED
from tryon.shared.outbox import Outbox, OutboxRecord, OutboxUnavailable
from tryon.shared.topics import DLQ_SUFFIX, EVENT_TYPES_BY_NAME, TOPIC_BY_EVENT, dlq_topic, topic_of

logger = logging.getLogger(__name__)

EVENT_TYPE_HEADER = "event-type"
DLQ_REASON_HEADER = "dlq-reason"
DLQ_SOURCE_TOPIC_HEADER = "dlq-source-topic"
DLQ_SOURCE_PARTITION_HEADER = "dlq-source-partition"
DLQ_SOURCE_OFFSET_HEADER = "dlq-source-offset"

SUITE_TOPICS = tuple(sorted(set(TOPIC_BY_EVENT.values())))
LOST_KAFKA_LOG_INTERVAL_S = 60.0
"""While a consumer cannot reach the broker, how often it says so again after its first warning."""
HealthCallback = Callable[[bool], None]

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


class PublishError(Unavailable):
    """Events were neither acknowledged by the broker nor kept in the outbox; the caller may retry."""


def record_of(event: Message, key: str) -> OutboxRecord:
    """The Kafka record of a tryon.v1 event keyed by ``key`` (the id of the entity it is about).

    Raises ``ValueError`` for an event that cannot be routed, has no event_id, or an empty key.
    """
    topic = topic_of(type(event))
    if not getattr(event, "event_id", ""):
        raise ValueError(f"{event.DESCRIPTOR.full_name} needs an event_id; set it with new_event_id()")
    if not key:
        raise ValueError(f"{event.DESCRIPTOR.full_name} needs a non-empty key (the entity id)")
    return OutboxRecord(
        topic=topic,
        key=key.encode("utf-8"),
        value=event.SerializeToString(),
        headers=((EVENT_TYPE_HEADER, event.DESCRIPTOR.full_name.encode("utf-8")),),
    )


def kafka_producer(bootstrap_servers: str, client_id: str, *, request_timeout_ms: int, **options: object) -> KafkaProducer:
    """A KafkaProducer as the suite uses it: every replica acknowledges, no idempotent producer.

    kafka-python's idempotent producer (its default) keeps a producer id the broker gave it; a
    broker that lost its state (Tansu restarted with memory storage) answers every later batch
    with UnknownProducerIdError and the producer never recovers. Duplicates that idempotence
    would avoid are skipped by consumers, by event_id. Topics are never created by a send: a
    broker's default partition count is not the suite's (``ensure_topics`` creates them).
    """
    return KafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        allow_auto_create_topics=False,
        request_timeout_ms=request_timeout_ms,
        **options,
    )


class EventPublisher:
    """How every service publishes its events: kept in a durable outbox, then sent in order.

    ``publish`` appends a call's events to the outbox (an SQLite file, on disk before it returns)
    and, while the broker answers, waits up to ``ack_wait_s`` for them to be acknowledged, so
    that they are usually in the broker's log when the call answers. A background sender sends
    the outbox oldest first, one batch at a time, and removes what the broker acknowledged;
    when a send fails it drops its Kafka producer, retries with a new one after a backoff, and
    creates missing topics first (a restarted broker may have none). Per key the order of the
    log is the order of the outbox: a round's records of one partition travel as one record
    batch, which the broker appends whole or not at all, so no record of a partition lands
    unless every older one of the round did; what failed is the oldest of the outbox, sent first
    in the next round, before anything newer. A round whose answer was lost may be written
    twice; consumers skip the second copy by event_id.

    The call that produced events learns their fate alone: ``publish`` raises ``PublishError``
    (a gRPC UNAVAILABLE) only when its own events could not be kept, because the outbox cannot
    be written or is full; no later call inherits a failure. ``on_health`` is told False while
    the outbox cannot take events and True when it can again.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        client_id: str,
        outbox: Outbox,
        *,
        ack_wait_s: float = 2.0,
        request_timeout_s: float = 2.0,
        batch_records: int = 500,
        on_health: HealthCallback | None = None,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._outbox = outbox
        self._ack_wait_s = ack_wait_s
        self._request_timeout_s = request_timeout_s
        self._batch_records = batch_records
        self._on_health = on_health
        self._producer: KafkaProducer | None = None
        self._reachable = True
        self._usable: bool | None = None
        self._sent = threading.Condition()
        # Every sequence number below this one has left the outbox.
        self._sent_below = 0
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def outbox(self) -> Outbox:
        """The outbox this publisher sends from."""
        return self._outbox

    @property
    def broker_reachable(self) -> bool:
        """Whether the last send to the broker succeeded."""
        return self._reachable

    def start(self) -> EventPublisher:
        """Start sending what the outbox holds (events left by an earlier run first)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"outbox-{self._client_id}", daemon=True)
            self._thread.start()
        return self

    def publish(self, events: Sequence[tuple[Message, str]]) -> None:
        """Keep ``(event, key)`` pairs in the outbox, in order, and have them sent.

        Returns once they are in the broker's log or, when the broker does not acknowledge them
        within ``ack_wait_s`` (at once while it is known to be away), in the outbox. Raises
        ``ValueError`` for an event that cannot be routed and ``PublishError`` when the outbox
        cannot take them.
        """
        records = [record_of(event, key) for event, key in events]
        if not records:
            return
        try:
            seqs = self._outbox.append(records)
        except OutboxUnavailable as error:
            self._set_usable(False)
            raise PublishError(f"events were not accepted: {error}; retry later") from error
        self._set_usable(True)
        self._wake.set()
        if self._reachable and self._ack_wait_s > 0:
            self.wait_until_sent(seqs[-1], self._ack_wait_s)

    def wait_until_sent(self, seq: int | None = None, timeout: float = 10.0) -> bool:
        """Wait until record ``seq`` (by default every record appended so far) left the outbox."""
        if seq is None:
            seq = self._outbox.newest_seq()
            if seq is None:
                return True
        with self._sent:
            return self._sent.wait_for(lambda: self._sent_below > seq, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Send what the outbox holds for up to ``timeout`` s, then stop; the rest waits for the next start.

        A sender still busy after ``timeout`` goes on sending while the broker acknowledges, and lets
        go of the producer and the outbox (and its lock) itself once the outbox is empty or a send
        fails; a ``publish`` after that raises ``PublishError``.
        """
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning(
                    "event publisher %s did not stop within %.1f s; it closes its outbox when its sending ends",
                    self._client_id, timeout,
                )
                return
        self._release()

    def __enter__(self) -> EventPublisher:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _set_usable(self, usable: bool) -> None:
        if usable == self._usable:
            return
        self._usable = usable
        if not usable:
            logger.warning("event publisher %s cannot keep events in its outbox", self._client_id)
        if self._on_health is not None:
            self._on_health(usable)

    # The sending thread.

    def _run(self) -> None:
        try:
            self._send_until_closed()
        finally:
            if self._closing.is_set():
                self._release()

    def _release(self) -> None:
        """Drop the producer and close the outbox, letting go of its lock (safe to call twice)."""
        self._drop_producer()
        self._outbox.close()

    def _send_until_closed(self) -> None:
        backoff = 0.1
        while True:
            try:
                records = _round_of(self._outbox.oldest(self._batch_records))
            except Exception:  # noqa: BLE001 - the sender must outlive a failing read
                logger.exception("event publisher %s could not read its outbox", self._client_id)
                records = None
            if not records:
                self._mark_sent()
                if self._closing.is_set():
                    return
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            acknowledged, error = self._send(records)
            if acknowledged:
                self._outbox.remove([record.seq for record in acknowledged])
                for record in acknowledged:
                    EVENTS_PUBLISHED.labels(record.topic).inc()
                if len(self._outbox) < self._outbox.max_pending:
                    self._set_usable(True)
            self._mark_sent()
            if error is None:
                backoff = 0.1
                continue
            if self._closing.is_set():
                return
            self._closing.wait(backoff)
            backoff = min(backoff * 2, 2.0)

    def _send(self, records: list[OutboxRecord]) -> tuple[list[OutboxRecord], str | None]:
        """Send ``records``; those the broker acknowledged, and why the others were not."""
        sent = []
        try:
            producer = self._connect()
            for record in records:
                sent.append((record, producer.send(record.topic, value=record.value, key=record.key,
                                                   headers=list(record.headers))))
            producer.flush(timeout=self._request_timeout_s)
        except Exception as error:  # noqa: BLE001 - any failure is retried with a new producer
            failure = f"{type(error).__name__}: {error}"
        else:
            failure = None
        acknowledged = []
        for record, future in sent:
            if future.succeeded():
                acknowledged.append(record)
            elif failure is None:
                failure = f"{type(future.exception).__name__}: {future.exception}" if future.failed() else "no answer"
        if failure is not None:
            if self._reachable:
                logger.warning(
                    "event publisher %s cannot reach Kafka (%s); %d events wait in the outbox",
                    self._client_id, failure, len(self._outbox), extra={"topic": records[0].topic},
                )
            self._reachable = False
            self._drop_producer()
        elif not self._reachable:
            self._reachable = True
            logger.info("event publisher %s reached Kafka again", self._client_id)
        return acknowledged, failure

    def _connect(self) -> KafkaProducer:
        if self._producer is None:
            if not accepts_connections(self._bootstrap_servers):
                raise KafkaError(f"no broker of {self._bootstrap_servers} accepts connections")
            # A restarted broker may have lost the topics; create them with the suite's partition count.
            ensure_topics(self._bootstrap_servers, SUITE_TOPICS, timeout=self._request_timeout_s)
            self._producer = kafka_producer(
                self._bootstrap_servers,
                self._client_id,
                request_timeout_ms=int(self._request_timeout_s * 1000),
                max_block_ms=int(self._request_timeout_s * 1000),
                # One batch per partition and round: records wait (linger) until flush() sends them
                # all, and a batch holds a whole round (see ROUND_BYTES), so a partition's records
                # of a round succeed or fail together and none can overtake an older one.
                linger_ms=ROUND_LINGER_MS,
                batch_size=BATCH_BYTES,
                max_in_flight_requests_per_connection=1,
            )
        return self._producer

    def _drop_producer(self) -> None:
        """Close the Kafka producer at once, abandoning what it still holds (the outbox keeps it).

        kafka-python's ``close()`` flushes first and, while records are pending, raises before it
        stops its sender thread, which would then retry a lost broker for the life of the process;
        the sender is stopped here in that case.
        """
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            producer.close(timeout=0)
        except KafkaTimeoutError:
            producer._sender.force_close()
            producer._closed = True
        except Exception:  # noqa: BLE001 - a broken producer is discarded either way
            logger.debug("closing a failed producer raised", exc_info=True)

    def _mark_sent(self) -> None:
        sent_below = self._outbox.sent_below()
        with self._sent:
            self._sent_below = sent_below
            self._sent.notify_all()


BATCH_BYTES = 1 << 20
"""kafka-python's record batch size for the outbox sender: room for a whole round of one partition."""
ROUND_BYTES = BATCH_BYTES // 2
"""The most payload bytes (keys, values, headers) one round sends; below BATCH_BYTES for batch overhead."""
ROUND_LINGER_MS = 60_000
"""Longer than a round takes to queue: only flush() sends a round's batches."""


def _round_of(records: list[OutboxRecord]) -> list[OutboxRecord]:
    """The oldest of ``records`` whose bytes fit in ROUND_BYTES (at least one record)."""
    total = 0
    for count, record in enumerate(records):
        total += len(record.key) + len(record.value) + sum(len(n) + len(v) for n, v in record.headers)
        if total > ROUND_BYTES and count > 0:
            return records[:count]
    return records


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
    - ``resume_from_committed``: False reads a partition without a start position from its
      earliest offset instead of the group's commit (manual mode).
    - ``applied_event_ids``: ids restored from the same snapshot, treated as already applied.
    - ``on_checkpoint``: called in the consumer thread after each poll (idle ones too) with a
      ``ConsumerCheckpoint``; it decides whether the positions changed enough to snapshot.
    - ``remembered_event_ids``: how many recent ids are kept for skipping duplicates.
    - ``handler_attempts`` / ``retry_backoff_s``: calls of a failing handler before the record
      goes to the dead-letter topic, and the first wait between them (doubling each time).
    - ``assignment``: ``"manual"`` (every partition, no group join) or ``"group"`` (subscribe).
    - ``max_poll_interval_ms`` / ``session_timeout_ms``: group-membership timeouts (group mode).
    - ``poll_timeout_ms`` / ``fetch_max_wait_ms``: how long one poll, and the broker, wait for records.
    - ``on_health`` / ``unreachable_after_s``: told False once no broker connection has been up
      for that long, True when one is again.
    - ``topics_ensured``: the caller has just created the topics (``ensure_topics``, as start-up
      does), so the first connection does not check them again; every later one does, since a
      broker restarted empty holds none.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        group_id: str,
        handlers: Mapping[type[Message], Handler],
        *,
        start_positions: Mapping[TopicPartitionKey, int] | None = None,
        resume_from_committed: bool = True,
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
        on_health: HealthCallback | None = None,
        unreachable_after_s: float = 3.0,
        topics_ensured: bool = False,
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
        self._resume_from_committed = resume_from_committed
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
        self._topics_ensured = topics_ensured

        self._positions: dict[TopicPartitionKey, int] = {}
        self._committed: dict[TopicPartitionKey, int] = {}
        self._state_lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: KafkaConsumer | None = None
        self._dlq_producer: KafkaProducer | None = None
        self._last_error: str | None = None
        self._on_health = on_health
        self._unreachable_after_s = unreachable_after_s
        self._unreachable_since: float | None = None
        self._reachable = True
        self._next_reach_check = 0.0
        self._cluster_id: str | None = None
        self._restart_from_log_start = False
        # When the current run of failed connections began (None while connected), and when the
        # next line about it may be written.
        self._lost_since: float | None = None
        self._next_lost_log = 0.0

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
            except OffsetOutOfRangeError as error:
                self._restart_on_new_log(f"the broker answered {type(error).__name__} ({error})")
            except KafkaError as error:
                self._last_error = f"{type(error).__name__}: {error}"
                self._log_lost_kafka()
                self._disconnect(commit=False)
                self._stop.wait(1.0)
            except Exception as error:  # noqa: BLE001 - the thread must outlive any failure
                self._last_error = f"{type(error).__name__}: {error}"
                logger.exception("event consumer %s failed; reconnecting", self._group_id)
                self._disconnect(commit=False)
                self._stop.wait(1.0)
            self._check_reachable()
        self._disconnect(commit=True)

    def _log_lost_kafka(self) -> None:
        """Say the first lost connection at WARNING, then at most once per ``LOST_KAFKA_LOG_INTERVAL_S``.

        Reconnecting is tried about once a second while the broker is away; a line for each try
        would bury everything else. ``_check_reachable`` says when a connection is up again.
        """
        now = time.monotonic()
        if self._lost_since is None:
            self._lost_since = now
        elif now < self._next_lost_log:
            return
        self._next_lost_log = now + LOST_KAFKA_LOG_INTERVAL_S
        logger.warning(
            "event consumer %s lost Kafka (%s); reconnecting (for %.0f s so far)",
            self._group_id, self._last_error, now - self._lost_since,
        )

    def _same_log(self) -> bool:
        """Whether the broker's log is the one the positions were taken on; if not, start it over.

        An emptied broker (Tansu restarted with memory storage) or another cluster holds a log
        that ends before the positions, and a fetch there may answer nothing rather than
        OFFSET_OUT_OF_RANGE, so positions are compared with the high watermark of fetch answers,
        and the cluster id with the one seen at connection.
        """
        consumer = self._consumer
        cluster_id = _cluster_id(consumer)
        if self._cluster_id is None:
            self._cluster_id = cluster_id
        elif cluster_id is not None and cluster_id != self._cluster_id:
            self._restart_on_new_log(f"the cluster id changed from {self._cluster_id} to {cluster_id}")
            return False
        with self._state_lock:
            positions = dict(self._positions)
        for partition in consumer.assignment():
            mark = consumer.highwater(partition)
            position = positions.get((partition.topic, partition.partition))
            if mark is not None and position is not None and position > mark:
                self._restart_on_new_log(
                    f"{partition.topic}[{partition.partition}] ends at offset {mark}, before position {position}"
                )
                return False
        return True

    def _warn_new_log(self, why: str) -> None:
        logger.warning(
            "event consumer %s found a broker log behind its positions: %s; keeping its state and "
            "reading the new log from its start", self._group_id, why,
        )

    def _restart_on_new_log(self, why: str) -> None:
        self._warn_new_log(why)
        self._restart_from_log_start = True
        self._cluster_id = None
        self._disconnect(commit=False)

    def _check_reachable(self) -> None:
        """Tell ``on_health`` when no broker connection has been up for ``unreachable_after_s``."""
        now = time.monotonic()
        if now < self._next_reach_check:
            return
        self._next_reach_check = now + 0.5
        consumer = self._consumer
        connected = consumer is not None and _connection_count(consumer) > 0
        if not connected and consumer is not None:
            # Connect again, and so compare the cluster id, before fetching from whatever answers next.
            self._disconnect(commit=False)
        if connected:
            if self._lost_since is not None or not self._reachable:
                since = min(t for t in (self._lost_since, self._unreachable_since, now) if t is not None)
                logger.info("event consumer %s reached Kafka again after %.0f s", self._group_id, now - since)
            self._unreachable_since = None
            self._lost_since = None
            self._next_lost_log = 0.0
            if not self._reachable:
                self._reachable = True
                if self._on_health is not None:
                    self._on_health(True)
            return
        if self._unreachable_since is None:
            self._unreachable_since = now
        if self._reachable and now - self._unreachable_since >= self._unreachable_after_s:
            self._reachable = False
            logger.warning(
                "event consumer %s has not reached Kafka for %.0f s", self._group_id, now - self._unreachable_since
            )
            if self._on_health is not None:
                self._on_health(False)

    def _connect(self) -> None:
        if not accepts_connections(self._bootstrap_servers):
            raise KafkaError(f"no broker of {self._bootstrap_servers} accepts connections")
        # Created here, not by the consumer's metadata request: a broker's default partition
        # count is not the suite's, and a restarted broker may hold no topics.
        if self._topics_ensured:
            self._topics_ensured = False
        else:
            ensure_topics(self._bootstrap_servers, self._topics)
        consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap_servers,
            group_id=self._group_id,
            client_id=self._client_id,
            enable_auto_commit=False,
            allow_auto_create_topics=False,
            # Manual positions are always set explicitly; a position outside the log raises
            # OffsetOutOfRangeError, which _run answers by reading the new log from its start.
            auto_offset_reset="earliest" if self._assignment == "group" else "none",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            max_poll_interval_ms=self._max_poll_interval_ms,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=min(3_000, self._session_timeout_ms // 3),
        )
        self._consumer = consumer
        self._dlq_producer = kafka_producer(
            self._bootstrap_servers,
            f"{self._client_id}-dlq",
            request_timeout_ms=10_000,
            # A cluster that does not create topics on first use blocks a send to a missing
            # dead-letter topic; give up after 10 s and retry the record rather than hang a minute.
            max_block_ms=10_000,
        )
        if self._assignment == "group":
            consumer.subscribe(self._topics, listener=_RebalanceListener(self))
            return
        partitions = self._all_partitions(consumer)
        consumer.assign(partitions)
        from_log_start = self._restart_from_log_start
        # Read from the metadata answer above, before any fetch: a broker restarted empty answers
        # fetches at the old positions with records of its new log.
        cluster_id = _cluster_id(consumer)
        if self._cluster_id is not None and cluster_id is not None and cluster_id != self._cluster_id:
            self._warn_new_log(f"the cluster id changed from {self._cluster_id} to {cluster_id}")
            from_log_start = True
        self._cluster_id = cluster_id
        with self._state_lock:
            if from_log_start:
                self._positions.clear()
                self._committed.clear()
            for partition in partitions:
                key = (partition.topic, partition.partition)
                # After a reconnect the positions reached win over the ones given at start.
                start = None if from_log_start else self._positions.get(key, self._start_positions.get(key))
                if start is None and not from_log_start and self._resume_from_committed:
                    start = consumer.committed(partition)
                if start is None:
                    # Looked up, not reset to: with auto_offset_reset "none" a reset is never done.
                    start = consumer.beginning_offsets([partition])[partition]
                consumer.seek(partition, start)
                self._positions[key] = start
                self._committed[key] = start
        self._restart_from_log_start = False
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
        # Before any record is applied: records of a new log read from the old positions would
        # otherwise be applied ahead of the ones before them.
        if not self._same_log():
            return
        if not batches:
            self._offer_checkpoint()
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
        self._offer_checkpoint()

    def _offer_checkpoint(self) -> None:
        """Hand ``on_checkpoint`` the positions after every poll, idle ones included.

        A callback that snapshots at most once per interval skips the checkpoints of a burst;
        offered again while the stream is quiet, the last positions reach a snapshot too.
        """
        if self._on_checkpoint is None:
            return
        with self._state_lock:
            checkpoint = ConsumerCheckpoint(dict(self._positions), live_ids=self._applied)
        try:
            self._on_checkpoint(checkpoint)
        except Exception:  # noqa: BLE001 - a failed snapshot is retried after the next poll
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


def _cluster_id(consumer: KafkaConsumer) -> str | None:
    """The cluster id of the consumer's last metadata answer (kafka-python keeps it, not public)."""
    cluster = getattr(getattr(consumer, "_client", None), "cluster", None)
    return getattr(cluster, "cluster_id", None)


def _connection_count(consumer: KafkaConsumer) -> float:
    """How many broker connections the consumer has open, from its own metrics."""
    return consumer.metrics().get("consumer-metrics", {}).get("connection-count", 0.0)


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
