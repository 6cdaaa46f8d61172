"""Smoke tests of the conditional GAN: one epoch on a few hundred real images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tryon.services.garment.gan import ConditionalGenerator, GANConfig, ProjectionDiscriminator
from tryon.services.garment.trainer import one_hot, recalibrate_batch_norm, train_gan


def _mean(values: list[float], part: slice) -> float:
    return float(np.mean(values[part]))


def test_one_epoch_losses_are_finite_and_the_discriminator_learns(fashion_sample) -> None:
    images, labels = fashion_sample
    config = GANConfig(batch_size=32)
    torch.manual_seed(0)
    generator, discriminator = ConditionalGenerator(config), ProjectionDiscriminator(config)
    averaged, history = train_gan(
        generator, discriminator, torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels), epochs=1, progress=False
    )
    for name in ("discriminator_loss", "generator_loss", "fake_class_loss"):
        assert all(math.isfinite(value) for value in history.metrics[name]), name
    quarter = slice(None, max(1, len(history.metrics["hinge"]) // 4))
    last_quarter = slice(-max(1, len(history.metrics["hinge"]) // 4), None)
    # The discriminator learns to tell real from generated images and to name real garments' classes.
    assert _mean(history.metrics["hinge"], last_quarter) < _mean(history.metrics["hinge"], quarter)
    assert _mean(history.metrics["real_class_loss"], last_quarter) < _mean(history.metrics["real_class_loss"], quarter)
    assert _mean(history.metrics["discriminator_loss"], last_quarter) < _mean(history.metrics["discriminator_loss"], quarter)
    assert not averaged.training
    samples, noise = averaged.sample(one_hot(torch.arange(10)), generator=torch.Generator().manual_seed(0))
    assert samples.shape == (10, 1, 28, 28) and noise.shape == (10, config.noise_dim)
    assert torch.isfinite(samples).all()


def test_discriminator_outputs_score_and_class_logits() -> None:
    torch.manual_seed(0)
    discriminator = ProjectionDiscriminator(GANConfig())
    score, logits = discriminator(torch.rand(4, 1, 28, 28), torch.tensor([0, 3, 5, 9]))
    assert score.shape == (4,) and logits.shape == (4, 10)


def test_eval_samples_do_not_depend_on_the_batch() -> None:
    torch.manual_seed(0)
    generator = ConditionalGenerator(GANConfig())
    recalibrate_batch_norm(generator, batches=2, batch_size=64)
    noise = torch.randn(6, generator.noise_dim)
    labels = one_hot(torch.tensor([0, 1, 2, 3, 4, 5]))
    with torch.no_grad():
        together = generator(noise, labels)
        alone = generator(noise[2:3], labels[2:3])
    torch.testing.assert_close(together[2:3], alone, atol=1e-5, rtol=1e-4)


def test_nearest_upsampling_draws_without_transposed_convolutions_and_a_wrong_name_is_refused() -> None:
    torch.manual_seed(0)
    generator = ConditionalGenerator(GANConfig(generator_upsampling="nearest"))
    assert not any(isinstance(module, torch.nn.ConvTranspose2d) for module in generator.modules())
    images, _ = generator.eval().sample(one_hot(torch.arange(3)))
    assert images.shape == (3, 1, 28, 28) and ((images >= 0) & (images <= 1)).all()
    with pytest.raises(ValueError, match="generator_upsampling must be 'transposed' or 'nearest'; got 'bilinear'"):
        ConditionalGenerator(GANConfig(generator_upsampling="bilinear"))


def test_refine_layers_deepen_the_discriminator_at_seven_by_seven() -> None:
    torch.manual_seed(0)
    plain, deeper = ProjectionDiscriminator(GANConfig()), ProjectionDiscriminator(GANConfig(discriminator_refine_layers=2))
    convolutions = [sum(isinstance(m, torch.nn.Conv2d) for m in d.modules()) for d in (plain, deeper)]
    assert convolutions[1] == convolutions[0] + 2
    score, logits = deeper(torch.rand(4, 1, 28, 28), torch.tensor([0, 3, 5, 9]))
    assert score.shape == (4,) and logits.shape == (4, 10)
