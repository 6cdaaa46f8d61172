"""Class-conditional DCGAN for 28x28 garment images, stabilised with spectral norm and a projection discriminator.

Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", ICLR 2016: the generator (transposed convolutions, batch norm,
ReLU) and discriminator (strided convolutions, leaky ReLU). Miyato, Kataoka, Koyama & Yoshida,
"Spectral Normalization for Generative Adversarial Networks", ICLR 2018: every discriminator
weight is spectrally normalised and the hinge loss is used. Miyato & Koyama, "cGANs with
Projection Discriminator", ICLR 2018: the class enters the discriminator as an inner product
with its features. Odena, Olah & Shlens, "Conditional Image Synthesis with Auxiliary Classifier
GANs", ICML 2017: an auxiliary class head on the discriminator, whose cross-entropy on generated
images pushes the generator to draw the requested class. Yazici et al., "The Unusual
Effectiveness of Averaging in GAN Training", ICLR 2019: samples come from an exponential moving
average of the generator's weights. Odena, Dumoulin & Olah, "Deconvolution and Checkerboard
Artifacts", Distill 2016: nearest-neighbour upsampling followed by a convolution, the generator's
alternative to transposed convolutions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from tryon.services.garment.categories import NUM_CATEGORIES


@dataclass(frozen=True)
class GANConfig:
    """Hyperparameters of the conditional GAN and its training."""

    noise_dim: int = 64
    """Size of the generator's noise vector (the GAN latent)."""
    label_embedding_dim: int = 32
    """Size of the class embedding appended to the noise."""
    generator_channels: int = 48
    """Channels of the generator's last hidden layer; the first has twice as many."""
    generator_upsampling: str = "transposed"
    """How the generator doubles its resolution: "transposed" (4x4 transposed convolutions, DCGAN's) or
    "nearest" (nearest-neighbour upsampling then a 3x3 convolution, which draws no checkerboard)."""
    discriminator_channels: int = 48
    """Channels of the discriminator's first convolution; the second has twice as many."""
    discriminator_refine_layers: int = 0
    """3x3 convolutions (stride 1) after the strided ones, at 7x7: discriminator depth at little cost."""
    discriminator_hidden: int = 256
    """Width of the discriminator feature vector used by the projection and the class head."""
    auxiliary_weight: float = 1.0
    """Weight of the auxiliary class cross-entropy (0 turns the AC-GAN term off). At 15,000 images and
    4 epochs, 1.0 beat 0.5 on both conditional accuracy and Frechet distance; 2.0 raised the accuracy
    further but not the distance (docs/results.md, section 2)."""
    generator_learning_rate: float = 2e-4
    """Adam step size of the generator."""
    discriminator_learning_rate: float = 2e-4
    """Adam step size of the discriminator."""
    adam_beta1: float = 0.5
    """Adam first-moment decay (DCGAN's 0.5)."""
    adam_beta2: float = 0.999
    """Adam second-moment decay."""
    ema_decay: float = 0.999
    """Decay of the generator weight average used for sampling."""
    batch_size: int = 128
    """Real images per step (the discriminator also sees as many generated images)."""
    epochs: int = 5
    """Passes over the training images."""


def _doubling(inputs: int, outputs: int, upsampling: str, bias: bool) -> nn.Module:
    """A layer that doubles the resolution the way ``GANConfig.generator_upsampling`` names."""
    if upsampling == "transposed":
        return nn.ConvTranspose2d(inputs, outputs, 4, stride=2, padding=1, bias=bias)
    if upsampling == "nearest":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(inputs, outputs, 3, padding=1, bias=bias))
    raise ValueError(f"generator_upsampling must be 'transposed' or 'nearest'; got {upsampling!r}")


class ConditionalGenerator(nn.Module):
    """DCGAN generator: noise [n, noise_dim] and label vectors [n, 10] -> images [n, 1, 28, 28] in [0, 1].

    The class embedding is a linear map of the label vector, so a mixture of one-hots gives a
    mixture of embeddings.
    """

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        wide = 2 * config.generator_channels
        self.label_embedding = nn.Linear(NUM_CATEGORIES, config.label_embedding_dim, bias=False)
        self.project = nn.Sequential(
            nn.Linear(config.noise_dim + config.label_embedding_dim, wide * 7 * 7, bias=False),
            nn.Unflatten(1, (wide, 7, 7)),
            nn.BatchNorm2d(wide),
            nn.ReLU(),
        )
        self.upsample = nn.Sequential(
            _doubling(wide, config.generator_channels, config.generator_upsampling, bias=False),
            nn.BatchNorm2d(config.generator_channels),
            nn.ReLU(),
            _doubling(config.generator_channels, 1, config.generator_upsampling, bias=True),
            nn.Sigmoid(),
        )

    @property
    def noise_dim(self) -> int:
        """Size of the noise vector."""
        return self.config.noise_dim

    def forward(self, noise: torch.Tensor, label_vectors: torch.Tensor) -> torch.Tensor:
        """Return images [n, 1, 28, 28] in [0, 1]."""
        embedding = self.label_embedding(label_vectors)
        return self.upsample(self.project(torch.cat([noise, embedding], dim=1)))

    def sample(self, label_vectors: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw noise from N(0, I) and return (images, noise)."""
        noise = torch.randn(label_vectors.shape[0], self.noise_dim, generator=generator, device=label_vectors.device)
        return self(noise, label_vectors), noise


class ProjectionDiscriminator(nn.Module):
    """Spectrally normalised DCGAN discriminator with a class projection and an auxiliary class head."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        channels = config.discriminator_channels
        refine = []
        for _ in range(config.discriminator_refine_layers):
            refine += [spectral_norm(nn.Conv2d(2 * channels, 2 * channels, 3, padding=1)), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(
            spectral_norm(nn.Conv2d(1, channels, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            *refine,
            nn.Flatten(),
            spectral_norm(nn.Linear(2 * channels * 7 * 7, config.discriminator_hidden)),
            nn.LeakyReLU(0.2),
        )
        self.realness = spectral_norm(nn.Linear(config.discriminator_hidden, 1))
        self.class_projection = spectral_norm(nn.Embedding(NUM_CATEGORIES, config.discriminator_hidden))
        self.class_head = spectral_norm(nn.Linear(config.discriminator_hidden, NUM_CATEGORIES))

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (realness score [n], class logits [n, 10]) of images [n, 1, 28, 28] claimed to be of ``labels``."""
        features = self.features(images * 2.0 - 1.0)
        projection = torch.sum(self.class_projection(labels) * features, dim=1)
        return self.realness(features).squeeze(1) + projection, self.class_head(features)


def discriminator_loss(
    discriminator: ProjectionDiscriminator,
    real_images: torch.Tensor,
    fake_images: torch.Tensor,
    labels: torch.Tensor,
    auxiliary_weight: float,
) -> dict[str, torch.Tensor]:
    """Hinge loss on real vs generated images plus the auxiliary class loss on real images."""
    real_score, real_logits = discriminator(real_images, labels)
    fake_score, _ = discriminator(fake_images, labels)
    hinge = F.relu(1.0 - real_score).mean() + F.relu(1.0 + fake_score).mean()
    real_class_loss = F.cross_entropy(real_logits, labels)
    return {
        "loss": hinge + auxiliary_weight * real_class_loss,
        "hinge": hinge.detach(),
        "real_class_loss": real_class_loss.detach(),
        "real_score": real_score.mean().detach(),
        "fake_score": fake_score.mean().detach(),
    }


def generator_loss(
    discriminator: ProjectionDiscriminator,
    fake_images: torch.Tensor,
    labels: torch.Tensor,
    auxiliary_weight: float,
) -> dict[str, torch.Tensor]:
    """Hinge generator loss (raise the critic's score) plus the auxiliary class loss on generated images."""
    fake_score, fake_logits = discriminator(fake_images, labels)
    adversarial = -fake_score.mean()
    fake_class_loss = F.cross_entropy(fake_logits, labels)
    return {
        "loss": adversarial + auxiliary_weight * fake_class_loss,
        "adversarial": adversarial.detach(),
        "fake_class_loss": fake_class_loss.detach(),
    }
