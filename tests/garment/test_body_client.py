"""GarmentService's calls to BodyService: the caller's request id, the mesh as sent, a mesh not ready (real servers on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from tryon.services.garment import images
from tryon.services.garment.body_client import BodyServiceClient
from tryon.services.garment.catalogue import Catalogue, Garment
from tryon.services.garment.domain import GarmentDomain
from tryon.services.garment.servicer import GarmentServicer, registration
from tryon.shared.errors import FailedPrecondition, Unavailable
from tryon.shared.glb import GlbMesh, write_glb
from tryon.shared.proto import body_service_pb2, body_service_pb2_grpc, common_pb2, garment_service_pb2 as pb, garment_service_pb2_grpc
from tryon.shared.server import ServiceRegistration, serve
from tryon.shared.settings import ServerSettings

pytestmark = pytest.mark.integration


class RecordingBodyService(body_service_pb2_grpc.BodyServiceServicer):
    """A BodyService that knows no body and remembers the metadata of each GetBodyMesh."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    def GetBodyMesh(self, request, context: grpc.ServicerContext):
        self.metadata.append({item.key: item.value for item in context.invocation_metadata()})
        context.abort(grpc.StatusCode.NOT_FOUND, f"body {request.body_id} is not known")


@pytest.fixture()
def services(tmp_path: Path) -> Iterator[tuple[RecordingBodyService, garment_service_pb2_grpc.GarmentServiceStub]]:
    body = RecordingBodyService()
    body_server = serve(
        "body",
        [ServiceRegistration("tryon.v1.BodyService", lambda server: body_service_pb2_grpc.add_BodyServiceServicer_to_server(body, server))],
        ServerSettings(port=0, grace_seconds=0.5, auth_token="body-secret"),
    )
    catalogue = Catalogue(tmp_path)
    catalogue.add(
        Garment("g-1", "tee", 0, "EUR", 1000, None, np.zeros(16, np.float32), images.encode_png(np.full((28, 28), 0.5, np.float32)))
    )
    client = BodyServiceClient(body_server.address, timeout_seconds=5.0, auth_token="body-secret")
    garment_server = serve("garment", [registration(GarmentServicer(GarmentDomain(catalogue, bodies=client)))], ServerSettings(port=0, grace_seconds=0.5))
    channel = grpc.insecure_channel(garment_server.address)
    try:
        yield body, garment_service_pb2_grpc.GarmentServiceStub(channel)
    finally:
        channel.close()
        garment_server.stop(0)
        client.close()
        body_server.stop(0)


def test_the_callers_request_id_reaches_body_service(services) -> None:
    body, garments = services
    request = pb.RenderTryOnRequest(body_id="b-404", garment_ids=["g-1"])
    with pytest.raises(grpc.RpcError) as caught:
        garments.RenderTryOn(request, metadata=[("x-request-id", "storefront-req-77")], timeout=10)

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert body.metadata[-1]["x-request-id"] == "storefront-req-77"
    assert body.metadata[-1]["authorization"] == "Bearer body-secret"


def test_a_generated_request_id_is_passed_on_too(services) -> None:
    body, garments = services
    with pytest.raises(grpc.RpcError) as caught:
        garments.RenderTryOn.with_call(pb.RenderTryOnRequest(body_id="b-404", garment_ids=["g-1"]), timeout=10)

    echoed = dict(caught.value.trailing_metadata())["x-request-id"]
    assert body.metadata[-1]["x-request-id"] == echoed


class MeshBodyService(body_service_pb2_grpc.BodyServiceServicer):
    """A BodyService with one body "b1" whose mesh it sends, and one, "b2", whose mesh is not fitted yet."""

    def __init__(self, mesh) -> None:
        self.mesh = mesh

    def GetBodyMesh(self, request, context: grpc.ServicerContext):
        if request.body_id == "b2":
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the mesh of body b2 is still being fitted; retry in a second")
        glb = write_glb(GlbMesh(vertices=self.mesh.vertices_mm / 1000.0, faces=self.mesh.faces))
        return body_service_pb2.GetBodyMeshResponse(
            glb=glb,
            keypoints=[common_pb2.Keypoint3D(name=n, x_mm=p[0], y_mm=p[1], z_mm=p[2]) for n, p in self.mesh.keypoints_mm.items()],
            mesh_measurements=[common_pb2.MeasurementValue(name=n, value=v) for n, v in self.mesh.measured_mm.items()],
        )


def test_the_client_reads_the_mesh_in_millimetres_and_passes_on_a_mesh_not_ready(body_meshes) -> None:
    mesh = body_meshes["small"]
    service = MeshBodyService(mesh)
    server = serve(
        "body",
        [ServiceRegistration("tryon.v1.BodyService", lambda s: body_service_pb2_grpc.add_BodyServiceServicer_to_server(service, s))],
        ServerSettings(port=0, grace_seconds=0.5),
    )
    client = BodyServiceClient(server.address, timeout_seconds=5.0)
    try:
        received = client("b1")
        assert np.allclose(received.vertices_mm, mesh.vertices_mm, atol=0.01)
        assert np.array_equal(received.faces, mesh.faces)
        assert received.keypoints_mm["chest"] == pytest.approx(mesh.keypoints_mm["chest"])
        assert received.measured_mm == pytest.approx(mesh.measured_mm)
        with pytest.raises(FailedPrecondition) as caught:
            client("b2")
        assert "still being fitted" in str(caught.value)
    finally:
        client.close()
        server.stop(0)


def test_a_body_service_still_loading_its_mesh_model_makes_try_on_unavailable(body_meshes) -> None:
    class Loading(body_service_pb2_grpc.BodyServiceServicer):
        def GetBodyMesh(self, request, context: grpc.ServicerContext):
            context.abort(grpc.StatusCode.UNAVAILABLE, "body mesh model loading; retry in a few seconds")

    server = serve(
        "body",
        [ServiceRegistration("tryon.v1.BodyService", lambda s: body_service_pb2_grpc.add_BodyServiceServicer_to_server(Loading(), s))],
        ServerSettings(port=0, grace_seconds=0.5),
    )
    client = BodyServiceClient(server.address, timeout_seconds=5.0)
    try:
        with pytest.raises(Unavailable) as caught:
            client("b1")
        assert "retry" in str(caught.value)
    finally:
        client.close()
        server.stop(0)
