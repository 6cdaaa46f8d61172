"""The import command against a served GarmentService: good rows registered, every bad row reported."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tryon.services.garment import import_catalogue
from tryon.services.garment.catalogue import Catalogue
from tryon.services.garment.domain import GarmentDomain
from tryon.services.garment.servicer import GarmentServicer, registration
from tryon.shared.proto import garment_service_pb2 as pb, garment_service_pb2_grpc
from tryon.shared.server import serve
from tryon.shared.settings import ServerSettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def address(trained_garment_models, tmp_path_factory) -> Iterator[str]:
    domain = GarmentDomain(Catalogue(tmp_path_factory.mktemp("catalogue")), trained_garment_models)
    running = serve("garment", [registration(GarmentServicer(domain))], ServerSettings(port=0, grace_seconds=0.5))
    try:
        yield running.address
    finally:
        running.stop(0)


def _append_rows(csv_path: Path, rows: list[list[str]]) -> None:
    with csv_path.open("a", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def test_import_registers_the_good_rows_and_reports_each_bad_one(address: str, tmp_path: Path, fashion_sample) -> None:
    csv_path = import_catalogue.write_example(tmp_path / "shop", count=4)
    folder = csv_path.parent
    (folder / "notes.png").write_text("not a picture")
    (folder / "huge.jpg").write_bytes(b"\xff\xd8" + bytes(9 * 1024 * 1024))
    _append_rows(csv_path, [
        ["BAD-CAT", "hat", "hat", "EUR", "900", "", "000000.jpg"],
        ["BAD-PRICE", "tee", "t_shirt_top", "EUR", "12.50", "", "000000.jpg"],
        ["NO-FILE", "tee", "t_shirt_top", "EUR", "900", "", "missing.jpg"],
        ["NO-NAME", "", "t_shirt_top", "EUR", "900", "", "000000.jpg"],
        ["CORRUPT", "tee", "t_shirt_top", "EUR", "900", "", "notes.png"],
        ["HUGE", "tee", "t_shirt_top", "EUR", "900", "", "huge.jpg"],
        ["BAD-CHART", "tee", "t_shirt_top", "EUR", "900", "no_such_chart", "000001.jpg"],
        ["BAD-CURRENCY", "tee", "t_shirt_top", "euro", "900", "", "000001.jpg"],
    ])
    report_path = tmp_path / "report.csv"
    status = import_catalogue.main(["--garment-service", address, "--csv", str(csv_path), "--report", str(report_path)])
    assert status == 1
    with report_path.open(newline="") as handle:
        report = list(csv.DictReader(handle))
    assert [line["row"] for line in report] == [str(row) for row in range(2, 14)]
    assert [line["status"] for line in report] == ["registered"] * 4 + ["refused"] * 8
    by_id = {line["id"]: line["message"] for line in report}
    assert "t_shirt_top" in by_id["BAD-CAT"]
    assert "whole number" in by_id["BAD-PRICE"]
    assert "missing.jpg" in by_id["NO-FILE"]
    assert "name" in by_id["NO-NAME"]
    assert "PNG or JPEG" in by_id["CORRUPT"]
    assert "8 MiB" in by_id["HUGE"]
    assert "chart" in by_id["BAD-CHART"]
    assert "currency_code" in by_id["BAD-CURRENCY"]
    with grpc.insecure_channel(address) as channel:
        stub = garment_service_pb2_grpc.GarmentServiceStub(channel)
        for line in report[:4]:
            garment = stub.GetGarment(pb.GetGarmentRequest(garment_id=line["garment_id"]), timeout=30).garment
            assert garment.has_original_image and garment.name.endswith(line["id"][-1])
        picture = stub.GetGarmentImage(pb.GetGarmentImageRequest(garment_id=report[0]["garment_id"]), timeout=30)
        assert picture.image == (folder / "000000.jpg").read_bytes()


def test_a_csv_without_the_required_columns_stops_before_any_call(tmp_path: Path) -> None:
    csv_path = tmp_path / "catalogue.csv"
    csv_path.write_text("id,name,image\nA,tee,a.png\n")
    status = import_catalogue.main(["--garment-service", "127.0.0.1:9", "--csv", str(csv_path)])
    assert status == 2


@pytest.mark.parametrize("image", ["../secret.png", "/etc/hostname"])
def test_a_row_naming_a_picture_outside_the_images_folder_is_refused_unread(tmp_path: Path, image: str) -> None:
    images = tmp_path / "images"
    images.mkdir()
    (tmp_path / "secret.png").write_bytes(b"not for upload")
    row = {"id": "A", "name": "tee", "category": "t_shirt_top", "currency_code": "EUR", "amount_minor": "1999",
           "chart_id": "", "image": image}
    with pytest.raises(import_catalogue.InvalidArgument, match="outside the images folder"):
        import_catalogue.registration_request(row, images)
