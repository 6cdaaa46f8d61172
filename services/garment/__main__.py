"""Run GarmentService: ``python -m tryon.services.garment``.

Reads ``TRYON_GARMENT_*`` settings, logs JSON lines to stdout and starts serving at once with
health NOT_SERVING, so probes can tell "starting" from "down"; the catalogue RPCs answer
already. The garment models are loaded from ``<data_dir>/models``, or trained on
Fashion-MNIST and saved there when missing (minutes on a CPU); once the models and the
event publisher are ready, health turns SERVING. Events go to ``KAFKA_BOOTSTRAP_SERVERS`` or,
when it is unset, to an embedded broker owned by this process. SIGTERM drains in-flight
calls and exits.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from tryon.services.garment.body_client import BodyServiceClient
from tryon.services.garment.catalogue import Catalogue
from tryon.services.garment.domain import GarmentDomain
from tryon.services.garment.events import GarmentEventPublisher
from tryon.services.garment.servicer import registration
from tryon.services.garment.settings import PREFIX, GarmentSettings
from tryon.shared.lifecycle import Resources, connect_kafka, event_publisher, exit_process, run_service
from tryon.shared.settings import settings_or_exit
from tryon.shared.topics import GARMENTS

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


def _prepare(settings: GarmentSettings, domain: GarmentDomain, resources: Resources) -> None:
    """Connect the publisher, then load or train the models and hand them to the domain."""
    bootstrap_servers = connect_kafka(resources, [GARMENTS])
    publisher = event_publisher(resources, bootstrap_servers, "tryon-garment", settings.data_dir)
    domain.set_publisher(GarmentEventPublisher(publisher))
    domain.set_models(load_or_train_models(settings))
    logger.info("garment service ready", extra={"bootstrap_servers": bootstrap_servers})


def main() -> int:
    """Start the service and block until SIGTERM/SIGINT has drained it."""
    settings = settings_or_exit(GarmentSettings, PREFIX)
    silhouettes = None
    if settings.body_service_address:
        silhouettes = BodyServiceClient(
            settings.body_service_address, settings.body_service_timeout_seconds, settings.body_service_auth_token
        )
    domain = GarmentDomain(Catalogue(settings.data_dir), silhouettes=silhouettes)
    status = run_service(
        "garment", [registration(domain)], settings, lambda resources: _prepare(settings, domain, resources)
    )
    if silhouettes is not None:
        silhouettes.close()
    return status


if __name__ == "__main__":
    exit_process(main())
