"""Tests of the Fashion-MNIST loader and the category names and regions."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from tryon.services.garment import categories
from tryon.services.garment.dataset import ROOT_ENV_VAR, load_fashion_mnist, to_unit_float
from tryon.shared.errors import InvalidArgument


def _write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    header = magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture()
def tiny_dataset(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = np.array([9, 0, 3, 1, 2, 8, 5], dtype=np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, 2051)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels, 2049)
    return tmp_path, images, labels


def test_load_reads_idx_files_from_given_root(tiny_dataset) -> None:
    root, images, labels = tiny_dataset
    loaded_images, loaded_labels = load_fashion_mnist("test", root=root)
    assert loaded_images.dtype == np.uint8 and loaded_images.shape == (7, 28, 28)
    assert loaded_labels.dtype == np.int64
    np.testing.assert_array_equal(loaded_images, images)
    np.testing.assert_array_equal(loaded_labels, labels)


def test_load_uses_environment_variable(tiny_dataset, monkeypatch) -> None:
    root, images, _ = tiny_dataset
    monkeypatch.setenv(ROOT_ENV_VAR, str(root))
    loaded_images, _ = load_fashion_mnist("test")
    np.testing.assert_array_equal(loaded_images, images)


def test_missing_dataset_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as excinfo:
        load_fashion_mnist("train", root=tmp_path)
    message = str(excinfo.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert ROOT_ENV_VAR in message


def test_unknown_split_is_rejected(tiny_dataset) -> None:
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("validation", root=tiny_dataset[0])


def test_truncated_file_is_reported(tmp_path: Path) -> None:
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28)), 2051)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(2), 2049)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "rb") as handle:
        data = handle.read()
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(data[:-10])
    with pytest.raises(ValueError, match="truncated"):
        load_fashion_mnist("test", root=tmp_path)


def test_unit_float_range() -> None:
    floats = to_unit_float(np.array([[0, 255]], dtype=np.uint8))
    assert floats.dtype == np.float32
    np.testing.assert_allclose(floats, [[0.0, 1.0]])


def test_installed_dataset_has_the_published_sizes() -> None:
    try:
        images, labels = load_fashion_mnist("test")
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST is not installed on this machine")
    assert images.shape == (10000, 28, 28)
    np.testing.assert_array_equal(np.bincount(labels), np.full(10, 1000))


def test_category_names_and_labels() -> None:
    assert len(categories.CATEGORIES) == 10
    for label, name in enumerate(categories.CATEGORIES):
        assert categories.label_from_name(name) == label
        assert categories.category_name(np.int32(label)) == name


def test_regions() -> None:
    regions = categories.REGION_BY_CATEGORY
    assert set(regions) == set(categories.CATEGORIES)
    assert regions["dress"] == regions["coat"] == "full"
    assert regions["trouser"] == "bottom"
    assert regions["bag"] == "carried"
    assert {regions[name] for name in ("sandal", "sneaker", "ankle_boot")} == {"feet"}
    assert categories.region_of(0) == "top"
    with pytest.raises(InvalidArgument):
        categories.region_of(10)
