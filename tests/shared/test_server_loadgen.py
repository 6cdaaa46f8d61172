"""The benchmark load generator: bounded by count and by time, honest about errors, loopback only."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path

import pytest

from tryon.shared.server import serve
from tryon.shared.settings import ServerSettings

_LOADGEN_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "loadgen.py"
_spec = importlib.util.spec_from_file_location("loadgen", _LOADGEN_PATH)
loadgen = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("loadgen", loadgen)
_spec.loader.exec_module(loadgen)


def test_a_run_stops_after_the_requested_number_of_calls():
    calls = []
    lock = threading.Lock()

    def call() -> None:
        with lock:
            calls.append(threading.get_ident())

    result = loadgen.measure_unary(call, requests=300, concurrency=3, time_cap_s=10, warmup_requests=0)

    assert len(calls) == 300
    assert (result.completed, result.errors, result.stopped_by, result.concurrency) == (300, 0, "count", 3)
    assert result.qps > 0
    assert result.p50_ms <= result.p90_ms <= result.p99_ms


def test_a_run_stops_at_the_time_cap_and_measures_latency():
    result = loadgen.measure_unary(lambda: time.sleep(0.02), requests=10_000, concurrency=2, time_cap_s=0.3,
                                   warmup_requests=0)

    assert result.stopped_by == "time"
    assert 4 <= result.completed < 60
    assert result.seconds < 1.0
    assert 15 <= result.p50_ms < 200


def test_failed_calls_are_counted_apart_from_latencies():
    counter = iter(range(1000))

    def every_other_fails() -> None:
        if next(counter) % 2:
            raise ConnectionError("refused")

    result = loadgen.measure_unary(every_other_fails, requests=100, concurrency=1, time_cap_s=5, warmup_requests=0)

    assert (result.completed, result.errors) == (50, 50)
    assert result.first_error == "ConnectionError('refused')"


@pytest.mark.parametrize("address", ["10.0.0.5:50051", "example.com:443", "0.0.0.0:80"])
def test_only_loopback_targets_are_accepted(address):
    with pytest.raises(ValueError, match="loopback"):
        loadgen.health_baseline(address, requests=1)


@pytest.mark.integration
@pytest.mark.parametrize("per_thread_channels", [False, True])
def test_health_baseline_loads_a_real_server(per_thread_channels):
    running = serve("loaded", [], ServerSettings())
    try:
        result = loadgen.health_baseline(
            running.address, requests=200, concurrency=2, time_cap_s=10, per_thread_channels=per_thread_channels
        )
    finally:
        running.stop(grace=0)

    assert (result.completed, result.errors, result.stopped_by) == (200, 0, "count")
    table = loadgen.format_table({"health": result, "again": result}, reference="health")
    assert "1.00" in table.splitlines()[-2]


def test_median_run_picks_the_middle_qps():
    def run(qps: float):
        return loadgen.LoadResult(
            completed=1, errors=0, seconds=1.0, concurrency=1, stopped_by="count", qps=qps, p50_ms=1, p90_ms=1, p99_ms=1
        )

    assert loadgen.median_run([run(300), run(100), run(200)]).qps == 200
    assert loadgen.median_run([run(300), run(100), run(200), run(400)]).qps == 200
    with pytest.raises(ValueError):
        loadgen.median_run([])
