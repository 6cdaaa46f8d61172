"""Conditional convolutional variational autoencoder for 28x28 garment images.

Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014: the evidence lower bound
and the reparameterisation trick. Sohn, Lee & Yan, "Learning Structured Output Representation
using Deep Conditional Generative Models", NeurIPS 2015: the conditional VAE, whose encoder
q(z | x, y) and decoder p(x | z, y) both see the class y, so z carries the garment's style
(shape, texture) and the class is given separately.

Pixels are modelled as independent Bernoullis (Fashion-MNIST intensities lie in [0, 1]); the
decoder returns logits, and its mean image is their sigmoid.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tryon.services.garment.categories import NUM_CATEGORIES

IMAGE_SIZE = 28


@dataclass(frozen=True)
class VAEConfig:
    """Hyperparameters of the conditional VAE and its training."""

    latent_dim: int = 16
    """Size of the content latent z."""
    base_channels: int = 32
    """Channels of the first convolution; the second has twice as many."""
    hidden_dim: int = 256
    """Width of the fully connected layer between the convolutions and z."""
    beta: float = 1.0
    """Weight of the KL term (1.0 is the plain ELBO)."""
    learning_rate: float = 1e-3
    """Adam step size."""
    batch_size: int = 128
    """Images per optimisation step."""
    epochs: int = 8
    """Passes over the training images."""


class ConditionalVAE(nn.Module):
    """Class-conditioned convolutional VAE: ``loss`` for training, ``encode``/``decode``/``sample`` for use.

    Labels enter as float vectors of length 10 (one-hot, or a mixture of one-hots when
    interpolating between categories).
    """

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        channels = config.base_channels
        self.encoder_convolutions = nn.Sequential(
            nn.Conv2d(1, channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        flat = 2 * channels * 7 * 7
        self.encoder_head = nn.Sequential(nn.Linear(flat + NUM_CATEGORIES, config.hidden_dim), nn.LeakyReLU(0.2))
        self.to_mean = nn.Linear(config.hidden_dim, config.latent_dim)
        self.to_log_variance = nn.Linear(config.hidden_dim, config.latent_dim)
        self.decoder_head = nn.Sequential(
            nn.Linear(config.latent_dim + NUM_CATEGORIES, config.hidden_dim),
            nn.ReLU(),
            nn.Linear(config.hidden_dim, flat),
            nn.ReLU(),
            nn.Unflatten(1, (2 * channels, 7, 7)),
        )
        self.decoder_convolutions = nn.Sequential(
            nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(channels, 1, 4, stride=2, padding=1),
        )

    @property
    def latent_dim(self) -> int:
        """Size of the content latent z."""
        return self.config.latent_dim

    def encode(self, images: torch.Tensor, label_vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the posterior mean and log-variance of z for images [n, 1, 28, 28] in [0, 1]."""
        features = self.encoder_convolutions(images)
        hidden = self.encoder_head(torch.cat([features, label_vectors], dim=1))
        return self.to_mean(hidden), self.to_log_variance(hidden).clamp(-12.0, 8.0)

    def decode_logits(self, latents: torch.Tensor, label_vectors: torch.Tensor) -> torch.Tensor:
        """Return per-pixel Bernoulli logits [n, 1, 28, 28]."""
        hidden = self.decoder_head(torch.cat([latents, label_vectors], dim=1))
        return self.decoder_convolutions(hidden)

    def decode(self, latents: torch.Tensor, label_vectors: torch.Tensor) -> torch.Tensor:
        """Return mean images [n, 1, 28, 28] in [0, 1]."""
        return torch.sigmoid(self.decode_logits(latents, label_vectors))

    def sample(self, label_vectors: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw z from the prior N(0, I) and return (mean images, z)."""
        latents = torch.randn(
            label_vectors.shape[0], self.latent_dim, generator=generator, device=label_vectors.device
        )
        return self.decode(latents, label_vectors), latents

    def loss(self, images: torch.Tensor, label_vectors: torch.Tensor) -> dict[str, torch.Tensor]:
        """Negative ELBO per image (``loss``), with its reconstruction and KL parts and per-pixel errors."""
        mean, log_variance = self.encode(images, label_vectors)
        latents = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
        logits = self.decode_logits(latents, label_vectors)
        pixels = images[0].numel()
        reconstruction = F.binary_cross_entropy_with_logits(logits, images, reduction="sum") / images.shape[0]
        kl = -0.5 * torch.sum(1 + log_variance - mean.pow(2) - log_variance.exp()) / images.shape[0]
        with torch.no_grad():
            mse = F.mse_loss(torch.sigmoid(logits), images)
        return {
            "loss": reconstruction + self.config.beta * kl,
            "reconstruction": reconstruction,
            "kl": kl,
            "bce_per_pixel": reconstruction.detach() / pixels,
            "mse_per_pixel": mse,
        }
