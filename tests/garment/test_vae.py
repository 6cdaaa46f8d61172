"""Smoke tests of the conditional VAE: one epoch on a few hundred real images."""

from __future__ import annotations

import math

import numpy as np
import torch

from tryon.services.garment.trainer import one_hot, train_vae
from tryon.services.garment.vae import ConditionalVAE, VAEConfig


def _early_and_late(values: list[float]) -> tuple[float, float]:
    quarter = max(1, len(values) // 4)
    return float(np.mean(values[:quarter])), float(np.mean(values[-quarter:]))


def test_one_epoch_loss_is_finite_and_falls(fashion_sample) -> None:
    images, labels = fashion_sample
    torch.manual_seed(0)
    model = ConditionalVAE(VAEConfig(batch_size=32))
    history = train_vae(model, torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels), epochs=1, progress=False)
    losses = history.metrics["loss"]
    assert len(losses) >= 8
    assert all(math.isfinite(value) for value in losses)
    early, late = _early_and_late(losses)
    assert late < 0.9 * early
    assert history.epochs == 1 and history.images_seen == images.shape[0]


def test_shapes_and_ranges() -> None:
    torch.manual_seed(0)
    model = ConditionalVAE(VAEConfig(latent_dim=8)).eval()
    images = torch.rand(5, 1, 28, 28)
    labels = one_hot(torch.tensor([0, 1, 2, 3, 9]))
    mean, log_variance = model.encode(images, labels)
    assert mean.shape == log_variance.shape == (5, 8)
    decoded = model.decode(mean, labels)
    assert decoded.shape == (5, 1, 28, 28)
    assert float(decoded.min()) >= 0.0 and float(decoded.max()) <= 1.0
    samples, latents = model.sample(labels, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (5, 1, 28, 28) and latents.shape == (5, 8)


def test_decoder_depends_on_the_class() -> None:
    torch.manual_seed(0)
    model = ConditionalVAE(VAEConfig()).eval()
    latents = torch.zeros(1, model.latent_dim)
    trouser = model.decode(latents, one_hot(torch.tensor([1])))
    bag = model.decode(latents, one_hot(torch.tensor([8])))
    assert not torch.allclose(trouser, bag)
