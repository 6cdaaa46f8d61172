"""Tests of the conditional VAE: one epoch on a few hundred real images, its class conditioning, and old saved models."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tryon.services.garment.garment_models import GarmentModels, GarmentModelsConfig
from tryon.services.garment.quality import with_vae_sampling
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


_BEFORE_FILM = Path(__file__).parent / "data" / "vae_before_film.pt"
"""A small VAE saved by vae.py before FiLM and the class prior existed (commit 894b0e8): its config
as then saved, its state_dict, and its decoder's images and encoder's means for three latents."""


def test_a_model_saved_before_film_and_the_class_prior_loads_and_decodes_as_before() -> None:
    saved = torch.load(_BEFORE_FILM, weights_only=True)
    config = VAEConfig.from_dict(saved["config"])
    assert (config.decoder_conditioning, config.prior) == ("input", "standard")
    model = ConditionalVAE(config).eval()
    model.load_state_dict(saved["state"])
    with torch.no_grad():
        assert torch.allclose(model.decode(saved["latents"], saved["labels"]), saved["images"], atol=1e-6)
        assert torch.allclose(model.encode(saved["images"], saved["labels"])[0], saved["encoded"], atol=1e-6)
        _, latents = model.sample(saved["labels"], generator=torch.Generator().manual_seed(0))
    assert torch.equal(latents, torch.randn(3, 4, generator=torch.Generator().manual_seed(0)))


def test_config_rejects_unknown_choices_and_fields() -> None:
    with pytest.raises(ValueError, match="decoder_conditioning must be one of input, film"):
        VAEConfig(decoder_conditioning="everywhere")
    with pytest.raises(ValueError, match="prior must be one of standard, class"):
        VAEConfig(prior="mixture")
    with pytest.raises(ValueError, match="free_bits"):
        VAEConfig(free_bits=-1.0)
    with pytest.raises(ValueError, match="unknown VAE config fields: temperature"):
        VAEConfig.from_dict({"temperature": 0.5})


def test_class_prior_draws_each_class_around_its_own_mean() -> None:
    torch.manual_seed(0)
    model = ConditionalVAE(VAEConfig(prior="class", latent_dim=4, base_channels=4, hidden_dim=8)).eval()
    with torch.no_grad():
        model.prior_mean[3] = torch.tensor([4.0, -4.0, 0.0, 2.0])
        model.prior_log_variance[3] = math.log(0.25)
        _, latents = model.sample(one_hot(torch.full((2000,), 3)), generator=torch.Generator().manual_seed(2))
        _, others = model.sample(one_hot(torch.full((2000,), 7)), generator=torch.Generator().manual_seed(2))
    assert torch.allclose(latents.mean(dim=0), torch.tensor([4.0, -4.0, 0.0, 2.0]), atol=0.05)
    assert torch.allclose(latents.std(dim=0), torch.full((4,), 0.5), atol=0.05)
    assert torch.allclose(others.mean(dim=0), torch.zeros(4), atol=0.1)


def test_kl_is_measured_against_the_class_prior() -> None:
    torch.manual_seed(0)
    model = ConditionalVAE(VAEConfig(prior="class", latent_dim=4))
    images, labels = torch.rand(8, 1, 28, 28), one_hot(torch.full((8,), 2))
    mean, log_variance = model.encode(images, labels)
    with torch.no_grad():
        model.prior_mean[2] = mean.mean(dim=0)
    near = model.loss(images, labels)["kl"]
    with torch.no_grad():
        model.prior_mean[2] += 3.0
    far = model.loss(images, labels)["kl"]
    # Moving the prior mean by 3 in each of 4 dimensions adds 0.5 * 4 * 9 = 18 nats.
    assert float(far - near) == pytest.approx(18.0, abs=0.5)


def test_free_bits_and_the_kl_weight_change_only_the_penalised_kl() -> None:
    torch.manual_seed(0)
    images, labels = torch.rand(8, 1, 28, 28), one_hot(torch.arange(8))
    plain = ConditionalVAE(VAEConfig(latent_dim=4, class_loss_weight=0.0))
    torch.manual_seed(1)
    unweighted = plain.loss(images, labels, kl_weight=0.0)
    assert torch.allclose(unweighted["loss"], unweighted["reconstruction"])
    free = ConditionalVAE(VAEConfig(latent_dim=4, free_bits=100.0, class_loss_weight=0.0))
    free.load_state_dict(plain.state_dict())
    torch.manual_seed(1)
    losses = free.loss(images, labels)
    # Every dimension's KL lies below 100 nats, so each is charged the full allowance.
    assert torch.allclose(losses["loss"], losses["reconstruction"] + 400.0)
    assert torch.allclose(losses["kl"], unweighted["kl"])


def test_film_conditions_every_decoder_layer_on_the_class() -> None:
    torch.manual_seed(0)
    model = ConditionalVAE(VAEConfig(decoder_conditioning="film")).eval()
    latents = torch.zeros(1, model.latent_dim)
    trouser, bag = one_hot(torch.tensor([1])), one_hot(torch.tensor([8]))
    with torch.no_grad():
        # Take the class away from the decoder's input: only FiLM can still tell the classes apart.
        model.decoder_head[0].weight[:, model.latent_dim :] = 0.0
        assert torch.equal(model.decode(latents, trouser), model.decode(latents, bag))
        for film in model.film:
            film.project.weight.normal_()
    assert not torch.allclose(model.decode(latents, trouser), model.decode(latents, bag))


def test_sampling_temperature_scales_the_prior_spread_and_is_all_a_loaded_model_may_change() -> None:
    models = GarmentModels.untrained(GarmentModelsConfig(vae=VAEConfig(prior="class", latent_dim=4, base_channels=4, hidden_dim=8)))
    with torch.no_grad():
        models.vae.prior_mean[5] = 2.0
    _, warm = models.generate(5, 64, seed=3)
    cooled = with_vae_sampling(models, ["sampling_temperature=0.5"])
    assert cooled.config.vae.sampling_temperature == cooled.vae.config.sampling_temperature == 0.5
    _, cool = cooled.generate(5, 64, seed=3)
    np.testing.assert_allclose(cool - 2.0, 0.5 * (warm - 2.0), atol=1e-6)
    with pytest.raises(SystemExit, match="retrain .* to change prior"):
        with_vae_sampling(models, ["prior=standard"])
    with pytest.raises(ValueError, match=r"sampling_temperature must lie in \(0, 1\]"):
        VAEConfig(sampling_temperature=0.0)


def test_the_class_loss_trains_the_head_on_real_images_and_the_decoder_and_prior_on_samples() -> None:
    torch.manual_seed(0)
    model = ConditionalVAE(VAEConfig(latent_dim=4, base_channels=4, hidden_dim=8, class_loss_weight=10.0))
    images, labels = torch.rand(8, 1, 28, 28), one_hot(torch.arange(8))
    losses = model.loss(images, labels, kl_weight=1.0)
    expected = losses["reconstruction"] + losses["kl"] + losses["class_loss"] + 10.0 * losses["sample_class_loss"]
    assert torch.allclose(losses["loss"], expected)
    head, decoder = list(model.class_head.parameters()), list(model.decoder_head.parameters())
    prior = [model.prior_mean, model.prior_log_variance]
    on_samples = torch.autograd.grad(losses["sample_class_loss"], head + decoder + prior, allow_unused=True, retain_graph=True)
    assert all(gradient is None for gradient in on_samples[: len(head)])
    assert all(gradient is not None and gradient.abs().sum() > 0 for gradient in on_samples[len(head) :])
    on_real = torch.autograd.grad(losses["class_loss"], head + decoder, allow_unused=True)
    assert all(gradient is not None for gradient in on_real[: len(head)])
    assert all(gradient is None for gradient in on_real[len(head) :])


def test_the_class_loss_makes_prior_samples_readable_by_the_head(fashion_sample) -> None:
    images, labels = fashion_sample
    torch.manual_seed(0)
    config = VAEConfig(latent_dim=8, base_channels=8, hidden_dim=64, learning_rate=3e-3, batch_size=16, class_loss_weight=10.0)
    history = train_vae(ConditionalVAE(config), torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels), epochs=2, progress=False)
    _, late = _early_and_late(history.metrics["sample_class_loss"])
    # Chance is ln 10 = 2.3 nats. Without the push on the decoder (class_loss_weight 1e-6) the
    # samples of this training stay above it (2.6 nats over the last quarter); with it they fall to 1.7.
    assert late < 0.85 * math.log(10)
    early_real, late_real = _early_and_late(history.metrics["class_loss"])
    assert late_real < 0.5 * early_real


def test_a_config_saved_without_the_class_loss_builds_no_head_and_loads_its_state() -> None:
    saved = ConditionalVAE(VAEConfig(latent_dim=4, base_channels=4, hidden_dim=8, class_loss_weight=0.0))
    fields_then = {name: value for name, value in saved.config.__dict__.items() if name != "class_loss_weight"}
    config = VAEConfig.from_dict(fields_then)
    assert config.class_loss_weight == 0.0
    model = ConditionalVAE(config)
    assert model.class_head is None
    model.load_state_dict(saved.state_dict())
    with pytest.raises(ValueError, match="class_loss_weight must be >= 0"):
        VAEConfig(class_loss_weight=-1.0)


def test_building_the_class_head_leaves_the_models_built_after_it_as_they_were() -> None:
    draws = []
    for weight in (0.0, 10.0):
        torch.manual_seed(0)
        ConditionalVAE(VAEConfig(latent_dim=4, base_channels=4, hidden_dim=8, class_loss_weight=weight))
        draws.append(torch.randn(3))
    assert torch.equal(draws[0], draws[1])


def test_decoder_refine_layers_sit_between_the_decoder_upsamplings() -> None:
    torch.manual_seed(0)
    model = ConditionalVAE(VAEConfig(latent_dim=4, base_channels=4, hidden_dim=8, decoder_refine_layers=2)).eval()
    assert len(model.decoder_refine) == 4
    latents, labels = torch.randn(3, 4), one_hot(torch.tensor([0, 4, 9]))
    with torch.no_grad():
        assert not torch.allclose(model.decode(latents[:1], labels[:1]), model.decode(latents[1:2], labels[1:2]))
        # With the last refine convolution silenced every image is the final layer's bias alone.
        model.decoder_refine[2].weight.zero_()
        model.decoder_refine[2].bias.zero_()
        images = model.decode(latents, labels)
    assert torch.allclose(images, torch.sigmoid(model.decoder_convolutions[2].bias).expand_as(images))
    assert ConditionalVAE(VAEConfig.from_dict({"latent_dim": 4})).decoder_refine is None
    with pytest.raises(ValueError, match="decoder_refine_layers must be >= 0"):
        VAEConfig(decoder_refine_layers=-1)
