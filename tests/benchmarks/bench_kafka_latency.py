"""Produce-to-consume latency and throughput of tryon events on the embedded broker.

Two ways of sending, each through the suite's ``EventPublisher`` (with its outbox)/``EventConsumer`` and, as the
reference measured in the same run, through bare kafka-python (``KafkaProducer`` and an
``assign()``ed ``KafkaConsumer`` polling in a thread, same payloads):

- paced: one event at a time, the next sent once the previous was handled (pure latency);
- burst: all events queued at once, then flushed (latency under load, and messages/s).

The suite's publisher keeps each event in its SQLite outbox (on disk) before it sends it, as
the services do.

Each case runs on its own embedded broker and is bounded by a count and a deadline.

    python tests/benchmarks/bench_kafka_latency.py [--messages 2000] [--deadline 120]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tryon.shared.broker import EmbeddedBroker, ensure_topics
from tryon.shared.events import EVENT_TYPE_HEADER, EventConsumer, EventPublisher, new_event_id, timestamp_now
from tryon.shared.outbox import Outbox
from tryon.shared.proto import common_pb2, events_pb2
from tryon.shared.results import add_results_option, recording_stdout
from tryon.shared.topics import INTERACTIONS

PARTITIONS = 3


class Arrivals:
    """Arrival times by event id, with a wait for a count."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._changed = threading.Condition()

    def arrived(self, event_id: str) -> None:
        now = time.perf_counter()
        with self._changed:
            self.times.setdefault(event_id, now)
            self._changed.notify_all()

    def wait_for_count(self, count: int, deadline: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.times) >= count, timeout=max(0.0, deadline - time.monotonic()))


def make_events(count: int) -> list[events_pb2.InteractionRecorded]:
    return [
        events_pb2.InteractionRecorded(
            event_id=new_event_id(), occurred_at=timestamp_now(), user_id=f"user-{number % 97}",
            garment_id=f"garment-{number % 301}", type=common_pb2.INTERACTION_TYPE_VIEW,
        )
        for number in range(count)
    ]


def measure(
    send: Callable[[events_pb2.InteractionRecorded], None],
    flush: Callable[[], None],
    arrivals: Arrivals,
    events: list[events_pb2.InteractionRecorded],
    paced: bool,
    deadline_s: float,
) -> tuple[list[float], float, int]:
    """Latencies in ms, messages/s, and how many arrived before the deadline."""
    deadline = time.monotonic() + deadline_s
    sent_at: dict[str, float] = {}
    started = time.perf_counter()
    for number, event in enumerate(events):
        sent_at[event.event_id] = time.perf_counter()
        send(event)
        if paced:
            flush()
            if not arrivals.wait_for_count(number + 1, deadline):
                break
    flush()
    arrivals.wait_for_count(len(events), deadline)
    latencies = [(arrivals.times[event_id] - sent) * 1000 for event_id, sent in sent_at.items() if event_id in arrivals.times]
    elapsed = max(arrivals.times.values(), default=started) - started
    return latencies, len(latencies) / elapsed if elapsed > 0 else 0.0, len(latencies)


def run_event_layer(events: list, paced: bool, deadline_s: float) -> tuple[list[float], float, int]:
    with EmbeddedBroker() as broker:
        ensure_topics(broker.bootstrap_servers, [INTERACTIONS], partitions=PARTITIONS)
        arrivals = Arrivals()
        consumer = EventConsumer(
            broker.bootstrap_servers, "bench", {events_pb2.InteractionRecorded: lambda event: arrivals.arrived(event.event_id)}
        ).start()
        with tempfile.TemporaryDirectory(prefix="bench-outbox-") as folder:
            publisher = EventPublisher(
                broker.bootstrap_servers, "bench", Outbox(Path(folder) / "outbox.sqlite"), ack_wait_s=0
            ).start()
            try:
                consumer.wait_until_ready(30)
                return measure(
                    lambda event: publisher.publish([(event, event.user_id)]),
                    lambda: publisher.wait_until_sent(timeout=deadline_s),
                    arrivals, events, paced, deadline_s,
                )
            finally:
                publisher.close()
                consumer.stop()


def run_bare_kafka_python(events: list, paced: bool, deadline_s: float) -> tuple[list[float], float, int]:
    topic = "bench.bare"
    with EmbeddedBroker() as broker:
        ensure_topics(broker.bootstrap_servers, [topic], partitions=PARTITIONS, with_dlq=False)
        arrivals = Arrivals()
        stop = threading.Event()
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=100)
        partitions = [TopicPartition(topic, number) for number in range(PARTITIONS)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)

        def poll_loop() -> None:
            while not stop.is_set():
                for records in consumer.poll(timeout_ms=200).values():
                    for record in records:
                        arrivals.arrived(events_pb2.InteractionRecorded.FromString(record.value).event_id)

        poller = threading.Thread(target=poll_loop, daemon=True)
        poller.start()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
        header = [(EVENT_TYPE_HEADER, b"tryon.v1.InteractionRecorded")]
        try:
            return measure(
                lambda event: producer.send(topic, value=event.SerializeToString(), key=event.user_id.encode(), headers=header),
                producer.flush, arrivals, events, paced, deadline_s,
            )
        finally:
            stop.set()
            poller.join(5)
            producer.close()
            consumer.close(autocommit=False)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="events per case")
    parser.add_argument("--deadline", type=float, default=120.0, help="give up on one case after this many seconds")
    add_results_option(parser)
    args = parser.parse_args()
    with recording_stdout(args.results, "bench_kafka_latency", "Produce-to-consume latency on the embedded broker"):
        results = {}
        for paced in (True, False):
            for name, runner in (("bare kafka-python", run_bare_kafka_python), ("EventPublisher/Consumer", run_event_layer)):
                results[(name, paced)] = runner(make_events(args.messages), paced, args.deadline)

        print(f"{args.messages} InteractionRecorded events, {PARTITIONS} partitions, embedded Tansu, acks=all "
              "(timings noisy on a shared host)")
        print("paced msgs/s counts whole round trips (send, flush, handled) one after the other")
        print(f"{'mode':<7} {'client':<24} {'arrived':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'msgs/s':>8} "
              f"{'p50 x bare':>11} {'msgs/s x bare':>14}")
        for paced in (True, False):
            bare_latencies, bare_rate, _ = results[("bare kafka-python", paced)]
            for name in ("bare kafka-python", "EventPublisher/Consumer"):
                latencies, rate, arrived = results[(name, paced)]
                p50 = percentile(latencies, 0.5)
                print(
                    f"{'paced' if paced else 'burst':<7} {name:<24} {arrived:>8} {p50:>8.2f} {percentile(latencies, 0.99):>8.2f} "
                    f"{statistics.fmean(latencies) if latencies else float('nan'):>8.2f} {rate:>8.0f} {p50 / percentile(bare_latencies, 0.5):>11.2f} {rate / bare_rate:>14.2f}"
                )


if __name__ == "__main__":
    main()
