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
import threading
import time
from pathlib import Path

import numpy as np

from tryon.services.garment.catalogue import Catalogue
from tryon.services.garment.domain import GarmentDomain
from tryon.services.garment.servicer import registration
from tryon.services.garment.settings import ENV_PREFIX, GarmentSettings
from tryon.shared.logs import configure_logging
from tryon.shared.server import serve
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
    if settings.training_images:
        images, labels = images[: settings.training_images], labels[: settings.training_images]
    logger.info(
        "no garment models found; training the default ones",
        extra={"models_dir": str(directory), "epochs": settings.training_epochs, "images": int(len(images))},
    )
    started = time.monotonic()
    epochs = settings.training_epochs
    models = GarmentModels.train(
        images.astype(np.float32) / 255.0,
        labels,
        vae_epochs=epochs,
        gan_epochs=epochs,
        classifier_epochs=epochs,
        seed=settings.training_seed,
        progress=False,
    )
    models.save(directory)
    logger.info("garment models trained and saved", extra={"seconds": round(time.monotonic() - started, 1)})
    return models


class _Resources:
    """What start-up acquires and shutdown must release: the event producer and the broker."""

    def __init__(self) -> None:
        self.producer = None
        self.broker = None
        self.closed = False
        self.failed = False
        self._lock = threading.Lock()

    def adopt(self, producer=None, broker=None) -> bool:
        """Keep what start-up acquired; False (and release it) when shutdown came first."""
        with self._lock:
            self.producer = producer or self.producer
            self.broker = broker or self.broker
            closed = self.closed
        if closed:
            self.close()
        return not closed

    def close(self) -> None:
        """Close the producer (flushing it), then stop the embedded broker; safe to call twice."""
        with self._lock:
            self.closed = True
            producer, broker = self.producer, self.broker
            self.producer = self.broker = None
        if producer is not None:
            producer.close()
        if broker is not None:
            broker.stop()


def _prepare(settings: GarmentSettings, domain: GarmentDomain, running, resources: _Resources) -> None:
    """Connect the publisher, load or train the models, then report SERVING."""
    try:
        from tryon.services.garment.events import GarmentEventPublisher
        from tryon.shared.broker import ensure_topics, resolve_bootstrap
        from tryon.shared.events import EventProducer

        bootstrap, broker = resolve_bootstrap()
        if not resources.adopt(broker=broker):
            return
        ensure_topics(bootstrap, [GARMENTS])
        producer = EventProducer(bootstrap, client_id="tryon-garment")
        if not resources.adopt(producer=producer):
            return
        domain.set_publisher(GarmentEventPublisher(producer))
        domain.set_models(load_or_train_models(settings))
        if resources.closed:
            return
        running.set_serving(True)
        logger.info("garment service ready", extra={"bootstrap_servers": bootstrap})
    except Exception:
        logger.exception("garment service failed to start; stopping")
        resources.failed = True
        running.stop(grace=0)


def main() -> int:
    """Start the service and block until SIGTERM/SIGINT has drained it."""
    settings = settings_or_exit(GarmentSettings, ENV_PREFIX)
    configure_logging("garment", settings.log_level)
    silhouettes = None
    if settings.body_service_address:
        from tryon.services.garment.body_client import BodyServiceClient

        silhouettes = BodyServiceClient(
            settings.body_service_address, settings.body_service_timeout_seconds, settings.body_service_auth_token
        )
    domain = GarmentDomain(Catalogue(settings.data_dir), silhouettes=silhouettes)
    running = serve("garment", [registration(domain)], settings)
    running.set_serving(False)
    resources = _Resources()
    running.install_signal_handlers(on_shutdown=resources.close)
    # Training can take minutes; doing it off the main thread keeps SIGTERM prompt meanwhile.
    threading.Thread(
        target=_prepare, args=(settings, domain, running, resources), name="garment-startup", daemon=True
    ).start()
    running.wait()
    resources.close()
    if silhouettes is not None:
        silhouettes.close()
    return 1 if resources.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
