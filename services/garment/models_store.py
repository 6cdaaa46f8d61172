"""Where GarmentService gets its models at start: the data folder, or training the default ones."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from tryon.services.garment.settings import GarmentSettings

logger = logging.getLogger("tryon.services.garment")

MODELS_FOLDER = "models"


def models_dir(settings: GarmentSettings) -> Path:
    """Where the service keeps its trained models."""
    return settings.data_dir / MODELS_FOLDER


def load_or_train_models(settings: GarmentSettings):
    """The garment models saved under the data folder, or the default ones trained on Fashion-MNIST and saved there."""
    from tryon.services.garment.dataset import load_fashion_mnist
    from tryon.services.garment.garment_models import GarmentModels

    directory = models_dir(settings)
    try:
        models = GarmentModels.load(directory)
        logger.info("garment models loaded", extra={"models_dir": str(directory)})
        return models
    except FileNotFoundError:
        pass
    images, labels = load_fashion_mnist("train", settings.fashion_mnist_dir)
    if settings.train_images:
        images, labels = images[: settings.train_images], labels[: settings.train_images]
    logger.info(
        "no garment models found; training the default ones",
        extra={"models_dir": str(directory), "epochs": settings.train_epochs, "images": int(len(images))},
    )
    started = time.monotonic()
    epochs = settings.train_epochs
    models = GarmentModels.train(
        images.astype(np.float32) / 255.0,
        labels,
        vae_epochs=epochs,
        gan_epochs=epochs,
        classifier_epochs=epochs,
        seed=settings.train_seed,
        progress=False,
    )
    models.save(directory)
    logger.info("garment models trained and saved", extra={"seconds": round(time.monotonic() - started, 1)})
    return models
