"""Garments per second of the import command by the number of garments it sends in one call.

Run: ``python tests/benchmarks/bench_import_calls.py [--garments 300] [--call-sizes 10000 1000 100 10]
[--results docs/results.md]``

The import command sends 100 garments a call: a call that fails leaves the rows it had sent of
unknown fate (their ids come only with the call's answer), so smaller calls leave fewer of them.
This measures what the smaller calls cost. GarmentService runs in this process on loopback with the
shipped garment models and no event broker, as in ``bench_catalogue.py``; each call size imports the
same product pictures (448 x 448 JPEG made from Fashion-MNIST) into a fresh catalogue, through the
command's own code (`import_catalogue.import_rows`).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import grpc

from tryon.services.garment import import_catalogue
from tryon.services.garment.catalogue import Catalogue
from tryon.services.garment.domain import GarmentDomain
from tryon.services.garment.garment_models import GarmentModels
from tryon.services.garment.models_store import SHIPPED_DIR
from tryon.services.garment.servicer import GarmentServicer, registration
from tryon.shared.proto import garment_service_pb2_grpc
from tryon.shared.results import add_results_option, recording_stdout
from tryon.shared.server import serve
from tryon.shared.settings import ServerSettings


def bench(garments: int, call_sizes: list[int], folder: Path) -> None:
    """Import ``garments`` pictures once per call size and print the garments registered per second."""
    csv_path = import_catalogue.write_example(folder / "shop", garments)
    rows = import_catalogue.read_rows(csv_path)
    models = GarmentModels.load(SHIPPED_DIR)
    print(f"{garments} product pictures (448 x 448 JPEG), shipped models, no broker; a warm-up import of 20 first")
    print(f"{'garments a call':>15} {'calls':>6} {'garments/s':>11} {'seconds':>8}")
    for call_size in [0, *call_sizes]:
        # Size 0 is the warm-up: the models' and the server's first calls are slower, and would
        # count against whichever size came first.
        warm_up = call_size == 0
        domain = GarmentDomain(Catalogue(folder / f"catalogue-{call_size}"), models)
        running = serve("garment", [registration(GarmentServicer(domain))], ServerSettings(port=0, grace_seconds=1.0))
        try:
            with grpc.insecure_channel(running.address) as channel:
                stub = garment_service_pb2_grpc.GarmentServiceStub(channel)
                sent = rows[:20] if warm_up else rows
                report = import_catalogue.import_rows(stub, sent, csv_path.parent, call_size=call_size or 20)
        finally:
            running.stop(0)
        if report.registered_count != len(sent):
            raise RuntimeError(f"{len(sent) - report.registered_count} garments were not registered: {report.failure}")
        if warm_up:
            continue
        calls = -(-garments // call_size)
        print(f"{call_size:>15} {calls:>6} {garments / report.seconds:>11.1f} {report.seconds:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--garments", type=int, default=300, help="pictures imported per call size")
    parser.add_argument("--call-sizes", type=int, nargs="+", default=[10_000, 1000, 100, 10])
    add_results_option(parser)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder, recording_stdout(
        arguments.results, "bench_import_calls", "Import command: garments per second by garments a call"
    ):
        bench(arguments.garments, arguments.call_sizes, Path(folder))


if __name__ == "__main__":
    main()
