"""RenderTryOn latency (p50/p99) and throughput on loopback, with BodyService on loopback too.

Run: ``python tests/benchmarks/bench_render_tryon.py [--requests N] [--time-cap S] [--concurrency 1 4]``

BodyService and GarmentService run as their own processes through the suite launcher (with an
embedded broker unless ``KAFKA_BOOTSTRAP_SERVERS`` is set). Models are loaded from
``<data-dir>/<service>/...`` or trained on start when missing (saved for the next run). The
script creates bodies, registers garments from Fashion-MNIST test pictures, then measures: the
health Check of GarmentService (reference), BodyService.GetBodyMesh alone (what a try-on asks of
BodyService the first time it draws a body; GarmentService then keeps the mesh for a minute), and
RenderTryOn with one and with three garments at 256 x 512, and with three garments at 1024 x 2048,
each garment at the body's own size (``bench_tryon.py`` measures chosen sizes at 512 x 1024).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import health_baseline, measure_unary, print_report, require_loopback  # noqa: E402

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from tryon.services.garment import images  # noqa: E402
from tryon.services.garment.categories import label_from_name  # noqa: E402
from tryon.services.garment.dataset import load_fashion_mnist  # noqa: E402
from tryon.shared.contract import category_to_proto  # noqa: E402
from tryon.shared.launcher import LocalSuite  # noqa: E402
from tryon.shared.proto import (  # noqa: E402
    body_service_pb2,
    body_service_pb2_grpc,
    common_pb2,
    garment_service_pb2 as pb,
    garment_service_pb2_grpc,
)
from tryon.shared.results import add_results_option, recording_stdout  # noqa: E402

OUTFIT = ("trouser", "t_shirt_top", "sneaker")


def create_bodies(stub: body_service_pb2_grpc.BodyServiceStub, count: int) -> list[str]:
    """Bodies of different statures and weights."""
    bodies = []
    for index in range(count):
        measurements = [
            common_pb2.MeasurementValue(name="stature", value=1550.0 + 40.0 * index),
            common_pb2.MeasurementValue(name="weight", value=55.0 + 6.0 * index),
        ]
        sex = common_pb2.SEX_FEMALE if index % 2 else common_pb2.SEX_MALE
        bodies.append(stub.CreateBody(body_service_pb2.CreateBodyRequest(measurements=measurements, sex=sex), timeout=60).body.body_id)
    return bodies


def wait_for_meshes(stub: body_service_pb2_grpc.BodyServiceStub, body_id: str, timeout_s: float = 300.0) -> None:
    """Return once BodyService gives a mesh: it loads its mesh model in the background after start."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            stub.GetBodyMesh(body_service_pb2.GetBodyMeshRequest(body_id=body_id), timeout=60)
            return
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def register_outfit(stub: garment_service_pb2_grpc.GarmentServiceStub) -> list[str]:
    """Registers one garment of each OUTFIT category from the Fashion-MNIST test set; returns their ids."""
    pictures, labels = load_fashion_mnist("test")
    ids = []
    for name in OUTFIT:
        label = label_from_name(name)
        picture = pictures[np.flatnonzero(labels == label)[0]]
        request = pb.RegisterGarmentRequest(
            image=images.encode_png(picture / 255.0), name=name, category=category_to_proto(label),
            price=common_pb2.Money(currency_code="EUR", amount_minor=1000),
        )
        ids.append(stub.RegisterGarment(request, timeout=60).garment.garment_id)
    return ids


def main() -> None:
    """Start the services, measure each row and print one table per concurrency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="calls per row at most")
    parser.add_argument("--time-cap", type=float, default=10.0, help="seconds per row at most")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="client threads")
    parser.add_argument("--data-dir", type=Path, default=Path("var/bench-tryon"), help="suite data folder")
    parser.add_argument("--body-epochs", type=int, default=30, help="body model epochs if it must be trained")
    parser.add_argument("--garment-epochs", type=int, default=2, help="garment model epochs if they must be trained")
    parser.add_argument("--garment-images", type=int, default=10000, help="garment training images if trained")
    add_results_option(parser)
    arguments = parser.parse_args()
    with recording_stdout(arguments.results, "bench_render_tryon", "RenderTryOn and GetBodyMesh against the health Check"):
        extra_env = {
            "TRYON_BODY_TRAIN_EPOCHS": str(arguments.body_epochs),
            "TRYON_BODY_LOG_LEVEL": "WARNING",
            "TRYON_GARMENT_TRAIN_EPOCHS": str(arguments.garment_epochs),
            "TRYON_GARMENT_TRAIN_IMAGES": str(arguments.garment_images),
            "TRYON_GARMENT_LOG_LEVEL": "WARNING",
        }
        started = time.perf_counter()
        with LocalSuite(
            arguments.data_dir, services=("body", "garment"), extra_env=extra_env, startup_timeout_s=1800
        ) as suite:
            garment_address, body_address = suite.address("garment"), suite.address("body")
            require_loopback(garment_address)
            require_loopback(body_address)
            print(f"services SERVING after {time.perf_counter() - started:.1f} s", flush=True)
            with grpc.insecure_channel(garment_address) as garment_channel, grpc.insecure_channel(body_address) as body_channel:
                garments = garment_service_pb2_grpc.GarmentServiceStub(garment_channel)
                bodies = body_service_pb2_grpc.BodyServiceStub(body_channel)
                created = create_bodies(bodies, 8)
                wait_for_meshes(bodies, created[0])
                body_ids = itertools.cycle(created)
                trousers, top, shoes = register_outfit(garments)

                def try_on(garment_ids: list[str], width: int = 0, height: int = 0):
                    request = pb.RenderTryOnRequest(body_id=next(body_ids), garment_ids=garment_ids, width=width, height=height)
                    return lambda: garments.RenderTryOn(request, timeout=60)

                for concurrency in arguments.concurrency:
                    def measure(call_factory):
                        calls = itertools.cycle([call_factory() for _ in range(8)])
                        return measure_unary(lambda: next(calls)(), arguments.requests, concurrency, arguments.time_cap)

                    results = {
                        "health Check (GarmentService)": health_baseline(
                            garment_address, arguments.requests, concurrency, arguments.time_cap
                        ),
                        "GetBodyMesh (BodyService)": measure(
                            lambda: (lambda request=body_service_pb2.GetBodyMeshRequest(body_id=next(body_ids)):
                                     bodies.GetBodyMesh(request, timeout=60))
                        ),
                        "RenderTryOn 1 garment, 256x512": measure(lambda: try_on([top])),
                        "RenderTryOn 3 garments, 256x512": measure(lambda: try_on([trousers, top, shoes])),
                        "RenderTryOn 3 garments, 1024x2048": measure(lambda: try_on([trousers, top, shoes], 1024, 2048)),
                    }
                    print_report(results, "health Check (GarmentService)", concurrency, arguments.requests, arguments.time_cap)
            statuses = suite.stop()
        print(f"\nexit statuses after SIGTERM: {statuses}")


if __name__ == "__main__":
    main()
