"""RenderTryOn and RenderTryOnModel over gRPC on loopback: sizes, verdicts, views, the GLB and refusals.

GarmentService runs without models (try-on needs none) over a catalogue of colour product
pictures made from Fashion-MNIST (`product_images`); bodies are meshes of known girths.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from tryon.services.garment import images
from tryon.services.garment.catalogue import Catalogue, Garment
from tryon.services.garment.categories import label_from_name
from tryon.services.garment.dataset import load_fashion_mnist
from tryon.services.garment.domain import GarmentDomain
from tryon.services.garment.mesh_render import SKIN, BodyMesh
from tryon.services.garment.product_images import product_bytes
from tryon.services.garment.servicer import GarmentServicer, registration
from tryon.services.garment.tryon_render import decode_rgba_png
from tryon.shared.errors import NotFound
from tryon.shared.glb import read_glb
from tryon.shared.proto import garment_service_pb2 as pb, garment_service_pb2_grpc
from tryon.shared.server import serve
from tryon.shared.settings import ServerSettings

pytestmark = pytest.mark.integration

TOPS_CHART = {"chart_id": "en13402_womens_tops", "sizes": []}
TROUSERS_CHART = {"chart_id": "eu_womens_trousers", "sizes": []}
MEASURED_CHART = {
    "chart_id": "",
    "sizes": [
        {"label": "One", "ranges": [{"measurement": "chest_circumference", "min": 880.0, "max": 1000.0}],
         "garment_measurements": [{"name": "chest_circumference", "value": 1111.0}]},
    ],
}


class CountingBodies:
    """Meshes by body id ("small", "median", "large", and "flat": a mesh without keypoints); counts calls."""

    def __init__(self, meshes: dict[str, BodyMesh]) -> None:
        median = meshes["median"]
        self.meshes = {**meshes, "flat": BodyMesh(median.vertices_mm, median.faces, {}, median.measured_mm)}
        self.calls: list[str] = []

    def __call__(self, body_id: str) -> BodyMesh:
        self.calls.append(body_id)
        if body_id not in self.meshes:
            raise NotFound(f"body {body_id!r} is not known to BodyService; create it there first")
        return self.meshes[body_id]


@pytest.fixture(scope="module")
def served(body_meshes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[garment_service_pb2_grpc.GarmentServiceStub, CountingBodies]]:
    pictures, labels = load_fashion_mnist("test")
    catalogue = Catalogue(Path(tmp_path_factory.mktemp("catalogue")))
    for garment_id, name, chart in (("tee", "t_shirt_top", TOPS_CHART), ("chinos", "trouser", TROUSERS_CHART), ("plain", "t_shirt_top", None), ("measured", "t_shirt_top", MEASURED_CHART)):
        label = label_from_name(name)
        levels = pictures[np.flatnonzero(labels == label)[0]]
        garment = Garment(garment_id, name, label, "EUR", 1000, chart, np.zeros(16, np.float32), images.encode_png(levels / 255.0))
        catalogue.add(garment, original=product_bytes(levels, seed=3, side=224))
    bodies = CountingBodies(body_meshes)
    running = serve("garment", [registration(GarmentServicer(GarmentDomain(catalogue, bodies=bodies)))], ServerSettings(port=0, grace_seconds=0.5))
    channel = grpc.insecure_channel(running.address)
    try:
        yield garment_service_pb2_grpc.GarmentServiceStub(channel), bodies
    finally:
        channel.close()
        running.stop(0)


def try_on(stub, body_id: str, *garments: tuple[str, str], **fields) -> pb.RenderTryOnResponse:
    request = pb.RenderTryOnRequest(
        body_id=body_id, garments=[pb.TryOnGarment(garment_id=g, size_label=s) for g, s in garments], **fields
    )
    return stub.RenderTryOn(request, timeout=30)


def status_of(call, request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=30)
    return caught.value.code(), caught.value.details()


def test_verdicts_follow_the_size_and_the_picture_changes_with_it(served) -> None:
    stub, _ = served
    verdicts, pictures = {}, {}
    for label in ("XS", "M", "XXL"):
        response = try_on(stub, "median", ("chinos", "40"), ("tee", label), width=128, height=256)
        tee = response.fits[1]
        assert tee.garment_id == "tee" and tee.size_label == label and tee.size_choice == pb.SIZE_CHOICE_REQUESTED
        (chest,) = tee.measurements
        assert chest.measurement == "chest_circumference" and chest.body_mm == pytest.approx(930.0)
        assert chest.ease_mm == pytest.approx(chest.garment_mm - chest.body_mm)
        verdicts[label] = chest.verdict
        pictures[label] = decode_rgba_png(response.png)
        assert pictures[label].shape == (256, 128, 4)
    assert verdicts == {"XS": pb.FIT_VERDICT_TIGHT, "M": pb.FIT_VERDICT_FITTING, "XXL": pb.FIT_VERDICT_LOOSE}
    assert {m.measurement for m in response.fits[0].measurements} == {"waist_circumference", "hip_circumference"}
    # The larger size covers more of the picture.
    coverage = {label: (picture[..., 3] > 127).sum() for label, picture in pictures.items()}
    assert coverage["XS"] < coverage["M"] < coverage["XXL"]


def test_the_back_view_differs_from_the_front_and_the_body_is_fetched_once(served) -> None:
    stub, bodies = served
    before = bodies.calls.count("large")
    front = decode_rgba_png(try_on(stub, "large", ("tee", "L"), width=128, height=256).png)
    back = decode_rgba_png(try_on(stub, "large", ("tee", "L"), width=128, height=256, view=pb.TRY_ON_VIEW_BACK).png)
    again = decode_rgba_png(try_on(stub, "large", ("tee", "XL"), width=128, height=256).png)
    assert not np.array_equal(front, back) and not np.array_equal(front, again)
    assert bodies.calls.count("large") - before == 1


def test_garments_without_sizes_are_drawn_at_the_body_size_and_without_a_chart_are_flagged(served) -> None:
    stub, _ = served
    response = stub.RenderTryOn(pb.RenderTryOnRequest(body_id="small", garment_ids=["tee", "plain"], width=128, height=256), timeout=30)
    tee, plain = response.fits
    assert (tee.size_label, tee.size_choice) == ("S", pb.SIZE_CHOICE_BODY_SIZE)
    assert tee.measurements[0].verdict == pb.FIT_VERDICT_FITTING
    assert (plain.size_label, plain.size_choice, len(plain.measurements)) == ("", pb.SIZE_CHOICE_NO_CHART, 0)
    assert decode_rgba_png(response.png).shape == (256, 128, 4)


def test_a_size_with_the_garments_own_measurement_is_drawn_and_judged_by_it(served) -> None:
    stub, _ = served
    (fit,) = try_on(stub, "median", ("measured", "One"), width=128, height=256).fits
    (chest,) = fit.measurements
    assert chest.garment_mm == pytest.approx(1111.0) and chest.ease_mm == pytest.approx(1111.0 - 930.0)
    assert chest.verdict == pb.FIT_VERDICT_FITTING


def test_the_model_is_a_textured_glb_whose_chest_changes_with_the_size(served) -> None:
    stub, _ = served
    skin = np.round(SKIN * 255).astype(int)
    skin_texels = {}
    for label in ("XS", "XXL"):
        response = stub.RenderTryOnModel(
            pb.RenderTryOnModelRequest(body_id="median", garments=[pb.TryOnGarment(garment_id="tee", size_label=label)], texture_size=256),
            timeout=30,
        )
        assert response.fits[0].size_label == label
        (mesh,) = read_glb(response.glb)
        assert mesh.texture_png is not None and mesh.uv is not None and mesh.normals is not None
        assert mesh.uv.min() >= 0.0 and mesh.uv.max() <= 1.0
        texture = decode_rgba_png(mesh.texture_png)
        assert texture.shape == (256, 256, 4) and (texture[..., 3] == 255).all()
        # Triangles facing the front sample the left half of the texture, the others the right half.
        corners = mesh.vertices[mesh.faces]
        facing_front = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])[:, 2] >= 0
        assert (mesh.uv[mesh.faces[facing_front]][..., 0] <= 0.5 + 1e-6).all()
        assert (mesh.uv[mesh.faces[~facing_front]][..., 0] >= 0.5 - 1e-6).all()
        chest_y = mesh.extras["keypoints_mm"]["chest"][1] / 1000.0
        near_chest = np.abs(mesh.vertices[:, 1] - chest_y) < 0.02
        rows = np.round(mesh.uv[near_chest, 1] * 256).astype(int)
        band = texture[rows.min() : rows.max() + 1, :128, :3].astype(int)
        skin_texels[label] = int((np.abs(band - skin).max(axis=2) < 12).sum())
    # The small size leaves skin showing beside it at the chest; the large one covers it.
    assert skin_texels["XS"] > skin_texels["XXL"] + 20


@pytest.mark.parametrize(
    ("request_", "code", "words"),
    [
        (pb.RenderTryOnRequest(body_id="median", garments=[pb.TryOnGarment(garment_id="tee", size_label="XM")]), grpc.StatusCode.INVALID_ARGUMENT, "'tee' has no size 'XM'; its sizes are XXS, XS, S, M, L, XL, XXL, 3XL"),
        (pb.RenderTryOnRequest(body_id="median", garments=[pb.TryOnGarment(garment_id="plain", size_label="M")]), grpc.StatusCode.INVALID_ARGUMENT, "has no size chart"),
        (pb.RenderTryOnRequest(body_id="median", garment_ids=["tee"], view=7), grpc.StatusCode.INVALID_ARGUMENT, "TRY_ON_VIEW_BACK"),
        (pb.RenderTryOnRequest(body_id="median", garment_ids=["tee"], garments=[pb.TryOnGarment(garment_id="tee")]), grpc.StatusCode.INVALID_ARGUMENT, "not both"),
        (pb.RenderTryOnRequest(body_id="median", garments=[pb.TryOnGarment(garment_id="gone")]), grpc.StatusCode.NOT_FOUND, "gone"),
        (pb.RenderTryOnRequest(body_id="nobody", garment_ids=["tee"]), grpc.StatusCode.NOT_FOUND, "nobody"),
        (pb.RenderTryOnRequest(body_id="flat", garment_ids=["tee"]), grpc.StatusCode.FAILED_PRECONDITION, "keypoints"),
    ],
)
def test_try_on_refusals_say_what_to_fix(served, request_, code, words) -> None:
    stub, _ = served
    actual_code, details = status_of(stub.RenderTryOn, request_)
    assert actual_code == code and words in details


def test_model_refusals(served) -> None:
    stub, _ = served
    for request_, code in (
        (pb.RenderTryOnModelRequest(body_id="median", garments=[pb.TryOnGarment(garment_id="tee")], texture_size=100), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.RenderTryOnModelRequest(body_id="median"), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.RenderTryOnModelRequest(body_id="median", garments=[pb.TryOnGarment(garment_id="tee", size_label="9")]), grpc.StatusCode.INVALID_ARGUMENT),
    ):
        assert status_of(stub.RenderTryOnModel, request_)[0] == code
