"""Fashion-MNIST loader (Xiao, Rasul & Vollgraf 2017): 70k 28x28 grey garment images in ten classes.

Reads the original idx ``.gz`` files offline. The folder comes from the ``root`` argument,
else the ``TRYON_FASHION_MNIST_DIR`` environment variable, else the Debian package's
``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Literal

import numpy as np

from tryon.services.garment.categories import NUM_CATEGORIES

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
ROOT_ENV_VAR = "TRYON_FASHION_MNIST_DIR"
IMAGE_SIZE = 28

_FILE_PREFIX = {"train": "train", "test": "t10k"}
_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049


def fashion_mnist_root(root: Path | str | None = None) -> Path:
    """Return the dataset folder: ``root`` if given, else ``$TRYON_FASHION_MNIST_DIR``, else the Debian path."""
    if root is not None:
        return Path(root)
    from_env = os.environ.get(ROOT_ENV_VAR)
    return Path(from_env) if from_env else DEFAULT_ROOT


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Read one idx file (big-endian header: magic, dimension sizes; then unsigned bytes)."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    header_magic = int.from_bytes(data[0:4], "big")
    if header_magic != magic:
        raise ValueError(f"{path} is not an idx file of the expected kind (magic {header_magic}, expected {magic})")
    dimensions = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dimensions))
    offset = 4 + 4 * dimensions
    array = np.frombuffer(data, dtype=np.uint8, offset=offset)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: header says {shape}, found {array.size} values")
    return array.reshape(shape)


def load_fashion_mnist(
    split: Literal["train", "test"], root: Path | str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load a split as (images uint8 [N, 28, 28], labels int64 [N]).

    Raises FileNotFoundError naming the missing file and how to provide the dataset.
    """
    if split not in _FILE_PREFIX:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    folder = fashion_mnist_root(root)
    prefix = _FILE_PREFIX[split]
    images_path = folder / f"{prefix}-images-idx3-ubyte.gz"
    labels_path = folder / f"{prefix}-labels-idx1-ubyte.gz"
    for path in (images_path, labels_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"Fashion-MNIST file {path} not found. Install the dataset with "
                f"'apt-get install dataset-fashion-mnist', or set {ROOT_ENV_VAR} to a folder "
                f"holding {prefix}-images-idx3-ubyte.gz and {prefix}-labels-idx1-ubyte.gz."
            )
    images = _read_idx(images_path, _IMAGES_MAGIC)
    labels = _read_idx(labels_path, _LABELS_MAGIC).astype(np.int64)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or images.shape[0] != labels.shape[0]:
        raise ValueError(f"unexpected Fashion-MNIST shapes in {folder}: images {images.shape}, labels {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CATEGORIES):
        raise ValueError(f"Fashion-MNIST labels in {labels_path} fall outside [0, {NUM_CATEGORIES - 1}]")
    return images, labels


def to_unit_float(images: np.ndarray) -> np.ndarray:
    """Convert uint8 images to float32 in [0, 1] (garment bright on black, as stored)."""
    return images.astype(np.float32) / 255.0
