"""Storefront settings, read once from ``TRYON_STOREFRONT_*`` environment variables."""

from __future__ import annotations

from dataclasses import dataclass, field

from tryon.shared.settings import TlsSettings

PREFIX = "TRYON_STOREFRONT_"

_PORT_RANGE = {"minimum": 0, "maximum": 65535}


@dataclass(frozen=True, kw_only=True)
class StorefrontSettings(TlsSettings):
    """Where the storefront listens, where it finds the three services and what browsers may call it.

    The storefront is an HTTP server, not a gRPC one, so it does not take `ServerSettings`'
    gRPC fields; its names follow theirs where they mean the same (host, port, log level, grace).
    Its TLS settings are the services': with a certificate and key it serves HTTPS (requiring
    client certificates when a client CA is set), and with a CA it calls the services over TLS,
    presenting its certificate to those that require one.
    """

    body_service_address: str
    """host:port of BodyService; required."""
    garment_service_address: str
    """host:port of GarmentService; required."""
    recommendation_service_address: str
    """host:port of RecommendationService; required."""
    host: str = "127.0.0.1"
    """Interface to bind; 0.0.0.0 to accept connections from other machines."""
    port: int = field(default=8080, metadata=_PORT_RANGE)
    """HTTP port of the API, the page, /metrics, /healthz and /readyz; 0 picks a free one."""
    backend_timeout_seconds: float = field(default=10.0, metadata={"minimum": 0.1, "maximum": 300.0})
    """Deadline of each call to a service."""
    cors_origins: tuple[str, ...] = ()
    """Origins (comma-separated) whose pages may call the API from a browser; ``*`` allows any.
    Empty allows only the storefront's own page."""
    max_request_bytes: int = field(default=1024 * 1024, metadata={"minimum": 1024, "maximum": 1 << 30})
    """Largest request body; a larger one is refused with 413."""
    max_message_bytes: int = field(default=9 * 1024 * 1024, metadata={"minimum": 1024, "maximum": 1 << 30})
    """Largest gRPC message received from a service (a try-on picture of 2048 x 4096 fits)."""
    garment_cache_size: int = field(default=10_000, metadata={"minimum": 0, "maximum": 10_000_000})
    """Catalogue entries kept for the feed's joins (about 1 KiB each; garments never change); 0 keeps none."""
    grace_seconds: float = field(default=10.0, metadata={"minimum": 0.0, "maximum": 3600.0})
    """How long requests in flight may run on after SIGTERM."""
    log_level: str = field(default="INFO", metadata={"choices": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")})
    """Lowest severity written to the log."""
