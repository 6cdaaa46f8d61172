"""The catalogue RPCs over gRPC on loopback: original pictures (GetGarmentImage) and bulk import (ImportGarments).

The server is the shared `serve()` on port 0 with the real servicer, domain and catalogue (SQLite
and picture files in a temporary folder) and the suite's small trained garment models. Pictures
are product-like colour pictures made from Fashion-MNIST (`tryon.services.garment.product_images`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from PIL import Image

from tryon.services.garment import domain as garment_domain
from tryon.services.garment.catalogue import Catalogue, Garment
from tryon.services.garment.domain import GarmentDomain
from tryon.services.garment.product_images import product_bytes
from tryon.services.garment.servicer import GarmentServicer, registration
from tryon.shared.proto import common_pb2, garment_service_pb2 as pb, garment_service_pb2_grpc
from tryon.shared.server import serve
from tryon.shared.settings import ServerSettings

pytestmark = pytest.mark.integration

DRESS = common_pb2.GARMENT_CATEGORY_DRESS


@pytest.fixture(scope="module")
def published() -> list[Garment]:
    return []


@pytest.fixture(scope="module")
def stub(trained_garment_models, tmp_path_factory, published) -> Iterator[garment_service_pb2_grpc.GarmentServiceStub]:
    domain = GarmentDomain(Catalogue(tmp_path_factory.mktemp("catalogue")), trained_garment_models, published.append)
    running = serve("garment", [registration(GarmentServicer(domain))], ServerSettings(port=0, grace_seconds=0.5))
    channel = grpc.insecure_channel(running.address)
    try:
        yield garment_service_pb2_grpc.GarmentServiceStub(channel)
    finally:
        channel.close()
        running.stop(0)


def _request(image: bytes, name: str = "summer dress", category: int = DRESS) -> pb.RegisterGarmentRequest:
    return pb.RegisterGarmentRequest(
        image=image, name=name, category=category, price=common_pb2.Money(currency_code="EUR", amount_minor=3999)
    )


def _status(call, request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=30)
    return caught.value.code(), caught.value.details()


def test_the_registered_picture_comes_back_as_sent_or_scaled_in_colour(stub, fashion_sample) -> None:
    pictures, _ = fashion_sample
    photo = product_bytes(pictures[0], seed=1, side=640, file_format="JPEG")
    garment = stub.RegisterGarment(_request(photo), timeout=30).garment
    assert garment.has_original_image
    assert Image.open(io.BytesIO(garment.image_png)).size == (28, 28)
    whole = stub.GetGarmentImage(pb.GetGarmentImageRequest(garment_id=garment.garment_id), timeout=30)
    assert (whole.image, whole.media_type, whole.width, whole.height, whole.original) == (photo, "image/jpeg", 640, 640, True)
    small = stub.GetGarmentImage(pb.GetGarmentImageRequest(garment_id=garment.garment_id, max_side=96), timeout=30)
    thumbnail = Image.open(io.BytesIO(small.image))
    assert (thumbnail.format, thumbnail.size, small.width, small.height) == ("JPEG", (96, 96), 96, 96)
    centre = np.asarray(thumbnail.convert("RGB"), dtype=np.int32)[48, 48]
    assert centre.max() - centre.min() > 40, "the thumbnail keeps the garment's colour"
    larger = stub.GetGarmentImage(pb.GetGarmentImageRequest(garment_id=garment.garment_id, max_side=4096), timeout=30)
    assert larger.image == photo


def test_get_garment_image_refusals(stub) -> None:
    for request, code, words in (
        (pb.GetGarmentImageRequest(garment_id="no-such-garment"), grpc.StatusCode.NOT_FOUND, "no-such-garment"),
        (pb.GetGarmentImageRequest(garment_id=""), grpc.StatusCode.INVALID_ARGUMENT, "garment_id"),
        (pb.GetGarmentImageRequest(garment_id="g", max_side=8), grpc.StatusCode.INVALID_ARGUMENT, "max_side"),
        (pb.GetGarmentImageRequest(garment_id="g", max_side=5000), grpc.StatusCode.INVALID_ARGUMENT, "max_side"),
    ):
        assert _status(stub.GetGarmentImage, request)[0] == code
        assert words in _status(stub.GetGarmentImage, request)[1]


def _oversized_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (4097, 8), 255).save(buffer, format="PNG")
    return buffer.getvalue()


def test_import_registers_good_garments_and_reports_each_refused_one(stub, fashion_sample, published) -> None:
    pictures, _ = fashion_sample
    before = len(published)
    good = [product_bytes(pictures[i], seed=i, side=256) for i in (1, 2, 3)]
    stream = [
        pb.ImportGarmentsRequest(garment=_request(good[0], name="first"), item_ref="SKU-1"),
        pb.ImportGarmentsRequest(garment=_request(b"\x89PNG\r\n\x1a\n broken"), item_ref="SKU-2"),
        pb.ImportGarmentsRequest(garment=_request(good[1], category=42), item_ref="SKU-3"),
        pb.ImportGarmentsRequest(garment=_request(_oversized_png()), item_ref="SKU-4"),
        pb.ImportGarmentsRequest(garment=_request(good[1], name="second"), item_ref="bad\nref"),
        pb.ImportGarmentsRequest(garment=_request(good[2], name="third")),
    ]
    answer = stub.ImportGarments(iter(stream), timeout=60)
    assert (answer.registered_count, answer.failed_count, answer.truncated) == (2, 4, False)
    assert [r.index for r in answer.results] == list(range(6))
    assert [r.item_ref for r in answer.results] == ["SKU-1", "SKU-2", "SKU-3", "SKU-4", "bad\nref", ""]
    invalid = grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [r.error_code for r in answer.results] == [0, invalid, invalid, invalid, invalid, 0]
    messages = [r.error_message for r in answer.results]
    assert "not a readable PNG or JPEG" in messages[1] or "corrupt" in messages[1]
    assert "category" in messages[2] and "4096" in messages[3] and "item_ref" in messages[4]
    registered = [r.garment_id for r in answer.results if r.garment_id]
    assert len(registered) == 2 and not answer.results[1].garment_id
    names = [stub.GetGarment(pb.GetGarmentRequest(garment_id=gid), timeout=30).garment.name for gid in registered]
    assert names == ["first", "third"]
    assert stub.GetGarmentImage(pb.GetGarmentImageRequest(garment_id=registered[0]), timeout=30).image == good[0]
    assert [g.garment_id for g in published[before:]] == registered


def test_import_reads_no_more_than_its_limit(stub, fashion_sample, monkeypatch) -> None:
    pictures, _ = fashion_sample
    monkeypatch.setattr(garment_domain, "MAX_IMPORT_GARMENTS", 2)
    stream = [pb.ImportGarmentsRequest(garment=_request(product_bytes(pictures[i], seed=i, side=64))) for i in range(4)]
    answer = stub.ImportGarments(iter(stream), timeout=60)
    assert (answer.registered_count, answer.failed_count, answer.truncated) == (2, 0, True)


def test_an_empty_import_registers_nothing(stub) -> None:
    answer = stub.ImportGarments(iter([]), timeout=30)
    assert (answer.registered_count, answer.failed_count, answer.truncated, len(answer.results)) == (0, 0, False, 0)


def test_a_call_reaching_a_closed_catalogue_answers_unavailable_and_the_server_lives_on(tmp_path) -> None:
    catalogue = Catalogue(tmp_path)
    # The servicer as it answers while the models load: the catalogue RPCs only.
    servicer = GarmentServicer(catalogue=GarmentDomain(catalogue))
    running = serve("garment", [registration(servicer)], ServerSettings(port=0, grace_seconds=0.5))
    try:
        with grpc.insecure_channel(running.address) as channel:
            stub = garment_service_pb2_grpc.GarmentServiceStub(channel)
            assert stub.ListGarments(pb.ListGarmentsRequest(), timeout=30).garments == []
            catalogue.close()
            for call, request in (
                (stub.GetGarment, pb.GetGarmentRequest(garment_id="g1")),
                (stub.ListGarments, pb.ListGarmentsRequest()),
                (stub.GetGarment, pb.GetGarmentRequest(garment_id="g2")),
            ):
                code, details = _status(call, request)
                assert code == grpc.StatusCode.UNAVAILABLE
                assert "shutting down; retry" in details
    finally:
        running.stop(0)
