"""Where BodyService gets its body model at start: the data folder, or training the default one."""

from __future__ import annotations

import logging
import time

from tryon.services.body.settings import BodySettings

logger = logging.getLogger("tryon.services.body")


def load_or_train_model(settings: BodySettings):
    """The body model saved under the data folder, or the default one trained and saved there."""
    from tryon.services.body.body_model import CONFIG_FILE, BodyModel, BodyModelConfig, ModelFormatError
    from tryon.services.body.dataset import load_subset

    if (settings.model_dir / CONFIG_FILE).exists():
        try:
            model = BodyModel.load(settings.model_dir)
        except ModelFormatError as error:
            logger.warning("body model of an older format; training a new one", extra={"reason": str(error)})
        else:
            logger.info("body model loaded", extra={"model_dir": str(settings.model_dir)})
            return model
    logger.info(
        "no body model found; training the default one",
        extra={"model_dir": str(settings.model_dir), "epochs": settings.train_epochs},
    )
    started = time.monotonic()
    model = BodyModel.train(
        load_subset(),
        BodyModelConfig(),
        epochs=settings.train_epochs,
        seed=settings.train_seed,
        progress=False,
        gan_epochs=settings.gan_epochs,
    )
    model.save(settings.model_dir)
    logger.info("body model trained and saved", extra={"seconds": round(time.monotonic() - started, 1)})
    return model
