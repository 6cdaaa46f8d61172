"""The life of a service process, the same for every tryon service.

`run_service` binds the gRPC server at once with health NOT_SERVING, so probes can tell
"starting" from "down", and runs the service's `prepare` step (load or train models, reach
Kafka) on a thread of its own, so that SIGTERM stays prompt even while a model trains for
minutes. When `prepare` returns, health turns SERVING; when it raises, the process stops
with status 1. On SIGTERM the server drains its calls and then releases, newest first,
everything `prepare` acquired through `Resources.adopt`: consumers, producers, an embedded
broker. A `__main__` then ends the process with `exit_process`, which skips the
interpreter's teardown: everything that matters was released already, and the teardown's
garbage collection over torch's, FAISS's and grpc's objects took seconds on a loaded
machine, longer than a launcher's grace.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import torch
from kafka.errors import KafkaError

from tryon.shared.broker import BrokerError, ensure_topics, resolve_bootstrap
from tryon.shared.events import EventPublisher
from tryon.shared.outbox import Outbox
from tryon.shared.logs import configure_logging
from tryon.shared.progress import log_progress_lines
from tryon.shared.server import ServiceRegistration, serve
from tryon.shared.settings import ServerSettings

logger = logging.getLogger("tryon.lifecycle")

OUTBOX_FILE = "outbox.sqlite"
"""The file, in a service's data folder, of events not yet acknowledged by the broker."""

ResourceT = TypeVar("ResourceT")


class ShutdownStarted(Exception):
    """Shutdown began while start-up was still acquiring what it needs."""


class Health:
    """Whether the service can do its job: ready once start-up is done and no dependency is down.

    What start-up builds reports each dependency through a callback from ``callback(name)``
    (an event consumer that lost the broker, an outbox that cannot take events); the server's
    health answers SERVING only while every one of them is up.
    """

    def __init__(self, set_serving: Callable[[bool], None] = lambda serving: None) -> None:
        self._set_serving = set_serving
        self._ready = False
        self._closed = False
        self._down: set[str] = set()
        self._lock = threading.Lock()

    def callback(self, dependency: str) -> Callable[[bool], None]:
        """A function that reports ``dependency`` as up (True) or down (False)."""
        return lambda up: self.report(dependency, up)

    def report(self, dependency: str, up: bool) -> None:
        """Record whether ``dependency`` is up, and update the server's health."""
        with self._lock:
            if up:
                self._down.discard(dependency)
            else:
                self._down.add(dependency)
            self._publish()

    def mark_ready(self) -> None:
        """Start-up is done: SERVING from now on while every dependency is up."""
        with self._lock:
            self._ready = True
            self._publish()

    def close(self) -> None:
        """Shutdown began: the server's health is the shutdown's from now on."""
        with self._lock:
            self._closed = True

    @property
    def serving(self) -> bool:
        """Whether the service answers SERVING now."""
        with self._lock:
            return self._ready and not self._down

    def _publish(self) -> None:
        if self._closed:
            return
        serving = self._ready and not self._down
        if self._down:
            logger.warning("not serving: %s down", ", ".join(sorted(self._down)))
        self._set_serving(serving)


class Resources:
    """What start-up acquires and shutdown must release, released newest first.

    ``health`` is where what start-up builds reports whether its dependencies are up.
    """

    def __init__(self, health: Health | None = None) -> None:
        self.health = health or Health()
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
        self.health.close()
        with self._lock:
            self._closed = True
            closers, self._closers = self._closers[::-1], []
        for close in closers:
            try:
                close()
            except Exception:
                logger.exception("releasing a resource at shutdown failed")


def connect_kafka(resources: Resources, topics: Iterable[str]) -> str:
    """The Kafka address to use (an embedded broker when none is configured), with `topics` created.

    BrokerError, naming the address and where it came from, when the topics cannot be created.
    """
    topics = list(topics)
    bootstrap_servers, broker = resolve_bootstrap()
    if broker is not None:
        resources.adopt(broker, broker.stop)
    try:
        ensure_topics(bootstrap_servers, topics)
    except (KafkaError, BrokerError) as error:
        if broker is not None:
            where = f"the embedded broker at {bootstrap_servers} (its log: {broker.log_path})"
            fix = "see its log"
        else:
            where = f"Kafka at {bootstrap_servers} (KAFKA_BOOTSTRAP_SERVERS)"
            fix = "start the broker, or correct KAFKA_BOOTSTRAP_SERVERS (unset, the service runs an embedded broker)"
        raise BrokerError(
            f"{where} did not create the topics {', '.join(topics)} ({error}); {fix}"
        ) from error
    return bootstrap_servers


def event_publisher(resources: Resources, bootstrap_servers: str, client_id: str, data_dir: Path) -> EventPublisher:
    """The service's EventPublisher, with its outbox in ``data_dir``, started, and closed at shutdown.

    It reports to ``resources.health`` whether its outbox can take events.
    """
    outbox = Outbox(Path(data_dir) / OUTBOX_FILE)
    publisher = EventPublisher(
        bootstrap_servers, client_id, outbox, on_health=resources.health.callback("event outbox")
    )
    return resources.adopt(publisher.start(), publisher.close)


def run_service(
    service_name: str,
    registrations: Sequence[ServiceRegistration],
    settings: ServerSettings,
    prepare: Callable[[Resources], None],
) -> int:
    """Serve until SIGTERM/SIGINT has drained the server; returns the process exit status."""
    configure_logging(service_name, settings.log_level, flush_seconds=settings.log_flush_seconds)
    # Training on first start takes minutes: its progress goes to the log for launchers to show.
    log_progress_lines()
    torch.set_num_threads(settings.torch_threads)
    running = serve(service_name, registrations, settings, initially_serving=False)
    logger.info("listening", extra={"address": running.address})
    resources = Resources(Health(running.set_serving))
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
            resources.health.mark_ready()
            logger.info("ready")

    threading.Thread(target=start, name=f"{service_name}-startup", daemon=True).start()
    running.wait()
    resources.close()
    return 1 if failed.is_set() else 0


def exit_process(status: int) -> None:
    """End the process now with `status`, after writing the log lines and output still buffered.

    Call it last in a `__main__`, once `run_service` has returned: the resources are released
    by then, so the interpreter's teardown would only free memory the kernel frees anyway,
    and it took 2 to 4 s (measured with gdb in `Py_FinalizeEx`, collecting garbage) on two
    busy cores.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
