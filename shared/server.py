"""The one gRPC server bootstrap every tryon service uses.

`serve()` starts a `grpc.server` with the library health service (SERVING for each
registered service and for ""), server reflection (v1 and v1alpha), and the interceptors of
`tryon.shared.interceptors`; it binds `settings.host:settings.port` (port 0 picks a free
port), over TLS when the settings name a certificate and key, requiring client certificates
when they name a client CA (`tryon.shared.tls`). When `settings.health_port` is set, a second
plaintext port serves the same health service and nothing else, for probes that speak no TLS;
when `settings.metrics_port` is set, Prometheus metrics are served over HTTP.

Every servicer is a `ReadyServicer`: it answers from a domain that start-up hands over with
``attach``, and until then every call answers UNAVAILABLE with `STARTING_MESSAGE`. Every
servicer module has ``registration(servicer)``, the `ServiceRegistration` that hosts it. A
`__main__` passes it to `tryon.shared.lifecycle.run_service`; a test serves it directly::

    servicer = BodyServicer(domain)
    running = serve("body", [registration(servicer)], ServerSettings())
    ...
    running.stop(grace=0)

On SIGTERM or SIGINT the server reports NOT_SERVING, stops accepting calls, lets
in-flight calls finish within `settings.grace_seconds`, runs `on_shutdown`, and
`wait()` returns so the process exits with status 0. A second signal cuts the grace short.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tryon.shared.errors import Unavailable
from tryon.shared.interceptors import (
    BearerTokenInterceptor,
    ErrorMappingInterceptor,
    MetricsInterceptor,
    RequestLogInterceptor,
)
from tryon.shared.metrics import MetricsEndpoint, RpcMetrics, start_metrics_endpoint
from tryon.shared.reflection import enable_reflection
from tryon.shared.settings import ServerSettings
from tryon.shared.tls import server_credentials

_logger = logging.getLogger("tryon.server")
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


class _HandlerPool(futures.ThreadPoolExecutor):
    """The handler thread pool, counting the tasks running now.

    After the grace period gRPC cancels calls still in flight, but Python cannot stop
    the threads running their handlers; the count tells shutdown whether any remain.
    """

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._running = 0
        self._running_lock = threading.Lock()

    def submit(self, fn, /, *args, **kwargs):
        """Schedule `fn` like ThreadPoolExecutor.submit, counting it while it runs."""

        def counted():
            with self._running_lock:
                self._running += 1
            try:
                return fn(*args, **kwargs)
            finally:
                with self._running_lock:
                    self._running -= 1

        return super().submit(counted)

    def running_tasks(self) -> int:
        """How many submitted tasks are running at this moment."""
        with self._running_lock:
            return self._running

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for running tasks to end; True when none remain."""
        deadline = time.monotonic() + timeout
        while self.running_tasks() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.running_tasks() == 0


SIGNAL_POLL_SECONDS = 0.2
"""How often a waiting main thread wakes up to run pending signal handlers."""


@dataclass(frozen=True)
class ServiceRegistration:
    """A service to host: its full proto name (``tryon.v1.BodyService``) and how to add it."""

    full_name: str
    add_to_server: Callable[[grpc.Server], None]


LIVENESS_SERVICE = "liveness"
"""Health name that answers SERVING from start until shutdown, whatever the services' readiness:
what a liveness probe asks, so that a service waiting for its models or its broker is not restarted."""

STARTING_MESSAGE = "starting: models are loading; retry when health is SERVING"
"""What every service answers, as UNAVAILABLE, to a call that needs what start-up is still making."""

DomainT = TypeVar("DomainT")


class ReadyServicer(Generic[DomainT]):
    """The readiness of every tryon servicer: it answers from a domain that start-up attaches.

    A service binds its port at once, with health NOT_SERVING, and builds its domain (models,
    store, publisher, consumer) in the background. Until `attach`, `domain` raises Unavailable
    with `STARTING_MESSAGE`, so a call during start-up answers UNAVAILABLE, the status a
    client retries, in every service alike.
    """

    def __init__(self, domain: DomainT | None = None) -> None:
        self._domain = domain

    def attach(self, domain: DomainT) -> None:
        """Answer calls from ``domain`` from now on: start-up has made it."""
        self._domain = domain

    @property
    def domain(self) -> DomainT:
        """The attached domain; raises Unavailable (`STARTING_MESSAGE`) before `attach`."""
        domain = self._domain
        if domain is None:
            raise Unavailable(STARTING_MESSAGE)
        return domain


class RunningServer:
    """A started server: where it listens, its health, and its orderly shutdown."""

    def __init__(
        self,
        service_name: str,
        server: grpc.Server,
        handler_pool: _HandlerPool,
        health_servicer: health.HealthServicer,
        health_names: Sequence[str],
        host: str,
        port: int,
        metrics: RpcMetrics,
        metrics_endpoint: MetricsEndpoint | None,
        grace_seconds: float,
        health_server: tuple[grpc.Server, int] | None = None,
    ) -> None:
        self.service_name = service_name
        self.port = port
        self.metrics = metrics
        self._server = server
        self._handler_pool = handler_pool
        self._health = health_servicer
        self._health_names = tuple(health_names)
        self._host = host
        self._metrics_endpoint = metrics_endpoint
        self._grace_seconds = grace_seconds
        self._health_server = health_server
        self._lock = threading.Lock()
        self._shutdown_started = False
        self._abort_drain = threading.Event()
        self._finished = threading.Event()

    @property
    def address(self) -> str:
        """host:port a client on this machine dials, e.g. "127.0.0.1:50051"."""
        host = "127.0.0.1" if self._host in _WILDCARD_HOSTS else self._host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.port}"

    @property
    def health_port(self) -> int | None:
        """The plaintext health-only port, None when there is none."""
        return None if self._health_server is None else self._health_server[1]

    @property
    def metrics_port(self) -> int | None:
        """The port of the Prometheus endpoint, None when metrics are not served."""
        return None if self._metrics_endpoint is None else self._metrics_endpoint.port

    def set_serving(self, serving: bool) -> None:
        """Report every hosted service and the server as a whole SERVING or NOT_SERVING.

        Ignored once shutdown has started: a stopping server stays NOT_SERVING.
        """
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in self._health_names:
            self._health.set(name, status)

    def stop(self, grace: float | None = None) -> None:
        """Shut down: NOT_SERVING, refuse new calls, drain in-flight calls for `grace` seconds.

        `grace` defaults to the settings' grace_seconds. Returns once the server has stopped;
        calling it again (or after a signal) waits for the same shutdown.
        """
        self._shut_down(grace, on_shutdown=None, exit_process=False)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until shutdown has completed (including `on_shutdown`); False on timeout.

        The wait wakes every fraction of a second: the kernel may deliver SIGTERM to any of
        grpc's threads, and Python runs the handler only once the main thread wakes up.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._finished.wait(SIGNAL_POLL_SECONDS):
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return True

    def install_signal_handlers(self, on_shutdown: Callable[[], None] | None = None) -> None:
        """Shut down on SIGTERM or SIGINT, then run `on_shutdown`; call from the main thread.

        The drain runs on its own thread so the handler returns at once; a second signal
        stops the server immediately, cancelling calls still in flight. Handlers still
        running once their calls were cancelled cannot be stopped, so in that case the
        process exits with status 0 right after `on_shutdown`, and `wait()` never returns.
        """

        def handle(signal_number: int, _frame: object) -> None:
            with self._lock:
                already_stopping = self._shutdown_started
            if already_stopping:
                _logger.warning("second %s: stopping without waiting for in-flight calls",
                                signal.Signals(signal_number).name)
                self._abort_drain.set()
                # stop(None) blocks until grpc's core has shut down, which a handler still
                # running can delay: never block inside a signal handler.
                threading.Thread(target=self._server.stop, args=(None,), name="grpc-abort", daemon=True).start()
                return
            _logger.info("received %s, shutting down", signal.Signals(signal_number).name)
            threading.Thread(
                target=self._shut_down, args=(None, on_shutdown, True), name="grpc-shutdown", daemon=True
            ).start()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def _shut_down(self, grace: float | None, on_shutdown: Callable[[], None] | None, exit_process: bool) -> None:
        with self._lock:
            already_stopping = self._shutdown_started
            self._shutdown_started = True
        if already_stopping:
            if grace is not None:
                # grpc lets a later stop() with a shorter grace cut the drain short.
                self._server.stop(grace)
            self._finished.wait()
            return
        grace = self._grace_seconds if grace is None else grace
        self._health.enter_graceful_shutdown()
        _logger.info("draining in-flight calls", extra={"grace_seconds": grace})
        stopped = self._server.stop(grace)
        while not (stopped.wait(timeout=0.1) or self._abort_drain.is_set()):
            continue
        # A finished call's task may still be returning; a moment tells it from a stuck one.
        abandoned = 0 if self._handler_pool.wait_idle(timeout=0.5) else self._handler_pool.running_tasks()
        self._handler_pool.shutdown(wait=False)
        if self._health_server is not None:
            # Stopped last, so that probes see NOT_SERVING for the whole drain.
            self._health_server[0].stop(None)
        if self._metrics_endpoint is not None:
            self._metrics_endpoint.stop()
        if on_shutdown is not None:
            try:
                on_shutdown()
            except Exception:
                _logger.exception("shutdown callback failed")
        if abandoned:
            _logger.warning("handlers still running after their calls were cancelled", extra={"handlers": abandoned})
        _logger.info("server stopped")
        if exit_process and abandoned:
            # Interpreter exit would join the handler threads and outlive the grace period.
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        self._finished.set()


def serve(
    service_name: str,
    registrations: Sequence[ServiceRegistration],
    settings: ServerSettings,
    *,
    initially_serving: bool = True,
) -> RunningServer:
    """Start a gRPC server hosting `registrations` with health, reflection and interceptors.

    `service_name` tags log lines ("body", "garment", "recommendation"). With
    `initially_serving=False` health reports NOT_SERVING from the first call until
    `set_serving(True)`, for a service that loads its model after binding. Raises
    RuntimeError when the address cannot be bound.
    """
    metrics = RpcMetrics()
    interceptors: list[grpc.ServerInterceptor] = [RequestLogInterceptor(service_name), MetricsInterceptor(metrics)]
    if settings.auth_token:
        interceptors.append(BearerTokenInterceptor(settings.auth_token))
    interceptors.append(ErrorMappingInterceptor())

    handler_pool = _HandlerPool(max_workers=settings.max_workers, thread_name_prefix=f"{service_name}-rpc")
    server = grpc.server(
        handler_pool,
        interceptors=interceptors,
        # Without this, two servers could silently share a fixed port on Linux.
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
        ],
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for registration in registrations:
        registration.add_to_server(server)
    full_names = [registration.full_name for registration in registrations]
    enable_reflection(server, [*full_names, health.SERVICE_NAME])

    credentials = server_credentials(settings)
    port = _bind(server, f"{settings.host}:{settings.port}", credentials)

    health_server = None
    if settings.health_port is not None:
        health_server = _start_health_server(health_servicer, settings.host, settings.health_port)

    metrics_endpoint = None
    if settings.metrics_port is not None:
        try:
            metrics_endpoint = start_metrics_endpoint(metrics.registry, settings.host, settings.metrics_port)
        except OSError as error:
            server.stop(None)
            if health_server is not None:
                health_server[0].stop(None)
            handler_pool.shutdown(wait=False)
            raise RuntimeError(
                f"cannot serve metrics on {settings.host}:{settings.metrics_port}: {error}"
            ) from error

    running = RunningServer(
        service_name=service_name,
        server=server,
        handler_pool=handler_pool,
        health_servicer=health_servicer,
        health_names=["", *full_names],
        host=settings.host,
        port=port,
        metrics=metrics,
        metrics_endpoint=metrics_endpoint,
        grace_seconds=settings.grace_seconds,
        health_server=health_server,
    )
    running.set_serving(initially_serving)
    health_servicer.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
    server.start()
    _logger.info(
        "serving",
        extra={
            "services": full_names,
            "port": port,
            "tls": "none" if credentials is None else "mtls" if settings.tls_client_ca_file else "tls",
            "health_port": running.health_port,
            "metrics_port": running.metrics_port,
        },
    )
    return running


def _bind(server: grpc.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    """Bind `address` (TLS with `credentials`, else plaintext) and return the port; RuntimeError when it cannot."""
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as error:
        raise RuntimeError(f"cannot bind the gRPC server to {address}: {error}") from error
    if port == 0:
        raise RuntimeError(f"cannot bind the gRPC server to {address}")
    return port


def _start_health_server(
    health_servicer: health.HealthServicer, host: str, port: int
) -> tuple[grpc.Server, int]:
    """A plaintext server of `health_servicer` alone: what a TLS server's probes reach.

    Health tells only SERVING or not, so it may stay plaintext while every other call needs TLS;
    it shares the main server's servicer, so both ports always answer alike.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="health-rpc"),
        options=[("grpc.so_reuseport", 0)],
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = _bind(server, f"{host}:{port}", None)
    server.start()
    return server, bound
