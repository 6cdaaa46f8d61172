"""Product-like colour pictures made from Fashion-MNIST, for the demo, the tests and the benchmarks.

Fashion-MNIST has only 28 x 28 grey pictures, and a catalogue keeps shop photographs: colour,
hundreds of pixels on a side, the garment on a white background. These pictures stand in for
them. Each is a Fashion-MNIST garment enlarged (bicubic, then a slight blur so the pixel grid
does not show), coloured with one of a few fabric colours, patterned (plain, stripes, checks or
dots) and shaded by the original grey levels, so seams and folds stay visible, then laid on
white. They are made, not photographed: every picture that shows one says it was made here.
The same garment, seed and side always give the same picture.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

DEFAULT_SIDE = 448
"""Side of the pictures in pixels: 16 times Fashion-MNIST's 28."""

FABRIC_COLOURS: tuple[tuple[int, int, int], ...] = (
    (178, 34, 52),    # red
    (25, 55, 110),    # navy
    (46, 125, 80),    # green
    (220, 170, 40),   # mustard
    (120, 72, 150),   # purple
    (60, 60, 64),     # charcoal
    (200, 110, 70),   # terracotta
    (70, 150, 190),   # sky blue
)
"""Colours a garment is dyed in; a pattern's second colour is a lighter tint of the first."""

PATTERNS: tuple[str, ...] = ("plain", "stripes", "checks", "dots")
"""Patterns printed on a garment."""


def _pattern_mask(pattern: str, side: int, rng: np.random.Generator) -> np.ndarray:
    """Where the pattern's second colour shows: a [side, side] array in [0, 1]."""
    rows, columns = np.mgrid[0:side, 0:side].astype(np.float32)
    period = side / rng.uniform(10.0, 18.0)
    if pattern == "stripes":
        return (np.sin(2 * np.pi * rows / period) > 0.35).astype(np.float32)
    if pattern == "checks":
        return ((np.floor(rows / period) + np.floor(columns / period)) % 2).astype(np.float32)
    if pattern == "dots":
        radius = period * 0.22
        dy = (rows % period) - period / 2
        dx = (columns % period) - period / 2
        return (dx * dx + dy * dy <= radius * radius).astype(np.float32)
    return np.zeros((side, side), np.float32)


def product_picture(garment: np.ndarray, seed: int = 0, side: int = DEFAULT_SIDE) -> Image.Image:
    """A colour product picture (RGB, ``side`` x ``side``, white background) of a Fashion-MNIST garment.

    ``garment`` is one 28 x 28 Fashion-MNIST picture (uint8 0-255 or float in [0, 1], garment
    bright on black, as the dataset stores it); ``seed`` picks the colour and the pattern.
    """
    levels = np.asarray(garment, dtype=np.float32)
    if levels.ndim != 2:
        raise ValueError(f"expected one 2-D garment picture, got shape {levels.shape}")
    if levels.max() > 1.0:
        levels = levels / 255.0
    rng = np.random.default_rng(seed)
    grey = Image.fromarray(np.round(np.clip(levels, 0.0, 1.0) * 255.0).astype(np.uint8), mode="L")
    enlarged = grey.resize((side, side), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(radius=side / 224))
    shade = np.asarray(enlarged, dtype=np.float32) / 255.0
    # Fashion-MNIST garments are faint at their edges and darker where the photograph was shaded:
    # the opacity saturates early, and the grey level darkens the fabric only a little.
    opacity = np.clip(shade * 2.5, 0.0, 1.0)[..., None]
    base = np.array(FABRIC_COLOURS[int(rng.integers(len(FABRIC_COLOURS)))], dtype=np.float32)
    tint = base + (255.0 - base) * 0.55
    pattern = _pattern_mask(PATTERNS[int(rng.integers(len(PATTERNS)))], side, rng)[..., None]
    fabric = base * (1.0 - pattern) + tint * pattern
    lit = fabric * (0.55 + 0.45 * shade[..., None])
    picture = 255.0 * (1.0 - opacity) + lit * opacity
    return Image.fromarray(np.round(np.clip(picture, 0.0, 255.0)).astype(np.uint8), mode="RGB")


def product_bytes(garment: np.ndarray, seed: int = 0, side: int = DEFAULT_SIDE, file_format: str = "PNG") -> bytes:
    """``product_picture`` encoded as PNG or JPEG (quality 90), the bytes a shop would upload."""
    if file_format not in ("PNG", "JPEG"):
        raise ValueError(f"file_format must be PNG or JPEG; got {file_format!r}")
    buffer = io.BytesIO()
    options = {"quality": 90} if file_format == "JPEG" else {}
    product_picture(garment, seed, side).save(buffer, format=file_format, **options)
    return buffer.getvalue()
