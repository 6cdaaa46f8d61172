"""How long a kafka-python consumer waits for its first record on the embedded broker.

Compares ``subscribe()`` (consumer-group join) for several ``max_poll_interval_ms`` and
``session_timeout_ms`` values with ``assign()`` of the same partition, which needs no join.
Each case uses a fresh group and reads a topic that already holds records, so the time from
subscribe()/assign() to the first record is all start-up. Every case is bounded by a deadline.

    python tests/benchmarks/bench_group_join.py [--repeats 2] [--deadline 60]
"""

from __future__ import annotations

import argparse
import statistics
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tryon.shared.broker import EmbeddedBroker, ensure_topics
from tryon.shared.results import add_results_option, recording_stdout

TOPIC = "bench.group-join"
# (max_poll_interval_ms, session_timeout_ms); kafka-python needs heartbeat < session timeout.
GROUP_CASES = [(1_000, 6_000), (3_000, 6_000), (6_000, 6_000), (6_000, 10_000), (6_000, 20_000), (20_000, 6_000), (300_000, 45_000)]


def first_record_seconds(bootstrap: str, mode: str, group: str, poll_ms: int, session_ms: int, deadline_s: float) -> float:
    """Seconds from subscribe()/assign() to the first record, or ``inf`` past the deadline."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_interval_ms=poll_ms,
        session_timeout_ms=session_ms,
        heartbeat_interval_ms=min(3_000, session_ms // 3),
        fetch_max_wait_ms=100,
    )
    try:
        started = time.monotonic()
        if mode == "subscribe":
            consumer.subscribe([TOPIC])
        else:
            partition = TopicPartition(TOPIC, 0)
            consumer.assign([partition])
            consumer.seek_to_beginning(partition)
        while time.monotonic() - started < deadline_s:
            if consumer.poll(timeout_ms=50):
                return time.monotonic() - started
        return float("inf")
    finally:
        consumer.close(autocommit=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="runs per case (a fresh group each)")
    parser.add_argument("--deadline", type=float, default=60.0, help="give up on one run after this many seconds")
    add_results_option(parser)
    args = parser.parse_args()
    with recording_stdout(args.results, "bench_group_join", "Kafka consumer: group join against assign()"):
        with EmbeddedBroker() as broker:
            bootstrap = broker.bootstrap_servers
            ensure_topics(bootstrap, [TOPIC], partitions=1, with_dlq=False)
            producer = KafkaProducer(bootstrap_servers=bootstrap)
            for number in range(10):
                producer.send(TOPIC, value=str(number).encode())
            producer.flush()
            producer.close()

            rows = []
            assign_times = [
                first_record_seconds(bootstrap, "assign", f"assign-{run}", 300_000, 45_000, args.deadline)
                for run in range(args.repeats)
            ]
            reference = statistics.median(assign_times)
            rows.append(("assign()", "-", "-", assign_times))
            for poll_ms, session_ms in GROUP_CASES:
                times = [
                    first_record_seconds(bootstrap, "subscribe", f"join-{poll_ms}-{session_ms}-{run}", poll_ms, session_ms, args.deadline)
                    for run in range(args.repeats)
                ]
                rows.append(("subscribe()", poll_ms, session_ms, times))

        print(f"first record after start, {args.repeats} runs each, embedded Tansu broker (timings noisy on a shared host)")
        print(f"{'mode':<12} {'max_poll_interval_ms':>21} {'session_timeout_ms':>19} {'median s':>9} {'max s':>7} {'x assign':>9}")
        for mode, poll_ms, session_ms, times in rows:
            median = statistics.median(times)
            print(f"{mode:<12} {poll_ms!s:>21} {session_ms!s:>19} {median:>9.3f} {max(times):>7.3f} {median / reference:>9.0f}")


if __name__ == "__main__":
    main()
