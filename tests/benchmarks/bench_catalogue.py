"""Catalogue registration cost against catalogue size, and the garments per second of a bulk import.

Run: ``python tests/benchmarks/bench_catalogue.py [--sizes 1000 10000 100000] [--registrations 200]
[--parquet-registrations 20 10 5] [--import-garments 300] [--results docs/results.md]``

Part 1, the store alone, at each catalogue size, in one run:

- before: the Parquet catalogue the service kept until the SQLite store replaced it (a pandas
  DataFrame rewritten whole, through ``atomic_write``, on every registration; reproduced here as
  `ParquetCatalogue`, the reference). It kept no original picture.
- after: `tryon.services.garment.catalogue.Catalogue` (SQLite WAL, one row a registration, its
  commit flushed to the disk) with a `FileImageStore` that also writes the garment's original
  picture (a 448 x 448 product-like JPEG made from Fashion-MNIST) with its own flushes.

Each catalogue is first filled directly through its store (rows of real 28 x 28 pictures and
latents, no originals), then registrations are timed one by one: p50 and p99 per registration
in milliseconds, with the number timed (the Parquet rewrites at 100k take seconds each, so
fewer are timed; with n < 100, p99 is the slowest). Start-up: the seconds from opening the
catalogue to answering a first GetGarment and ListGarments page from it.

Part 2, a bulk import over gRPC: GarmentService in this process on loopback with the shipped
garment models and no event broker, fed ``--import-garments`` product pictures by the import
command's own code (`import_catalogue.import_rows`), against the same garments sent one
RegisterGarment call at a time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
import pandas as pd

from tryon.services.garment import images, import_catalogue
from tryon.services.garment.catalogue import Catalogue, Garment, new_garment_id
from tryon.services.garment.dataset import load_fashion_mnist
from tryon.services.garment.garment_models import GarmentModels
from tryon.services.garment.models_store import SHIPPED_DIR
from tryon.services.garment.product_images import product_bytes
from tryon.shared.files import atomic_write
from tryon.shared.proto import garment_service_pb2_grpc
from tryon.shared.results import add_results_option, recording_stdout

LATENT_DIM = 16
_PARQUET_COLUMNS = (
    "garment_id", "name", "category", "currency_code", "amount_minor", "size_chart_json", "content_latent", "image_png",
    "create_time",
)


class ParquetCatalogue:
    """The reference: the catalogue as a DataFrame, rewritten whole to Parquet on every registration."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._frame = pd.read_parquet(path).reset_index(drop=True) if path.exists() else pd.DataFrame(columns=list(_PARQUET_COLUMNS))
        self._position_by_id = {gid: index for index, gid in enumerate(self._frame["garment_id"])}

    def add(self, garment: Garment) -> None:
        """Append one garment and rewrite the file, as the service did."""
        with self._lock:
            frame = pd.concat([self._frame, pd.DataFrame([_parquet_row(garment)], columns=list(_PARQUET_COLUMNS))], ignore_index=True)
            atomic_write(self._path, lambda temporary: frame.to_parquet(temporary, index=False))
            self._frame = frame
            self._position_by_id[garment.garment_id] = len(frame) - 1

    def get(self, garment_id: str) -> pd.Series:
        """The row of a garment."""
        with self._lock:
            return self._frame.iloc[self._position_by_id[garment_id]]

    def first_page(self, size: int = 50) -> list:
        """The first ListGarments page."""
        with self._lock:
            return [row for _, row in self._frame.iloc[:size].iterrows()]


def _parquet_row(garment: Garment) -> dict:
    return {
        "garment_id": garment.garment_id, "name": garment.name, "category": garment.category,
        "currency_code": garment.currency_code, "amount_minor": garment.amount_minor, "size_chart_json": None,
        "content_latent": np.asarray(garment.content_latent, np.float32).tolist(), "image_png": garment.image_png,
        "create_time": garment.create_time.isoformat(),
    }


def _garments(count: int, pictures: np.ndarray, labels: np.ndarray, seed: int) -> list[Garment]:
    """Catalogue garments made from Fashion-MNIST pictures (28 x 28 PNGs) with random latents."""
    rng = np.random.default_rng(seed)
    pngs = [images.encode_png(pictures[i] / 255.0) for i in range(min(len(pictures), 500))]
    return [
        Garment(
            garment_id=new_garment_id(), name=f"garment {seed}-{index}", category=int(labels[index % len(pngs)]),
            currency_code="EUR", amount_minor=1000 + index % 5000, size_chart=None,
            content_latent=rng.normal(size=LATENT_DIM).astype(np.float32), image_png=pngs[index % len(pngs)],
        )
        for index in range(count)
    ]


def _percentiles(seconds: list[float]) -> str:
    milliseconds = np.asarray(seconds) * 1000.0
    return f"{np.percentile(milliseconds, 50):9.1f} {np.percentile(milliseconds, 99):9.1f} {len(seconds):5d}"


def _time_each(count: int, register: Callable[[int], None]) -> list[float]:
    times = []
    for index in range(count):
        started = time.perf_counter()
        register(index)
        times.append(time.perf_counter() - started)
    return times


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_store(sizes: list[int], registrations: int, parquet_registrations: list[int], folder: Path) -> None:
    pictures, labels = load_fashion_mnist("test")
    originals = [product_bytes(pictures[i], seed=i, file_format="JPEG") for i in range(20)]
    print(f"original pictures: 448 x 448 JPEG, mean {statistics.mean(map(len, originals)) / 1024:.0f} KiB")
    print(f"{'garments':>9} {'store':<8} {'p50 ms':>9} {'p99 ms':>9} {'n':>5}   start-up s")
    for size, parquet_count in zip(sizes, parquet_registrations, strict=True):
        filling = _garments(size, pictures, labels, seed=size)
        timed = _garments(max(registrations, parquet_count), pictures, labels, seed=size + 1)

        parquet_path = folder / f"parquet-{size}" / "catalogue.parquet"
        parquet_path.parent.mkdir(parents=True)
        pd.DataFrame([_parquet_row(g) for g in filling], columns=list(_PARQUET_COLUMNS)).to_parquet(parquet_path, index=False)
        parquet = ParquetCatalogue(parquet_path)
        parquet_times = _time_each(parquet_count, lambda i: parquet.add(timed[i]))
        del parquet
        parquet_start = _timed(lambda: (lambda c: (c.get(filling[size // 2].garment_id), c.first_page()))(ParquetCatalogue(parquet_path)))
        print(f"{size:9d} {'parquet':<8} {_percentiles(parquet_times)}   {parquet_start:8.3f}")

        sqlite_dir = folder / f"sqlite-{size}"
        catalogue = Catalogue(sqlite_dir)
        for first in range(0, size, 5000):
            catalogue.add_many((garment, None) for garment in filling[first : first + 5000])
        sqlite_times = _time_each(registrations, lambda i: catalogue.add(timed[i], original=originals[i % len(originals)]))
        del catalogue
        sqlite_start = _timed(lambda: (lambda c: (c.get(filling[size // 2].garment_id), c.list(50)))(Catalogue(sqlite_dir)))
        print(f"{size:9d} {'sqlite':<8} {_percentiles(sqlite_times)}   {sqlite_start:8.3f}")
        sys.stdout.flush()


def bench_import(count: int, folder: Path) -> None:
    from tryon.services.garment.domain import GarmentDomain
    from tryon.services.garment.servicer import GarmentServicer, registration
    from tryon.shared.server import serve
    from tryon.shared.settings import ServerSettings

    csv_path = import_catalogue.write_example(folder / "shop", count)
    rows = import_catalogue.read_rows(csv_path)
    models = GarmentModels.load(SHIPPED_DIR)
    domain = GarmentDomain(Catalogue(folder / "import-catalogue"), models)
    running = serve("garment", [registration(GarmentServicer(domain))], ServerSettings(port=0, grace_seconds=1.0))
    try:
        with grpc.insecure_channel(running.address) as channel:
            stub = garment_service_pb2_grpc.GarmentServiceStub(channel)
            report = import_catalogue.import_rows(stub, rows, csv_path.parent)
            requests = [import_catalogue.registration_request(row, csv_path.parent) for row in rows]
            started = time.perf_counter()
            for request in requests:
                stub.RegisterGarment(request, timeout=60)
            one_by_one = time.perf_counter() - started
    finally:
        running.stop(0)
    size = statistics.mean((csv_path.parent / row["image"]).stat().st_size for row in rows) / 1024
    print(f"\nbulk import of {count} product pictures (448 x 448 JPEG, mean {size:.0f} KiB), shipped models, no broker")
    print(f"ImportGarments (import command): {report.registered_count / report.seconds:7.1f} garments/s"
          f"  ({report.registered_count} registered in {report.seconds:.1f} s)")
    print(f"RegisterGarment one call each:   {count / one_by_one:7.1f} garments/s"
          f"  ({count} pictures read beforehand, {one_by_one:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--registrations", type=int, default=200, help="registrations timed per size (SQLite)")
    parser.add_argument("--parquet-registrations", type=int, nargs="+", default=[20, 10, 5],
                        help="registrations timed per size (Parquet), one number per size")
    parser.add_argument("--import-garments", type=int, default=300, help="garments of the bulk import (0: skip)")
    add_results_option(parser)
    arguments = parser.parse_args()
    if len(arguments.parquet_registrations) != len(arguments.sizes):
        parser.error("give one --parquet-registrations number per size")
    with tempfile.TemporaryDirectory(prefix="bench-catalogue-") as folder, recording_stdout(
        arguments.results, "bench_catalogue", "Catalogue registration against catalogue size, and bulk import"
    ):
        bench_store(arguments.sizes, arguments.registrations, arguments.parquet_registrations, Path(folder))
        if arguments.import_garments:
            bench_import(arguments.import_garments, Path(folder))


if __name__ == "__main__":
    main()
