"""Pictures of a running GarmentService for people to look at, made through its public RPCs.

Run: ``python -m tryon.services.garment.showcase --garment-address HOST:PORT
[--body-address HOST:PORT] [--out var/showcase]``

Writes under ``--out``: ``generated_vae.png`` and ``generated_gan.png`` (GenerateGarments, one
row per category), ``interpolation.png`` (InterpolateGarments between two generated garments)
and, when BodyService is given, ``tryon.png``: two shoppers' bodies (CreateBody) wearing
outfits of catalogue garments (Fashion-MNIST test pictures registered with RegisterGarment),
drawn by RenderTryOn. Prints one line per file.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import grpc
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from tryon.services.garment import images  # noqa: E402
from tryon.services.garment.categories import CATEGORIES  # noqa: E402
from tryon.services.garment.dataset import load_fashion_mnist  # noqa: E402
from tryon.shared.contract import category_to_proto  # noqa: E402
from tryon.shared.proto import (  # noqa: E402
    body_service_pb2,
    body_service_pb2_grpc,
    common_pb2,
    garment_service_pb2 as pb,
    garment_service_pb2_grpc,
)

GENERATORS = {"vae": common_pb2.GENERATOR_VAE, "gan": common_pb2.GENERATOR_GAN}
SHOPPERS = {
    "shopper A (1.62 m, 55 kg)": (1620.0, 55.0, common_pb2.SEX_FEMALE),
    "shopper B (1.85 m, 105 kg)": (1850.0, 105.0, common_pb2.SEX_MALE),
}
OUTFITS = (
    ("trouser", "t_shirt_top", "sneaker"),
    ("dress", "sandal", "bag"),
    ("trouser", "coat", "ankle_boot"),
)


def _picture(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as picture:
        return np.asarray(picture.convert("RGBA" if picture.mode in ("RGBA", "LA", "P") else "L"))


def generated_grid(stub: garment_service_pb2_grpc.GarmentServiceStub, generator: str, count: int, seed: int, path: Path) -> dict[str, bytes]:
    """A grid of generated garments, one row per category; returns the first picture of each category."""
    figure, axes = plt.subplots(len(CATEGORIES), count, figsize=(count * 0.9, len(CATEGORIES) * 0.95))
    firsts = {}
    for row, name in enumerate(CATEGORIES):
        response = stub.GenerateGarments(
            pb.GenerateGarmentsRequest(category=category_to_proto(row), count=count, seed=seed, generator=GENERATORS[generator]),
            timeout=60,
        )
        firsts[name] = response.garments[0].png
        for column, garment in enumerate(response.garments):
            axes[row, column].imshow(_picture(garment.png), cmap="gray", vmin=0, vmax=255)
            axes[row, column].axis("off")
        axes[row, 0].set_title(name, fontsize=7, loc="left")
    figure.suptitle(f"GenerateGarments, {generator.upper()}, seed {seed}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return firsts


def interpolation_strip(stub: garment_service_pb2_grpc.GarmentServiceStub, start: bytes, end: bytes, path: Path) -> None:
    """InterpolateGarments between two pictures, as one strip."""
    response = stub.InterpolateGarments(
        pb.InterpolateGarmentsRequest(start=pb.GarmentRef(image=start), end=pb.GarmentRef(image=end), steps=10),
        timeout=60,
    )
    figure, axes = plt.subplots(1, len(response.frames), figsize=(len(response.frames) * 1.0, 1.3))
    for axis, frame in zip(axes, response.frames, strict=True):
        axis.imshow(_picture(frame.png), cmap="gray", vmin=0, vmax=255)
        axis.axis("off")
    figure.suptitle("InterpolateGarments, 10 steps")
    figure.savefig(path, dpi=110)
    plt.close(figure)


def catalogue_pictures(fashion_mnist_dir: Path | None) -> dict[str, bytes]:
    """PNG bytes of the first Fashion-MNIST test picture of each category, as a shop would upload them."""
    pictures, labels = load_fashion_mnist("test", fashion_mnist_dir)
    return {name: images.encode_png(pictures[np.flatnonzero(labels == label)[0]] / 255.0) for label, name in enumerate(CATEGORIES)}


def try_on_grid(
    garments: garment_service_pb2_grpc.GarmentServiceStub,
    bodies: body_service_pb2_grpc.BodyServiceStub,
    pictures: dict[str, bytes],
    path: Path,
) -> None:
    """Each shopper in each outfit, drawn by RenderTryOn."""
    registered = {}
    for name in sorted({name for outfit in OUTFITS for name in outfit}):
        request = pb.RegisterGarmentRequest(
            image=pictures[name], name=f"showcase {name.replace('_', ' ')}", category=category_to_proto(CATEGORIES.index(name)),
            price=common_pb2.Money(currency_code="EUR", amount_minor=2999),
        )
        registered[name] = garments.RegisterGarment(request, timeout=60).garment.garment_id
    figure, axes = plt.subplots(len(SHOPPERS), len(OUTFITS), figsize=(len(OUTFITS) * 2.2, len(SHOPPERS) * 4.2))
    for row, (label, (stature, weight, sex)) in enumerate(SHOPPERS.items()):
        body = bodies.CreateBody(
            body_service_pb2.CreateBodyRequest(
                measurements=[
                    common_pb2.MeasurementValue(name="stature", value=stature),
                    common_pb2.MeasurementValue(name="weight", value=weight),
                ],
                sex=sex,
            ),
            timeout=60,
        ).body
        for column, outfit in enumerate(OUTFITS):
            response = garments.RenderTryOn(
                pb.RenderTryOnRequest(body_id=body.body_id, garment_ids=[registered[name] for name in outfit]),
                timeout=60,
            )
            axis = axes[row, column]
            axis.imshow(_picture(response.png))
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(" + ".join(outfit), fontsize=7)
        axes[row, 0].set_ylabel(label, fontsize=8)
    figure.suptitle("RenderTryOn")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    """Make the pictures and print where they are."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--garment-address", required=True, help="host:port of GarmentService")
    parser.add_argument("--body-address", help="host:port of BodyService, for the try-on pictures")
    parser.add_argument("--out", type=Path, default=Path("var/showcase"), help="output folder")
    parser.add_argument("--count", type=int, default=8, help="garments per category in the grids")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated garments")
    parser.add_argument("--fashion-mnist-dir", type=Path, help="Fashion-MNIST folder for the catalogue garments")
    arguments = parser.parse_args(argv)
    arguments.out.mkdir(parents=True, exist_ok=True)
    with grpc.insecure_channel(arguments.garment_address) as channel:
        garments = garment_service_pb2_grpc.GarmentServiceStub(channel)
        firsts = {}
        for generator in GENERATORS:
            path = arguments.out / f"generated_{generator}.png"
            firsts[generator] = generated_grid(garments, generator, arguments.count, arguments.seed, path)
            print(f"{path}  GenerateGarments grid ({generator})")
        path = arguments.out / "interpolation.png"
        interpolation_strip(garments, firsts["vae"]["t_shirt_top"], firsts["vae"]["dress"], path)
        print(f"{path}  InterpolateGarments t_shirt_top -> dress")
        if arguments.body_address:
            with grpc.insecure_channel(arguments.body_address) as body_channel:
                path = arguments.out / "tryon.png"
                pictures = catalogue_pictures(arguments.fashion_mnist_dir)
                try_on_grid(garments, body_service_pb2_grpc.BodyServiceStub(body_channel), pictures, path)
                print(f"{path}  RenderTryOn, {len(SHOPPERS)} shoppers x {len(OUTFITS)} outfits")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
