"""Conditional VAE with arbitrary conditioning that infers unobserved body measurements.

Papers: Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014 (the VAE); Sohn, Lee & Yan,
"Learning Structured Output Representation using Deep Conditional Generative Models", NeurIPS 2015
(the conditional VAE with a learned conditional prior network); Ivanov, Figurnov & Vetrov, "Variational
Autoencoder with Arbitrary Conditioning", ICLR 2019 (VAEAC: the condition is the observed subset of the
features given by a mask, trained with random masks).

The model works on standardized measurement vectors. The condition is ``(x * mask, mask, sex)`` where
``sex`` is one-hot over ``SEXES`` or all zeros when unknown, extended with the conditional mean and
log-variance of a per-sex multivariate Gaussian fitted to the training data (for an unknown sex, one
fitted to both). A prior network ``p(z | condition)``, a recognition network ``q(z | x, condition)``
used only in training, and a decoder ``p(x | z, condition)`` that outputs a mean and a log-variance per
measurement (Gaussian likelihood) as corrections to the Gaussian conditional. The Gaussian conditional
is the linear regression of the unobserved measurements on whichever ones are observed, so the
networks only learn how bodies depart from linear-Gaussian; without it an MLP has to learn a different
regression for every mask from about 4,000 subjects and ends up slightly worse than linear regression.
The loss is the negative ELBO on the unobserved measurements only. Prediction combines the spread of
the latent posterior (Monte Carlo over ``z`` from the prior network) and the decoder variance.

New bodies are drawn by the chain rule over the model's own conditionals (``sample_sequentially``):
each unobserved measurement, in a random order per body, from the model given the sex and the
measurements drawn before it. One draw of ``z`` and the decoder's diagonal noise (``sample``) is not a
good body generator: with nothing observed, the KL term leaves only a few latent dimensions in use
(the recognition network's means vary along few of them), so most correlations between measurements
have to come from independent per-measurement noise, and a classifier tells such bodies from real
ones far more easily than bodies drawn by the chain rule (``evaluate``'s sampling tables,
docs/results.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

# Keep log-variances in a range where exp() neither underflows nor explodes early in training.
LOGVAR_MIN = -9.0
LOGVAR_MAX = 4.0
# Added to the diagonal of the fitted covariances so every observed block stays invertible.
GAUSSIAN_RIDGE = 1e-4


@dataclass(frozen=True)
class CVAEConfig:
    """Hyperparameters of the conditional VAE; defaults are the ones the evaluation reports."""

    # Number of measurements in a vector (len(MEASUREMENTS)).
    features: int = 22
    # Number of sex categories in the one-hot condition (len(SEXES)); all zeros means unknown.
    sexes: int = 2
    # Size of the latent body code published in BodyUpdated.
    latent_dim: int = 16
    # Width of every hidden layer of the three networks.
    hidden: int = 192
    # Number of hidden layers of each network.
    layers: int = 3
    # Adam learning rate.
    learning_rate: float = 2e-3
    # Subjects per training step.
    batch_size: int = 128
    # Adam weight decay (L2), a mild regulariser for about 4,000 training subjects.
    weight_decay: float = 1e-4
    # Probability that a training example hides the sex, so the model also answers without it.
    sex_dropout: float = 0.25
    # Probability that a training example observes nothing (pure generation from the sex prior).
    empty_mask_rate: float = 0.1
    # Probability that a training example observes only the required measurements.
    required_only_rate: float = 0.3
    # Latent samples used to form a prediction (Monte Carlo over the prior network).
    prediction_samples: int = 64


def _mlp(inputs: int, hidden: int, layers: int, outputs: int) -> nn.Sequential:
    """A plain MLP with SiLU activations."""
    modules: list[nn.Module] = []
    width = inputs
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    modules.append(nn.Linear(width, outputs))
    return nn.Sequential(*modules)


class MaskedCVAE(nn.Module):
    """VAEAC-style conditional VAE over standardized measurements; see the module docstring."""

    def __init__(self, config: CVAEConfig) -> None:
        super().__init__()
        self.config = config
        features = config.features
        # Observed values, mask, sex one-hot, and the Gaussian conditional's mean and log-variance.
        condition = 4 * features + config.sexes
        self.prior_net = _mlp(condition, config.hidden, config.layers, 2 * config.latent_dim)
        self.recognition_net = _mlp(condition + features, config.hidden, config.layers, 2 * config.latent_dim)
        self.decoder = _mlp(condition + config.latent_dim, config.hidden, config.layers, 2 * features)
        # Per sex (then pooled, for an unknown sex): mean and covariance of the training vectors.
        self.register_buffer("gaussian_mean", torch.zeros(config.sexes + 1, features))
        self.register_buffer("gaussian_covariance", torch.eye(features).repeat(config.sexes + 1, 1, 1))

    @torch.no_grad()
    def fit_gaussian(self, x: torch.Tensor, sex: torch.Tensor) -> None:
        """Fit the per-sex and pooled Gaussians the decoder starts from (maximum likelihood)."""
        groups = [sex[:, index].bool() for index in range(self.config.sexes)] + [torch.ones(len(x), dtype=torch.bool)]
        for index, rows in enumerate(groups):
            members = x[rows]
            self.gaussian_mean[index] = members.mean(dim=0)
            centred = members - members.mean(dim=0)
            ridge = GAUSSIAN_RIDGE * torch.eye(x.shape[1])
            self.gaussian_covariance[index] = centred.T @ centred / max(len(members), 1) + ridge

    def gaussian_conditional(
        self, x: torch.Tensor, mask: torch.Tensor, sex: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of the fitted Gaussian given the observed entries (per row).

        For a multivariate Gaussian this is exactly the linear regression of the unobserved entries
        on the observed ones, for whatever subset is observed; observed entries return themselves.
        """
        weights = torch.cat([sex, 1.0 - sex.sum(dim=-1, keepdim=True)], dim=-1)
        mean = weights @ self.gaussian_mean
        covariance = torch.einsum("bs,sij->bij", weights, self.gaussian_covariance)
        if not mask.any():
            # Nothing observed (sampling from the prior): the marginals, without a batched solve.
            return mean, torch.diagonal(covariance, dim1=-2, dim2=-1).clamp_min(math.exp(LOGVAR_MIN)).log()
        outer = mask.unsqueeze(-1) * mask.unsqueeze(-2)
        observed_block = covariance * outer + torch.diag_embed(1.0 - mask)
        right = torch.cat([((x - mean) * mask).unsqueeze(-1), mask.unsqueeze(-1) * covariance], dim=-1)
        solved = torch.linalg.solve(observed_block, right)
        conditional_mean = mean + (covariance @ solved[..., :1]).squeeze(-1)
        explained = (right[..., 1:] * solved[..., 1:]).sum(dim=-2)
        variance = (torch.diagonal(covariance, dim1=-2, dim2=-1) - explained).clamp_min(math.exp(LOGVAR_MIN))
        return conditional_mean, variance.log()

    def condition(self, x: torch.Tensor, mask: torch.Tensor, sex: torch.Tensor) -> torch.Tensor:
        """The condition vector: observed values (zero elsewhere), mask, sex one-hot, Gaussian conditional."""
        gaussian_mean, gaussian_logvar = self.gaussian_conditional(x, mask, sex)
        return torch.cat([x * mask, mask, sex, gaussian_mean, gaussian_logvar], dim=-1)

    def prior(self, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of the conditional prior p(z | condition)."""
        mean, logvar = self.prior_net(condition).chunk(2, dim=-1)
        return mean, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)

    def decode(self, z: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of p(x | z, condition): the Gaussian conditional plus learnt corrections."""
        features = self.config.features
        gaussian_mean = condition[..., -2 * features : -features]
        gaussian_logvar = condition[..., -features:]
        mean_correction, logvar_correction = self.decoder(torch.cat([z, condition], dim=-1)).chunk(2, dim=-1)
        return gaussian_mean + mean_correction, (gaussian_logvar + logvar_correction).clamp(LOGVAR_MIN, LOGVAR_MAX)

    def loss(self, x: torch.Tensor, mask: torch.Tensor, sex: torch.Tensor) -> torch.Tensor:
        """Mean negative ELBO per subject: Gaussian NLL of the unobserved values plus KL(q || prior)."""
        condition = self.condition(x, mask, sex)
        prior_mean, prior_logvar = self.prior(condition)
        post_mean, post_logvar = self.recognition_net(torch.cat([x, condition], dim=-1)).chunk(2, dim=-1)
        post_logvar = post_logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
        z = post_mean + torch.randn_like(post_mean) * (0.5 * post_logvar).exp()
        mean, logvar = self.decode(z, condition)
        nll = 0.5 * (logvar + (x - mean) ** 2 / logvar.exp() + math.log(2 * math.pi))
        reconstruction = (nll * (1.0 - mask)).sum(dim=-1)
        kl = 0.5 * (
            prior_logvar - post_logvar
            + (post_logvar.exp() + (post_mean - prior_mean) ** 2) / prior_logvar.exp()
            - 1.0
        ).sum(dim=-1)
        return (reconstruction + kl).mean()

    @torch.no_grad()
    def predictive_components(
        self, x: torch.Tensor, mask: torch.Tensor, sex: torch.Tensor, samples: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder means and variances for ``samples`` latent draws: two tensors [samples, batch, features]."""
        condition = self.condition(x, mask, sex)
        return self._decoder_components(condition, *self.prior(condition), samples, generator)

    def _decoder_components(
        self,
        condition: torch.Tensor,
        prior_mean: torch.Tensor,
        prior_logvar: torch.Tensor,
        samples: int,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder means and variances [samples, batch, features] for latent draws from the given prior."""
        noise = torch.randn((samples, *prior_mean.shape), generator=generator)
        z = prior_mean + noise * (0.5 * prior_logvar).exp()
        mean, logvar = self.decode(z, condition.expand(samples, *condition.shape))
        return mean, logvar.exp()

    @torch.no_grad()
    def predict(
        self, x: torch.Tensor, mask: torch.Tensor, sex: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictive mean and standard deviation per measurement (mixture over latent draws)."""
        means, variances = self.predictive_components(x, mask, sex, self.config.prediction_samples, generator)
        mean = means.mean(dim=0)
        variance = variances.mean(dim=0) + means.var(dim=0, unbiased=False)
        return mean, variance.sqrt()

    @torch.no_grad()
    def sample(
        self, x: torch.Tensor, mask: torch.Tensor, sex: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """One draw of the full vector per row: z from the prior network, then x from the decoder."""
        return self._draw(*self.predictive_components(x, mask, sex, 1, generator), generator)

    @torch.no_grad()
    def sample_repeated(
        self, x: torch.Tensor, mask: torch.Tensor, sex: torch.Tensor, count: int, generator: torch.Generator
    ) -> torch.Tensor:
        """``count`` draws [count, features] for one row (x, mask and sex each of one row).

        The same draws as ``sample`` of the row repeated ``count`` times, but the condition (a linear
        solve per row) and the prior network are computed once: for the thousands of draws behind a
        size advice they were most of its cost.
        """
        if x.shape[0] != 1:
            raise ValueError(f"sample_repeated takes one row, got {x.shape[0]}")
        condition = self.condition(x, mask, sex)
        prior_mean, prior_logvar = self.prior(condition)
        components = self._decoder_components(
            condition.expand(count, -1), prior_mean.expand(count, -1), prior_logvar.expand(count, -1), 1, generator
        )
        return self._draw(*components, generator)

    @staticmethod
    def _draw(means: torch.Tensor, variances: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One draw per row from the first latent draw's diagonal Gaussian [1, batch, features]."""
        noise = torch.randn(means.shape, generator=generator)
        return (means + noise * variances.sqrt())[0]

    @torch.no_grad()
    def sample_sequentially(
        self, x: torch.Tensor, mask: torch.Tensor, sex: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """One draw of the full vector per row by the chain rule over the unobserved measurements.

        The unobserved measurements of each row are filled one at a time, in a random order per row,
        each drawn by ``sample`` given the observed ones and those drawn before it, so the joint draw
        keeps the correlations that one latent draw with diagonal decoder noise loses. Observed entries
        keep their values. Costs one pass of the networks per unobserved measurement.
        """
        x, mask = x * mask, mask.clone()
        # Unobserved columns first, in a random order per row; observed ones sort after them.
        order = torch.argsort(torch.rand(x.shape, generator=generator) + 2.0 * mask, dim=-1)
        rows = torch.arange(x.shape[0])
        for step in range(int((1.0 - mask).sum(dim=-1).max().item())):
            draws = self.sample(x, mask, sex, generator)
            column = order[:, step]
            fill = mask[rows, column] == 0
            x[rows, column] = torch.where(fill, draws[rows, column], x[rows, column])
            mask[rows, column] = 1.0
        return x

    @torch.no_grad()
    def latent(self, x: torch.Tensor, mask: torch.Tensor, sex: torch.Tensor) -> torch.Tensor:
        """Posterior mean of the latent code given what is observed (the prior network's mean)."""
        return self.prior(self.condition(x, mask, sex))[0]


def random_masks(
    batch: int, features: int, required: list[int], config: CVAEConfig, generator: torch.Generator
) -> torch.Tensor:
    """Training masks (1 = observed): empty, required-only, or required plus a random subset.

    The random subset draws a per-example observation rate uniformly, so the model sees both sparse
    and nearly complete observations, as VAEAC's mask generator does.
    """
    kind = torch.rand(batch, 1, generator=generator)
    rate = torch.rand(batch, 1, generator=generator)
    mask = (torch.rand(batch, features, generator=generator) < rate).float()
    required_mask = torch.zeros(1, features)
    required_mask[0, required] = 1.0
    mask = torch.maximum(mask, required_mask)
    only_required = kind < config.empty_mask_rate + config.required_only_rate
    mask = torch.where(only_required, required_mask.expand(batch, -1), mask)
    return torch.where(kind < config.empty_mask_rate, torch.zeros_like(mask), mask)


def drop_sex(sex: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """Hide the sex (all-zero one-hot) for a random share ``rate`` of the rows."""
    keep = (torch.rand(sex.shape[0], 1, generator=generator) >= rate).float()
    return sex * keep
