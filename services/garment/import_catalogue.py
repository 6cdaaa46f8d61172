"""Import a whole catalogue into GarmentService from a CSV file and a folder of pictures.

Usage: python -m tryon.services.garment.import_catalogue --garment-service HOST:PORT --csv FILE
       [--images DIR] [--report FILE] [--resume REPORT [--resend-unknown]] [--auth-token TOKEN]
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

Rows go to ImportGarments in calls of ``--call-size`` garments (100 unless told); pictures are
read one at a time while the stream runs, so a catalogue of any size needs little memory. A row
this command cannot send (a missing column value, an unknown category, a picture that is missing
or over 8 MiB) and a row the service refuses are reported alike, and the rest go on. The report
(``--report``, CSV: row, id, garment_id, status, message) has one line per row; the summary
on stderr gives the counts and the garments registered per second.

A call that fails (the service stopped, the network broke, the deadline passed) or Ctrl-C stops
the import. The service registers a call's garments one by one as it reads them but answers their
ids only at the call's end, so the rows of the failed call that were already sent have the
status ``unknown``: each may be registered or not. Rows of earlier calls keep their outcome and
later rows are ``not sent``. The report is written then too (without ``--report``, to
``<csv name>.report.csv`` beside the CSV). RegisterGarment gives every registration a new
garment id, so nothing on the service tells a row sent twice from two garments: a rerun with
``--resume REPORT`` skips the rows that report lists as registered, and also the unknown ones
unless ``--resend-unknown`` is given (then each of them that was registered is registered a
second time). Small calls keep the unknown rows few.

Exit status: 0 when every row was registered, 1 when some were refused or are unknown, 2 when
the CSV or the report to resume from cannot be used or the service does not answer within
``--connect-timeout`` (nothing is sent then), 3 when a call failed or Ctrl-C stopped the import
(a call refused whole, for a missing token say, leaves its rows ``not sent``).

``--write-example`` writes a folder of product-like pictures made from Fashion-MNIST
(`tryon.services.garment.product_images`) with its ``catalogue.csv``: the demo's catalogue,
and a way to try the command.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

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
CALL_GARMENTS = 100
"""Garments sent in one ImportGarments call unless told: at most this many rows are unknown after a failed call."""
REPORT_COLUMNS = ("row", "id", "garment_id", "status", "message")
"""The report's header."""

REFUSED_WHOLE = (
    grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNIMPLEMENTED
)
"""Status codes of a call refused before its handler read a garment: none of its rows was registered."""

REGISTERED = "registered"
"""Status of a row the service registered: its garment_id is in the report."""
REFUSED = "refused"
"""Status of a row this command or the service refused; the message says what to fix."""
UNKNOWN = "unknown"
"""Status of a row sent in a call that failed: the service may or may not have registered it."""
NOT_SENT = "not sent"
"""Status of a row the import stopped before."""


@dataclass(frozen=True)
class RowOutcome:
    """What became of one CSV row (numbered from 2, the first line after the header)."""

    row: int
    item_ref: str
    garment_id: str = ""
    message: str = ""
    status: str = ""

    def __post_init__(self) -> None:
        if not self.status:
            object.__setattr__(self, "status", REGISTERED if self.garment_id else REFUSED)

    @property
    def registered(self) -> bool:
        """True when the service registered the row's garment."""
        return self.status == REGISTERED


@dataclass(frozen=True)
class ImportReport:
    """Every row's outcome, the seconds the import took, and why it stopped ("" when it did not)."""

    outcomes: list[RowOutcome]
    seconds: float
    failure: str = ""

    @property
    def registered_count(self) -> int:
        """Rows registered."""
        return sum(outcome.registered for outcome in self.outcomes)

    def count(self, status: str) -> int:
        """Rows with ``status``."""
        return sum(outcome.status == status for outcome in self.outcomes)


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
    call_size: int = CALL_GARMENTS,
    earlier: Mapping[int, RowOutcome] | None = None,
) -> ImportReport:
    """Send the rows through ImportGarments, ``call_size`` (1 to ``MAX_IMPORT_GARMENTS``) a call; one
    outcome per row.

    Rows with an outcome in ``earlier`` (by row number) are not sent; that outcome is theirs. A
    failed call stops the import: its rows already sent become ``UNKNOWN``, the rest ``NOT_SENT``,
    and the report's ``failure`` says why.
    """
    if not 1 <= call_size <= MAX_IMPORT_GARMENTS:
        raise ValueError(f"call_size must be 1 to {MAX_IMPORT_GARMENTS}; got {call_size}")
    started = time.perf_counter()
    outcomes: dict[int, RowOutcome] = dict(earlier or {})
    pending = [(number, row) for number, row in enumerate(rows, start=2) if number not in outcomes]
    for first in range(0, len(pending), call_size):
        chunk = pending[first : first + call_size]
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

        try:
            answer = stub.ImportGarments(stream(), timeout=timeout_s, metadata=list(metadata))
        except (grpc.RpcError, KeyboardInterrupt) as error:
            if isinstance(error, KeyboardInterrupt):
                failure = "interrupted (Ctrl-C) during an ImportGarments call"
            else:
                failure = f"GarmentService answered {error.code().name}: {error.details()}"
            refused_whole = not isinstance(error, KeyboardInterrupt) and error.code() in REFUSED_WHOLE
            for row_number, item_ref in sent:
                outcomes[row_number] = (
                    RowOutcome(row_number, item_ref, status=NOT_SENT,
                               message=f"not registered: the call was refused before any garment was read ({failure})")
                    if refused_whole else
                    RowOutcome(row_number, item_ref, status=UNKNOWN,
                               message=f"sent in an ImportGarments call that failed ({failure}); it may be registered")
                )
            stopped_at = sent[0][0] if sent else chunk[0][0]
            for row_number, row in pending[first:]:
                if row_number not in outcomes:
                    outcomes[row_number] = RowOutcome(
                        row_number, (row.get("id") or "").strip(), status=NOT_SENT,
                        message=f"not sent: the import stopped at row {stopped_at}",
                    )
            return ImportReport([outcomes[n] for n in sorted(outcomes)], time.perf_counter() - started, failure)
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
    """The report CSV: row, id, garment_id, status (registered, refused, unknown or not sent), message."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        _write_report_lines(report, handle)


def _write_report_lines(report: ImportReport, handle: TextIO) -> None:
    writer = csv.writer(handle)
    writer.writerow(REPORT_COLUMNS)
    for outcome in report.outcomes:
        writer.writerow([outcome.row, outcome.item_ref, outcome.garment_id, outcome.status, outcome.message])


def outcomes_to_keep(
    report_path: Path, rows: Sequence[dict[str, str]], *, resend_unknown: bool = False
) -> dict[int, RowOutcome]:
    """The outcomes of an earlier report of the same CSV that a rerun keeps instead of sending the row
    again: the registered rows, and the unknown ones unless ``resend_unknown``.

    ValueError naming the line when the file is not such a report or was written for another CSV
    (a row beyond the CSV's end, or whose id differs from the CSV's).
    """
    kept: dict[int, RowOutcome] = {}
    with report_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != REPORT_COLUMNS:
            raise ValueError(f"{report_path} is not a report of this command; its header must be {','.join(REPORT_COLUMNS)}")
        for line_number, line in enumerate(reader, start=2):
            row_text = (line["row"] or "").strip()
            if not row_text.isdigit() or not 2 <= int(row_text) < len(rows) + 2:
                raise ValueError(
                    f"{report_path} line {line_number} names row {row_text!r}, which the CSV does not have; "
                    "resume only from the report of the same CSV"
                )
            row = int(row_text)
            csv_id = (rows[row - 2].get("id") or "").strip()
            if line["id"] != csv_id:
                raise ValueError(
                    f"{report_path} line {line_number} gives row {row} the id {line['id']!r}, the CSV {csv_id!r}; "
                    "resume only from the report of the same CSV, unchanged since"
                )
            status = line["status"]
            if status == REGISTERED and line["garment_id"]:
                kept[row] = RowOutcome(row, csv_id, line["garment_id"], "registered by an earlier run")
            elif status == UNKNOWN and not resend_unknown:
                kept[row] = RowOutcome(
                    row, csv_id, status=UNKNOWN,
                    message="not sent again: an earlier run sent it in a call that failed, so it may be "
                    "registered; check the catalogue, or rerun with --resend-unknown",
                )
    return kept


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
    parser.add_argument(
        "--report", type=Path,
        help="write one line per row here (CSV; default, when a row was not registered: <csv name>.report.csv beside the CSV)",
    )
    parser.add_argument("--resume", type=Path, metavar="REPORT",
                        help="the report of an earlier run of this CSV: its registered rows are not sent again")
    parser.add_argument("--resend-unknown", action="store_true",
                        help="with --resume, send again the rows whose fate the earlier run could not learn")
    parser.add_argument("--call-size", type=int, default=CALL_GARMENTS,
                        help=f"garments per ImportGarments call, 1 to {MAX_IMPORT_GARMENTS}")
    parser.add_argument("--auth-token", default="", help="bearer token, when the service requires one")
    parser.add_argument("--tls-ca-file", type=Path, help="CA that signed GarmentService's certificate: call over TLS")
    parser.add_argument("--tls-cert-file", type=Path, help="client certificate, when GarmentService requires mTLS")
    parser.add_argument("--tls-key-file", type=Path, help="the client certificate's key")
    parser.add_argument("--timeout", type=float, default=3600.0, help="deadline of one ImportGarments call (s)")
    parser.add_argument("--connect-timeout", type=float, default=10.0,
                        help="how long to wait for GarmentService to answer before sending anything (s)")
    parser.add_argument("--write-example", type=Path, metavar="DIR", help="write an example catalogue folder and exit")
    parser.add_argument("--count", type=int, default=100, help="garments of --write-example")
    args = parser.parse_args(argv)
    if args.write_example is not None:
        print(write_example(args.write_example, args.count))
        return 0
    if not args.garment_service or args.csv is None:
        parser.error("--garment-service and --csv are required (or --write-example)")
    if not 1 <= args.call_size <= MAX_IMPORT_GARMENTS:
        parser.error(f"--call-size must be 1 to {MAX_IMPORT_GARMENTS}")
    if args.resend_unknown and args.resume is None:
        parser.error("--resend-unknown goes with --resume REPORT")
    try:
        rows = read_rows(args.csv)
        earlier = outcomes_to_keep(args.resume, rows, resend_unknown=args.resend_unknown) if args.resume else {}
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
        try:
            grpc.channel_ready_future(channel).result(timeout=args.connect_timeout)
        except grpc.FutureTimeoutError:
            # Nothing was sent: a failed first call would leave its rows of unknown fate instead.
            print(
                f"import_catalogue: GarmentService at {args.garment_service} did not answer within "
                f"{args.connect_timeout:g} s; check --garment-service (and --tls-ca-file for a service that "
                "speaks TLS) and that the service runs. Nothing was sent.",
                file=sys.stderr,
            )
            return 2
        stub = garment_service_pb2_grpc.GarmentServiceStub(channel)
        report = import_rows(
            stub, rows, args.images or args.csv.parent, metadata=metadata, timeout_s=args.timeout,
            call_size=args.call_size, earlier=earlier,
        )
    not_registered = [outcome for outcome in report.outcomes if not outcome.registered]
    report_path = args.report
    if report_path is None and not_registered:
        report_path = args.csv.with_name(f"{args.csv.stem}.report.csv")
    if report_path is not None:
        try:
            write_report(report, report_path)
        except OSError as error:
            print(f"import_catalogue: the report cannot be written to {report_path} ({error}); it follows on stdout",
                  file=sys.stderr)
            _write_report_lines(report, sys.stdout)
            report_path = None
    for outcome in [o for o in not_registered if o.status != NOT_SENT][:20]:
        print(f"row {outcome.row} ({outcome.item_ref or 'no id'}): {outcome.message}", file=sys.stderr)
    registered_now = report.registered_count - sum(outcome.registered for outcome in earlier.values())
    rate = registered_now / report.seconds if report.seconds > 0 else 0.0
    print(
        f"registered {report.registered_count} of {len(report.outcomes)} rows ({registered_now} in this run), "
        f"refused {report.count(REFUSED)}, unknown {report.count(UNKNOWN)}, not sent {report.count(NOT_SENT)}, "
        f"in {report.seconds:.1f} s ({rate:.1f} garments/s)",
        file=sys.stderr,
    )
    if report.failure:
        where = f"The report {report_path}" if report_path is not None else "The report above"
        resume = f"--resume {report_path}" if report_path is not None else "--resume REPORT (the report above, saved)"
        print(
            f"import_catalogue: the import stopped: {report.failure}. {where} lists every row's status. "
            "Fix what it says, or wait until GarmentService answers again, then run the same command with "
            f"{resume}: it skips the registered rows and sends the rest. The {report.count(UNKNOWN)} unknown "
            "rows were sent in a call that failed and may be registered; they are not sent again unless you "
            "add --resend-unknown, which registers a second garment for each of them that was.",
            file=sys.stderr,
        )
        return 3
    return 0 if not not_registered else 1


if __name__ == "__main__":
    sys.exit(main())
