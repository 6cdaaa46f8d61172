"""Smoke test of the conditional WGAN-GP: one epoch on tiny real data, losses finite and falling."""

import math

import torch

from tryon.services.body.gan import ConditionalWGAN, GANConfig
from tryon.services.body.trainer import train_gan


def test_one_epoch_lowers_a_finite_critic_loss(tiny_body_tensors):
    config = GANConfig(hidden=32, layers=2, batch_size=16, critic_steps=2)
    torch.manual_seed(0)
    model = ConditionalWGAN(config)
    noise = torch.randn(len(tiny_body_tensors.x), config.noise_dim, generator=torch.Generator().manual_seed(1))
    before, _ = model.critic_loss(tiny_body_tensors.x, tiny_body_tensors.sex, noise)
    history = train_gan(model, tiny_body_tensors, epochs=1, seed=0, progress=False)
    after, _ = model.critic_loss(tiny_body_tensors.x, tiny_body_tensors.sex, noise)
    assert all(math.isfinite(value) for curve in history.curves.values() for value in curve)
    assert math.isfinite(after.item()) and after.item() < before.item()


def test_samples_are_reproducible_and_conditioned_on_sex():
    model = ConditionalWGAN(GANConfig(hidden=16, layers=1))
    sex = torch.eye(2).repeat(5, 1)
    first = model.sample(sex, torch.Generator().manual_seed(4))
    assert first.shape == (10, 22)
    assert torch.equal(first, model.sample(sex, torch.Generator().manual_seed(4)))
