"""Garment fixtures: a small real Fashion-MNIST sample and garment models trained on it in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tryon.services.garment.dataset import load_fashion_mnist, to_unit_float
from tryon.services.garment.garment_models import GarmentModels, GarmentModelsConfig

FIXTURE_TRAINING_IMAGES = 3000


def _load_or_skip(split: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        return load_fashion_mnist(split)
    except FileNotFoundError as error:
        pytest.skip(f"Fashion-MNIST is not installed: {error}")


@pytest.fixture(scope="session")
def fashion_sample() -> tuple[np.ndarray, np.ndarray]:
    """The first 512 Fashion-MNIST test images as float32 [512, 28, 28] in [0, 1] and their labels."""
    images, labels = _load_or_skip("test")
    return to_unit_float(images[:512]), labels[:512]


@pytest.fixture(scope="session")
def trained_garment_models() -> GarmentModels:
    """VAE, GAN and classifier trained one epoch on 3,000 training images (seconds on a laptop CPU).

    Good enough to exercise every entry point with real weights; not a quality model.
    """
    images, labels = _load_or_skip("train")
    return GarmentModels.train(
        to_unit_float(images[:FIXTURE_TRAINING_IMAGES]),
        labels[:FIXTURE_TRAINING_IMAGES],
        GarmentModelsConfig(),
        vae_epochs=1,
        gan_epochs=1,
        classifier_epochs=1,
        seed=0,
        progress=False,
        device="cpu",
    )


@pytest.fixture(scope="session")
def trained_garment_models_dir(trained_garment_models: GarmentModels, tmp_path_factory) -> Path:
    """A folder holding ``trained_garment_models`` as written by ``GarmentModels.save``."""
    return trained_garment_models.save(tmp_path_factory.mktemp("garment-models"))
