"""Size-true try-on pictures: each garment's own image warped onto a drawn body at its size.

The body is drawn from its mesh (`tryon.services.garment.mesh_render`). A garment is its
original image with the background cut out (`tryon.services.garment.images.cut_out`), or its
28 x 28 grey form coloured and enlarged (`garment_picture_from_levels`),
warped row by row: its rows map piecewise linearly onto the body's rows (a top from the neck to
below the hips, trousers from the waist to the hem, a dress or coat from the neck to the knee),
and at the chest, waist and hip rows the garment's own width in its image maps onto

    the torso's drawn width at that row x garment girth / body girth

(`tryon.services.garment.garment_fit`), with the scale interpolated between those rows and held
above the first and below the last (sleeves and legs keep the proportions of the nearest
control row). So a size too small is narrower than the body and a size too large wider. A tight
garment also shows pull lines from the side seams, in proportion to how far it is too small; a
loose one hangs lower and shows vertical folds. Trousers end where their inseam reaches (the
garment's inseam / the body's). Shoes and bags are drawn at their own size in millimetres.

The back view draws the same product image mirrored, as a product picture shows the front.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from tryon.services.garment.categories import region_of
from tryon.services.garment.garment_fit import CHEST, HIP, WAIST, SizedFit
from tryon.services.garment.mesh_render import SKIN, BodyDrawing

_PALETTE = (
    (178, 34, 52),
    (31, 78, 140),
    (46, 125, 50),
    (94, 53, 177),
    (230, 126, 34),
    (0, 121, 107),
    (109, 76, 65),
    (216, 27, 96),
    (69, 90, 100),
    (251, 192, 45),
)
"""Colours of grey garments, chosen for contrast against each other and the skin tone."""

_GARMENT_THRESHOLD = 0.15
"""Share of the brightest level above which a pixel of a 28 x 28 garment belongs to the garment
(for its extent); generated pictures often have a faint haze around the garment."""

_OPAQUE_FROM, _OPAQUE_AT = 0.08, 0.45
"""Garment levels map to opacity linearly from 0 at the first to 1 at the second: fabric is
opaque, while the faint haze and the anti-aliased rim stay see-through."""

_UPSCALE = 8
"""A 28 x 28 garment is enlarged this many times (smoothly) before warping, so its edges stay soft."""

_SHOE_LENGTH_MM = 260.0
_BAG_WIDTH_MM = 320.0
_ANKLE_HEIGHT_MM = 75.0
"""Sizes of things the mesh has no measurement for, in millimetres (adult averages)."""

_TOP_ROWS = (0.40, 0.72, 0.97)
"""Where a top's chest, waist and hip widths are taken in its image (shares of its height from
the collar): below the short sleeves of a Fashion-MNIST top, at its narrowest, at its hem."""
_FULL_ROWS = (0.22, 0.40, 0.55)
"""The same for a dress or coat, which reaches to the knee."""
_BOTTOM_HIP_ROW = 0.12
"""Where trousers' hip width is taken in their image (share of their height from the waistband)."""


@dataclass(frozen=True)
class GarmentPicture:
    """A garment's picture ready to warp: RGBA in [0, 1] with the colour premultiplied by the alpha,
    cropped to the garment and padded with one transparent pixel on every side (float32 [h+2, w+2, 4])."""

    padded: np.ndarray

    @property
    def alpha(self) -> np.ndarray:
        """The garment's opacity [h, w]."""
        return self.padded[1:-1, 1:-1, 3]

    def mirrored(self) -> GarmentPicture:
        """The picture flipped left to right."""
        return GarmentPicture(self.padded[:, ::-1])


def prepare_picture(rgba: np.ndarray) -> GarmentPicture:
    """A garment picture (float RGBA [h, w, 4] in [0, 1], straight alpha) made ready to warp."""
    rgba = np.asarray(rgba, dtype=np.float32)
    visible = rgba[..., 3] > 0.02
    rows, columns = np.flatnonzero(visible.any(axis=1)), np.flatnonzero(visible.any(axis=0))
    if rows.size:
        rgba = rgba[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    padded = np.zeros((rgba.shape[0] + 2, rgba.shape[1] + 2, 4), dtype=np.float32)
    padded[1:-1, 1:-1, :3] = rgba[..., :3] * rgba[..., 3:]
    padded[1:-1, 1:-1, 3] = rgba[..., 3]
    return GarmentPicture(padded)


@dataclass(frozen=True)
class DressedGarment:
    """A garment to draw: its picture, its category label (0-9) and how its chosen size fits the
    body (None: drawn at the body's own girths)."""

    picture: GarmentPicture
    category: int
    fit: SizedFit | None


def garment_colour(garment_id: str) -> tuple[int, int, int]:
    """A stable colour for a grey garment, so the same garment looks the same in every picture."""
    digest = hashlib.sha256(garment_id.encode()).digest()
    return _PALETTE[digest[0] % len(_PALETTE)]


def _opacity(levels: np.ndarray) -> np.ndarray:
    """Opacity of a 28 x 28 garment: its outline filled in is opaque, whatever the fabric's shade
    (a dark coat in Fashion-MNIST is dim inside a bright rim), and the rest ramps with the level."""
    ramp = np.clip((levels - _OPAQUE_FROM) / (_OPAQUE_AT - _OPAQUE_FROM), 0.0, 1.0)
    outline = ndimage.binary_fill_holes(levels > _GARMENT_THRESHOLD * max(float(levels.max()), 1e-6))
    inside = ndimage.gaussian_filter(ndimage.binary_erosion(outline).astype(np.float32), sigma=0.7)
    return np.maximum(ramp, np.clip(inside * 1.5, 0.0, 1.0))


def garment_picture_from_levels(levels: np.ndarray, colour: tuple[int, int, int]) -> GarmentPicture:
    """A grey 28 x 28 garment (levels in [0, 1], bright garment on black) as an RGBA picture in a
    colour, enlarged smoothly: its level is the shading of the colour, its outline the alpha."""
    levels = np.asarray(levels, dtype=np.float32)
    shade = np.asarray(colour, dtype=np.float32)[None, None, :] / 255.0 * (0.45 + 0.55 * levels[..., None])
    picture = np.concatenate([shade, _opacity(levels)[..., None]], axis=2)
    return prepare_picture(np.clip(ndimage.zoom(picture, (_UPSCALE, _UPSCALE, 1), order=1), 0.0, 1.0))


def _extent(alpha: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (left, top, right, bottom; exclusive) of the opaque part of a picture."""
    mask = alpha > 0.5
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return 0, 0, alpha.shape[1], alpha.shape[0]
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


def _run_width(alpha: np.ndarray, row: float, centre: float, fallback: float) -> float:
    """Width of the opaque run of a picture's row around ``centre``, or ``fallback`` when the row is open there."""
    y = int(np.clip(round(row), 0, alpha.shape[0] - 1))
    opaque = alpha[y] > 0.5
    x = int(np.clip(round(centre), 0, alpha.shape[1] - 1))
    if not opaque[x]:
        return fallback
    left = x - int(np.argmin(opaque[x::-1])) if not opaque[: x + 1].all() else -1
    right = x + int(np.argmin(opaque[x:])) if not opaque[x:].all() else alpha.shape[1]
    return float(max(right - left - 1, 1))


@dataclass(frozen=True)
class _Layout:
    """Where a garment goes: source rows -> target rows (increasing), and at some target rows the
    garment's target width for the source width measured at the matching source row."""

    source_rows: np.ndarray
    target_rows: np.ndarray
    width_rows: np.ndarray
    source_widths: np.ndarray
    target_widths: np.ndarray
    centre: float


def _span_width(drawing: BodyDrawing, name: str) -> float:
    left, right = drawing.torso_spans[name]
    return max(right - left, 1.0)


def _ratios(fit: SizedFit | None) -> dict[str, float]:
    ratios = dict(fit.girth_ratios) if fit is not None else {}
    return {girth: ratios.get(girth, 1.0) for girth in (CHEST, WAIST, HIP)}


def _layout(drawing: BodyDrawing, garment: DressedGarment, alpha: np.ndarray) -> tuple[_Layout, float]:
    """Rows and widths of a sized garment on the body (top, bottom or full region), and the
    garment's centre column in its own picture."""
    left, top, right, bottom = _extent(alpha)
    height = max(bottom - top, 1)
    source_centre = (left + right) / 2
    points = drawing.keypoints
    ratios = _ratios(garment.fit)
    looseness = garment.fit.looseness if garment.fit is not None else 0.0
    neck_y, chest_y, waist_y, hips_y = (points[name][1] for name in ("neck", "chest", "waist", "hips"))
    ankle_y = (points["left_ankle"][1] + points["right_ankle"][1]) / 2
    crotch_y = points["crotch"][1]
    centre = (drawing.torso_spans["waist"][0] + drawing.torso_spans["waist"][1]) / 2
    region = region_of(garment.category)
    # A loose garment hangs: its hem drops by a share of the waist-to-hip distance.
    drop = min(looseness, 0.3) * 1.5 * (hips_y - waist_y)
    if region == "bottom":
        length_ratio = garment.fit.length_ratio if garment.fit is not None else 1.0
        hem_y = min(crotch_y + (ankle_y - crotch_y) * length_ratio, drawing.rgba.shape[0] - 1.0)
        fractions = np.array([0.0, _BOTTOM_HIP_ROW, 1.0])
        targets = np.array([waist_y, hips_y, hem_y])
        width_fractions = np.array([0.02, _BOTTOM_HIP_ROW])
        width_targets = np.array([waist_y, hips_y])
        widths = np.array(
            [_span_width(drawing, "waist") * ratios[WAIST], _span_width(drawing, "hips") * ratios[HIP]]
        )
    else:
        rows = _TOP_ROWS if region == "top" else _FULL_ROWS
        knee_y = float(np.mean([points[k][1] for k in ("left_knee", "right_knee") if k in points] or [(hips_y + ankle_y) / 2]))
        hem_y = hips_y + 0.15 * (hips_y - waist_y) if region == "top" else knee_y
        hem_y += drop
        # The collar sits at the base of the neck, a little below the neck keypoint.
        collar_y = neck_y + 0.15 * (chest_y - neck_y)
        fractions = np.array([0.0, *rows, 1.0]) if region == "full" else np.array([0.0, rows[0], rows[1], 1.0])
        targets = (
            np.array([collar_y, chest_y, waist_y, hips_y + drop, hem_y])
            if region == "full"
            else np.array([collar_y, chest_y, waist_y, hem_y])
        )
        width_fractions = np.array(rows)
        width_targets = np.interp(width_fractions, fractions, targets)
        widths = np.array(
            [
                _span_width(drawing, "chest") * ratios[CHEST],
                _span_width(drawing, "waist") * ratios[WAIST],
                _span_width(drawing, "hips") * ratios[HIP],
            ]
        )
    source_rows = top + fractions * height
    fallback = float(right - left)
    source_widths = np.array([_run_width(alpha, top + f * height, source_centre, fallback) for f in width_fractions])
    order = np.argsort(targets)
    return _Layout(
        source_rows=source_rows[order],
        target_rows=targets[order],
        width_rows=width_targets,
        source_widths=source_widths,
        target_widths=widths,
        centre=centre,
    ), source_centre


def _sample(padded: np.ndarray, source_rows: np.ndarray, source_columns: np.ndarray) -> np.ndarray:
    """Bilinear samples of a padded picture: output row i reads source row ``source_rows[i]`` at the
    columns ``source_columns[i]`` (pixel units, 0 at the source's left or top edge); outside is
    transparent. The warps here keep each output row on one source row, so rows are blended
    first and columns gathered after, a few array operations instead of a general remap."""
    height, width = padded.shape[0] - 2, padded.shape[1] - 2
    row_index = np.clip(source_rows - 0.5 + 1.0, 0.0, height + 1.0)
    top = np.minimum(np.floor(row_index).astype(np.int64), height)
    row_weight = (row_index - top).astype(np.float32)[:, None, None]
    rows = padded[top] * (1.0 - row_weight) + padded[top + 1] * row_weight
    column_index = np.clip(source_columns - 0.5 + 1.0, 0.0, width + 1.0)
    left = np.minimum(np.floor(column_index).astype(np.int64), width)
    column_weight = (column_index - left).astype(np.float32)[..., None]
    line = np.arange(len(source_rows))[:, None]
    return rows[line, left] * (1.0 - column_weight) + rows[line, left + 1] * column_weight


def _warp_rows(picture: GarmentPicture, layout: _Layout, source_centre: float, shape: tuple[int, int]) -> tuple[np.ndarray, int, int]:
    """The garment warped by its layout, as premultiplied RGBA over the rows and columns it covers;
    returns the block and its top-left corner (row, column)."""
    height, width = shape
    y0 = int(np.clip(np.floor(layout.target_rows[0]), 0, height))
    y1 = int(np.clip(np.ceil(layout.target_rows[-1]) + 1, 0, height))
    scales = layout.target_widths / layout.source_widths
    half = float(np.max(scales)) * picture.padded.shape[1] / 2 + 2
    x0 = int(np.clip(np.floor(layout.centre - half), 0, width))
    x1 = int(np.clip(np.ceil(layout.centre + half), 0, width))
    if y1 <= y0 or x1 <= x0:
        return np.zeros((0, 0, 4), dtype=np.float32), y0, x0
    rows = np.arange(y0, y1, dtype=np.float64) + 0.5
    columns = np.arange(x0, x1, dtype=np.float64) + 0.5
    source_rows = np.interp(rows, layout.target_rows, layout.source_rows)
    row_scales = np.interp(rows, layout.width_rows, scales)
    source_columns = source_centre + (columns[None, :] - layout.centre) / row_scales[:, None]
    inside = (rows >= layout.target_rows[0]) & (rows <= layout.target_rows[-1])
    block = _sample(picture.padded, source_rows, source_columns)
    block[~inside] = 0.0
    return block, y0, x0


def _strain_and_folds(block: np.ndarray, y0: int, x0: int, layout: _Layout, fit: SizedFit | None) -> None:
    """Darken pull lines (tight) or vertical folds (loose) into a warped garment block in place."""
    if fit is None or (fit.tightness <= 0.0 and fit.looseness <= 0.0):
        return
    span = max(float(layout.target_rows[-1] - layout.target_rows[0]), 1.0)
    columns = np.arange(x0, x0 + block.shape[1], dtype=np.float32) - np.float32(layout.centre)
    if fit.looseness > 0:
        # Folds hang straight down, so they vary along the columns only.
        folds = 0.5 + 0.5 * np.cos(2 * np.pi * columns / (span / 9))
        block[..., :3] *= (1.0 - min(0.3, 2.5 * fit.looseness) * folds**3)[None, :, None]
    if fit.tightness > 0:
        # Pull lines run diagonally from the side seams towards the centre, stronger near the sides,
        # where the garment meets the body's girths: from just above the first width row to just
        # below the last.
        first = int(np.clip(np.floor(layout.width_rows.min() - 0.1 * span) - y0, 0, block.shape[0]))
        last = int(np.clip(np.ceil(layout.width_rows.max() + 0.05 * span) + 1 - y0, first, block.shape[0]))
        rows = np.arange(y0 + first, y0 + last, dtype=np.float32)[:, None]
        lines = 0.5 + 0.5 * np.cos(2 * np.pi * (rows - 1.2 * np.abs(columns)[None, :]) / (span / 14))
        sides = np.clip(np.abs(columns) / span * 6 - 0.3, 0.0, 1.0)
        block[first:last, :, :3] *= (1.0 - min(0.45, 4.0 * fit.tightness) * sides[None, :] * lines**6)[..., None]


def _box_block(picture: GarmentPicture, box: tuple[float, float, float, float], mirrored: bool, shape: tuple[int, int]) -> tuple[np.ndarray, int, int]:
    """A picture's opaque extent scaled into ``box`` (left, top, right, bottom in pixels), premultiplied."""
    left, top, right, bottom = _extent(picture.alpha)
    height, width = shape
    x0, y0 = int(np.clip(np.floor(box[0]), 0, width)), int(np.clip(np.floor(box[1]), 0, height))
    x1, y1 = int(np.clip(np.ceil(box[2]), 0, width)), int(np.clip(np.ceil(box[3]), 0, height))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0, 4), dtype=np.float32), y0, x0
    rows = top + (np.arange(y0, y1) + 0.5 - box[1]) / max(box[3] - box[1], 1e-6) * (bottom - top)
    fractions = (np.arange(x0, x1) + 0.5 - box[0]) / max(box[2] - box[0], 1e-6)
    if mirrored:
        fractions = 1.0 - fractions
    columns = left + fractions * (right - left)
    return _sample(picture.padded, rows, np.broadcast_to(columns, (len(rows), len(columns)))), y0, x0


def _accessory_blocks(drawing: BodyDrawing, garment: DressedGarment, picture: GarmentPicture) -> list[tuple[np.ndarray, int, int]]:
    """Shoes on both feet and a bag at a hand, at their size in millimetres."""
    shape = drawing.rgba.shape[:2]
    scale = drawing.pixels_per_mm
    left, top, right, bottom = _extent(picture.alpha)
    aspect = (bottom - top) / max(right - left, 1)
    points = drawing.keypoints
    if region_of(garment.category) == "feet":
        length = _SHOE_LENGTH_MM * scale
        blocks = []
        ankles = sorted([points["left_ankle"], points["right_ankle"]])
        for (x, y), outward_left in ((ankles[0], True), (ankles[1], False)):
            sole = y + _ANKLE_HEIGHT_MM * scale
            # Fashion-MNIST shoes point left; the copy on the picture's right is mirrored so toes point outward.
            centre = x - 0.25 * length if outward_left else x + 0.25 * length
            box = (centre - length / 2, sole - length * aspect, centre + length / 2, sole)
            blocks.append(_box_block(picture, box, not outward_left, shape))
        return blocks
    bag_width = _BAG_WIDTH_MM * scale
    hands = [points[name] for name in ("left_wrist", "right_wrist") if name in points]
    if hands:
        x, y = max(hands)
    else:
        x, y = drawing.torso_spans["hips"][1] + bag_width / 2 + 10 * scale, points["hips"][1]
    x = min(x, shape[1] - bag_width / 2)
    return [_box_block(picture, (x - bag_width / 2, y, x + bag_width / 2, y + bag_width * aspect), False, shape)]


def render_try_on(drawing: BodyDrawing, garments: Sequence[DressedGarment], shaded: bool = True) -> np.ndarray:
    """Draw the garments onto the drawn body in order (later ones on top); returns RGBA uint8 [H, W, 4].

    ``shaded`` False gives the albedo (flat skin, garments without the body's shading), the texture
    of a 3D model that its viewer shades itself.
    """
    height, width = drawing.rgba.shape[:2]
    canvas = drawing.rgba.copy()
    if not shaded:
        canvas[..., :3] = np.round(SKIN * 255.0).astype(np.uint8)
    for garment in garments:
        picture = garment.picture.mirrored() if drawing.projection.view == "back" else garment.picture
        if region_of(garment.category) in ("feet", "carried"):
            blocks = _accessory_blocks(drawing, garment, picture)
        else:
            layout, source_centre = _layout(drawing, garment, picture.alpha)
            block, y0, x0 = _warp_rows(picture, layout, source_centre, (height, width))
            if block.size:
                _strain_and_folds(block, y0, x0, layout, garment.fit)
            blocks = [(block, y0, x0)]
        for block, y0, x0 in blocks:
            if block.size:
                _composite(canvas, block, y0, x0, drawing.shading if shaded else None)
    return canvas


def _composite(canvas: np.ndarray, block: np.ndarray, y0: int, x0: int, shading: np.ndarray | None) -> None:
    """Lay a premultiplied RGBA block over the canvas (uint8 RGBA, straight alpha) at (y0, x0), in
    place; the garment is lit by the body's shading where it lies on the body (``shading`` None:
    unlit)."""
    covered = block[..., 3] > 1.0 / 512
    covered_rows, covered_columns = np.flatnonzero(covered.any(axis=1)), np.flatnonzero(covered.any(axis=0))
    if covered_rows.size == 0:
        return
    # Only the garment's own bounding box within the block is blended.
    block = block[covered_rows[0] : covered_rows[-1] + 1, covered_columns[0] : covered_columns[-1] + 1]
    y0, x0 = y0 + int(covered_rows[0]), x0 + int(covered_columns[0])
    rows, columns = slice(y0, y0 + block.shape[0]), slice(x0, x0 + block.shape[1])
    under = canvas[rows, columns].astype(np.float32) / 255.0
    under_alpha = under[..., 3:]
    coverage = np.clip(block[..., 3:], 0.0, 1.0)
    colour = block[..., :3]
    if shading is not None:
        # Off the body the garment hangs in an even, slightly dimmed light.
        light = np.where(under_alpha[..., 0] > 0, 0.55 + 0.45 * shading[rows, columns], 0.85)
        colour = colour * light[..., None]
    alpha = coverage + under_alpha * (1.0 - coverage)
    premultiplied = colour + under[..., :3] * under_alpha * (1.0 - coverage)
    under[..., :3] = premultiplied / np.maximum(alpha, 1e-6)
    under[..., 3:] = alpha
    canvas[rows, columns] = np.round(np.clip(under, 0.0, 1.0) * 255.0).astype(np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_rgba_png(rgba: np.ndarray) -> bytes:
    """Encode an RGBA uint8 [H, W, 4] array as PNG.

    Written directly with zlib at level 1 and no row filters: a try-on picture is mostly flat
    colour and transparent background, which compresses well unfiltered, and this is about twice
    as fast as Pillow's encoder at its fastest level (whose per-row filter search dominates)."""
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    height, width = rgba.shape[:2]
    rows = np.zeros((height, width * 4 + 1), dtype=np.uint8)
    rows[:, 1:] = rgba.reshape(height, -1)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
        + _png_chunk(b"IEND", b"")
    )


def decode_rgba_png(data: bytes) -> np.ndarray:
    """Decode a PNG into an RGBA uint8 [H, W, 4] array."""
    with Image.open(io.BytesIO(data), formats=("PNG",)) as picture:
        return np.asarray(picture.convert("RGBA"), dtype=np.uint8).copy()
