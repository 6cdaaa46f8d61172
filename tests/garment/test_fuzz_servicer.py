"""Hypothesis fuzzing of GarmentService over gRPC: no request, however odd, gets INTERNAL.

Requests mix valid and invalid values for every field of every RPC (categories outside the
enum, counts and steps out of range, seeds up to 2^64 - 1, random and truncated picture
bytes, odd names, prices and size charts, foreign page tokens, unknown ids, picture sizes,
import streams of such garments with odd item references, try-on size labels, views and texture
sizes).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st
from PIL import Image

from tryon.services.garment import images
from tryon.services.garment.catalogue import Catalogue
from tryon.services.garment.domain import GarmentDomain
from tryon.services.garment.servicer import GarmentServicer, registration
from tryon.services.garment.mesh_render import BodyMesh
from tryon.shared.errors import NotFound
from tryon.shared.proto import common_pb2, garment_service_pb2 as pb, garment_service_pb2_grpc
from tryon.shared.server import serve
from tryon.shared.settings import ServerSettings

pytestmark = pytest.mark.integration

ACCEPTABLE = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
}


class OneBody:
    """The median test body as body "b1"; every other id is unknown."""

    def __init__(self, mesh: BodyMesh) -> None:
        self.mesh = mesh

    def __call__(self, body_id: str) -> BodyMesh:
        if body_id != "b1":
            raise NotFound(f"body {body_id!r} is not known")
        return self.mesh


@pytest.fixture(scope="module")
def server(trained_garment_models, tmp_path_factory: pytest.TempPathFactory, body_meshes) -> Iterator[tuple[str, str]]:
    """A served GarmentService and the id of one registered garment."""
    domain = GarmentDomain(Catalogue(tmp_path_factory.mktemp("catalogue")), trained_garment_models, None, OneBody(body_meshes["median"]))
    running = serve("garment", [registration(GarmentServicer(domain))], ServerSettings(port=0, grace_seconds=0.5))
    levels = np.zeros((28, 28), np.float32)
    levels[4:24, 8:20] = 0.8
    with grpc.insecure_channel(running.address) as channel:
        garment = garment_service_pb2_grpc.GarmentServiceStub(channel).RegisterGarment(
            pb.RegisterGarmentRequest(
                image=images.encode_png(levels), name="seed garment", category=common_pb2.GARMENT_CATEGORY_DRESS,
                price=common_pb2.Money(currency_code="EUR", amount_minor=1),
                size_chart=common_pb2.SizeChart(chart_id="en13402_womens_tops"),
            ),
            timeout=30,
        ).garment
    try:
        yield running.address, garment.garment_id
    finally:
        running.stop(0)


def _encoded(draw, formats=("PNG", "JPEG")) -> bytes:
    width = draw(st.integers(1, 64))
    height = draw(st.integers(1, 64))
    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "1", "P", "I;16"]))
    seed = draw(st.integers(0, 2**16))
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 4), dtype=np.uint8)
    picture = Image.fromarray(noise, mode="RGBA").convert(mode if mode != "I;16" else "L")
    if mode == "I;16":
        picture = picture.convert("I;16")
    file_format = draw(st.sampled_from(formats))
    if file_format == "JPEG" and picture.mode not in ("L", "RGB"):
        picture = picture.convert("RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format=file_format)
    data = buffer.getvalue()
    if draw(st.integers(0, 3)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


@st.composite
def picture_bytes(draw) -> bytes:
    """Valid pictures, truncated pictures, flat pictures and random bytes."""
    kind = draw(st.sampled_from(["picture", "picture", "flat", "random", "empty"]))
    if kind == "picture":
        return _encoded(draw)
    if kind == "flat":
        buffer = io.BytesIO()
        Image.new("L", (draw(st.integers(1, 40)), draw(st.integers(1, 40))), draw(st.integers(0, 255))).save(buffer, "PNG")
        return buffer.getvalue()
    if kind == "random":
        return draw(st.binary(max_size=300))
    return b""


valid_categories = st.integers(1, 10)
categories = st.one_of(valid_categories, valid_categories, st.integers(0, 11), st.integers(-(2**31), 2**31 - 1))
int32 = st.integers(-(2**31), 2**31 - 1)
uint64 = st.one_of(st.integers(0, 1000), st.integers(0, 2**64 - 1))


@st.composite
def garment_refs(draw, known_id: str) -> pb.GarmentRef:
    kind = draw(st.sampled_from(["known", "known", "image", "image", "unknown", "empty"]))
    if kind == "known":
        return pb.GarmentRef(garment_id=known_id)
    if kind == "unknown":
        return pb.GarmentRef(garment_id=draw(st.text(max_size=120)))
    if kind == "image":
        return pb.GarmentRef(image=draw(picture_bytes()))
    return pb.GarmentRef()


floats = st.floats(allow_nan=True, allow_infinity=True)
VALID_PICTURE = images.encode_png(np.pad(np.full((20, 12), 0.8, np.float32), ((4, 4), (8, 8))))


@st.composite
def size_charts(draw) -> common_pb2.SizeChart:
    sizes = [
        common_pb2.SizeChartSize(
            label=draw(st.text(max_size=8)),
            ranges=[
                common_pb2.MeasurementRange(measurement=draw(st.text(max_size=12)), min=draw(floats), max=draw(floats))
                for _ in range(draw(st.integers(0, 3)))
            ],
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    return common_pb2.SizeChart(chart_id=draw(st.text(max_size=12)), sizes=sizes)


@st.composite
def register_requests(draw) -> pb.RegisterGarmentRequest:
    """RegisterGarment requests, also the items of an ImportGarments stream."""
    request = pb.RegisterGarmentRequest(
        image=draw(st.one_of(st.just(VALID_PICTURE), picture_bytes())),
        name=draw(st.one_of(st.just("tee"), st.text(max_size=220))),
        category=draw(st.one_of(valid_categories, categories)),
    )
    if draw(st.integers(0, 4)) > 0:
        request.price.CopyFrom(
            common_pb2.Money(
                currency_code=draw(st.one_of(st.just("EUR"), st.sampled_from(["usd", "", "EURO"]), st.text(max_size=4))),
                amount_minor=draw(st.one_of(st.integers(0, 10**6), st.integers(-(2**63), 2**63 - 1))),
            )
        )
    if draw(st.booleans()):
        request.size_chart.CopyFrom(draw(size_charts()))
    return request


@st.composite
def calls(draw, known_id: str):
    """A (method name, request) pair for any RPC of GarmentService."""
    method = draw(
        st.sampled_from(
            [
                "GenerateGarments", "EncodeGarment", "InterpolateGarments", "RegisterGarment", "ImportGarments",
                "GetGarment", "GetGarmentImage", "ListGarments", "RenderTryOn", "RenderTryOnModel",
            ]
        )
    )
    if method == "GenerateGarments":
        return method, pb.GenerateGarmentsRequest(
            category=draw(categories), count=draw(st.one_of(st.integers(1, 8), st.integers(-2, 70), int32)), seed=draw(uint64),
            generator=draw(st.one_of(st.integers(0, 3), int32)),
        )
    if method == "EncodeGarment":
        return method, pb.EncodeGarmentRequest(image=draw(picture_bytes()), category=draw(categories))
    if method == "InterpolateGarments":
        return method, pb.InterpolateGarmentsRequest(
            start=draw(garment_refs(known_id)), end=draw(garment_refs(known_id)),
            steps=draw(st.one_of(st.integers(2, 8), st.integers(0, 40), int32)),
        )
    if method == "ImportGarments":
        return method, [
            pb.ImportGarmentsRequest(
                garment=draw(register_requests()), item_ref=draw(st.one_of(st.just(""), st.text(max_size=300)))
            )
            for _ in range(draw(st.integers(0, 3)))
        ]
    if method == "RegisterGarment":
        return method, draw(register_requests())
    if method == "GetGarment":
        return method, pb.GetGarmentRequest(garment_id=draw(st.one_of(st.just(known_id), st.text(max_size=150))))
    if method == "GetGarmentImage":
        return method, pb.GetGarmentImageRequest(
            garment_id=draw(st.one_of(st.just(known_id), st.text(max_size=150))),
            max_side=draw(st.one_of(st.just(0), st.integers(1, 5000), int32)),
        )
    if method == "ListGarments":
        return method, pb.ListGarmentsRequest(
            page_size=draw(st.one_of(st.integers(-1, 1002), int32)),
            page_token=draw(st.one_of(st.text(max_size=60), st.just("eyJ2IjoxLCJhZnRlciI6MSwiY2F0ZWdvcmllcyI6W119"))),
            categories=draw(st.lists(categories, max_size=4)),
        )
    # Few valid picture sizes, so that drawn bodies are reused and the run stays short.
    garment_ids = st.one_of(st.just(known_id), st.just(known_id), st.text(max_size=40))
    try_on_garments = st.lists(
        st.builds(
            pb.TryOnGarment,
            garment_id=garment_ids,
            size_label=st.one_of(st.sampled_from(["", "M", "XS", "3XL", "m", "XM"]), st.text(max_size=120)),
        ),
        max_size=10,
    )
    if method == "RenderTryOnModel":
        return method, pb.RenderTryOnModelRequest(
            body_id=draw(st.sampled_from(["b1", "", "other"])),
            garments=draw(try_on_garments),
            texture_size=draw(st.one_of(st.sampled_from([256, 300]), st.integers(-5, 300), int32)),
        )
    with_sizes = draw(st.booleans())
    return method, pb.RenderTryOnRequest(
        body_id=draw(st.sampled_from(["b1", "", "other"])),
        garment_ids=draw(st.lists(garment_ids, max_size=10)) if not with_sizes or draw(st.booleans()) else [],
        garments=draw(try_on_garments) if with_sizes else [],
        width=draw(st.one_of(st.sampled_from([0, 64, 100]), st.integers(60, 70), int32)),
        height=draw(st.one_of(st.sampled_from([0, 128, 200]), st.integers(120, 130), int32)),
        view=draw(st.one_of(st.integers(0, 3), int32)),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_request_gets_an_internal_error(server: tuple[str, str], data: st.DataObject) -> None:
    address, known_id = server
    method, request = data.draw(calls(known_id))
    with grpc.insecure_channel(address) as channel:
        stub = garment_service_pb2_grpc.GarmentServiceStub(channel)
        try:
            getattr(stub, method)(iter(request) if isinstance(request, list) else request, timeout=60)
            code, details = grpc.StatusCode.OK, ""
        except grpc.RpcError as error:
            code, details = error.code(), error.details()
    event(f"{method} {code.name}")
    assert code in ACCEPTABLE, f"{method} answered {code.name}: {details} for {request!r:.500}"
