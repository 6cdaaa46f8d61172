"""Decoding caller pictures and converting them to the Fashion-MNIST framing."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tryon.services.garment import images
from tryon.shared.errors import InvalidArgument


def _png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge picture (a decompression bomb)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_png_round_trip_keeps_levels() -> None:
    levels = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(28, 28)
    decoded = images.decode_png(images.encode_png(levels))
    assert decoded.shape == (28, 28)
    assert np.abs(decoded - levels).max() <= 1 / 255 + 1e-6


def test_fashion_mnist_picture_is_kept_as_is() -> None:
    levels = np.zeros((28, 28), dtype=np.float32)
    levels[4:24, 9:19] = np.linspace(0.2, 1.0, 10)
    converted = images.model_input_from_bytes(images.encode_png(levels))
    assert np.abs(converted - levels).max() <= 1 / 255 + 1e-6


def test_dark_garment_on_white_photo_is_negated_cropped_and_centred() -> None:
    photo = Image.new("RGB", (800, 400), "white")
    ImageDraw.Draw(photo).rectangle([500, 100, 699, 299], fill=(20, 20, 60))
    converted = images.model_input_from_bytes(_jpeg(photo))
    assert converted.shape == (28, 28)
    assert converted.dtype == np.float32
    # The square garment fills the picture after cropping, bright on black.
    assert converted[4:24, 4:24].min() > 0.9
    assert converted.max() == pytest.approx(1.0)


def test_wide_garment_keeps_its_aspect_ratio() -> None:
    photo = Image.new("L", (600, 600), 0)
    ImageDraw.Draw(photo).rectangle([100, 250, 499, 349], fill=200)
    converted = images.model_input_from_bytes(_png(photo))
    rows_with_garment = np.flatnonzero(converted.max(axis=1) > 0.5)
    columns_with_garment = np.flatnonzero(converted.max(axis=0) > 0.5)
    assert len(columns_with_garment) >= 26
    assert 5 <= len(rows_with_garment) <= 9  # 4:1 aspect -> about 7 rows of 28
    assert abs(rows_with_garment.mean() - 13.5) < 1.0


def test_transparent_background_counts_as_background() -> None:
    photo = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    ImageDraw.Draw(photo).ellipse([50, 50, 250, 250], fill=(200, 30, 30, 255))
    converted = images.model_input_from_bytes(_png(photo))
    assert converted[14, 14] > 0.9
    assert converted[0, 0] < 0.05


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"not a picture at all", "not a readable"),
        (b"GIF89a" + b"\x00" * 100, "not a readable"),
    ],
)
def test_non_pictures_are_invalid_arguments(data: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        images.decode_image(data)


def test_truncated_png_is_invalid_argument() -> None:
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    data = _png(photo)
    with pytest.raises(InvalidArgument, match="image"):
        images.decode_image(data[: len(data) // 2])


def test_decompression_bomb_is_refused_from_its_header() -> None:
    with pytest.raises(InvalidArgument, match="4096"):
        images.decode_image(_png_header_claiming(50_000, 50_000))
    with pytest.raises(InvalidArgument, match="4096"):
        images.decode_image(_png_header_claiming(4097, 10))


def test_too_many_bytes_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="8 MiB"):
        images.decode_image(b"\x89PNG" + b"\x00" * images.MAX_IMAGE_BYTES)


def test_largest_accepted_side_decodes() -> None:
    data = _png(Image.new("L", (4096, 1), 0))
    assert images.decode_image(data).size == (4096, 1)


def test_flat_picture_has_no_garment() -> None:
    with pytest.raises(InvalidArgument, match="no garment"):
        images.model_input_from_bytes(_png(Image.new("RGB", (64, 64), (128, 128, 128))))


def test_large_photo_of_a_fashion_mnist_garment_converts_back_to_it() -> None:
    from tryon.services.garment.dataset import load_fashion_mnist

    pictures, _ = load_fashion_mnist("test")
    original = pictures[0].astype(np.float32) / 255.0
    enlarged = Image.fromarray(np.uint8(255 - pictures[0]), mode="L").resize((900, 900), Image.Resampling.BICUBIC)
    photo = Image.new("RGB", (1400, 1200), "white")
    photo.paste(enlarged.convert("RGB"), (300, 150))
    converted = images.model_input_from_bytes(_jpeg(photo))
    assert np.abs(converted - original).mean() < 0.08
