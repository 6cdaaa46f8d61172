"""Import a whole catalogue into GarmentService from a CSV file and a folder of pictures.

Usage: python -m tryon.services.garment.import_catalogue --garment-service HOST:PORT --csv FILE
       [--images DIR] [--report FILE] [--auth-token TOKEN]
       python -m tryon.services.garment.import_catalogue --write-example DIR [--count N]

The CSV has a header row and these columns (others are ignored):

| column | meaning |
| --- | --- |
| ``id`` | your own reference of the garment (a SKU), echoed in the report; optional |
| ``name`` | display name, 1 to 200 characters |
| ``category`` | ``t_shirt_top``, ``trouser``, ``pullover``, ``dress``, ``coat``, ``sandal``, ``shirt``, ``sneaker``, ``bag`` or ``ankle_boot`` |
| ``currency_code`` | ISO 4217 code such as ``EUR`` |
| ``amount_minor`` | price in the currency's minor unit (cents), a whole number >= 0 |
| ``chart_id`` | a shipped size chart such as ``eu_womens_tops``; optional |
| ``image`` | the picture's file (PNG or JPEG, at most 4096 x 4096 and 8 MiB), relative to ``--images`` (default: the CSV's folder) |

Rows go to the ImportGarments stream in calls of at most 10,000 garments; pictures are read one
at a time while the stream runs, so a catalogue of any size needs little memory. A row this
command cannot send (a missing column value, an unknown category, a picture that is missing or
over 8 MiB) and a row the service refuses are reported alike, and the rest go on. The report
(``--report``, CSV: row, id, garment_id, status, message) has one line per row; the summary
on stderr gives the counts and the garments registered per second. Exit status: 0 when every
row was registered, 1 when some were not, 2 when the CSV or the service cannot be used at all.

``--write-example`` writes a folder of product-like pictures made from Fashion-MNIST
(`tryon.services.garment.product_images`) with its ``catalogue.csv``: the demo's catalogue,
and a way to try the command.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from tryon.services.garment.categories import CATEGORIES, label_from_name
from tryon.services.garment.domain import MAX_IMPORT_GARMENTS
from tryon.services.garment.images import MAX_IMAGE_BYTES
from tryon.shared.contract import category_to_proto
from tryon.shared.errors import InvalidArgument
from tryon.shared.proto import common_pb2, garment_service_pb2 as pb, garment_service_pb2_grpc
from tryon.shared.tls import ClientTls, open_channel

REQUIRED_COLUMNS = ("name", "category", "currency_code", "amount_minor", "image")
"""Columns every CSV must have; ``id`` and ``chart_id`` are optional."""
MESSAGE_BYTES = 9 * 1024 * 1024
"""Largest message sent: an 8 MiB picture and its fields, as the service accepts by default."""


@dataclass(frozen=True)
class RowOutcome:
    """What became of one CSV row (numbered from 2, the first line after the header)."""

    row: int
    item_ref: str
    garment_id: str = ""
    message: str = ""

    @property
    def registered(self) -> bool:
        """True when the service registered the row's garment."""
        return bool(self.garment_id)


@dataclass(frozen=True)
class ImportReport:
    """Every row's outcome and the seconds the import took."""

    outcomes: list[RowOutcome]
    seconds: float

    @property
    def registered_count(self) -> int:
        """Rows registered."""
        return sum(outcome.registered for outcome in self.outcomes)


def registration_request(row: dict[str, str], images_dir: Path) -> pb.RegisterGarmentRequest:
    """The RegisterGarment request of one CSV row; InvalidArgument naming what to fix in the row."""
    for column in REQUIRED_COLUMNS:
        if not (row.get(column) or "").strip():
            raise InvalidArgument(f"column {column} is empty")
    category = row["category"].strip()
    try:
        label = label_from_name(category)
    except InvalidArgument:
        raise InvalidArgument(f"category {category!r} is not one of {', '.join(CATEGORIES)}") from None
    amount = row["amount_minor"].strip()
    if not amount.isdigit():
        raise InvalidArgument(f"amount_minor {amount!r} is not a whole number >= 0 (the price in cents)")
    picture = (images_dir / row["image"].strip()).resolve()
    # A row names a picture inside the images folder, never a file elsewhere on the machine.
    if not picture.is_relative_to(images_dir.resolve()):
        raise InvalidArgument(f"image {row['image'].strip()!r} is outside the images folder {images_dir}")
    try:
        size = picture.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise InvalidArgument(f"image {picture} is {size} bytes; at most {MAX_IMAGE_BYTES} bytes (8 MiB) are accepted")
        data = picture.read_bytes()
    except OSError as error:
        raise InvalidArgument(f"image {picture} cannot be read: {error.strerror or error}") from None
    request = pb.RegisterGarmentRequest(
        image=data,
        name=row["name"],
        category=category_to_proto(label),
        price=common_pb2.Money(currency_code=row["currency_code"].strip(), amount_minor=int(amount)),
    )
    chart_id = (row.get("chart_id") or "").strip()
    if chart_id:
        request.size_chart.chart_id = chart_id
    return request


def read_rows(csv_path: Path) -> list[dict[str, str]]:
    """The rows of the CSV as dicts; ValueError naming the missing columns when the header lacks some."""
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{csv_path} lacks the column(s) {', '.join(missing)}; its header must name "
                f"{', '.join(REQUIRED_COLUMNS)} (and may name id and chart_id)"
            )
        return list(reader)


def import_rows(
    stub: garment_service_pb2_grpc.GarmentServiceStub,
    rows: Sequence[dict[str, str]],
    images_dir: Path,
    *,
    metadata: Sequence[tuple[str, str]] = (),
    timeout_s: float = 3600.0,
) -> ImportReport:
    """Send the rows through ImportGarments, at most ``MAX_IMPORT_GARMENTS`` a call; one outcome per row."""
    started = time.perf_counter()
    outcomes: dict[int, RowOutcome] = {}
    for first in range(0, len(rows), MAX_IMPORT_GARMENTS):
        chunk = list(enumerate(rows[first : first + MAX_IMPORT_GARMENTS], start=first + 2))
        sent: list[tuple[int, str]] = []

        def stream(chunk=chunk, sent=sent) -> Iterator[pb.ImportGarmentsRequest]:
            for row_number, row in chunk:
                item_ref = (row.get("id") or "").strip()
                try:
                    request = registration_request(row, images_dir)
                except InvalidArgument as error:
                    outcomes[row_number] = RowOutcome(row_number, item_ref, message=str(error))
                    continue
                sent.append((row_number, item_ref))
                yield pb.ImportGarmentsRequest(garment=request, item_ref=item_ref)

        answer = stub.ImportGarments(stream(), timeout=timeout_s, metadata=list(metadata))
        for result in answer.results:
            if not 0 <= result.index < len(sent):
                continue
            row_number, item_ref = sent[result.index]
            outcomes[row_number] = RowOutcome(row_number, item_ref, result.garment_id, result.error_message)
        for row_number, row in chunk:
            if row_number not in outcomes:
                outcomes[row_number] = RowOutcome(
                    row_number, (row.get("id") or "").strip(), message="not registered: the service stopped reading the stream before this row"
                )
    return ImportReport([outcomes[number] for number in sorted(outcomes)], time.perf_counter() - started)


def write_report(report: ImportReport, path: Path) -> None:
    """The report CSV: row, id, garment_id, status (registered or refused), message."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "id", "garment_id", "status", "message"])
        for outcome in report.outcomes:
            status = "registered" if outcome.registered else "refused"
            writer.writerow([outcome.row, outcome.item_ref, outcome.garment_id, status, outcome.message])


def write_example(folder: Path, count: int, seed: int = 0) -> Path:
    """A folder of ``count`` product-like pictures made from Fashion-MNIST test images, with its
    ``catalogue.csv``; returns the CSV's path. Sizes come from the shipped charts of tops and trousers."""
    from tryon.services.garment.dataset import load_fashion_mnist
    from tryon.services.garment.product_images import product_bytes

    pictures, labels = load_fashion_mnist("test")
    charts = {"t_shirt_top": "eu_womens_tops", "shirt": "eu_mens_tops", "pullover": "eu_womens_tops", "trouser": "eu_womens_trousers"}
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / "catalogue.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "name", "category", "currency_code", "amount_minor", "chart_id", "image"])
        for index in range(count):
            source = (seed + index) % len(pictures)
            category = CATEGORIES[int(labels[source])]
            file_name = f"{index:06d}.jpg"
            (folder / file_name).write_bytes(product_bytes(pictures[source], seed=seed + index, file_format="JPEG"))
            writer.writerow([
                f"SKU-{index:06d}", f"{category.replace('_', ' ')} {index}", category, "EUR",
                1500 + 100 * (index % 60), charts.get(category, ""), file_name,
            ])
    return csv_path


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--garment-service", metavar="HOST:PORT", help="GarmentService address")
    parser.add_argument("--csv", type=Path, help="the catalogue CSV")
    parser.add_argument("--images", type=Path, help="folder the image column is relative to (default: the CSV's)")
    parser.add_argument("--report", type=Path, help="write one line per row here (CSV)")
    parser.add_argument("--auth-token", default="", help="bearer token, when the service requires one")
    parser.add_argument("--tls-ca-file", type=Path, help="CA that signed GarmentService's certificate: call over TLS")
    parser.add_argument("--tls-cert-file", type=Path, help="client certificate, when GarmentService requires mTLS")
    parser.add_argument("--tls-key-file", type=Path, help="the client certificate's key")
    parser.add_argument("--timeout", type=float, default=3600.0, help="deadline of one ImportGarments call (s)")
    parser.add_argument("--write-example", type=Path, metavar="DIR", help="write an example catalogue folder and exit")
    parser.add_argument("--count", type=int, default=100, help="garments of --write-example")
    args = parser.parse_args(argv)
    if args.write_example is not None:
        print(write_example(args.write_example, args.count))
        return 0
    if not args.garment_service or args.csv is None:
        parser.error("--garment-service and --csv are required (or --write-example)")
    try:
        rows = read_rows(args.csv)
    except (OSError, ValueError) as error:
        print(f"import_catalogue: {error}", file=sys.stderr)
        return 2
    metadata = [("authorization", f"Bearer {args.auth_token}")] if args.auth_token else []
    try:
        tls = ClientTls(args.tls_ca_file, args.tls_cert_file, args.tls_key_file) if args.tls_ca_file else None
    except ValueError as error:
        print(f"import_catalogue: {error}", file=sys.stderr)
        return 2
    options = [("grpc.max_send_message_length", MESSAGE_BYTES)]
    with open_channel(args.garment_service, tls, options) as channel:
        stub = garment_service_pb2_grpc.GarmentServiceStub(channel)
        try:
            report = import_rows(stub, rows, args.images or args.csv.parent, metadata=metadata, timeout_s=args.timeout)
        except grpc.RpcError as error:
            print(f"import_catalogue: GarmentService answered {error.code().name}: {error.details()}", file=sys.stderr)
            return 2
    if args.report is not None:
        write_report(report, args.report)
    refused = [outcome for outcome in report.outcomes if not outcome.registered]
    for outcome in refused[:20]:
        print(f"row {outcome.row} ({outcome.item_ref or 'no id'}): {outcome.message}", file=sys.stderr)
    rate = report.registered_count / report.seconds if report.seconds > 0 else 0.0
    print(
        f"registered {report.registered_count} of {len(report.outcomes)} rows, refused {len(refused)}, "
        f"in {report.seconds:.1f} s ({rate:.1f} garments/s)",
        file=sys.stderr,
    )
    return 0 if not refused else 1


if __name__ == "__main__":
    sys.exit(main())
