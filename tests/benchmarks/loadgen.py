"""Closed-loop load generator for unary gRPC calls on loopback.

`measure_unary` runs `concurrency` client threads; each makes one call, waits for the
answer, and makes the next (closed loop), until `requests` calls have been made or
`time_cap_s` has passed, whichever comes first. It reports throughput and latency
percentiles. All threads share the `call` they are given: a stub on one channel
multiplexes every thread over one HTTP/2 connection, as a typical client process does;
`per_thread_channels` in `health_baseline` gives each thread its own channel instead.

A benchmark divides its RPC's QPS by `health_baseline(...)` measured in the same run at
the same concurrency, which cancels out most of the machine's noise:

    baseline = health_baseline(address, requests=2000, concurrency=4, time_cap_s=10)
    result = measure_unary(lambda: stub.GetBody(request, timeout=10), 2000, 4, 10)
    print(format_table({"health Check": baseline, "GetBody": result}, reference="health Check"))

Only loopback addresses are accepted: a benchmark never loads another machine.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc


@dataclass(frozen=True)
class LoadResult:
    """What one closed-loop run measured; latencies are of successful calls, in milliseconds."""

    completed: int
    """Calls that returned without raising."""
    errors: int
    """Calls that raised; their latency is not in the percentiles."""
    seconds: float
    """Wall time from the first call to the last answer."""
    concurrency: int
    """Client threads, each with one call outstanding at a time."""
    stopped_by: str
    """"count" when all requests were made, "time" when the time cap ended the run."""
    qps: float
    """Successful calls per second of wall time."""
    p50_ms: float
    p90_ms: float
    p99_ms: float
    first_error: str | None = None
    """repr of the first exception raised, to tell what went wrong."""

    def ratio_to(self, reference: LoadResult) -> float:
        """This run's QPS divided by the reference's (NaN when the reference did nothing)."""
        return self.qps / reference.qps if reference.qps > 0 else float("nan")


def measure_unary(
    call: Callable[[], object],
    requests: int,
    concurrency: int,
    time_cap_s: float,
    warmup_requests: int | None = None,
) -> LoadResult:
    """Make up to `requests` calls of `call` from `concurrency` threads within `time_cap_s` seconds.

    A short warm-up (by default a tenth of `requests`, at most 200, capped at a tenth of the
    time) runs first and is not measured, so connection set-up does not count.
    """
    if requests < 1 or concurrency < 1 or time_cap_s <= 0:
        raise ValueError("requests and concurrency must be at least 1 and time_cap_s positive")
    warmup = min(200, requests // 10) if warmup_requests is None else warmup_requests
    if warmup > 0:
        _closed_loop(call, warmup, concurrency, time_cap_s / 10)
    return _closed_loop(call, requests, concurrency, time_cap_s)


def health_baseline(
    address: str,
    requests: int = 2000,
    concurrency: int = 4,
    time_cap_s: float = 10.0,
    per_thread_channels: bool = False,
    service: str = "",
) -> LoadResult:
    """Load the standard health Check of the server at `address` (a loopback host:port).

    The health Check does almost no work, so its QPS is the cost of the gRPC plumbing
    alone: the reference other RPCs are divided by. With `per_thread_channels` each client
    thread opens its own channel (its own TCP connection) instead of sharing one.
    """
    require_loopback(address)
    request = health_pb2.HealthCheckRequest(service=service)
    opened: list[grpc.Channel] = []
    opened_lock = threading.Lock()

    def new_stub() -> health_pb2_grpc.HealthStub:
        channel = grpc.insecure_channel(address)
        with opened_lock:
            opened.append(channel)
        return health_pb2_grpc.HealthStub(channel)

    if per_thread_channels:
        local = threading.local()

        def check() -> object:
            stub = getattr(local, "stub", None)
            if stub is None:
                stub = local.stub = new_stub()
            return stub.Check(request, timeout=10)
    else:
        shared = new_stub()

        def check() -> object:
            return shared.Check(request, timeout=10)

    try:
        return measure_unary(check, requests, concurrency, time_cap_s)
    finally:
        for channel in opened:
            channel.close()


def median_run(runs: Sequence[LoadResult]) -> LoadResult:
    """The run with the median QPS of repeated runs of one configuration (the lower middle one of an even count)."""
    if not runs:
        raise ValueError("median_run needs at least one run")
    return sorted(runs, key=lambda run: run.qps)[(len(runs) - 1) // 2]


def require_loopback(address: str) -> None:
    """Raise ValueError unless `address` is host:port on this machine's loopback."""
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"benchmarks only target loopback addresses, got {address!r}")


def format_table(results: Mapping[str, LoadResult], reference: str) -> str:
    """A text table of the runs with each QPS divided by the `reference` run's."""
    base = results[reference]
    header = f"{'run':<44} {'conc':>4} {'calls':>6} {'err':>4} {'QPS':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'x ref':>6}"
    lines = [header, "-" * len(header)]
    for label, result in results.items():
        lines.append(
            f"{label:<44} {result.concurrency:>4} {result.completed:>6} {result.errors:>4} {result.qps:>8.0f} "
            f"{result.p50_ms:>8.2f} {result.p90_ms:>8.2f} {result.p99_ms:>8.2f} {result.ratio_to(base):>6.2f}"
        )
    lines.append(f"(x ref: QPS divided by the QPS of '{reference}' measured in the same run)")
    return "\n".join(lines)



def print_report(results: Mapping[str, LoadResult], reference: str, concurrency: int, requests: int,
                 time_cap_s: float) -> None:
    """Print each run's errors to stderr, then a headed table of the runs against `reference`."""
    for label, result in results.items():
        if result.errors:
            print(f"{label}: {result.errors} errors, first {result.first_error}", file=sys.stderr)
    print(f"\nconcurrency {concurrency}, {requests} calls or {time_cap_s:g} s per row, "
          f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(format_table(results, reference=reference))

def _closed_loop(call: Callable[[], object], requests: int, concurrency: int, time_cap_s: float) -> LoadResult:
    lock = threading.Lock()
    issued = 0
    errors = 0
    first_error: str | None = None
    latencies_per_thread: list[list[float]] = [[] for _ in range(concurrency)]
    started = time.perf_counter()
    deadline = started + time_cap_s

    def client(latencies: list[float]) -> None:
        nonlocal issued, errors, first_error
        while True:
            with lock:
                if issued >= requests or time.perf_counter() >= deadline:
                    return
                issued += 1
            call_started = time.perf_counter()
            try:
                call()
            except Exception as error:
                with lock:
                    errors += 1
                    if first_error is None:
                        first_error = repr(error)
                continue
            latencies.append(time.perf_counter() - call_started)

    threads = [
        threading.Thread(target=client, args=(latencies,), name=f"loadgen-{index}", daemon=True)
        for index, latencies in enumerate(latencies_per_thread)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started

    latencies_ms = np.array([value for latencies in latencies_per_thread for value in latencies]) * 1000.0
    completed = len(latencies_ms)
    p50, p90, p99 = np.percentile(latencies_ms, [50, 90, 99]) if completed else (float("nan"),) * 3
    return LoadResult(
        completed=completed,
        errors=errors,
        seconds=seconds,
        concurrency=concurrency,
        stopped_by="count" if issued >= requests else "time",
        qps=completed / seconds if seconds > 0 else 0.0,
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        first_error=first_error,
    )
