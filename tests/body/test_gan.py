"""The conditional WGAN-GP: a one-epoch smoke test on tiny real data, sampling, and the re-centred means."""

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


def _generated_mean_gap(model, tensors):
    """Per sex, the largest gap between the generated and the training mean of a measurement."""
    gaps = []
    for index in range(2):
        sex = torch.zeros(20_000, 2)
        sex[:, index] = 1.0
        generated = model.sample(sex, torch.Generator().manual_seed(9)).mean(dim=0)
        gaps.append((generated - tensors.x[tensors.sex[:, index].bool()].mean(dim=0)).abs().max().item())
    return max(gaps)


def test_training_ends_with_each_sex_generated_mean_on_the_training_mean(tiny_body_tensors):
    # A fast generator on few subjects drifts far from the data's means within two epochs.
    drifting = dict(
        hidden=32, layers=2, batch_size=32, critic_steps=1, critic_warmup_epochs=0, generator_learning_rate=1e-3,
        ema_decay=0.0,
    )
    gaps = {}
    for recentre in (False, True):
        torch.manual_seed(0)
        model = ConditionalWGAN(GANConfig(**drifting, recentre=recentre, recentre_draws=20_000))
        train_gan(model, tiny_body_tensors, epochs=2, seed=0, progress=False)
        gaps[recentre] = _generated_mean_gap(model, tiny_body_tensors)
    assert gaps[False] > 0.1
    assert gaps[True] < 0.05
