"""The quality command's variants: one generator retrained alone, with config changes given on the command line."""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import pytest

from tryon.services.garment.gan import GANConfig
from tryon.services.garment.garment_models import GarmentModels
from tryon.services.garment.quality import config_with, retrain_one


def test_changes_are_read_as_each_fields_type_and_an_unknown_field_is_named() -> None:
    changed = config_with(GANConfig(), ["auxiliary_weight=2", "generator_upsampling=nearest", "epochs=7"], "--gan")
    assert changed == replace(GANConfig(), auxiliary_weight=2.0, generator_upsampling="nearest", epochs=7)
    assert isinstance(changed.auxiliary_weight, float)
    with pytest.raises(SystemExit, match="--gan takes FIELD=VALUE with a GANConfig field; got 'no_such_field=1'"):
        config_with(GANConfig(), ["no_such_field=1"], "--gan")


def test_the_gan_retrained_alone_follows_the_current_defaults_and_the_changes(trained_garment_models, fashion_sample) -> None:
    images, labels = fashion_sample
    # Models written by an older training: their GAN config is not today's default.
    stale = replace(trained_garment_models.config, gan=replace(GANConfig(), label_embedding_dim=4, noise_dim=16))
    loaded = GarmentModels(stale, trained_garment_models.vae, trained_garment_models.generator, trained_garment_models.classifier)
    # A narrow generator keeps the batch-norm recalibration after training cheap.
    changes = ["batch_size=32", "generator_channels=8"]
    args = argparse.Namespace(seed=0, gan=changes, vae=[], gan_epochs=1, vae_epochs=None, no_progress=True)
    retrained = retrain_one(loaded, "gan", images[:64], labels[:64], args)
    assert retrained.config.gan == replace(GANConfig(), batch_size=32, generator_channels=8)
    assert retrained.vae is loaded.vae and retrained.classifier is loaded.classifier
    assert retrained.histories["gan"].images_seen == 64
    samples, noise = retrained.generate(3, 4, seed=0, generator="gan")
    assert samples.shape == (4, 28, 28) and noise.shape == (4, GANConfig().noise_dim)
    assert np.isfinite(samples).all()
