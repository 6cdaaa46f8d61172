"""ASGI middleware of the storefront: request ids, the request size limit, metrics and the request log.

`RequestMiddleware` is the outermost layer of the HTTP app. It gives each request an id
(the caller's ``x-request-id`` when usable, else a fresh one) that the log lines, the
calls to the services and the response header all carry; it refuses a body over the
limit with 413 before the app reads it; and it counts, times and logs every request by
route template (never by path, which holds ids, nor by any value the shopper sent).
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tryon.shared.logs import request_id_var
from tryon.shared.metrics import LATENCY_BUCKETS_SECONDS

REQUEST_ID_HEADER = "x-request-id"
_MAX_REQUEST_ID_LENGTH = 128

logger = logging.getLogger("tryon.http")


class HttpMetrics:
    """Counters and a latency histogram of the requests the storefront answered."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        self.requests_total = Counter(
            "tryon_http_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency_seconds = Histogram(
            "tryon_http_latency_seconds",
            "Time from a request's arrival until its response was sent, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=self.registry,
        )
        self.in_flight = Gauge("tryon_http_in_flight", "HTTP requests being answered now.", registry=self.registry)


def usable_request_id(candidate: str | None) -> str:
    """The caller's request id when it is short printable ASCII, else a fresh one."""
    if candidate and len(candidate) <= _MAX_REQUEST_ID_LENGTH and candidate.isascii() and candidate.isprintable():
        return candidate
    return uuid.uuid4().hex


def request_id_of(scope) -> str:
    """The id `RequestMiddleware` gave the request of this ASGI scope."""
    return scope["state"]["request_id"]


class RequestMiddleware:
    """Request id, size limit, metrics and one log line per HTTP request."""

    def __init__(self, app, metrics: HttpMetrics, max_request_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_request_bytes = max_request_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        request_id = usable_request_id(headers.get(REQUEST_ID_HEADER))
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = {"code": 500, "sent": False, "refused": False}

        async def send_with_id(message) -> None:
            if status["refused"]:
                # The 413 is out; whatever the app still answers to the cut-off body is dropped.
                return
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_request_bytes and not status["sent"]:
                    # A chunked body has no length to check up front: answer 413 at the chunk that
                    # crosses the limit, and tell the app the client has gone so it stops reading.
                    await self._too_large(send_with_id, request_id)
                    status["refused"] = True
                    return {"type": "http.disconnect"}
            return message

        self.metrics.in_flight.inc()
        try:
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_request_bytes:
                await self._too_large(send_with_id, request_id)
            else:
                await self.app(scope, limited_receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or ("static" if scope["method"] == "GET" else "unmatched")
            self.metrics.requests_total.labels(scope["method"], route, str(status["code"])).inc()
            self.metrics.latency_seconds.labels(scope["method"], route).observe(seconds)
            level = logging.WARNING if status["code"] >= 500 else logging.INFO
            logger.log(
                level,
                "request",
                extra={"method": scope["method"], "route": route, "status": status["code"],
                       "latency_ms": round(seconds * 1000, 2)},
            )
            request_id_var.reset(token)

    async def _too_large(self, send, request_id: str) -> None:
        body = json.dumps(
            {
                "code": "RESOURCE_EXHAUSTED",
                "message": f"the request body is over the limit of {self.max_request_bytes} bytes",
                "request_id": request_id,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
