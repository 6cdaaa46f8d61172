"""Probe a tryon service's gRPC health, for container health checks and launchers.

Usage: python -m tryon.shared.healthcheck ADDRESS [SERVICE] [--timeout SECONDS]
       [--ca-file PEM [--cert-file PEM --key-file PEM]]
Exits 0 when the service (or the whole server, when SERVICE is omitted) is SERVING, 1 otherwise,
saying why on stderr. With --ca-file the probe speaks TLS (mTLS with a client certificate).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tryon.shared.tls import ClientTls, open_channel, transport_hint


def probe(address: str, service: str = "", timeout: float = 2.0, tls: ClientTls | None = None) -> str | None:
    """None when the server at address answers SERVING for service, else why not."""
    with open_channel(address, tls) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as error:
            reason = f"{error.code().name}: {error.details()}"
            hint = transport_hint(error.details(), tls) if error.code() == grpc.StatusCode.UNAVAILABLE else None
            return reason if hint is None else f"{reason} ({hint})"
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return None


def check(address: str, service: str = "", timeout: float = 2.0, tls: ClientTls | None = None) -> bool:
    """True when the server at address answers SERVING for service."""
    return probe(address, service, timeout, tls) is None


def wait_until_serving(
    address: str, service: str = "", deadline_s: float = 60.0, poll_s: float = 0.1, tls: ClientTls | None = None
) -> float:
    """Poll the health service until SERVING; return the seconds waited or raise TimeoutError."""
    started = time.monotonic()
    while True:
        if check(address, service, timeout=min(2.0, deadline_s), tls=tls):
            return time.monotonic() - started
        if time.monotonic() - started > deadline_s:
            raise TimeoutError(f"{service or 'server'} at {address} was not SERVING after {deadline_s:.0f} s")
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Exit 0 when a gRPC service is SERVING.")
    parser.add_argument("address", help="host:port of the server")
    parser.add_argument("service", nargs="?", default="", help="full service name, e.g. tryon.v1.BodyService")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer")
    parser.add_argument("--ca-file", type=Path, help="CA of the server's certificate: probe over TLS")
    parser.add_argument("--cert-file", type=Path, help="client certificate, for a server that requires one (mTLS)")
    parser.add_argument("--key-file", type=Path, help="key of --cert-file")
    options = parser.parse_args(argv)
    if (options.cert_file is None) != (options.key_file is None):
        parser.error("--cert-file and --key-file go together")
    if options.cert_file is not None and options.ca_file is None:
        parser.error("--cert-file needs --ca-file: a client certificate is sent only over TLS")
    tls = None if options.ca_file is None else ClientTls(options.ca_file, options.cert_file, options.key_file)
    reason = probe(options.address, options.service, options.timeout, tls)
    if reason is not None:
        sys.stderr.write(f"{options.service or 'server'} at {options.address} is not SERVING: {reason}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
