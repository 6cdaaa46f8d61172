"""Garments per second of the import command by the number of garments it sends in one call.

Run: ``python tests/benchmarks/bench_import_calls.py [--garments 200] [--call-sizes 10000 100 10]
[--rounds 3] [--results docs/results.md]``

The import command sends 100 garments a call: a call that fails leaves the rows it had sent of
unknown fate (their ids come only with the call's answer), so smaller calls leave fewer of them.
This measures what the smaller calls cost. GarmentService runs in this process on loopback with the
shipped garment models and no event broker, as in ``bench_catalogue.py``; each call size imports the
same product pictures (448 x 448 JPEG made from Fashion-MNIST) into a fresh catalogue, through the
command's own code (`import_catalogue.import_rows`), once per round, the sizes taking turns; the
median, least and greatest rate of the rounds are printed.
"""

from __future__ import annotations

import argparse
import statistics
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


def _import(models: GarmentModels, rows: list[dict[str, str]], images: Path, folder: Path, call_size: int) -> float:
    """Import ``rows`` into a fresh catalogue under ``folder``, ``call_size`` a call; the seconds it took."""
    domain = GarmentDomain(Catalogue(folder), models)
    running = serve("garment", [registration(GarmentServicer(domain))], ServerSettings(port=0, grace_seconds=1.0))
    try:
        with grpc.insecure_channel(running.address) as channel:
            stub = garment_service_pb2_grpc.GarmentServiceStub(channel)
            report = import_catalogue.import_rows(stub, rows, images, call_size=call_size)
    finally:
        running.stop(0)
    if report.registered_count != len(rows):
        raise RuntimeError(f"{len(rows) - report.registered_count} garments were not registered: {report.failure}")
    return report.seconds


def bench(garments: int, call_sizes: list[int], rounds: int, folder: Path) -> None:
    """Import ``garments`` pictures per call size, ``rounds`` times in turn; print the garments per second."""
    csv_path = import_catalogue.write_example(folder / "shop", garments)
    rows = import_catalogue.read_rows(csv_path)
    models = GarmentModels.load(SHIPPED_DIR)
    # The models' and the server's first calls are slower, and would count against the first size.
    _import(models, rows[:20], csv_path.parent, folder / "warm-up", 20)
    rates: dict[int, list[float]] = {size: [] for size in call_sizes}
    for round_number in range(rounds):
        # In turn, so that a change in the machine's load falls on every size alike.
        for size in call_sizes:
            seconds = _import(models, rows, csv_path.parent, folder / f"catalogue-{round_number}-{size}", size)
            rates[size].append(garments / seconds)
    print(f"{garments} product pictures (448 x 448 JPEG), shipped models, no broker; {rounds} rounds in turn")
    print(f"{'garments a call':>15} {'calls':>6} {'median garments/s':>18} {'min':>6} {'max':>6}")
    for size in call_sizes:
        values = rates[size]
        print(f"{size:>15} {-(-garments // size):>6} {statistics.median(values):>18.1f} "
              f"{min(values):>6.1f} {max(values):>6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--garments", type=int, default=200, help="pictures imported per call size and round")
    parser.add_argument("--call-sizes", type=int, nargs="+", default=[10_000, 100, 10])
    parser.add_argument("--rounds", type=int, default=3, help="imports per call size, the sizes in turn")
    add_results_option(parser)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder, recording_stdout(
        arguments.results, "bench_import_calls", "Import command: garments per second by garments a call"
    ):
        bench(arguments.garments, arguments.call_sizes, arguments.rounds, Path(folder))


if __name__ == "__main__":
    main()
