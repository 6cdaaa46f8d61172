"""Run the storefront: ``python -m tryon.services.storefront``.

Reads ``TRYON_STOREFRONT_*`` settings, logs JSON lines to stdout, binds the HTTP port (0
picks a free one; the log line "storefront listening" names the bound address) and serves
the API, the fitting-room page, /metrics, /healthz and /readyz with uvicorn until SIGTERM
or SIGINT, after which requests in flight get the grace period to finish; a clean stop exits 0.
"""

from __future__ import annotations

import logging
import signal
import socket

import uvicorn

from tryon.services.storefront.api import create_app
from tryon.services.storefront.backends import Backends
from tryon.services.storefront.settings import PREFIX, StorefrontSettings
from tryon.shared.logs import configure_logging
from tryon.shared.settings import settings_or_exit

logger = logging.getLogger("tryon.services.storefront")


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket whose accepted connections asyncio sets to TCP_NODELAY.

    asyncio turns Nagle's algorithm off only on sockets whose protocol is IPPROTO_TCP, and
    ``socket.create_server`` leaves it 0: on a kept-alive connection, uvicorn's separate writes
    of headers and body then waited for the client's delayed ACK, 40 ms on every response.
    """
    family, kind, protocol, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    listener = socket.socket(family, kind, protocol)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(address)
    listener.listen(2048)
    return listener


def main() -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status."""
    settings = settings_or_exit(StorefrontSettings, PREFIX)
    configure_logging("storefront", settings.log_level)
    backends = Backends(
        {
            "body": settings.body_service_address,
            "garment": settings.garment_service_address,
            "recommendation": settings.recommendation_service_address,
        },
        timeout_seconds=settings.backend_timeout_seconds,
        max_message_bytes=settings.max_message_bytes,
    )
    app = create_app(
        backends, settings.cors_origins, settings.max_request_bytes, garment_cache_size=settings.garment_cache_size
    )
    listener = listen(settings.host, settings.port)
    host, port = listener.getsockname()[:2]
    logger.info("storefront listening", extra={"url": f"http://{host}:{port}/", "port": port})
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.grace_seconds,
        server_header=False,
    )
    server = uvicorn.Server(config)

    def after_shutdown(signal_number: int, _frame: object) -> None:
        # uvicorn re-raises the signal that stopped it once it has shut down cleanly; exit 0 then,
        # as the other services do. A signal before it started serving still ends the process.
        if not server.started:
            raise SystemExit(128 + signal_number)

    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, after_shutdown)
    server.run(sockets=[listener])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
