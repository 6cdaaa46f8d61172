"""GetBodyMesh and the mesh silhouette over a real in-process BodyService (port 0), and the mesh cache."""

from __future__ import annotations

import io
import threading
import uuid

import grpc
import numpy as np
import pytest
from PIL import Image

from tryon.services.body.domain import BodyDomain
from tryon.services.body.mesh import DIMENSIONS, KEYPOINTS
from tryon.services.body.meshes import LOADING_MESSAGE, BodyMeshes
from tryon.services.body.servicer import BodyServicer, registration
from tryon.services.body.store import BodyStore
from tryon.shared.errors import Unavailable
from tryon.shared.glb import read_glb
from tryon.shared.proto import body_service_pb2 as pb
from tryon.shared.proto import body_service_pb2_grpc, common_pb2
from tryon.shared.server import serve
from tryon.shared.settings import ServerSettings

MEASUREMENTS = [("stature", 1780.0), ("weight", 82.0), ("chest_circumference", 1010.0), ("waist_circumference", 880.0)]


@pytest.fixture(scope="module")
def service(trained_body_model, body_mesh_model, tmp_path_factory):
    meshes = BodyMeshes.ready(body_mesh_model, capacity=2)
    store = BodyStore(tmp_path_factory.mktemp("mesh-bodies"))
    servicer = BodyServicer(BodyDomain(trained_body_model, store, None, advice_samples=200, meshes=meshes))
    running = serve("body", [registration(servicer)], ServerSettings(port=0, max_workers=4))
    channel = grpc.insecure_channel(running.address)
    yield body_service_pb2_grpc.BodyServiceStub(channel), meshes
    channel.close()
    running.stop(grace=0)


def create(stub, sex=common_pb2.SEX_MALE) -> pb.Body:
    request = pb.CreateBodyRequest(
        measurements=[common_pb2.MeasurementValue(name=n, value=v) for n, v in MEASUREMENTS], sex=sex
    )
    return stub.CreateBody(request).body


def test_get_body_mesh_returns_a_glb_fitted_to_the_body(service):
    stub, meshes = service
    body = create(stub)
    answer = stub.GetBodyMesh(pb.GetBodyMeshRequest(body_id=body.body_id))
    (node,) = read_glb(answer.glb)
    assert answer.vertex_count == len(node.vertices) > 10_000
    assert answer.triangle_count == len(node.faces)
    assert node.vertices[:, 1].min() == pytest.approx(0.0, abs=1e-4)
    measured = {m.name: m.value for m in answer.mesh_measurements}
    assert set(measured) == set(DIMENSIONS)
    # The mesh is as tall as the body (metres in the GLB, millimetres in the answer).
    assert node.vertices[:, 1].max() * 1000 == pytest.approx(measured["stature"], abs=1.0)
    assert measured["stature"] == pytest.approx(1780.0, abs=25.0)
    keypoints = {k.name: (k.x_mm, k.y_mm, k.z_mm) for k in answer.keypoints}
    assert set(keypoints) == set(KEYPOINTS)
    assert keypoints["left_shoulder"][0] > 0 > keypoints["right_shoulder"][0]
    assert node.extras["measured_mm"]["stature"] == pytest.approx(measured["stature"], abs=0.01)
    assert meshes.cached(body.body_id)


def test_get_body_mesh_refuses_bad_and_unknown_ids(service):
    stub, _ = service
    with pytest.raises(grpc.RpcError) as unknown:
        stub.GetBodyMesh(pb.GetBodyMeshRequest(body_id=str(uuid.uuid4())))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    for bad in ("", "x" * 300, "a\nb"):
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetBodyMesh(pb.GetBodyMeshRequest(body_id=bad))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "body_id" in refused.value.details()


def test_deleting_a_body_drops_its_mesh(service):
    stub, meshes = service
    body = create(stub, sex=common_pb2.SEX_FEMALE)
    stub.GetBodyMesh(pb.GetBodyMeshRequest(body_id=body.body_id))
    assert meshes.cached(body.body_id)
    stub.DeleteBody(pb.DeleteBodyRequest(body_id=body.body_id))
    assert not meshes.cached(body.body_id)
    with pytest.raises(grpc.RpcError) as gone:
        stub.GetBodyMesh(pb.GetBodyMeshRequest(body_id=body.body_id))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_the_silhouette_is_the_mesh_seen_from_the_front(service):
    stub, _ = service
    body = create(stub)
    mesh = stub.GetBodyMesh(pb.GetBodyMeshRequest(body_id=body.body_id))
    answer = stub.RenderSilhouette(pb.RenderSilhouetteRequest(body_id=body.body_id, width=256, height=512))
    alpha = np.asarray(Image.open(io.BytesIO(answer.png)))[:, :, 3]
    rows = np.flatnonzero(alpha.max(axis=1) > 128)
    stature = {m.name: m.value for m in mesh.mesh_measurements}["stature"]
    assert (rows[-1] - rows[0] + 1) * answer.mm_per_pixel == pytest.approx(stature, rel=0.02)
    pixels = {k.name: (k.x, k.y) for k in answer.keypoints}
    mesh_points = {k.name: (k.x_mm, k.y_mm) for k in mesh.keypoints}
    assert set(pixels) == set(mesh_points)
    # Projected keypoints keep the mesh's distances, at the picture's scale.
    width_px = pixels["left_shoulder"][0] - pixels["right_shoulder"][0]
    width_mm = mesh_points["left_shoulder"][0] - mesh_points["right_shoulder"][0]
    assert width_px * answer.mm_per_pixel == pytest.approx(width_mm, rel=1e-3)
    # The body is drawn at the waist keypoint and no farther out than the mesh reaches.
    waist_x, waist_y = pixels["waist"]
    assert alpha[int(waist_y), int(waist_x)] > 200


def test_a_mesh_request_while_the_model_loads_says_retry(body_mesh_model, tmp_path):
    release = threading.Event()

    def slow_loader(_):
        release.wait(10)
        return body_mesh_model

    meshes = BodyMeshes(tmp_path, loader=slow_loader, capacity=1)
    values = dict.fromkeys(DIMENSIONS, 1000.0) | {"stature": 1750.0, "inseam": 800.0, "shoulder_breadth": 400.0, "weight": 75.0}
    with pytest.raises(Unavailable, match=LOADING_MESSAGE):
        meshes.mesh("a", values, "male")
    release.set()
    assert meshes.wait(10) is body_mesh_model
    first = meshes.mesh("a", values, "male")
    assert meshes.mesh("a", values, "male") is first
    meshes.mesh("b", values, "female")
    assert meshes.cached("b") and not meshes.cached("a")


def test_a_failed_load_is_retried_by_the_next_request(body_mesh_model, tmp_path):
    attempts = []

    def flaky_loader(_):
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("disk full")
        return body_mesh_model

    meshes = BodyMeshes(tmp_path, loader=flaky_loader)
    meshes.wait(10)
    assert meshes.model is None
    with pytest.raises(Unavailable):
        meshes.mesh("a", {}, None)
    assert meshes.wait(10) is body_mesh_model and len(attempts) == 2


def test_the_service_answers_unavailable_until_the_mesh_model_is_loaded(trained_body_model, body_mesh_model, tmp_path):
    release = threading.Event()
    meshes = BodyMeshes(tmp_path, loader=lambda _: (release.wait(10), body_mesh_model)[1])
    servicer = BodyServicer(BodyDomain(trained_body_model, BodyStore(tmp_path / "bodies"), None, meshes=meshes))
    running = serve("body", [registration(servicer)], ServerSettings(port=0, max_workers=2))
    try:
        with grpc.insecure_channel(running.address) as channel:
            stub = body_service_pb2_grpc.BodyServiceStub(channel)
            body = create(stub)
            with pytest.raises(grpc.RpcError) as loading:
                stub.GetBodyMesh(pb.GetBodyMeshRequest(body_id=body.body_id))
            assert loading.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "retry" in loading.value.details()
            # Meanwhile the silhouette is drawn from the measurements.
            assert stub.RenderSilhouette(pb.RenderSilhouetteRequest(body_id=body.body_id)).png
            release.set()
            meshes.wait(10)
            assert stub.GetBodyMesh(pb.GetBodyMeshRequest(body_id=body.body_id)).vertex_count > 10_000
    finally:
        running.stop(grace=0)
