"""BodyService client for try-on: fetches a body's 3D mesh (GetBodyMesh) over gRPC.

The mesh arrives as binary glTF in metres with its keypoints and measured dimensions in
millimetres; it becomes a `BodyMesh` in millimetres, the renderer's unit.

gRPC failures become the domain errors a GarmentService caller can act on: an unknown body
is NotFound, an unreachable or failing BodyService is FailedPrecondition naming its address.
Each call carries the request id of the GarmentService call it serves as ``x-request-id``.
"""

from __future__ import annotations

import grpc
import numpy as np

from tryon.services.garment.mesh_render import BodyMesh
from tryon.shared.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from tryon.shared.glb import GlbError, read_glb
from tryon.shared.interceptors import REQUEST_ID_METADATA_KEY
from tryon.shared.logs import current_request_id
from tryon.shared.proto import body_service_pb2, body_service_pb2_grpc
from tryon.shared.tls import ClientTls, open_channel, transport_hint


class BodyServiceClient:
    """Calls BodyService.GetBodyMesh at ``address`` with a per-call deadline and the caller's request id.

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

    def __call__(self, body_id: str) -> BodyMesh:
        """The body's mesh in millimetres, with its keypoints and measured dimensions."""
        request = body_service_pb2.GetBodyMeshRequest(body_id=body_id)
        metadata = self._metadata
        request_id = current_request_id()
        if request_id:
            # One id across both services' log lines: the caller's call and the one it caused here.
            metadata = (*metadata, (REQUEST_ID_METADATA_KEY, request_id))
        try:
            response = self._stub.GetBodyMesh(request, timeout=self._timeout, metadata=metadata)
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
            if code == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"body {body_id!r} is not known to BodyService; create it there first") from None
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(f"BodyService refused the body request: {details}") from None
            if code == grpc.StatusCode.UNAVAILABLE and "loading" in details and "retry" in details:
                # BodyService runs but is still loading its mesh model: the caller should retry.
                raise Unavailable(f"BodyService cannot give the body's mesh yet ({details})") from None
            hint = transport_hint(details, self._tls) if code == grpc.StatusCode.UNAVAILABLE else None
            raise FailedPrecondition(
                f"BodyService at {self._address} could not give the body's mesh ({code.name}: {details}); "
                + ("check that it runs and that TRYON_GARMENT_BODY_SERVICE_ADDRESS points to it" if hint is None
                   else f"{hint} (settings TRYON_GARMENT_TLS_*)")
            ) from None
        try:
            meshes = read_glb(response.glb)
        except GlbError as error:
            raise FailedPrecondition(f"BodyService at {self._address} sent an unreadable body mesh: {error}") from None
        if not meshes:
            raise FailedPrecondition(f"BodyService at {self._address} sent a body mesh without a mesh")
        return BodyMesh(
            vertices_mm=np.asarray(meshes[0].vertices, dtype=np.float64) * 1000.0,
            faces=np.asarray(meshes[0].faces, dtype=np.int64),
            keypoints_mm={point.name: (point.x_mm, point.y_mm, point.z_mm) for point in response.keypoints},
            measured_mm={value.name: value.value for value in response.mesh_measurements},
        )

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()
