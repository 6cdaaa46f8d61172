"""Garment pictures: safe decoding of caller images and conversion to the Fashion-MNIST format.

The models see 28 x 28 grey pictures with the garment bright on black. Fashion-MNIST was made
from shop photographs by trimming the product, scaling its longest edge to 28 pixels, centring
it on a square and negating it (Xiao, Rasul & Vollgraf 2017, section 2); ``to_model_input``
does the same for any PNG or JPEG a caller sends, dark-on-light or light-on-dark.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps

from tryon.shared.errors import InvalidArgument

MODEL_SIZE = 28
"""Side of the model's pictures in pixels."""

MAX_IMAGE_BYTES = 8 * 1024 * 1024
"""Largest accepted encoded image."""

MAX_IMAGE_SIDE = 4096
"""Largest accepted width or height, checked from the header before any pixel is decoded."""

ACCEPTED_FORMATS = ("PNG", "JPEG")
"""Decoders tried; the JPEG decoder also opens MPO, the JPEG variant many cameras write."""

_BORDER_LIGHT_THRESHOLD = 0.5
"""A picture whose border is brighter than this (in [0, 1]) shows a dark garment on a light background."""

_WORKING_SIDE = 224
"""Large pictures are first reduced (by an integer box filter) until their shorter side is about
this long: ample detail for a 28-pixel result, and the later steps cost far less."""

_OBJECT_THRESHOLD = 0.08
"""Pixels brighter than this above the background belong to the garment when finding its box."""


def decode_image(data: bytes, field: str = "image", at_least: int | None = None) -> Image.Image:
    """Decode PNG or JPEG bytes into a loaded PIL image, refusing oversized or corrupt input.

    The width and height are read from the header and checked before the pixels are
    decoded, so a small file that claims a huge picture (a decompression bomb) costs nothing.
    With ``at_least``, a JPEG may be decoded at a reduced scale (1/2 to 1/8) that keeps both
    sides at least that long, which is several times faster for large photos.
    Raises InvalidArgument naming ``field`` and the accepted limits.
    """
    if not data:
        raise InvalidArgument(f"{field} is empty; send PNG or JPEG bytes")
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidArgument(
            f"{field} is {len(data)} bytes; at most {MAX_IMAGE_BYTES} bytes (8 MiB) are accepted"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidArgument(
            f"{field} claims a picture larger than {MAX_IMAGE_SIDE} x {MAX_IMAGE_SIDE} pixels; "
            f"width and height must be 1 to {MAX_IMAGE_SIDE}"
        ) from None
    except (OSError, ValueError, SyntaxError):
        raise InvalidArgument(f"{field} is not a readable PNG or JPEG picture") from None
    width, height = image.size
    if not (1 <= width <= MAX_IMAGE_SIDE and 1 <= height <= MAX_IMAGE_SIDE):
        raise InvalidArgument(
            f"{field} is {width} x {height} pixels; width and height must be 1 to {MAX_IMAGE_SIDE}"
        )
    if at_least is not None and image.format in ("JPEG", "MPO"):
        image.draft(image.mode, (at_least, at_least))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except Exception:  # noqa: BLE001 - PIL raises many types for truncated or corrupt data
        raise InvalidArgument(f"{field} is a corrupt or truncated PNG or JPEG picture") from None
    return image


def _grey_levels(image: Image.Image) -> np.ndarray:
    """Grey levels in [0, 1]; transparent pixels count as background (the border colour)."""
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        grey = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        alpha = rgba[..., 3]
        opaque_border = _border(grey)[_border(alpha) > 0.5]
        background = float(np.median(opaque_border)) if opaque_border.size else 0.0
        return alpha * grey + (1.0 - alpha) * background
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        levels = np.asarray(image, dtype=np.float32)
        span = float(levels.max() - levels.min())
        return (levels - levels.min()) / span if span > 0 else np.zeros_like(levels)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def _border(levels: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels."""
    return np.concatenate([levels[0, :], levels[-1, :], levels[:, 0], levels[:, -1]])


def _resize(levels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float picture (width, height) with an antialiasing filter."""
    picture = Image.fromarray(levels.astype(np.float32), mode="F")
    return np.asarray(picture.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)


def to_model_input(image: Image.Image) -> np.ndarray:
    """Convert a picture into a 28 x 28 float32 array in [0, 1], garment bright on black.

    A light background is detected from the border and the picture negated; the garment is
    cropped to its bounding box, centred on a black square keeping its aspect ratio and
    scaled to 28 x 28, then stretched so that its brightest pixel is 1. A 28 x 28 picture is
    taken as already framed the Fashion-MNIST way and is only negated when needed.
    Raises InvalidArgument when the picture is one flat colour (no garment to see).
    """
    reduction = min(image.size) // _WORKING_SIDE
    if reduction >= 2:
        image = image.reduce(reduction)
    levels = _grey_levels(image)
    if float(np.median(_border(levels))) > _BORDER_LIGHT_THRESHOLD:
        levels = 1.0 - levels
    background = float(np.median(_border(levels)))
    foreground = np.clip(levels - background, 0.0, 1.0)
    peak = float(foreground.max())
    if peak <= _OBJECT_THRESHOLD:
        raise InvalidArgument("image shows no garment: it is a single flat colour")
    if foreground.shape != (MODEL_SIZE, MODEL_SIZE):
        rows = np.flatnonzero((foreground > _OBJECT_THRESHOLD * peak).any(axis=1))
        columns = np.flatnonzero((foreground > _OBJECT_THRESHOLD * peak).any(axis=0))
        cropped = foreground[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
        side = max(cropped.shape)
        square = np.zeros((side, side), dtype=np.float32)
        top = (side - cropped.shape[0]) // 2
        left = (side - cropped.shape[1]) // 2
        square[top : top + cropped.shape[0], left : left + cropped.shape[1]] = cropped
        foreground = np.clip(_resize(square, (MODEL_SIZE, MODEL_SIZE)), 0.0, None)
        peak = float(foreground.max())
    return np.clip(foreground / peak, 0.0, 1.0).astype(np.float32)


def model_input_from_bytes(data: bytes, field: str = "image") -> np.ndarray:
    """Decode caller bytes and convert them to the model's 28 x 28 format (see ``to_model_input``)."""
    return to_model_input(decode_image(data, field, at_least=_WORKING_SIDE))


def encode_png(levels: np.ndarray) -> bytes:
    """Encode a 2-D float array in [0, 1] as an 8-bit grey PNG."""
    array = np.asarray(levels, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D picture, got shape {array.shape}")
    grey = np.round(np.clip(np.nan_to_num(array), 0.0, 1.0) * 255.0).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(grey, mode="L").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """Decode a grey PNG written by ``encode_png`` into a float32 array in [0, 1]."""
    with Image.open(io.BytesIO(data), formats=("PNG",)) as image:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def to_rgba(image: Image.Image) -> Image.Image:
    """A decoded picture as RGBA, upright (EXIF orientation applied); 16-bit and float grey
    pictures are stretched to their own range first, as ``to_model_input`` reads them."""
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        levels = _grey_levels(image)
        image = Image.fromarray(np.round(levels * 255.0).astype(np.uint8), mode="L")
    return image.convert("RGBA")


_CUT_OUT_SOFT = (0.06, 0.16)
"""A pixel this far (RGB distance in [0, 1] units) from the background colour starts to count as
garment, and from the second value on is fully opaque; in between it is a soft edge."""


def cut_out(image: Image.Image) -> Image.Image:
    """The garment of a product picture on a transparent background, as an RGBA image.

    The background colour is the median of the picture's border (product photographs show
    the garment on a plain background); a pixel's opacity grows with its colour distance from
    that colour, times any transparency the picture already had. A garment of the background's
    own colour (white on white) cannot be told from it and comes out faint.
    """
    rgba = np.asarray(to_rgba(image), dtype=np.float32) / 255.0
    colour, alpha = rgba[..., :3], rgba[..., 3]
    opaque = _border(alpha) > 0.5
    border = np.concatenate([colour[0], colour[-1], colour[:, 0], colour[:, -1]])[opaque]
    if border.size == 0:
        return to_rgba(image)
    background = np.median(border, axis=0)
    distance = np.linalg.norm(colour - background, axis=-1) / np.sqrt(3.0)
    low, high = _CUT_OUT_SOFT
    garment = np.clip((distance - low) / (high - low), 0.0, 1.0) * alpha
    out = np.concatenate([colour, garment[..., None]], axis=-1)
    return Image.fromarray(np.round(out * 255.0).astype(np.uint8), mode="RGBA")


MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg"}
"""The media type of each accepted format."""


def fit_within(data: bytes, max_side: int = 0) -> tuple[bytes, str, tuple[int, int]]:
    """A stored picture for a caller: (bytes, media type, (width, height)).

    With ``max_side`` 0, or a picture whose sides are both at most ``max_side``, the bytes are
    returned as they are. Otherwise the picture is turned upright (EXIF), scaled down so its
    longer side is ``max_side`` (aspect ratio kept) and re-encoded in its own format (JPEG at
    quality 90, PNG keeping transparency).
    """
    with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as header:
        size, media_type = header.size, MEDIA_TYPES[header.format]
    if max_side == 0 or max(size) <= max_side:
        return data, media_type, size
    picture = decode_image(data, "stored picture", at_least=max_side)
    upright = ImageOps.exif_transpose(picture) or picture
    scale = max_side / max(upright.size)
    size = (max(1, round(upright.width * scale)), max(1, round(upright.height * scale)))
    buffer = io.BytesIO()
    if media_type == "image/jpeg":
        upright.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(buffer, format="JPEG", quality=90)
    else:
        upright = to_rgba(upright) if upright.mode not in ("L", "LA", "RGB", "RGBA") else upright
        upright.resize(size, Image.Resampling.LANCZOS).save(buffer, format="PNG")
    return buffer.getvalue(), media_type, size
