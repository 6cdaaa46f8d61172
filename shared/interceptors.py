"""Server interceptors: request logs, metrics, bearer-token auth and domain-error mapping.

Each interceptor wraps the handler's behaviour for unary and streaming calls alike.
`serve()` installs them outermost first: request log, metrics, auth, error mapping, so
the log and the metrics see the final status code of every call, including calls that
auth refused and exceptions that the error mapping turned into a status.
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from tryon.shared.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from tryon.shared.logs import request_id_var
from tryon.shared.metrics import RpcMetrics

REQUEST_ID_METADATA_KEY = "x-request-id"
AUTHORIZATION_METADATA_KEY = "authorization"
# Probes and tooling must work without a token, and their calls are too frequent to log at INFO.
OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_MAX_REQUEST_ID_LENGTH = 128

_DOMAIN_ERROR_CODES: tuple[tuple[type[DomainError], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    # Any other domain error (such as InvalidEvent) says what is wrong with the input.
    (DomainError, grpc.StatusCode.INVALID_ARGUMENT),
)

Behavior = Callable[[Any, grpc.ServicerContext], Any]
BehaviorWrapper = Callable[[Behavior, str, bool], Behavior]

_request_logger = logging.getLogger("tryon.rpc")
_error_logger = logging.getLogger("tryon.rpc.errors")


def is_open_method(method: str) -> bool:
    """True for health and reflection methods, which need no token."""
    return method.startswith(OPEN_METHOD_PREFIXES)


def status_name(context: grpc.ServicerContext, default: grpc.StatusCode) -> str:
    """The name of the status code the call ended with: the one set, else the caller's own ending
    once it has gone (see departed_status), else `default`."""
    code = context.code() or departed_status(context) or default
    return getattr(code, "name", str(code))


def departed_status(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    """CANCELLED or DEADLINE_EXCEEDED once the caller has gone (cancelled, or its deadline passed), else None.

    Such a call ends with the caller's own status whatever its handler did: reading its request
    stream raises, or sees the stream end, and nothing failed in the service.
    """
    if context.is_active():
        return None
    remaining = context.time_remaining()
    return grpc.StatusCode.DEADLINE_EXCEEDED if remaining is not None and remaining <= 0 else grpc.StatusCode.CANCELLED


def wrap_handler(handler: grpc.RpcMethodHandler | None, method: str, wrapper: BehaviorWrapper):
    """A copy of `handler` whose behaviour is `wrapper(behaviour, method, streams_responses)`.

    Behaviours marked experimental_non_blocking (the health Watch) answer through a
    callback instead of returning, so they are passed through unchanged.
    """
    if handler is None:
        return None
    for kind, factory, streams in (
        ("unary_unary", grpc.unary_unary_rpc_method_handler, False),
        ("unary_stream", grpc.unary_stream_rpc_method_handler, True),
        ("stream_unary", grpc.stream_unary_rpc_method_handler, False),
        ("stream_stream", grpc.stream_stream_rpc_method_handler, True),
    ):
        behavior = getattr(handler, kind)
        if behavior is None:
            continue
        if getattr(behavior, "experimental_non_blocking", False):
            return handler
        return factory(
            wrapper(behavior, method, streams),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler


def _metadata_value(handler_call_details: grpc.HandlerCallDetails, key: str) -> str | None:
    for metadata_key, value in handler_call_details.invocation_metadata or ():
        if metadata_key == key:
            return value if isinstance(value, str) else None
    return None


def _usable_request_id(candidate: str | None) -> str:
    """The caller's request id when it is short printable ASCII, else a fresh one."""
    if candidate and len(candidate) <= _MAX_REQUEST_ID_LENGTH and candidate.isascii() and candidate.isprintable():
        return candidate
    return uuid.uuid4().hex


def _forget_request_id(token) -> None:
    """Restore the request id the thread had before the call."""
    try:
        request_id_var.reset(token)
    except ValueError:
        # A cancelled stream's generator may be closed from another thread's context,
        # where this call's id was never set.
        pass


class RequestLogInterceptor(grpc.ServerInterceptor):
    """Gives each call a request id (echoed in trailing metadata) and logs one line when it ends.

    The line has the method, status code and latency in milliseconds, never the payload.
    Health and reflection calls are logged at DEBUG so probes do not flood the log.
    """

    def __init__(self, service_name: str) -> None:
        self._service_name = service_name

    def intercept_service(self, continuation, handler_call_details):
        """Wrap the handler of this call with request-id and logging behaviour."""
        request_id = _usable_request_id(_metadata_value(handler_call_details, REQUEST_ID_METADATA_KEY))
        level = logging.DEBUG if is_open_method(handler_call_details.method) else logging.INFO

        def wrapper(behavior: Behavior, method: str, streams: bool) -> Behavior:
            if streams:
                def logged_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                    token = self._begin(context, request_id)
                    started = time.perf_counter()
                    outcome = grpc.StatusCode.OK
                    try:
                        yield from behavior(request, context)
                    except GeneratorExit:
                        outcome = grpc.StatusCode.CANCELLED
                        raise
                    except BaseException:
                        outcome = grpc.StatusCode.UNKNOWN
                        raise
                    finally:
                        self._keep_request_id_trailer(context, request_id)
                        self._finish(level, method, request_id, status_name(context, outcome), started)
                        _forget_request_id(token)
                return logged_stream

            def logged_unary(request: Any, context: grpc.ServicerContext) -> Any:
                token = self._begin(context, request_id)
                started = time.perf_counter()
                outcome = grpc.StatusCode.OK
                try:
                    return behavior(request, context)
                except BaseException:
                    outcome = grpc.StatusCode.UNKNOWN
                    raise
                finally:
                    self._keep_request_id_trailer(context, request_id)
                    self._finish(level, method, request_id, status_name(context, outcome), started)
                    _forget_request_id(token)
            return logged_unary

        return wrap_handler(continuation(handler_call_details), handler_call_details.method, wrapper)

    @staticmethod
    def _begin(context: grpc.ServicerContext, request_id: str):
        context.set_trailing_metadata(((REQUEST_ID_METADATA_KEY, request_id),))
        return request_id_var.set(request_id)

    @staticmethod
    def _keep_request_id_trailer(context: grpc.ServicerContext, request_id: str) -> None:
        """Add the request id back if the handler replaced the trailing metadata."""
        trailer = tuple(context.trailing_metadata() or ())
        if all(key != REQUEST_ID_METADATA_KEY for key, _ in trailer):
            context.set_trailing_metadata((*trailer, (REQUEST_ID_METADATA_KEY, request_id)))

    def _finish(self, level: int, method: str, request_id: str, code: str, started: float) -> None:
        if not _request_logger.isEnabledFor(level):
            return
        _request_logger.log(
            level,
            "rpc finished",
            extra={
                "service": self._service_name,
                "request_id": request_id,
                "method": method,
                "code": code,
                "latency_ms": round((time.perf_counter() - started) * 1000.0, 3),
            },
        )


class MetricsInterceptor(grpc.ServerInterceptor):
    """Counts calls and errors and observes latency into a server's `RpcMetrics`."""

    def __init__(self, metrics: RpcMetrics) -> None:
        self._metrics = metrics

    def intercept_service(self, continuation, handler_call_details):
        """Wrap the handler of this call with timing and counting behaviour."""
        metrics = self._metrics

        def wrapper(behavior: Behavior, method: str, streams: bool) -> Behavior:
            if streams:
                def measured_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                    metrics.in_flight.inc()
                    started = time.perf_counter()
                    outcome = grpc.StatusCode.OK
                    try:
                        yield from behavior(request, context)
                    except GeneratorExit:
                        outcome = grpc.StatusCode.CANCELLED
                        raise
                    except BaseException:
                        outcome = grpc.StatusCode.UNKNOWN
                        raise
                    finally:
                        metrics.in_flight.dec()
                        metrics.observe(method, status_name(context, outcome), time.perf_counter() - started)
                return measured_stream

            def measured_unary(request: Any, context: grpc.ServicerContext) -> Any:
                metrics.in_flight.inc()
                started = time.perf_counter()
                outcome = grpc.StatusCode.OK
                try:
                    return behavior(request, context)
                except BaseException:
                    outcome = grpc.StatusCode.UNKNOWN
                    raise
                finally:
                    metrics.in_flight.dec()
                    metrics.observe(method, status_name(context, outcome), time.perf_counter() - started)
            return measured_unary

        return wrap_handler(continuation(handler_call_details), handler_call_details.method, wrapper)


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Refuses calls without `authorization: Bearer <token>` (scheme in any case) with UNAUTHENTICATED.

    Health and reflection stay open so load balancers and tooling work without the token.
    """

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the bearer token must not be empty")
        self._expected = token.encode()

    def _accepts(self, presented: str) -> bool:
        # HTTP auth schemes are case-insensitive (RFC 9110, 11.1), and one or more spaces may
        # separate the scheme from the credentials; the token itself is compared exactly.
        scheme, _, credentials = presented.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credentials.lstrip(" ").encode(), self._expected)

    def intercept_service(self, continuation, handler_call_details):
        """Pass the call through when its token matches or its method is open; refuse it otherwise."""
        handler = continuation(handler_call_details)
        if is_open_method(handler_call_details.method):
            return handler
        presented = _metadata_value(handler_call_details, AUTHORIZATION_METADATA_KEY)
        if presented is not None and self._accepts(presented):
            return handler
        reason = (
            "missing authorization metadata; send 'authorization: Bearer <token>'"
            if presented is None
            else "the bearer token in the authorization metadata is not valid"
        )
        return wrap_handler(handler, handler_call_details.method, _refusing(grpc.StatusCode.UNAUTHENTICATED, reason))


def _refusing(code: grpc.StatusCode, reason: str) -> BehaviorWrapper:
    """A wrapper whose behaviour ends the call with `code` without running the handler."""

    def wrapper(behavior: Behavior, method: str, streams: bool) -> Behavior:
        if streams:
            def refused_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                context.abort(code, reason)
                yield  # makes this a generator, like the behaviour it replaces
            return refused_stream

        def refused_unary(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(code, reason)
        return refused_unary

    return wrapper


class ErrorMappingInterceptor(grpc.ServerInterceptor):
    """Turns domain errors into their status codes and anything unexpected into INTERNAL.

    A domain error's message goes to the caller unchanged. An unexpected exception is
    logged with its traceback and the caller gets a generic message with the request id,
    never the exception text; the server goes on serving.
    """

    def intercept_service(self, continuation, handler_call_details):
        """Wrap the handler of this call with exception-to-status mapping."""

        def wrapper(behavior: Behavior, method: str, streams: bool) -> Behavior:
            if streams:
                def mapped_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                    try:
                        yield from behavior(request, context)
                    except Exception as error:
                        _abort_for(error, method, context)
                        raise
                return mapped_stream

            def mapped_unary(request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    return behavior(request, context)
                except Exception as error:
                    _abort_for(error, method, context)
                    raise
            return mapped_unary

        return wrap_handler(continuation(handler_call_details), handler_call_details.method, wrapper)


def domain_error_code(error: DomainError) -> grpc.StatusCode:
    """The status code a domain error answers with (a refused item of a batch reports the same)."""
    return next(code for error_type, code in _DOMAIN_ERROR_CODES if isinstance(error, error_type))


def _abort_for(error: Exception, method: str, context: grpc.ServicerContext) -> None:
    """Abort the call with the status `error` deserves; return only if the handler already chose one."""
    if isinstance(error, DomainError):
        context.abort(domain_error_code(error), str(error))
    code = context.code()
    if code is not None and code != grpc.StatusCode.OK:
        # The handler aborted the call itself (context.abort raises): keep its status.
        return
    if departed_status(context) is not None:
        # The caller has gone: nobody awaits a status, and nothing failed here.
        return
    request_id = request_id_var.get()
    _error_logger.error("unhandled exception in %s", method, exc_info=error, extra={"method": method})
    context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {request_id})")
