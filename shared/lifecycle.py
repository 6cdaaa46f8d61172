"""The life of a service process, the same for every tryon service.

`run_service` binds the gRPC server at once with health NOT_SERVING, so probes can tell
"starting" from "down", and runs the service's `prepare` step (load or train models, reach
Kafka) on a thread of its own, so that SIGTERM stays prompt even while a model trains for
minutes. When `prepare` returns, health turns SERVING; when it raises, the process stops
with status 1. On SIGTERM the server drains its calls and then releases, newest first,
everything `prepare` acquired through `Resources.adopt`: consumers, producers, an embedded
broker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import torch

from tryon.shared.broker import ensure_topics, resolve_bootstrap
from tryon.shared.events import EventProducer
from tryon.shared.logs import configure_logging
from tryon.shared.server import ServiceRegistration, serve
from tryon.shared.settings import ServerSettings

logger = logging.getLogger("tryon.lifecycle")

ResourceT = TypeVar("ResourceT")


class ShutdownStarted(Exception):
    """Shutdown began while start-up was still acquiring what it needs."""


class Resources:
    """What start-up acquires and shutdown must release, released newest first."""

    def __init__(self) -> None:
        self._closers: list[Callable[[], None]] = []
        self._closed = False
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """Whether shutdown has begun."""
        return self._closed

    def adopt(self, resource: ResourceT, close: Callable[[], None]) -> ResourceT:
        """Keep `resource` until shutdown; if shutdown came first, close it and raise ShutdownStarted."""
        with self._lock:
            if not self._closed:
                self._closers.append(close)
                return resource
        close()
        raise ShutdownStarted

    def close(self) -> None:
        """Release everything adopted, newest first; safe to call more than once."""
        with self._lock:
            self._closed = True
            closers, self._closers = self._closers[::-1], []
        for close in closers:
            try:
                close()
            except Exception:
                logger.exception("releasing a resource at shutdown failed")


def connect_kafka(resources: Resources, topics: Iterable[str]) -> str:
    """The Kafka address to use (an embedded broker when none is configured), with `topics` created."""
    bootstrap_servers, broker = resolve_bootstrap()
    if broker is not None:
        resources.adopt(broker, broker.stop)
    ensure_topics(bootstrap_servers, list(topics))
    return bootstrap_servers


def event_producer(resources: Resources, bootstrap_servers: str, client_id: str) -> EventProducer:
    """An EventProducer that is flushed and closed at shutdown."""
    producer = EventProducer(bootstrap_servers, client_id=client_id)
    return resources.adopt(producer, producer.close)


def run_service(
    service_name: str,
    registrations: Sequence[ServiceRegistration],
    settings: ServerSettings,
    prepare: Callable[[Resources], None],
) -> int:
    """Serve until SIGTERM/SIGINT has drained the server; returns the process exit status."""
    configure_logging(service_name, settings.log_level, flush_seconds=settings.log_flush_seconds)
    torch.set_num_threads(settings.torch_threads)
    running = serve(service_name, registrations, settings, initially_serving=False)
    logger.info("listening", extra={"address": running.address})
    resources = Resources()
    failed = threading.Event()
    running.install_signal_handlers(on_shutdown=resources.close)

    def start() -> None:
        try:
            prepare(resources)
        except ShutdownStarted:
            return
        except Exception:
            logger.exception("start-up failed; stopping")
            failed.set()
            running.stop(grace=0)
            return
        if not resources.closed:
            running.set_serving(True)
            logger.info("ready")

    threading.Thread(target=start, name=f"{service_name}-startup", daemon=True).start()
    running.wait()
    resources.close()
    return 1 if failed.is_set() else 0
