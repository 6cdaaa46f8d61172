"""Run the storefront: ``python -m tryon.services.storefront``.

Reads ``TRYON_STOREFRONT_*`` settings, logs JSON lines to stdout, binds the HTTP port (0
picks a free one; the log line "storefront listening" names the bound address) and serves
the API, the fitting-room page, /metrics, /healthz and /readyz with uvicorn until SIGTERM
or SIGINT, after which requests in flight get the grace period to finish; a clean stop exits 0.
"""

from __future__ import annotations

import logging
import signal

import uvicorn

from tryon.services.storefront.api import create_app
from tryon.services.storefront.backends import Backends
from tryon.services.storefront.listener import https_options, listen
from tryon.services.storefront.settings import PREFIX, StorefrontSettings
from tryon.shared.logs import configure_logging
from tryon.shared.settings import settings_or_exit
from tryon.shared.tls import ClientTls

logger = logging.getLogger("tryon.services.storefront")


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
        tls=ClientTls.from_settings(settings),
    )
    app = create_app(
        backends, settings.cors_origins, settings.max_request_bytes, garment_cache_size=settings.garment_cache_size
    )
    listener = listen(settings.host, settings.port)
    host, port = listener.getsockname()[:2]
    scheme = "http" if settings.tls_cert_file is None else "https"
    logger.info("storefront listening", extra={"url": f"{scheme}://{host}:{port}/", "port": port})
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.grace_seconds,
        server_header=False,
        **https_options(settings),
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
