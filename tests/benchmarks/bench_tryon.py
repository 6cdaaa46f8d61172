"""Size-true try-on latency: RenderTryOn at 512 x 1024 with the body drawn or cached, and RenderTryOnModel.

Run: ``python tests/benchmarks/bench_tryon.py [--requests N] [--time-cap S] [--results docs/results.md]``

GarmentService is served on loopback (real gRPC, the real servicer and domain, no models: try-on
needs none) over a catalogue of a T-shirt, trousers and sneakers as colour product pictures. Its
body source hands out the median ANSUR II woman's mesh as fitted by BodyService's mesh model
(`tryon_pictures`), in process: BodyService's own fit and the GetBodyMesh transfer are not in these
rows (``bench_render_tryon.py`` runs both services). Rows:

- drawing the body alone (the mesh rasterised and shaded, in process), what a first try-on pays;
- RenderTryOn with one and with three garments at chosen sizes, the body's drawing cached (a
  shopper trying sizes);
- RenderTryOn with three garments where every call names another body id (more than the caches
  hold), so every call draws the body;
- RenderTryOnModel (texture 1024) with two garments, the body's drawings cached;

and, since latency on a shared machine depends on its load, the process CPU time of one call of
each (what a call costs a core, the latency a quiet core would show).

Beside them, the per-image times diffusion try-on models publish (quoted, not measured here).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import health_baseline, measure_unary, print_report, require_loopback  # noqa: E402

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from tryon.services.body.mesh import MeshModel  # noqa: E402
from tryon.services.garment import images  # noqa: E402
from tryon.services.garment.catalogue import Catalogue, Garment  # noqa: E402
from tryon.services.garment.categories import label_from_name  # noqa: E402
from tryon.services.garment.dataset import load_fashion_mnist  # noqa: E402
from tryon.services.garment.domain import GarmentDomain  # noqa: E402
from tryon.services.garment.mesh_render import draw_body  # noqa: E402
from tryon.services.garment.product_images import product_bytes  # noqa: E402
from tryon.services.garment.servicer import GarmentServicer, registration  # noqa: E402
from tryon.services.garment.tryon_pictures import as_garment_mesh, survey_women  # noqa: E402
from tryon.shared.proto import garment_service_pb2 as pb, garment_service_pb2_grpc  # noqa: E402
from tryon.shared.results import add_results_option, recording_stdout  # noqa: E402
from tryon.shared.server import serve  # noqa: E402
from tryon.shared.settings import ServerSettings  # noqa: E402

WIDTH, HEIGHT = 512, 1024
CPU_CALLS = 20
"""Calls per row of the CPU-time table."""
UNCACHED_BODIES = 100
"""Body ids the uncached row cycles through: more than the try-on caches keep (32 meshes, 64 drawings)."""
PUBLISHED = """\
Diffusion try-on, per image, as published (CatVTON, Chong et al. 2024, table of inference cost on
one NVIDIA A100; not measured here): IDM-VTON, OOTDiffusion and CatVTON take from 2.6 s to 36 s
per image, and none of them takes a garment size as input."""


def cpu_per_call(call, calls: int) -> float:
    """Median process CPU time of one call, in milliseconds."""
    spent = []
    for _ in range(calls):
        started = time.process_time()
        call()
        spent.append(time.process_time() - started)
    return float(np.median(spent) * 1000.0)


def catalogue(folder: Path) -> Catalogue:
    """A T-shirt (EN 13402 women's tops), trousers (German women's sizes) and sneakers (no chart)."""
    pictures, labels = load_fashion_mnist("test")
    garments = Catalogue(folder)
    for garment_id, category, chart, seed in (
        ("top", "t_shirt_top", {"chart_id": "en13402_womens_tops", "sizes": []}, 1),
        ("trousers", "trouser", {"chart_id": "eu_womens_trousers", "sizes": []}, 5),
        ("sneakers", "sneaker", None, 2),
    ):
        label = label_from_name(category)
        levels = pictures[np.flatnonzero(labels == label)[0]]
        garment = Garment(garment_id, category, label, "EUR", 1000, chart, np.zeros(1, np.float32), images.encode_png(levels / 255.0))
        garments.add(garment, original=product_bytes(levels, seed=seed))
    return garments


def main() -> None:
    """Fit the body, serve GarmentService, measure each row and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="calls per row at most")
    parser.add_argument("--time-cap", type=float, default=20.0, help="seconds per row at most")
    add_results_option(parser)
    arguments = parser.parse_args()
    with recording_stdout(arguments.results, "bench_tryon", "Size-true try-on: RenderTryOn at 512 x 1024 and RenderTryOnModel"):
        model = MeshModel.load(Path("var/cache/mesh").resolve())
        mesh = as_garment_mesh(model.fit(survey_women()["median"], "female"))
        print(f"body mesh: {len(mesh.vertices_mm)} vertices, {len(mesh.faces)} triangles")
        with tempfile.TemporaryDirectory() as folder:
            domain = GarmentDomain(catalogue(Path(folder)), bodies=lambda body_id: mesh)
            running = serve("garment", [registration(GarmentServicer(domain))], ServerSettings(port=0, grace_seconds=0.5))
            require_loopback(running.address)
            try:
                with grpc.insecure_channel(running.address) as channel:
                    stub = garment_service_pb2_grpc.GarmentServiceStub(channel)
                    one = [pb.TryOnGarment(garment_id="top", size_label="M")]
                    three = [
                        pb.TryOnGarment(garment_id="trousers", size_label="44"),
                        pb.TryOnGarment(garment_id="top", size_label="M"),
                        pb.TryOnGarment(garment_id="sneakers"),
                    ]
                    fresh_ids = itertools.cycle([f"body-{index}" for index in range(UNCACHED_BODIES)])

                    def try_on(garments, body_id: str = "cached") -> object:
                        request = pb.RenderTryOnRequest(body_id=body_id, garments=garments, width=WIDTH, height=HEIGHT)
                        return stub.RenderTryOn(request, timeout=60)

                    def model_call() -> object:
                        request = pb.RenderTryOnModelRequest(body_id="cached", garments=three[:2], texture_size=1024)
                        return stub.RenderTryOnModel(request, timeout=60)

                    capped = max(1, arguments.requests // 5)
                    results = {
                        "health Check (GarmentService)": health_baseline(running.address, arguments.requests, 1, arguments.time_cap),
                        "draw body 512x1024 (in process, no RPC)": measure_unary(
                            lambda: draw_body(mesh, "front", WIDTH, HEIGHT), capped, 1, arguments.time_cap
                        ),
                        "RenderTryOn 1 garment, body cached": measure_unary(lambda: try_on(one), arguments.requests, 1, arguments.time_cap),
                        "RenderTryOn 3 garments, body cached": measure_unary(lambda: try_on(three), arguments.requests, 1, arguments.time_cap),
                        "RenderTryOn 3 garments, body drawn": measure_unary(
                            lambda: try_on(three, next(fresh_ids)), capped, 1, arguments.time_cap
                        ),
                        "RenderTryOnModel 2 garments, texture 1024": measure_unary(model_call, capped, 1, arguments.time_cap),
                        "RenderTryOn 3 garments, body cached, 2 clients": measure_unary(
                            lambda: try_on(three), arguments.requests, 2, arguments.time_cap
                        ),
                    }
                    cpu_rows = {
                        "RenderTryOn 1 garment, body cached": lambda: try_on(one),
                        "RenderTryOn 3 garments, body cached": lambda: try_on(three),
                        "RenderTryOn 3 garments, body drawn": lambda: try_on(three, next(fresh_ids)),
                        "RenderTryOnModel 2 garments, texture 1024": model_call,
                    }
                    cpu_ms = {label: cpu_per_call(call, CPU_CALLS) for label, call in cpu_rows.items()}
                    started = time.perf_counter()
                    glb = model_call().glb
                    print(f"one GLB: {len(glb) / 1024:.0f} KiB in {time.perf_counter() - started:.2f} s")
                    png = try_on(three).png
                    print(f"one 512x1024 try-on PNG: {len(png) / 1024:.0f} KiB")
                    print_report(results, "health Check (GarmentService)", 1, arguments.requests, arguments.time_cap)
                    print(f"\nCPU time per call, median of {CPU_CALLS} calls (client, server and rendering share this")
                    print("process, so this is what one call costs a core; on a loaded machine wall time is longer):")
                    for label, value in cpu_ms.items():
                        print(f"  {label:<44} {value:8.1f} ms")
            finally:
                running.stop(0)
        print()
        print(PUBLISHED)


if __name__ == "__main__":
    main()
