"""A served process on SIGTERM: NOT_SERVING, refuses new calls, drains in-flight ones, exits 0."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

pytestmark = pytest.mark.integration

SLOW_METHOD = "/tryon.test.Probe/Slow"

# A service's __main__ in miniature: settings, logging, serve, signal handlers, wait.
SERVER_SCRIPT = textwrap.dedent(
    """
    import logging
    import time

    import grpc

    from tryon.shared.logs import configure_logging
    from tryon.shared.server import ServiceRegistration, serve
    from tryon.shared.settings import ServerSettings, settings_or_exit


    def slow(request, context):
        logging.getLogger("probe").info("slow call started")
        time.sleep(float(request))
        return b"done"


    settings = settings_or_exit(ServerSettings, "TRYON_PROBE_")
    configure_logging("probe", settings.log_level)
    handler = grpc.method_handlers_generic_handler(
        "tryon.test.Probe", {"Slow": grpc.unary_unary_rpc_method_handler(slow)}
    )
    running = serve(
        "probe",
        [ServiceRegistration("tryon.test.Probe", lambda server: server.add_generic_rpc_handlers((handler,)))],
        settings,
    )
    running.install_signal_handlers(on_shutdown=lambda: logging.getLogger("probe").info("consumers stopped"))
    running.wait()
    """
)


class ServedProcess:
    """The server script in a subprocess, with its stdout JSON lines collected as they come."""

    def __init__(self, script: Path, environ: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(script)],
            env={**os.environ, **environ},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict] = queue.Queue()
        self.seen: list[dict] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def wait_for_message(self, message: str, timeout: float = 20.0) -> dict:
        """The first log line with this message, reading on until it comes."""
        for record in self.seen:
            if record["message"] == message:
                return record
        deadline = time.monotonic() + timeout
        while True:
            record = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            self.seen.append(record)
            if record["message"] == message:
                return record

    def all_lines(self) -> list[dict]:
        """Every line logged so far, in order."""
        while not self.lines.empty():
            self.seen.append(self.lines.get_nowait())
        return self.seen


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "served.py"
    path.write_text(SERVER_SCRIPT)
    return path


@pytest.fixture
def start_server(script) -> Iterator:
    started: list[ServedProcess] = []

    def start(**environ: str) -> ServedProcess:
        served = ServedProcess(script, environ)
        started.append(served)
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
        served.process.wait(timeout=10)
        served.process.stdout.close()
        served.process.stderr.close()


def _refused_within(address: str, seconds: float) -> grpc.StatusCode | None:
    """The code a fresh connection's call gets once the server refuses calls, None if it never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with grpc.insecure_channel(address) as late:
            try:
                health_pb2_grpc.HealthStub(late).Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.RpcError as error:
                return error.code()
        time.sleep(0.05)
    return None


def test_sigterm_drains_the_in_flight_call_then_exits_zero(start_server):
    served = start_server(TRYON_PROBE_GRACE_SECONDS="10")
    address = f"127.0.0.1:{served.wait_for_message('serving')['port']}"
    with grpc.insecure_channel(address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service="tryon.test.Probe"))
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        in_flight = channel.unary_unary(SLOW_METHOD).future(b"1.5", timeout=20)
        served.wait_for_message("slow call started")

        served.process.send_signal(signal.SIGTERM)

        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
        assert _refused_within(address, seconds=3) in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
        assert in_flight.result() == b"done"
        assert in_flight.code() == grpc.StatusCode.OK

    assert served.process.wait(timeout=15) == 0
    served.wait_for_message("server stopped")
    messages = [(record["message"], record.get("method")) for record in served.all_lines()]
    assert messages.index(("rpc finished", SLOW_METHOD)) < messages.index(("consumers stopped", None))


def test_a_second_sigterm_stops_without_waiting_for_the_grace(start_server):
    served = start_server(TRYON_PROBE_GRACE_SECONDS="60")
    address = f"127.0.0.1:{served.wait_for_message('serving')['port']}"
    with grpc.insecure_channel(address) as channel:
        in_flight = channel.unary_unary(SLOW_METHOD).future(b"30", timeout=60)
        served.wait_for_message("slow call started")
        served.process.send_signal(signal.SIGTERM)
        served.wait_for_message("draining in-flight calls")
        started = time.monotonic()

        served.process.send_signal(signal.SIGTERM)

        assert served.process.wait(timeout=20) == 0
        assert time.monotonic() - started < 20
        assert in_flight.exception(timeout=5).code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    assert served.wait_for_message("handlers still running after their calls were cancelled")["handlers"] == 1
    served.wait_for_message("consumers stopped")


def test_a_call_outlasting_the_grace_is_cancelled_and_the_process_still_exits_zero(start_server):
    served = start_server(TRYON_PROBE_GRACE_SECONDS="0.5")
    address = f"127.0.0.1:{served.wait_for_message('serving')['port']}"
    with grpc.insecure_channel(address) as channel:
        in_flight = channel.unary_unary(SLOW_METHOD).future(b"30", timeout=60)
        served.wait_for_message("slow call started")
        started = time.monotonic()

        served.process.send_signal(signal.SIGTERM)

        assert served.process.wait(timeout=20) == 0
        assert time.monotonic() - started < 10
        assert in_flight.exception(timeout=5).code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    served.wait_for_message("consumers stopped")


def test_bad_settings_stop_start_up_with_a_sentence_naming_the_variable(start_server):
    served = start_server(TRYON_PROBE_PORT="abc")

    assert served.process.wait(timeout=20) == 2
    assert served.process.stderr.read() == "TRYON_PROBE_PORT must be an integer between 0 and 65535, got 'abc'\n"
    assert served.all_lines() == []
