"""Pictures of size-true try-on: three ANSUR II women in three sizes of one top and one pair of trousers.

Run: ``python -m tryon.services.garment.tryon_pictures [--out var/tryon_pictures] [--results docs/results.md]``

The bodies are the women of the committed ANSUR II subset at the 5th, 50th and 95th percentile of
chest circumference (a stable sort broken by subject id, so every machine picks the same three),
each fitted with BodyService's mesh model (Anny; its shape space is built once under
``var/cache/mesh``). The garments are a Fashion-MNIST T-shirt and pair of trousers made into colour
product pictures (`product_images`: made here, not photographed), with the EN 13402 women's tops
chart and the German women's trousers chart. Each body wears sizes S / 40, M / 44 and XL / 48
(trousers sized for the navel-level waist the survey measures), drawn front and back by the same renderer RenderTryOn uses; one PNG per body, and a table of the
verdicts with their ease.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tryon.services.body.dataset import load_subset
from tryon.services.body.mesh import MeshModel
from tryon.services.garment import images
from tryon.services.garment.catalogue import Garment
from tryon.services.garment.categories import label_from_name
from tryon.services.garment.dataset import load_fashion_mnist
from tryon.services.garment.mesh_render import BodyMesh
from tryon.services.garment.product_images import product_picture
from tryon.services.garment.tryon import TryOnItem, TryOnRenderer
from tryon.services.garment.tryon_render import decode_rgba_png
from tryon.shared.results import add_results_option, command_line, record

SIZES = (("S", "40"), ("M", "44"), ("XL", "48"))
"""(top, trousers) size pairs every body wears."""
PERCENTILES = {"small": 5, "median": 50, "large": 95}
PANEL = (200, 400)
CAPTION = 18


def survey_women() -> dict[str, dict[str, float]]:
    """The measurements of the women at the chest-circumference percentiles of PERCENTILES."""
    subset = load_subset()
    women = subset[subset["sex"] == "female"].sort_values(["chest_circumference", "subject_id"], kind="stable")
    chosen = {}
    for name, percentile in PERCENTILES.items():
        row = women.iloc[min(len(women) - 1, round(percentile / 100 * (len(women) - 1)))]
        chosen[name] = {key: float(value) for key, value in row.drop(["subject_id", "sex"]).items()}
    return chosen


def catalogue() -> dict[str, tuple[Garment, Image.Image]]:
    """The top and the trousers with their charts and product pictures."""
    pictures, labels = load_fashion_mnist("test")
    garments = {}
    for garment_id, category, chart, seed in (
        ("top", "t_shirt_top", "en13402_womens_tops", 1),
        ("trousers", "trouser", "eu_womens_trousers", 5),
    ):
        label = label_from_name(category)
        levels = pictures[np.flatnonzero(labels == label)[0]]
        garment = Garment(
            garment_id, category, label, "EUR", 0, {"chart_id": chart, "sizes": []}, np.zeros(1, np.float32),
            images.encode_png(levels / 255.0), datetime.now(timezone.utc), has_original_image=True,
        )
        garments[garment_id] = (garment, product_picture(levels, seed=seed).convert("RGBA"))
    return garments


def as_garment_mesh(mesh) -> BodyMesh:
    """BodyService's fitted mesh in the form GarmentService receives it."""
    return BodyMesh(
        vertices_mm=np.asarray(mesh.vertices_mm, dtype=np.float64),
        faces=np.asarray(mesh.faces, dtype=np.int64),
        keypoints_mm={name: tuple(float(c) for c in point) for name, point in mesh.keypoints_mm.items()},
        measured_mm=dict(mesh.measured_mm),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("var/tryon_pictures"), help="folder for the pictures")
    add_results_option(parser)
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)
    model = MeshModel.load(Path("var/cache/mesh").resolve())
    bodies = {name: as_garment_mesh(model.fit(values, "female")) for name, values in survey_women().items()}
    garments = catalogue()
    renderer = TryOnRenderer(lambda garment_id: garments[garment_id][0], bodies.__getitem__, lambda g: garments[g.garment_id][1])
    rows = [
        "| body (measured on its mesh) | sizes | top: chest | trousers: waist | trousers: hip |",
        "| --- | --- | --- | --- | --- |",
    ]
    written = []
    for name, mesh in bodies.items():
        sheet = Image.new("RGB", (PANEL[0] * 2 * len(SIZES), PANEL[1] + CAPTION), "white")
        draw = ImageDraw.Draw(sheet)
        measured = mesh.measured_mm
        described = (
            f"{name}: stature {measured['stature']:.0f}, chest {measured['chest_circumference']:.0f}, "
            f"waist {measured['waist_circumference']:.0f}, hip {measured['hip_circumference']:.0f} mm"
        )
        for column, (top, trousers) in enumerate(SIZES):
            items = [TryOnItem("trousers", trousers), TryOnItem("top", top)]
            for side, view in enumerate(("front", "back")):
                result = renderer.render(name, items, view, *PANEL)
                panel = Image.fromarray(decode_rgba_png(result.data))
                sheet.paste(panel, ((2 * column + side) * PANEL[0], CAPTION), panel)
                draw.text(((2 * column + side) * PANEL[0] + 6, 3), f"{top} / {trousers}, {view}", fill="black")
            verdicts = {(report.garment_id, m.measurement): m for report in result.fits for m in report.measurements}

            def cell(garment_id: str, measurement: str) -> str:
                fit = verdicts.get((garment_id, measurement))
                return "-" if fit is None else f"{fit.fit} ({fit.ease_mm:+.0f} mm)"

            rows.append(
                f"| {described if column == 0 else ''} | {top} / {trousers} | {cell('top', 'chest_circumference')} | "
                f"{cell('trousers', 'waist_circumference')} | {cell('trousers', 'hip_circumference')} |"
            )
        path = arguments.out / f"tryon_{name}.png"
        sheet.quantize(colors=128).save(path, optimize=True)
        written.append(path)
        print(path)
    table = "\n".join(rows)
    print(table)
    body = (
        "Three ANSUR II women (5th, 50th and 95th percentile of chest circumference) fitted with the body "
        "mesh model, each wearing a T-shirt (EN 13402 women's tops) and trousers (German women's sizes) at "
        "S / 40, M / 44 and XL / 48, front and back. Ease = garment - body; the verdict is tight or loose when "
        "the body lies above or below the size's range (`services/garment/garment_fit.py`). The garment "
        "pictures are Fashion-MNIST garments made into colour product pictures here, not photographs.\n\n" + table
    )
    record(
        arguments.results,
        "tryon_pictures",
        "Size-true try-on: three bodies in three sizes, front and back",
        body,
        command=command_line(module="tryon.services.garment.tryon_pictures"),
        pictures=written,
    )


if __name__ == "__main__":
    main()
