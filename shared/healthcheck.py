"""Probe a tryon service's gRPC health, for container health checks and launchers.

Usage: python -m tryon.shared.healthcheck ADDRESS [SERVICE] [--timeout SECONDS]
Exits 0 when the service (or the whole server, when SERVICE is omitted) is SERVING, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(address: str, service: str = "", timeout: float = 2.0) -> bool:
    """True when the server at address answers SERVING for service."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def wait_until_serving(address: str, service: str = "", deadline_s: float = 60.0, poll_s: float = 0.1) -> float:
    """Poll the health service until SERVING; return the seconds waited or raise TimeoutError."""
    started = time.monotonic()
    while True:
        if check(address, service, timeout=min(2.0, deadline_s)):
            return time.monotonic() - started
        if time.monotonic() - started > deadline_s:
            raise TimeoutError(f"{service or 'server'} at {address} was not SERVING after {deadline_s:.0f} s")
        time.sleep(poll_s)


def main() -> int:
    parser = argparse.ArgumentParser(description="Exit 0 when a gRPC service is SERVING.")
    parser.add_argument("address", help="host:port of the server")
    parser.add_argument("service", nargs="?", default="", help="full service name, e.g. tryon.v1.BodyService")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer")
    options = parser.parse_args()
    return 0 if check(options.address, options.service, options.timeout) else 1


if __name__ == "__main__":
    sys.exit(main())
