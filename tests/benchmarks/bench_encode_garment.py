"""EncodeGarment throughput and latency on loopback, divided by the health Check of the same server.

Run: ``python tests/benchmarks/bench_encode_garment.py [--requests N] [--time-cap S] [--concurrency 1 4]``

GarmentService runs as its own process (``python -m tryon.services.garment`` through the suite
launcher, with an embedded broker unless ``KAFKA_BOOTSTRAP_SERVERS`` is set), so client and
server do not share a GIL. Its models are loaded from ``<data-dir>/garment/models``; when
missing, the service trains them on start for ``--train-epochs`` epochs on ``--train-images``
Fashion-MNIST images (saved for the next run). Rows: the health Check (reference), EncodeGarment
of a 28 x 28 Fashion-MNIST PNG with its category given, the same with the category predicted,
and of a 1024 x 1024 JPEG photo (decode, negate, crop, resize, then encode).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import health_baseline, measure_unary, print_report, require_loopback  # noqa: E402

import grpc  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from tryon.services.garment import images  # noqa: E402
from tryon.services.garment.dataset import load_fashion_mnist  # noqa: E402
from tryon.shared.contract import category_to_proto  # noqa: E402
from tryon.shared.launcher import LocalSuite  # noqa: E402
from tryon.shared.proto import common_pb2, garment_service_pb2 as pb, garment_service_pb2_grpc  # noqa: E402
from tryon.shared.results import add_results_option, recording_stdout  # noqa: E402


def photo_of(levels: np.ndarray, side: int = 1024) -> bytes:
    """A JPEG 'photo' of a Fashion-MNIST garment: dark garment on a white background, upscaled."""
    grey = Image.fromarray(np.uint8(255 - levels), mode="L").resize((side * 3 // 4, side * 3 // 4), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (side, side), "white")
    canvas.paste(grey.convert("RGB"), (side // 8, side // 8))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def main() -> None:
    """Start the service, measure each row and print one table per concurrency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="calls per row at most")
    parser.add_argument("--time-cap", type=float, default=10.0, help="seconds per row at most")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="client threads")
    parser.add_argument("--data-dir", type=Path, default=Path("var/bench-garment"), help="suite data folder")
    parser.add_argument("--train-epochs", type=int, default=2, help="epochs if the models must be trained")
    parser.add_argument("--train-images", type=int, default=10000, help="training images if the models must be trained")
    add_results_option(parser)
    arguments = parser.parse_args()
    with recording_stdout(arguments.results, "bench_encode_garment", "EncodeGarment against the health Check"):
        pictures, labels = load_fashion_mnist("test")
        small = [images.encode_png(picture / 255.0) for picture in pictures[:200]]
        small_categories = [category_to_proto(int(label)) for label in labels[:200]]
        photo = photo_of(pictures[0])
        extra_env = {
            "TRYON_GARMENT_TRAIN_EPOCHS": str(arguments.train_epochs),
            "TRYON_GARMENT_TRAIN_IMAGES": str(arguments.train_images),
            "TRYON_GARMENT_LOG_LEVEL": "WARNING",
        }
        started = time.perf_counter()
        with LocalSuite(arguments.data_dir, services=("garment",), extra_env=extra_env, startup_timeout_s=1800) as suite:
            address = suite.address("garment")
            require_loopback(address)
            print(f"garment service SERVING after {time.perf_counter() - started:.1f} s", flush=True)
            with grpc.insecure_channel(address) as channel:
                stub = garment_service_pb2_grpc.GarmentServiceStub(channel)
                counter = iter(range(10**9))

                def encode_small(with_category: bool) -> object:
                    index = next(counter) % len(small)
                    category = small_categories[index] if with_category else common_pb2.GARMENT_CATEGORY_UNSPECIFIED
                    return stub.EncodeGarment(pb.EncodeGarmentRequest(image=small[index], category=category), timeout=30)

                for concurrency in arguments.concurrency:
                    results = {
                        "health Check": health_baseline(address, arguments.requests, concurrency, arguments.time_cap),
                        "EncodeGarment 28x28 PNG, category given": measure_unary(
                            lambda: encode_small(True), arguments.requests, concurrency, arguments.time_cap
                        ),
                        "EncodeGarment 28x28 PNG, category predicted": measure_unary(
                            lambda: encode_small(False), arguments.requests, concurrency, arguments.time_cap
                        ),
                        f"EncodeGarment 1024x1024 JPEG ({len(photo) // 1024} KiB)": measure_unary(
                            lambda: stub.EncodeGarment(pb.EncodeGarmentRequest(image=photo), timeout=30),
                            arguments.requests, concurrency, arguments.time_cap,
                        ),
                    }
                    print_report(results, "health Check", concurrency, arguments.requests, arguments.time_cap)
            statuses = suite.stop()
        print(f"\nservice exit status after SIGTERM: {statuses['garment']}")


if __name__ == "__main__":
    main()
