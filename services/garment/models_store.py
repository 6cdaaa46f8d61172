"""Where GarmentService gets its models at start: the data folder, the shipped weights, or training.

Models under ``<data_dir>/models`` are loaded. Without them, the weights shipped in
``services/garment/weights/models`` (written by ``make weights``) are copied there when they were
trained with the service's own training settings, unless ``train_on_start`` asks for training;
otherwise the default models are trained on Fashion-MNIST and saved there. The log says which of
the three happened.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from tryon.services.garment.settings import GarmentSettings
from tryon.shared.shipped_weights import install_shipped, write_shipped

logger = logging.getLogger("tryon.services.garment")

MODELS_FOLDER = "models"

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
"""The package folder of the shipped weights: ``models/`` as a service's data folder holds it."""
SHIPPED_DIR = WEIGHTS_DIR / MODELS_FOLDER
"""The shipped folder a first start copies into its data folder."""

TRAINING_DATA = "Fashion-MNIST training images (Debian package dataset-fashion-mnist), in file order"


def models_dir(settings: GarmentSettings) -> Path:
    """Where the service keeps its trained models."""
    return settings.data_dir / MODELS_FOLDER


def training_settings(settings: GarmentSettings) -> dict[str, int | None]:
    """The settings that decide the trained models, compared with the shipped weights' provenance."""
    return {"train_epochs": settings.train_epochs, "train_images": settings.train_images, "train_seed": settings.train_seed}


def train_models(settings: GarmentSettings, progress: bool = False):
    """Train the default models on Fashion-MNIST with the settings' epochs, images and seed; save them."""
    from tryon.services.garment.dataset import load_fashion_mnist
    from tryon.services.garment.garment_models import GarmentModels

    images, labels = load_fashion_mnist("train", settings.fashion_mnist_dir)
    if settings.train_images:
        images, labels = images[: settings.train_images], labels[: settings.train_images]
    logger.info(
        "no garment models found; training the default ones",
        extra={"models_dir": str(models_dir(settings)), "epochs": settings.train_epochs, "images": int(len(images))},
    )
    epochs = settings.train_epochs
    models = GarmentModels.train(
        images.astype(np.float32) / 255.0,
        labels,
        vae_epochs=epochs,
        gan_epochs=epochs,
        classifier_epochs=epochs,
        seed=settings.train_seed,
        progress=progress,
    )
    models.save(models_dir(settings))
    return models


def _load(directory: Path, source: str):
    """The models under ``directory``, or None when there are none."""
    from tryon.services.garment.garment_models import GarmentModels

    try:
        models = GarmentModels.load(directory)
    except FileNotFoundError:
        return None
    logger.info("garment models loaded", extra={"models_dir": str(directory), "source": source})
    return models


def load_or_train_models(settings: GarmentSettings, shipped: Path = SHIPPED_DIR):
    """The garment models saved under the data folder, else the shipped ones, else the default ones trained there."""
    directory = models_dir(settings)
    if (models := _load(directory, "stored")) is not None:
        return models
    if settings.train_on_start:
        logger.info("training on start as asked; the shipped garment models are not used")
    else:
        installed = install_shipped(shipped, directory, training_settings(settings))
        logger.info(installed.reason, extra={"models_dir": str(directory)})
        if installed.provenance is not None and (models := _load(directory, "shipped")) is not None:
            return models
    started = time.monotonic()
    models = train_models(settings)
    logger.info("garment models trained and saved", extra={"seconds": round(time.monotonic() - started, 1)})
    return models


def write_weights(unrelated: tuple[Path, ...] = ()) -> dict:
    """Train the default models as a first start would and ship them in ``SHIPPED_DIR``; returns their provenance."""
    import torch

    settings = GarmentSettings()
    torch.set_num_threads(settings.torch_threads)

    def train(data_dir: Path) -> Path:
        trained = replace(settings, data_dir=data_dir)
        train_models(trained, progress=True)
        return models_dir(trained)

    return write_shipped(
        SHIPPED_DIR, train, service="garment", training=training_settings(settings),
        data=TRAINING_DATA, unrelated=unrelated,
    )
