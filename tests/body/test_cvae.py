"""Smoke test of the masked conditional VAE: one epoch on tiny real data lowers a finite loss."""

import math

import torch

from tryon.services.body.cvae import CVAEConfig, MaskedCVAE, random_masks
from tryon.services.body.trainer import train_cvae


def test_one_epoch_lowers_a_finite_loss(tiny_body_tensors):
    config = CVAEConfig(hidden=32, layers=2, latent_dim=4, batch_size=16)
    torch.manual_seed(0)
    model = MaskedCVAE(config)
    fixed_masks = random_masks(len(tiny_body_tensors.x), config.features, [0, 1], config, torch.Generator().manual_seed(1))
    torch.manual_seed(2)
    before = model.loss(tiny_body_tensors.x, fixed_masks, tiny_body_tensors.sex).item()
    history = train_cvae(model, tiny_body_tensors, None, [0, 1], epochs=1, seed=0, progress=False)
    torch.manual_seed(2)
    after = model.loss(tiny_body_tensors.x, fixed_masks, tiny_body_tensors.sex).item()
    assert math.isfinite(history.curves["cvae_train_loss"][0])
    assert math.isfinite(after) and after < before


def test_masks_always_observe_the_required_measurements_unless_empty():
    config = CVAEConfig(empty_mask_rate=0.2, required_only_rate=0.3)
    masks = random_masks(2000, 22, [0, 1], config, torch.Generator().manual_seed(0))
    empty = masks.sum(dim=1) == 0
    assert 0.15 < empty.float().mean() < 0.25
    assert (masks[~empty][:, :2] == 1).all()
    required_only = masks.sum(dim=1) == 2
    assert 0.25 < required_only.float().mean() < 0.4


def test_gaussian_conditional_is_the_per_sex_linear_regression(tiny_body_tensors):
    model = MaskedCVAE(CVAEConfig())
    model.fit_gaussian(tiny_body_tensors.x, tiny_body_tensors.sex)
    female = tiny_body_tensors.sex[:, 0].bool()
    x, sex = tiny_body_tensors.x[female].double(), tiny_body_tensors.sex[female]
    observed = [0, 1, 3]
    design = torch.cat([x[:, observed], torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
    coefficients = torch.linalg.lstsq(design, x).solution
    mask = torch.zeros(len(x), x.shape[1])
    mask[:, observed] = 1.0
    mean, logvar = model.gaussian_conditional(x.float(), mask, sex)
    torch.testing.assert_close(mean, (design @ coefficients).float(), atol=2e-3, rtol=0)
    torch.testing.assert_close(mean[:, observed], x[:, observed].float())
    residual_variance = ((x - design @ coefficients) ** 2).mean(dim=0).float()
    hidden = [column for column in range(x.shape[1]) if column not in observed]
    torch.testing.assert_close(logvar[0, hidden].exp(), residual_variance[hidden], atol=2e-3, rtol=0.02)


def test_gaussian_conditional_without_observations_is_the_marginal(tiny_body_tensors):
    model = MaskedCVAE(CVAEConfig())
    model.fit_gaussian(tiny_body_tensors.x, tiny_body_tensors.sex)
    x, sex = tiny_body_tensors.x[:20], tiny_body_tensors.sex[:20]
    empty = torch.zeros_like(x)
    one_observed = empty.clone()
    one_observed[0, 0] = 1.0
    fast_mean, fast_logvar = model.gaussian_conditional(x, empty, sex)
    general_mean, general_logvar = model.gaussian_conditional(x, one_observed, sex)
    torch.testing.assert_close(fast_mean[1:], general_mean[1:], atol=1e-5, rtol=0)
    torch.testing.assert_close(fast_logvar[1:], general_logvar[1:], atol=1e-4, rtol=0)


def _model_whose_decoder_adds_nothing(tiny_body_tensors) -> MaskedCVAE:
    """A CVAE whose decoder returns the fitted Gaussian conditional unchanged, whatever z is."""
    torch.manual_seed(0)
    model = MaskedCVAE(CVAEConfig(hidden=16, layers=1, latent_dim=2))
    torch.nn.init.zeros_(model.decoder[-1].weight)
    torch.nn.init.zeros_(model.decoder[-1].bias)
    model.fit_gaussian(tiny_body_tensors.x, tiny_body_tensors.sex)
    return model


def test_sequential_samples_keep_the_correlations_one_latent_draw_loses(tiny_body_tensors):
    # With a decoder that adds nothing, one draw is the Gaussian's marginals with independent noise,
    # while the chain rule over its conditionals is the fitted Gaussian itself, correlations included.
    model = _model_whose_decoder_adds_nothing(tiny_body_tensors)
    count = 1500
    female = torch.zeros(count, 2)
    female[:, 0] = 1.0
    empty = torch.zeros(count, 22)
    fitted = model.gaussian_covariance[0]
    chained = model.sample_sequentially(empty, empty, female, torch.Generator().manual_seed(1))
    one_draw = model.sample(empty, empty, female, torch.Generator().manual_seed(1))
    off_diagonal = ~torch.eye(22, dtype=torch.bool)
    chained_error = (torch.cov(chained.T) - fitted)[off_diagonal].abs().mean()
    one_draw_error = (torch.cov(one_draw.T) - fitted)[off_diagonal].abs().mean()
    assert chained_error < 0.05 < fitted[off_diagonal].abs().mean() * 0.5 < one_draw_error
    torch.testing.assert_close(chained.mean(dim=0), model.gaussian_mean[0], atol=0.1, rtol=0)


def test_sequential_samples_keep_observed_values_and_repeat_per_seed(tiny_body_tensors):
    model = _model_whose_decoder_adds_nothing(tiny_body_tensors)
    x, sex = tiny_body_tensors.x[:50], tiny_body_tensors.sex[:50]
    mask = torch.zeros_like(x)
    mask[:, :3] = 1.0
    mask[::2, 10] = 1.0
    first = model.sample_sequentially(x, mask, sex, torch.Generator().manual_seed(5))
    assert torch.equal(first[mask.bool()], x[mask.bool()])
    assert torch.isfinite(first).all()
    assert torch.equal(first, model.sample_sequentially(x, mask, sex, torch.Generator().manual_seed(5)))
    assert not torch.equal(first, model.sample_sequentially(x, mask, sex, torch.Generator().manual_seed(6)))


def test_repeated_draws_of_one_row_equal_draws_of_the_row_repeated(tiny_body_tensors):
    torch.manual_seed(0)
    model = MaskedCVAE(CVAEConfig(hidden=32, layers=2, latent_dim=4)).eval()
    model.fit_gaussian(tiny_body_tensors.x, tiny_body_tensors.sex)
    x, sex = tiny_body_tensors.x[:1], tiny_body_tensors.sex[:1]
    mask = torch.zeros_like(x)
    mask[0, [0, 1, 2]] = 1.0
    repeated = model.sample(x.expand(300, -1), mask.expand(300, -1), sex.expand(300, -1), torch.Generator().manual_seed(3))
    once = model.sample_repeated(x, mask, sex, 300, torch.Generator().manual_seed(3))
    torch.testing.assert_close(once, repeated)
    assert once[:, 3:].std(dim=0).min() > 0.01
