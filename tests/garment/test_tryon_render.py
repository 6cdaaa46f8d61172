"""Size-true try-on pictures on bodies of known girths and real Fashion-MNIST garments.

The garment is drawn in pure blue so its pixels can be told from the skin; widths are measured
at the chest, waist and hip rows as the run of garment pixels around the body's centre.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from tryon.services.garment import images
from tryon.services.garment.catalogue import Garment
from tryon.services.garment.categories import label_from_name
from tryon.services.garment.dataset import load_fashion_mnist
from tryon.services.garment.garment_fit import CHEST, HIP, WAIST, chart_sizes, fit_size
from tryon.services.garment.mesh_render import draw_body
from tryon.services.garment.tryon import _PICTURE_BYTES, TryOnItem, TryOnRenderer, _TimedCache
from tryon.services.garment.tryon_render import (
    DressedGarment,
    decode_rgba_png,
    encode_rgba_png,
    garment_picture_from_levels,
    render_try_on,
)

WIDTH, HEIGHT = 256, 512
BLUE = (0, 0, 255)
TEE, TROUSER = label_from_name("t_shirt_top"), label_from_name("trouser")
TOPS = chart_sizes({"chart_id": "en13402_womens_tops", "sizes": []})
TROUSERS = chart_sizes({"chart_id": "eu_womens_trousers", "sizes": []})


@pytest.fixture(scope="module")
def pictures() -> dict[int, np.ndarray]:
    images, labels = load_fashion_mnist("test")
    return {label: garment_picture_from_levels(images[np.flatnonzero(labels == label)[0]] / 255.0, BLUE) for label in (TEE, TROUSER)}


@pytest.fixture(scope="module")
def drawings(body_meshes) -> dict[tuple[str, str], object]:
    return {(name, view): draw_body(mesh, view, WIDTH, HEIGHT) for name, mesh in body_meshes.items() for view in ("front", "back")}


def garment_width(picture: np.ndarray, row: float, centre: float) -> int:
    """Width in pixels of the blue run around ``centre`` on a row."""
    pixels = picture[int(round(row))].astype(int)
    blue = (pixels[:, 2] > pixels[:, 0] + 60) & (pixels[:, 3] > 127)
    x = int(round(centre))
    if not blue[x]:
        return 0
    left, right = x, x
    while left > 0 and blue[left - 1]:
        left -= 1
    while right < len(blue) - 1 and blue[right + 1]:
        right += 1
    return right - left + 1


def rows_and_centre(drawing) -> tuple[dict[str, float], float]:
    rows = {girth: drawing.keypoints[name][1] for girth, name in ((CHEST, "chest"), (WAIST, "waist"), (HIP, "hips"))}
    return rows, (drawing.torso_spans["waist"][0] + drawing.torso_spans["waist"][1]) / 2


def body_width(drawing, girth: str) -> float:
    left, right = drawing.torso_spans[{CHEST: "chest", WAIST: "waist", HIP: "hips"}[girth]]
    return right - left


@pytest.mark.parametrize("body", ["small", "median", "large"])
def test_a_top_is_as_wide_as_the_body_times_garment_over_body_girth(body, body_meshes, drawings, pictures) -> None:
    mesh, drawing = body_meshes[body], drawings[(body, "front")]
    rows, centre = rows_and_centre(drawing)
    widths = []
    for size in TOPS:
        fit = fit_size(TEE, size, mesh.measured_mm)
        picture = render_try_on(drawing, [DressedGarment(pictures[TEE], TEE, fit)])
        measured = {girth: garment_width(picture, rows[girth], centre) for girth in (CHEST, WAIST)}
        for girth, width in measured.items():
            assert width == pytest.approx(body_width(drawing, girth) * fit.girth_ratios[girth], rel=0.08, abs=3)
        verdict = fit.measurements[0].fit
        if verdict == "tight":
            assert measured[CHEST] < body_width(drawing, CHEST)
        if verdict in ("fitting", "loose"):
            assert measured[CHEST] > body_width(drawing, CHEST)
        widths.append(measured[CHEST])
    assert widths == sorted(widths) and widths[-1] > 1.4 * widths[0]


@pytest.mark.parametrize("body", ["small", "large"])
def test_trousers_hip_width_grows_with_the_size_and_the_back_mirrors_the_front(body, body_meshes, drawings, pictures) -> None:
    mesh = body_meshes[body]
    widths = {}
    for view in ("front", "back"):
        drawing = drawings[(body, view)]
        rows, centre = rows_and_centre(drawing)
        widths[view] = []
        for size in TROUSERS:
            fit = fit_size(TROUSER, size, mesh.measured_mm)
            picture = render_try_on(drawing, [DressedGarment(pictures[TROUSER], TROUSER, fit)])
            width = garment_width(picture, rows[HIP], centre)
            assert width == pytest.approx(body_width(drawing, HIP) * fit.girth_ratios[HIP], rel=0.08, abs=3)
            widths[view].append(width)
        assert widths[view] == sorted(widths[view])
    assert np.abs(np.subtract(widths["front"], widths["back"])).max() <= 2


def test_the_same_size_is_tighter_on_a_larger_body(body_meshes, drawings, pictures) -> None:
    size = next(s for s in TOPS if s["label"] == "M")
    shares = []
    for body in ("small", "median", "large"):
        drawing = drawings[(body, "front")]
        rows, centre = rows_and_centre(drawing)
        fit = fit_size(TEE, size, body_meshes[body].measured_mm)
        picture = render_try_on(drawing, [DressedGarment(pictures[TEE], TEE, fit)])
        shares.append(garment_width(picture, rows[CHEST], centre) / body_width(drawing, CHEST))
    assert shares[0] > shares[1] > shares[2]
    assert shares[2] < 1.0 < shares[0]


def test_tight_shows_pull_lines_and_loose_hangs_lower(body_meshes, drawings, pictures) -> None:
    mesh, drawing = body_meshes["median"], drawings[("median", "front")]
    rows, centre = rows_and_centre(drawing)
    by_label = {s["label"]: s for s in TOPS}
    rendered = {
        label: render_try_on(drawing, [DressedGarment(pictures[TEE], TEE, fit_size(TEE, by_label[label], mesh.measured_mm))])
        for label in ("XS", "M", "XXL")
    }

    def chest_band_spread(picture: np.ndarray) -> float:
        band = picture[int(rows[CHEST]) : int(rows[WAIST])].astype(float)
        blue = (band[..., 2] > band[..., 0] + 60) & (band[..., 3] > 127)
        return float(band[..., 2][blue].std())

    def lowest_garment_row(picture: np.ndarray) -> int:
        blue = (picture[..., 2].astype(int) > picture[..., 0].astype(int) + 60) & (picture[..., 3] > 127)
        return int(np.flatnonzero(blue[:, int(centre)]).max())

    assert chest_band_spread(rendered["XS"]) > 1.3 * chest_band_spread(rendered["M"])
    assert lowest_garment_row(rendered["XXL"]) > lowest_garment_row(rendered["M"]) + 3


def test_short_trousers_end_above_the_ankles(body_meshes, drawings, pictures) -> None:
    mesh, drawing = body_meshes["median"], drawings[("median", "front")]
    size = {"label": "x", "ranges": [{"measurement": "inseam", "min": 600.0, "max": 620.0}]}
    right_length = render_try_on(drawing, [DressedGarment(pictures[TROUSER], TROUSER, fit_size(TROUSER, None, mesh.measured_mm))])
    short = render_try_on(drawing, [DressedGarment(pictures[TROUSER], TROUSER, fit_size(TROUSER, size, mesh.measured_mm))])

    def hem(picture: np.ndarray) -> int:
        blue = (picture[..., 2].astype(int) > picture[..., 0].astype(int) + 60) & (picture[..., 3] > 127)
        return int(np.flatnonzero(blue.any(axis=1)).max())

    ankle = drawing.keypoints["left_ankle"][1]
    assert abs(hem(right_length) - ankle) < 0.03 * HEIGHT
    assert hem(short) < hem(right_length) - 0.1 * (ankle - drawing.keypoints["crotch"][1])


def test_the_body_is_drawn_shaded_inside_its_silhouette(drawings) -> None:
    drawing = drawings[("median", "front")]
    opaque = drawing.rgba[..., 3] == 255
    assert 0.08 < opaque.mean() < 0.5
    assert not opaque[:, :5].any() and not opaque[:5].any()
    lit = drawing.rgba[..., 0][opaque].astype(int)
    assert lit.max() - lit.min() > 60  # shading varies across the body


def test_png_round_trip(drawings) -> None:
    rgba = drawings[("small", "back")].rgba
    assert np.array_equal(decode_rgba_png(encode_rgba_png(rgba)), rgba)


def test_a_body_is_fetched_again_once_its_cache_entry_expires(body_meshes) -> None:
    now = [0.0]
    fetched: list[str] = []

    def meshes(body_id: str):
        fetched.append(body_id)
        return body_meshes["median"]

    tee = Garment("tee", "tee", TEE, "EUR", 1, None, np.zeros(1, np.float32), images.encode_png(np.full((28, 28), 0.6, np.float32)), datetime.now(timezone.utc))
    renderer = TryOnRenderer(lambda garment_id: tee, meshes, cache_seconds=60.0, clock=lambda: now[0])
    first = renderer.drawing("b", "front", 96, 192)
    renderer.render("b", [TryOnItem("tee")], "front", 96, 192)
    assert renderer.drawing("b", "front", 96, 192) is first and fetched == ["b"]
    now[0] = 61.0
    renderer.render("b", [TryOnItem("tee")], "front", 96, 192)
    assert fetched == ["b", "b"] and renderer.drawing("b", "front", 96, 192) is not first


def test_the_drawing_cache_keeps_within_its_memory_budget() -> None:
    cache = _TimedCache(capacity=10, seconds=60.0, clock=lambda: 0.0, budget=10.0, weigh=float)
    cache.put("a", 6)
    cache.put("b", 3)
    cache.put("c", 6)
    assert cache.get("a") is None and cache.get("b") == 3 and cache.get("c") == 6
    cache.put("d", 20)
    assert [cache.get(key) for key in "bcd"] == [None, None, 20]


def test_the_garment_picture_cache_keeps_within_its_memory_budget() -> None:
    from PIL import Image

    # Large product pictures, each copied at 384 x 384 for drawing (2.3 MiB as float32 RGBA).
    original = Image.new("RGB", (1200, 1200), (200, 30, 30))
    garments = {
        f"g{number}": Garment(f"g{number}", "tee", TEE, "EUR", 1, None, np.zeros(1, np.float32), b"", datetime.now(timezone.utc), True)
        for number in range(80)
    }
    renderer = TryOnRenderer(garments.__getitem__, None, pictures=lambda garment: original)
    for garment in garments.values():
        renderer._picture(garment)
    held = sum(entry[1].padded.nbytes for entry in renderer._picture_cache._entries.values())
    assert 40 * 2**20 < held <= _PICTURE_BYTES
