"""Where BodyService gets its body model at start: the data folder, the shipped weights, or training.

A model under ``<data_dir>/model`` is loaded. Without one, the weights shipped in
``services/body/weights/model`` (written by ``make weights``) are copied there when they were
trained with the service's own training settings, unless ``train_on_start`` asks for training;
otherwise (or when the shipped model is of an older format) the default model is trained on the
committed ANSUR II subset and saved there. The log says which of the three happened.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

from tryon.services.body.settings import BodySettings
from tryon.shared.shipped_weights import PROVENANCE_FILE, install_shipped, write_shipped

logger = logging.getLogger("tryon.services.body")

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
"""The package folder of the shipped weights: ``model/`` as a service's data folder holds it."""
SHIPPED_DIR = WEIGHTS_DIR / "model"
"""The shipped folder a first start copies into its data folder."""

TRAINING_DATA = "services/body/ansur_ii_subset.csv.gz: the committed ANSUR II subset (services/body/DATA.md)"


def training_settings(settings: BodySettings) -> dict[str, int | None]:
    """The settings that decide the trained model, compared with the shipped weights' provenance."""
    return {"train_epochs": settings.train_epochs, "gan_epochs": settings.gan_epochs, "train_seed": settings.train_seed}


def train_model(settings: BodySettings, progress: bool = False):
    """Train the default body model with the settings' epochs and seed and save it under ``model_dir``."""
    from tryon.services.body.body_model import BodyModel, BodyModelConfig
    from tryon.services.body.dataset import load_subset

    model = BodyModel.train(
        load_subset(),
        BodyModelConfig(),
        epochs=settings.train_epochs,
        seed=settings.train_seed,
        progress=progress,
        gan_epochs=settings.gan_epochs,
    )
    model.save(settings.model_dir)
    return model


def _load(settings: BodySettings, source: str):
    """The model under ``model_dir``, or None when it is of an older format (logged)."""
    from tryon.services.body.body_model import BodyModel, ModelFormatError

    try:
        model = BodyModel.load(settings.model_dir)
    except ModelFormatError as error:
        logger.warning("body model of an older format; not using it", extra={"source": source, "reason": str(error)})
        return None
    logger.info("body model loaded", extra={"model_dir": str(settings.model_dir), "source": source})
    return model


def load_or_train_model(settings: BodySettings, shipped: Path = SHIPPED_DIR):
    """The body model saved under the data folder, else the shipped one, else the default one trained there."""
    from tryon.services.body.body_model import CONFIG_FILE

    if (settings.model_dir / CONFIG_FILE).exists() and (model := _load(settings, "stored")) is not None:
        return model
    if settings.train_on_start:
        logger.info("training on start as asked; the shipped body model is not used")
    else:
        installed = install_shipped(shipped, settings.model_dir, training_settings(settings))
        logger.info(installed.reason, extra={"model_dir": str(settings.model_dir)})
        if installed.provenance is not None and (model := _load(settings, "shipped")) is not None:
            return model
    logger.info(
        "no body model found; training the default one",
        extra={"model_dir": str(settings.model_dir), "epochs": settings.train_epochs},
    )
    # The model trained next is not the one a copied provenance describes.
    (settings.model_dir / PROVENANCE_FILE).unlink(missing_ok=True)
    started = time.monotonic()
    model = train_model(settings)
    logger.info("body model trained and saved", extra={"seconds": round(time.monotonic() - started, 1)})
    return model


def write_weights(unrelated: tuple[Path, ...] = ()) -> dict:
    """Train the default model as a first start would and ship it in ``SHIPPED_DIR``; returns its provenance."""
    import torch

    settings = BodySettings()
    torch.set_num_threads(settings.torch_threads)

    def train(data_dir: Path) -> Path:
        trained = replace(settings, data_dir=data_dir)
        train_model(trained, progress=True)
        return trained.model_dir

    return write_shipped(
        SHIPPED_DIR, train, service="body", training=training_settings(settings), data=TRAINING_DATA,
        unrelated=unrelated,
    )
