"""The storefront's gRPC side: one channel per service, calls with the caller's credentials and request id.

Every call carries the HTTP request's bearer token (passed through as it came, so each
service decides) and its request id as ``x-request-id``, with the configured deadline. A
failed call raises `StatusError` with the gRPC status name and the service's message,
which the HTTP layer turns into the matching status code. Readiness asks each service's
standard health service.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tryon.shared.interceptors import AUTHORIZATION_METADATA_KEY, REQUEST_ID_METADATA_KEY
from tryon.shared.proto import body_service_pb2_grpc, garment_service_pb2_grpc, recommendation_service_pb2_grpc
from tryon.shared.tls import ClientTls, open_aio_channel

SERVICE_NAMES = {
    "body": "tryon.v1.BodyService",
    "garment": "tryon.v1.GarmentService",
    "recommendation": "tryon.v1.RecommendationService",
}
HEALTH_TIMEOUT_SECONDS = 1.0


class StatusError(Exception):
    """A request ends with a gRPC status other than OK: a service's answer, or the storefront's own check."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CallContext:
    """What one HTTP request hands on to every call it makes: its request id and bearer credentials."""

    request_id: str
    authorization: str | None = None

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """gRPC metadata of a call made for this request."""
        pairs = [(REQUEST_ID_METADATA_KEY, self.request_id)]
        if self.authorization:
            pairs.append((AUTHORIZATION_METADATA_KEY, self.authorization))
        return tuple(pairs)


class Backends:
    """Channels and stubs of the three services, opened on the running event loop and closed together.

    gRPC's asyncio channels belong to the loop they were made on, so `open` is called from the
    app's start-up, inside the server's loop, and never at import or construction. With `tls` the
    channels speak TLS (mTLS when it carries a client certificate).
    """

    def __init__(
        self,
        addresses: dict[str, str],
        timeout_seconds: float = 10.0,
        max_message_bytes: int = 9 * 1024 * 1024,
        tls: ClientTls | None = None,
    ) -> None:
        missing = set(SERVICE_NAMES) - set(addresses)
        if missing:
            raise ValueError(f"no address for {', '.join(sorted(missing))}")
        self.addresses = dict(addresses)
        self.timeout_seconds = timeout_seconds
        self._tls = tls
        self._options = [("grpc.max_receive_message_length", max_message_bytes)]
        self._channels: dict[str, grpc.aio.Channel] = {}

    def open(self) -> None:
        """Open a channel to each service and make its stubs; call it on the loop that will use them."""
        self._channels = {
            name: open_aio_channel(self.addresses[name], self._tls, self._options) for name in SERVICE_NAMES
        }
        self.body = body_service_pb2_grpc.BodyServiceStub(self._channels["body"])
        self.garment = garment_service_pb2_grpc.GarmentServiceStub(self._channels["garment"])
        self.recommendation = recommendation_service_pb2_grpc.RecommendationServiceStub(self._channels["recommendation"])
        self._health = {name: health_pb2_grpc.HealthStub(channel) for name, channel in self._channels.items()}

    async def call(self, method, request, context: CallContext):
        """Await one unary call of a stub's `method`; a status other than OK raises `StatusError`."""
        try:
            return await method(request, timeout=self.timeout_seconds, metadata=context.metadata())
        except grpc.aio.AioRpcError as error:
            raise StatusError(error.code().name, error.details() or error.code().name) from None

    async def serving(self) -> dict[str, bool]:
        """Whether each service's health answers SERVING now (asked at once, each within a second)."""

        async def check(name: str) -> bool:
            try:
                reply = await self._health[name].Check(
                    health_pb2.HealthCheckRequest(service=SERVICE_NAMES[name]), timeout=HEALTH_TIMEOUT_SECONDS
                )
            except grpc.aio.AioRpcError:
                return False
            return reply.status == health_pb2.HealthCheckResponse.SERVING

        answers = await asyncio.gather(*(check(name) for name in SERVICE_NAMES))
        return dict(zip(SERVICE_NAMES, answers))

    async def close(self) -> None:
        """Close every channel; calls in flight are cancelled."""
        await asyncio.gather(*(channel.close() for channel in self._channels.values()))
        self._channels = {}
