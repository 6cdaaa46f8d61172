"""Try-on pictures: garment images warped onto a body silhouette by its keypoints.

Each garment is cropped to its own extent and mapped by a perspective warp onto a
quadrilateral placed from the body's keypoints and the silhouette's width at those rows:
tops from the neck to the hips, trousers from the waist to the ankles, dresses and coats
from the neck down as far as their own aspect ratio reaches, one shoe on each foot, and a
bag beside a hand. The garment's grey level becomes its opacity and its shading, in a
colour chosen per garment; garments are layered in request order, later ones on top.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from tryon.services.garment.categories import region_of
from tryon.shared.errors import FailedPrecondition

REQUIRED_KEYPOINTS = ("neck", "left_shoulder", "right_shoulder", "waist", "hips", "left_ankle", "right_ankle")
"""Keypoints the renderer places garments by; others (knees, wrists) are used when present."""

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
"""Garment colours, chosen for contrast against each other and a grey silhouette."""

_GARMENT_THRESHOLD = 0.15
"""Share of the brightest level above which a pixel of a 28 x 28 garment belongs to the garment
(for its extent); generated pictures often have a faint haze around the garment."""

_OPAQUE_FROM, _OPAQUE_AT = 0.08, 0.45
"""Garment levels map to opacity linearly from 0 at the first to 1 at the second: fabric is
opaque, while the faint haze and the anti-aliased rim stay see-through."""

_SHOE_LENGTH_MM = 230.0
_BAG_WIDTH_MM = 320.0
_ANKLE_HEIGHT_MM = 75.0
"""Sizes of things the silhouette has no keypoint for, in millimetres (adult averages)."""


@dataclass(frozen=True)
class BodyPicture:
    """A rendered body: RGBA pixels (uint8 [H, W, 4], transparent background), named keypoints
    in pixels (x = column, y = row) and the picture's scale."""

    rgba: np.ndarray
    keypoints: Mapping[str, tuple[float, float]]
    mm_per_pixel: float


@dataclass(frozen=True)
class GarmentLayer:
    """A garment to draw: 28 x 28 levels in [0, 1] (bright garment on black), its category
    label (0-9) and its RGB colour."""

    levels: np.ndarray
    category: int
    colour: tuple[int, int, int]


def garment_colour(garment_id: str) -> tuple[int, int, int]:
    """A stable colour for a garment, so the same garment looks the same in every picture."""
    digest = hashlib.sha256(garment_id.encode()).digest()
    return _PALETTE[digest[0] % len(_PALETTE)]


def _perspective_coefficients(target: np.ndarray, source: np.ndarray) -> tuple[float, ...]:
    """PIL PERSPECTIVE coefficients mapping output points ``target`` [4, 2] to input points ``source``."""
    rows, values = [], []
    for (x, y), (u, v) in zip(target, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        values.extend([u, v])
    return tuple(np.linalg.solve(np.asarray(rows, dtype=np.float64), np.asarray(values, dtype=np.float64)))


def _garment_extent(levels: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (left, top, right, bottom; exclusive) of the garment in its 28 x 28 picture."""
    mask = levels > _GARMENT_THRESHOLD * max(float(levels.max()), 1e-6)
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return 0, 0, levels.shape[1], levels.shape[0]
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


def _torso_span(alpha: np.ndarray, row: float, centre_x: float) -> tuple[float, float] | None:
    """Left and right edge of the opaque run that contains ``centre_x`` on a row, or None."""
    height, width = alpha.shape
    y = int(np.clip(round(row), 0, height - 1))
    x = int(np.clip(round(centre_x), 0, width - 1))
    opaque = alpha[y] > 127
    if not opaque[x]:
        return None
    left = x
    while left > 0 and opaque[left - 1]:
        left -= 1
    right = x
    while right < width - 1 and opaque[right + 1]:
        right += 1
    return float(left), float(right + 1)


@dataclass(frozen=True)
class _Anatomy:
    """Where things are on the body picture, in pixels."""

    centre_x: float
    neck_y: float
    shoulder_left: float
    shoulder_right: float
    shoulder_y: float
    waist_span: tuple[float, float]
    waist_y: float
    hips_span: tuple[float, float]
    hips_y: float
    knee_y: float
    ankle_left: tuple[float, float]
    ankle_right: tuple[float, float]
    hands: tuple[tuple[float, float], ...]
    mm_per_pixel: float
    picture_width: int


def _anatomy(body: BodyPicture) -> _Anatomy:
    missing = [name for name in REQUIRED_KEYPOINTS if name not in body.keypoints]
    if missing:
        raise FailedPrecondition(
            f"the body picture lacks the keypoints {', '.join(missing)}; try-on needs {', '.join(REQUIRED_KEYPOINTS)}"
        )
    points = {name: (float(x), float(y)) for name, (x, y) in body.keypoints.items()}
    alpha = body.rgba[..., 3]
    shoulders = sorted([points["left_shoulder"], points["right_shoulder"]])
    ankles = sorted([points["left_ankle"], points["right_ankle"]])
    centre_x = (shoulders[0][0] + shoulders[1][0]) / 2
    shoulder_width = max(shoulders[1][0] - shoulders[0][0], 1.0)

    def span(name: str, fallback_ratio: float) -> tuple[float, float]:
        x, y = points[name]
        found = _torso_span(alpha, y, x)
        if found is None or found[1] - found[0] > 1.6 * shoulder_width:
            half = fallback_ratio * shoulder_width / 2
            return x - half, x + half
        return found

    knees = [points[name] for name in ("left_knee", "right_knee") if name in points]
    ankle_y = (ankles[0][1] + ankles[1][1]) / 2
    knee_y = float(np.mean([y for _, y in knees])) if knees else (points["hips"][1] + ankle_y) / 2
    hands = tuple(
        points[name]
        for name in ("left_wrist", "right_wrist", "left_hand", "right_hand")
        if name in points
    )
    mm_per_pixel = float(body.mm_per_pixel)
    if not np.isfinite(mm_per_pixel) or mm_per_pixel <= 0:
        # Without a scale, an adult's shoulders (about 400 mm) set it.
        mm_per_pixel = 400.0 / shoulder_width
    return _Anatomy(
        centre_x=centre_x,
        neck_y=points["neck"][1],
        shoulder_left=shoulders[0][0],
        shoulder_right=shoulders[1][0],
        shoulder_y=(shoulders[0][1] + shoulders[1][1]) / 2,
        waist_span=span("waist", 0.8),
        waist_y=points["waist"][1],
        hips_span=span("hips", 0.9),
        hips_y=points["hips"][1],
        knee_y=knee_y,
        ankle_left=ankles[0],
        ankle_right=ankles[1],
        hands=hands,
        mm_per_pixel=mm_per_pixel,
        picture_width=alpha.shape[1],
    )


def _box(centre_x: float, top: float, width: float, height: float) -> np.ndarray:
    """Corners (top-left, top-right, bottom-right, bottom-left) of an upright box."""
    half = width / 2
    return np.array(
        [[centre_x - half, top], [centre_x + half, top], [centre_x + half, top + height], [centre_x - half, top + height]]
    )


def _placements(layer: GarmentLayer, body: _Anatomy) -> list[tuple[np.ndarray, bool]]:
    """Target quadrilaterals for a garment (one per copy) and whether each copy is mirrored."""
    left, top, right, bottom = _garment_extent(layer.levels)
    aspect = (bottom - top) / max(right - left, 1)
    shoulder_width = body.shoulder_right - body.shoulder_left
    region = region_of(layer.category)
    if region == "top":
        # The picture includes the sleeves, which reach out past the shoulders.
        top_half = 0.78 * shoulder_width
        hips_half = max((body.hips_span[1] - body.hips_span[0]) * 0.6, 0.62 * shoulder_width)
        hem_y = body.hips_y + 0.15 * (body.hips_y - body.waist_y)
        quad = np.array(
            [
                [body.centre_x - top_half, body.neck_y],
                [body.centre_x + top_half, body.neck_y],
                [body.centre_x + hips_half, hem_y],
                [body.centre_x - hips_half, hem_y],
            ]
        )
        return [(quad, False)]
    if region == "bottom":
        waist_half = (body.waist_span[1] - body.waist_span[0]) * 0.55
        ankle_centre = (body.ankle_left[0] + body.ankle_right[0]) / 2
        ankle_half = max((body.ankle_right[0] - body.ankle_left[0]) / 2 + 0.12 * shoulder_width, waist_half)
        ankle_y = (body.ankle_left[1] + body.ankle_right[1]) / 2
        quad = np.array(
            [
                [body.centre_x - waist_half, body.waist_y],
                [body.centre_x + waist_half, body.waist_y],
                [ankle_centre + ankle_half, ankle_y],
                [ankle_centre - ankle_half, ankle_y],
            ]
        )
        return [(quad, False)]
    if region == "full":
        width = 1.45 * shoulder_width
        ankle_y = (body.ankle_left[1] + body.ankle_right[1]) / 2
        shortest = body.hips_y + 0.3 * (body.knee_y - body.hips_y) - body.neck_y
        height = float(np.clip(width * aspect, shortest, ankle_y - body.neck_y))
        return [(_box(body.centre_x, body.neck_y, width, height), False)]
    if region == "feet":
        length = _SHOE_LENGTH_MM / body.mm_per_pixel
        height = length * aspect
        placements = []
        for (x, y), outward_left in ((body.ankle_left, True), (body.ankle_right, False)):
            sole_y = y + _ANKLE_HEIGHT_MM / body.mm_per_pixel
            # Fashion-MNIST shoes point left; the right-hand foot's copy is mirrored so toes point outward.
            centre = x - 0.25 * length if outward_left else x + 0.25 * length
            placements.append((_box(centre, sole_y - height, length, height), not outward_left))
        return placements
    width = _BAG_WIDTH_MM / body.mm_per_pixel
    height = width * aspect
    if body.hands:
        # Hanging from the hand on the picture's right, its handle at the wrist.
        centre_x, top = max(body.hands)
    else:
        centre_x, top = body.hips_span[1] + 0.3 * shoulder_width + width / 2, body.hips_y
    # Kept inside the picture when it fits: a bag cut by the frame looks like an error.
    centre_x = min(centre_x, max(body.picture_width - width / 2, body.centre_x))
    return [(_box(centre_x, top, width, height), False)]


def _opacity(levels: np.ndarray) -> np.ndarray:
    """Opacity of a 28 x 28 garment: its outline filled in is opaque, whatever the fabric's shade
    (a dark coat in Fashion-MNIST is dim inside a bright rim), and the rest ramps with the level."""
    ramp = np.clip((levels - _OPAQUE_FROM) / (_OPAQUE_AT - _OPAQUE_FROM), 0.0, 1.0)
    outline = ndimage.binary_fill_holes(levels > _GARMENT_THRESHOLD * max(float(levels.max()), 1e-6))
    # Eroded by a pixel and softened, so that upscaling the 28-pixel mask leaves no staircase.
    inside = ndimage.gaussian_filter(ndimage.binary_erosion(outline).astype(np.float32), sigma=0.7)
    return np.maximum(ramp, np.clip(inside * 1.5, 0.0, 1.0))


def _warp(
    channels: np.ndarray, extent: tuple[int, int, int, int], quad: np.ndarray, mirrored: bool, size: tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int]]:
    """Warp the ``extent`` of 28 x 28 garment channels [c, 28, 28] onto ``quad``; returns the channels
    over the quad's bounding box (clipped to the canvas ``size`` = (width, height)) and that box's
    top-left corner."""
    left, top, right, bottom = extent
    source = np.array([[left, top], [right, top], [right, bottom], [left, bottom]], dtype=np.float64)
    if mirrored:
        source = source[[1, 0, 3, 2]]
    width, height = size
    x0 = int(np.clip(np.floor(quad[:, 0].min()), 0, width))
    y0 = int(np.clip(np.floor(quad[:, 1].min()), 0, height))
    x1 = int(np.clip(np.ceil(quad[:, 0].max()), 0, width))
    y1 = int(np.clip(np.ceil(quad[:, 1].max()), 0, height))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((len(channels), 0, 0), dtype=np.float32), (x0, y0)
    coefficients = _perspective_coefficients(quad - np.array([x0, y0]), source)
    warped = [
        np.asarray(
            Image.fromarray(np.asarray(channel, dtype=np.float32), mode="F").transform(
                (x1 - x0, y1 - y0), Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR
            ),
            dtype=np.float32,
        )
        for channel in channels
    ]
    return np.clip(np.stack(warped), 0.0, 1.0), (x0, y0)


def render_try_on(body: BodyPicture, layers: Sequence[GarmentLayer]) -> np.ndarray:
    """Draw the garments onto the body picture in order; returns RGBA uint8 [H, W, 4].

    Raises FailedPrecondition when the body picture lacks a keypoint the renderer needs.
    """
    rgba = np.asarray(body.rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"body picture must be RGBA [H, W, 4]; got shape {rgba.shape}")
    anatomy = _anatomy(body)
    height, width = rgba.shape[:2]
    canvas = rgba.copy()
    for layer in layers:
        colour = np.asarray(layer.colour, dtype=np.float32) / 255.0
        channels = np.stack([layer.levels, _opacity(layer.levels)])
        extent = _garment_extent(layer.levels)
        for quad, mirrored in _placements(layer, anatomy):
            (levels, opacity), (x0, y0) = _warp(channels, extent, quad, mirrored, (width, height))
            if levels.size == 0:
                continue
            # Only the garment's bounding box is blended, in floats; the rest stays as it is.
            rows, columns = slice(y0, y0 + levels.shape[0]), slice(x0, x0 + levels.shape[1])
            under = canvas[rows, columns].astype(np.float32) / 255.0
            alpha = opacity[..., None]
            shade = colour * (0.35 + 0.65 * levels[..., None])
            out_alpha = alpha + under[..., 3:] * (1.0 - alpha)
            blended = shade * alpha + under[..., :3] * under[..., 3:] * (1.0 - alpha)
            under[..., :3] = np.where(out_alpha > 0, blended / np.maximum(out_alpha, 1e-6), 0.0)
            under[..., 3:] = out_alpha
            canvas[rows, columns] = np.round(under * 255.0).astype(np.uint8)
    return canvas


def encode_rgba_png(rgba: np.ndarray) -> bytes:
    """Encode an RGBA uint8 [H, W, 4] array as PNG."""
    buffer = io.BytesIO()
    # Level 1 compresses a try-on picture several times faster than the default 6, for about a
    # fifth more bytes.
    Image.fromarray(np.asarray(rgba, dtype=np.uint8), mode="RGBA").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def decode_rgba_png(data: bytes) -> np.ndarray:
    """Decode a PNG into an RGBA uint8 [H, W, 4] array."""
    with Image.open(io.BytesIO(data), formats=("PNG",)) as picture:
        return np.asarray(picture.convert("RGBA"), dtype=np.uint8).copy()
