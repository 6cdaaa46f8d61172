"""The import command against a served GarmentService: good rows registered, every bad row reported."""

from __future__ import annotations

import _thread
import csv
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tryon.services.garment import import_catalogue
from tryon.services.garment.catalogue import Catalogue
from tryon.services.garment.domain import GarmentDomain
from tryon.services.garment.servicer import GarmentServicer, registration
from tryon.shared.broker import free_loopback_port
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


class StopServerAt:
    """GarmentService's publisher hook: stops the server while it registers the n-th garment, as a
    service going away in the middle of an ImportGarments call does (that garment is still stored)."""

    def __init__(self, garment_number: int) -> None:
        self.garment_number = garment_number
        self.seen = 0
        self.running = None

    def __call__(self, garment) -> None:
        self.seen += 1
        if self.seen == self.garment_number:
            self.running.stop(0)


def _report(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_an_import_stopped_by_a_failed_call_reports_each_row_and_a_resume_registers_none_twice(
    trained_garment_models, tmp_path: Path, capsys
) -> None:
    csv_path = import_catalogue.write_example(tmp_path / "shop", count=8)
    catalogue = Catalogue(tmp_path / "catalogue")
    stop = StopServerAt(5)
    stop.running = serve(
        "garment", [registration(GarmentServicer(GarmentDomain(catalogue, trained_garment_models, stop)))],
        ServerSettings(port=0, grace_seconds=0.5),
    )
    # Calls of 3 rows: rows 2-4 answered, the server stops while registering row 6 of the call of rows 5-7.
    status = import_catalogue.main(["--garment-service", stop.running.address, "--csv", str(csv_path), "--call-size", "3"])
    assert status == 3
    report_path = csv_path.with_name("catalogue.report.csv")
    first = _report(report_path)
    assert [line["status"] for line in first[:5]] == ["registered"] * 3 + ["unknown"] * 2
    assert first[5]["status"] in ("unknown", "not sent")
    assert [line["status"] for line in first[6:]] == ["not sent"] * 2
    assert all(line["garment_id"] for line in first[:3])
    said = capsys.readouterr().err
    assert "the import stopped: GarmentService answered" in said and f"--resume {report_path}" in said
    # The stopped call's handler stores row 6 once the server's stop returns to it.
    deadline = time.monotonic() + 10
    while len(catalogue) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)

    running = serve(
        "garment", [registration(GarmentServicer(GarmentDomain(catalogue, trained_garment_models)))],
        ServerSettings(port=0, grace_seconds=0.5),
    )
    try:
        resumed_path = tmp_path / "resumed.csv"
        status = import_catalogue.main([
            "--garment-service", running.address, "--csv", str(csv_path), "--resume", str(report_path),
            "--report", str(resumed_path),
        ])
        resumed = _report(resumed_path)
        # Rows 5 and 6 were registered by the stopped call, row 7 was not: this run cannot know it
        # and leaves the rows that call had sent unknown.
        row_7_sent = first[5]["status"] == "unknown"
        assert status == 1
        assert [line["garment_id"] for line in resumed[:3]] == [line["garment_id"] for line in first[:3]]
        assert [line["status"] for line in resumed[3:]] == (
            ["unknown"] * 2 + ["unknown" if row_7_sent else "registered"] + ["registered"] * 2
        )
        names = Counter(garment.name for garment in catalogue.list(page_size=100)[0])
        assert len(names) == (7 if row_7_sent else 8) and set(names.values()) == {1}
        assert {line["garment_id"] for line in resumed if line["garment_id"]} <= {
            garment.garment_id for garment in catalogue.list(page_size=100)[0]
        }

        # What the command warns of: sent again, a row that was registered is registered twice.
        status = import_catalogue.main([
            "--garment-service", running.address, "--csv", str(csv_path), "--resume", str(resumed_path),
            "--resend-unknown", "--report", str(tmp_path / "again.csv"),
        ])
        assert status == 0
        assert sorted(Counter(garment.name for garment in catalogue.list(page_size=100)[0]).values()) == [1] * 6 + [2] * 2
    finally:
        running.stop(0)


def test_ctrl_c_during_a_call_still_writes_the_report(trained_garment_models, tmp_path: Path, capsys) -> None:
    csv_path = import_catalogue.write_example(tmp_path / "shop", count=3)

    pressed = threading.Event()

    def press_ctrl_c(garment) -> None:
        # Once: a second interrupt would reach the test itself after the command returned.
        if not pressed.is_set():
            pressed.set()
            _thread.interrupt_main()

    running = serve(
        "garment", [registration(GarmentServicer(GarmentDomain(Catalogue(None), trained_garment_models, press_ctrl_c)))],
        ServerSettings(port=0, grace_seconds=0.5),
    )
    # Ctrl-C as a terminal delivers it: tests started in the background by a script (`make test &`)
    # inherit SIGINT ignored, and interrupt_main does nothing then.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        report_path = tmp_path / "report.csv"
        status = import_catalogue.main(
            ["--garment-service", running.address, "--csv", str(csv_path), "--report", str(report_path)]
        )
    finally:
        signal.signal(signal.SIGINT, previous)
        running.stop(0)
    assert status == 3
    assert {line["status"] for line in _report(report_path)} <= {"unknown", "not sent"}
    assert len(_report(report_path)) == 3
    assert "interrupted (Ctrl-C)" in capsys.readouterr().err


def test_a_resume_from_the_report_of_another_csv_stops_before_any_call(tmp_path: Path) -> None:
    csv_path = import_catalogue.write_example(tmp_path / "shop", count=2)
    report_path = tmp_path / "report.csv"
    report_path.write_text("row,id,garment_id,status,message\n2,SKU-999999,g1,registered,\n")
    status = import_catalogue.main(
        ["--garment-service", "127.0.0.1:9", "--csv", str(csv_path), "--resume", str(report_path)]
    )
    assert status == 2


def test_a_service_that_does_not_answer_stops_the_import_before_anything_is_sent(tmp_path: Path, capsys) -> None:
    csv_path = import_catalogue.write_example(tmp_path / "shop", count=2)
    address = f"127.0.0.1:{free_loopback_port()}"
    status = import_catalogue.main(
        ["--garment-service", address, "--csv", str(csv_path), "--connect-timeout", "0.5"]
    )
    assert status == 2
    assert f"GarmentService at {address} did not answer" in capsys.readouterr().err
    assert not csv_path.with_name("catalogue.report.csv").exists()


def test_a_call_refused_for_its_token_leaves_no_row_unknown(trained_garment_models, tmp_path: Path, capsys) -> None:
    csv_path = import_catalogue.write_example(tmp_path / "shop", count=2)
    running = serve(
        "garment", [registration(GarmentServicer(GarmentDomain(Catalogue(None), trained_garment_models)))],
        ServerSettings(port=0, grace_seconds=0.5, auth_token="s3cret"),
    )
    try:
        report_path = tmp_path / "report.csv"
        status = import_catalogue.main(
            ["--garment-service", running.address, "--csv", str(csv_path), "--report", str(report_path)]
        )
        assert status == 3
        assert [line["status"] for line in _report(report_path)] == ["not sent"] * 2
        assert "UNAUTHENTICATED" in capsys.readouterr().err
        status = import_catalogue.main([
            "--garment-service", running.address, "--csv", str(csv_path), "--auth-token", "s3cret",
            "--resume", str(report_path), "--report", str(report_path),
        ])
        assert status == 0
        assert [line["status"] for line in _report(report_path)] == ["registered"] * 2
    finally:
        running.stop(0)
