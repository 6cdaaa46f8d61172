"""Health Check throughput and latency: the baseline other RPC benchmarks are divided by.

Run: ``python tests/benchmarks/bench_health.py [--requests N] [--time-cap S] [--concurrency 1 4]``

Servers run in a subprocess of their own: client and server in one interpreter would
share the GIL, and the figure would mix the cost of both sides. Rows:

- ``bare grpc.server``: a plain grpc.server with only the health servicer (reference);
- ``serve()``: the project's server with its interceptors (request log, metrics, errors);
  health calls are logged at DEBUG, so at INFO they cost no log line;
- ``serve(), every call logged``: the same at log level DEBUG, so each call writes a JSON line,
  which is what a logged service RPC costs;
- ``serve() in-process``: the project's server in the client's own interpreter, to show what
  sharing the GIL costs.

Each row runs until --requests calls are made or --time-cap seconds pass; the rows are
measured in --rounds interleaved rounds and each shows its median-QPS round.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import LoadResult, format_table, health_baseline, median_run  # noqa: E402
from tryon.shared.results import add_results_option, recording_stdout  # noqa: E402

REFERENCE = "bare grpc.server"


def _serve_in_this_process(mode: str) -> None:
    """Subprocess entry: start the server, print its port, serve until SIGTERM."""
    if mode == "bare":
        import grpc
        from grpc_health.v1 import health, health_pb2_grpc

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        print(port, flush=True)
        stopped.wait()
        server.stop(0).wait()
        return

    from tryon.shared.logs import configure_logging
    from tryon.shared.server import serve
    from tryon.shared.settings import ServerSettings

    configure_logging("bench", "DEBUG" if mode == "serve-debug" else "INFO", stream=open(os.devnull, "w"))
    running = serve("bench", [], ServerSettings(grace_seconds=0.0))
    running.install_signal_handlers()
    print(running.port, flush=True)
    running.wait()


class _ServerProcess:
    """A benchmark server in a subprocess, stopped with SIGTERM on exit."""

    def __init__(self, mode: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__, "--serve", mode], stdout=subprocess.PIPE, text=True
        )
        self.address = f"127.0.0.1:{int(self._process.stdout.readline())}"

    def __enter__(self) -> _ServerProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()


def main() -> None:
    """Measure the health Check against each kind of server and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="calls per row and round")
    parser.add_argument("--time-cap", type=float, default=3.0, help="seconds per row and round at most")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="client threads, one row each")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each row shows its median-QPS round")
    parser.add_argument("--serve", choices=["bare", "serve", "serve-debug"], help=argparse.SUPPRESS)
    add_results_option(parser)
    arguments = parser.parse_args()
    if arguments.serve:
        _serve_in_this_process(arguments.serve)
        return

    from tryon.shared.logs import configure_logging
    from tryon.shared.server import serve
    from tryon.shared.settings import ServerSettings

    with recording_stdout(arguments.results, "bench_health", "Health Check baseline"):
        configure_logging("bench", "INFO", stream=open(os.devnull, "w"))
        runs: dict[str, list[LoadResult]] = {}
        with contextlib.ExitStack() as servers:
            addresses = {
                label: servers.enter_context(_ServerProcess(mode)).address
                for mode, label in (("bare", REFERENCE), ("serve", "serve()"), ("serve-debug", "serve(), every call logged"))
            }
            in_process = serve("bench", [], ServerSettings(grace_seconds=0.0))
            servers.callback(in_process.stop)
            addresses["serve() in-process"] = in_process.address
            # Rounds interleave the servers, so a burst of load from elsewhere hits all rows alike.
            for _ in range(arguments.rounds):
                for label, address in addresses.items():
                    for concurrency in arguments.concurrency:
                        result = health_baseline(address, arguments.requests, concurrency, arguments.time_cap)
                        runs.setdefault(f"{label} (c={concurrency})", []).append(result)
                        if result.errors:
                            print(f"{label}: {result.errors} errors, first {result.first_error}", file=sys.stderr)

        print(f"health Check, {arguments.requests} calls or {arguments.time_cap:g} s per row, median of "
              f"{arguments.rounds} interleaved rounds, one shared channel, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
        print(format_table({label: median_run(results) for label, results in runs.items()},
                           reference=f"{REFERENCE} (c={arguments.concurrency[0]})"))
        print("QPS of every round:")
        for label, results in runs.items():
            print(f"  {label:<44} " + " ".join(f"{result.qps:>7.0f}" for result in results))


if __name__ == "__main__":
    main()
