"""BodyService client for try-on: fetches a body's silhouette and keypoints over gRPC.

gRPC failures become the domain errors a GarmentService caller can act on: an unknown body
is NotFound, an unreachable or failing BodyService is FailedPrecondition naming its address.
Each call carries the request id of the GarmentService call it serves as ``x-request-id``.
"""

from __future__ import annotations

import grpc

from tryon.services.garment.tryon_render import BodyPicture, decode_rgba_png
from tryon.shared.errors import FailedPrecondition, InvalidArgument, NotFound
from tryon.shared.interceptors import REQUEST_ID_METADATA_KEY
from tryon.shared.logs import current_request_id
from tryon.shared.proto import body_service_pb2, body_service_pb2_grpc
from tryon.shared.tls import ClientTls, open_channel, transport_hint


class BodyServiceClient:
    """Calls BodyService.RenderSilhouette at ``address`` with a per-call deadline and the caller's request id.

    With `tls` the channel speaks TLS, presenting a client certificate when `tls` has one (mTLS).
    """

    def __init__(
        self,
        address: str,
        timeout_seconds: float = 10.0,
        auth_token: str | None = None,
        tls: ClientTls | None = None,
    ) -> None:
        self._address = address
        self._timeout = timeout_seconds
        self._tls = tls
        self._metadata = (("authorization", f"Bearer {auth_token}"),) if auth_token else ()
        self._channel = open_channel(address, tls)
        self._stub = body_service_pb2_grpc.BodyServiceStub(self._channel)

    def __call__(self, body_id: str, width: int, height: int) -> BodyPicture:
        """The body's silhouette at the given picture size."""
        request = body_service_pb2.RenderSilhouetteRequest(body_id=body_id, width=width, height=height)
        metadata = self._metadata
        request_id = current_request_id()
        if request_id:
            # One id across both services' log lines: the caller's call and the one it caused here.
            metadata = (*metadata, (REQUEST_ID_METADATA_KEY, request_id))
        try:
            response = self._stub.RenderSilhouette(request, timeout=self._timeout, metadata=metadata)
        except grpc.RpcError as error:
            code, details = error.code(), error.details()
            if code == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"body {body_id!r} is not known to BodyService; create it there first") from None
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(f"BodyService refused the body request: {details}") from None
            hint = transport_hint(details, self._tls) if code == grpc.StatusCode.UNAVAILABLE else None
            raise FailedPrecondition(
                f"BodyService at {self._address} could not render the body ({code.name}: {details}); "
                + ("check that it runs and that TRYON_GARMENT_BODY_SERVICE_ADDRESS points to it" if hint is None
                   else f"{hint} (settings TRYON_GARMENT_TLS_*)")
            ) from None
        return BodyPicture(
            rgba=decode_rgba_png(response.png),
            keypoints={point.name: (point.x, point.y) for point in response.keypoints},
            mm_per_pixel=response.mm_per_pixel,
        )

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()
