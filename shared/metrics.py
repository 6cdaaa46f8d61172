"""Prometheus metrics of gRPC calls and the HTTP endpoint that exposes them.

Each server owns a `CollectorRegistry`, so several servers in one process (tests,
the demo) keep separate counts and never collide on metric names.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

# Seconds; from sub-millisecond lookups to model calls of several seconds.
LATENCY_BUCKETS_SECONDS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)


# Counted per process (a service is one process) and shown by every server's /metrics; the
# `_total` suffix is what prometheus_client gives a counter on the wire in any case.
EVENTS_PUBLISHED = Counter(
    "tryon_events_published_total", "Events the broker acknowledged, by topic.", ["topic"], registry=None
)
EVENTS_CONSUMED = Counter(
    "tryon_events_consumed_total",
    "Records taken from Kafka by outcome: applied, duplicate, unhandled or dead_lettered.",
    ["topic", "outcome"],
    registry=None,
)


class RpcMetrics:
    """Counters and a latency histogram of the calls a server handled, by method and status code."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        self.requests_total = Counter(
            "tryon_rpc_requests_total", "gRPC calls handled, by method.", ["method"], registry=self.registry
        )
        self.errors_total = Counter(
            "tryon_rpc_errors_total",
            "gRPC calls that ended with a status other than OK, by method and code.",
            ["method", "code"],
            registry=self.registry,
        )
        self.latency_seconds = Histogram(
            "tryon_rpc_latency_seconds",
            "Time from the start of a call until its last response, by method.",
            ["method"],
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "tryon_rpc_in_flight", "gRPC calls being handled now.", registry=self.registry
        )
        for counter in (EVENTS_PUBLISHED, EVENTS_CONSUMED):
            self.registry.register(counter)

    def observe(self, method: str, code: str, seconds: float) -> None:
        """Record one finished call of `method` that ended with status `code` after `seconds`."""
        self.requests_total.labels(method).inc()
        self.latency_seconds.labels(method).observe(seconds)
        if code != "OK":
            self.errors_total.labels(method, code).inc()


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """Answers each scrape on its own thread, so a slow scraper never blocks another."""

    daemon_threads = True


class _QuietRequestHandler(WSGIRequestHandler):
    """Leaves access logging of scrapes to Prometheus instead of writing to stderr."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Write nothing."""


@dataclass
class MetricsEndpoint:
    """A running HTTP server that answers Prometheus scrapes on `port`."""

    port: int
    _http_server: WSGIServer
    _thread: threading.Thread

    def stop(self) -> None:
        """Stop answering scrapes and release the port."""
        self._http_server.shutdown()
        self._http_server.server_close()
        self._thread.join(timeout=5)


def start_metrics_endpoint(registry: CollectorRegistry, host: str, port: int) -> MetricsEndpoint:
    """Serve `registry` over HTTP at host:port (any path, /metrics by convention); port 0 picks a free port."""
    http_server = make_server(
        host, port, make_wsgi_app(registry), server_class=_ThreadingWSGIServer, handler_class=_QuietRequestHandler
    )
    # A short poll interval keeps stop() quick; serve_forever's default would add half a second.
    thread = threading.Thread(
        target=http_server.serve_forever, kwargs={"poll_interval": 0.05}, name="metrics-http", daemon=True
    )
    thread.start()
    return MetricsEndpoint(port=http_server.server_port, _http_server=http_server, _thread=thread)
