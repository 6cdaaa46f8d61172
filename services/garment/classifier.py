"""Small convolutional Fashion-MNIST classifier, used to judge generated garments.

A LeNet-style CNN (LeCun et al., "Gradient-Based Learning Applied to Document Recognition",
Proc. IEEE 1998) with batch normalisation (Ioffe & Szegedy, ICML 2015) and dropout. Its
penultimate activations are the feature space of the Frechet distance (Heusel et al., "GANs
Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017),
in the way FID uses Inception features.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tryon.services.garment.categories import NUM_CATEGORIES


@dataclass(frozen=True)
class ClassifierConfig:
    """Hyperparameters of the garment classifier and its training."""

    base_channels: int = 32
    """Channels of the first convolution; each later one doubles them."""
    feature_dim: int = 128
    """Width of the penultimate layer (the Frechet-distance feature space)."""
    dropout: float = 0.3
    """Dropout probability before the output layer."""
    learning_rate: float = 2e-3
    """Adam step size (decayed by a cosine schedule over training)."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    batch_size: int = 128
    """Images per optimisation step."""
    epochs: int = 4
    """Passes over the training images."""


class GarmentClassifier(nn.Module):
    """CNN over images [n, 1, 28, 28] in [0, 1]: ``loss`` for training, ``features``/``forward`` for use."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        c = config.base_channels

        def block(inputs: int, outputs: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
                nn.BatchNorm2d(outputs),
                nn.ReLU(),
                nn.MaxPool2d(2),
            )

        self.convolutions = nn.Sequential(block(1, c), block(c, 2 * c), block(2 * c, 4 * c), nn.Flatten())
        self.penultimate = nn.Sequential(nn.Linear(4 * c * 3 * 3, config.feature_dim), nn.ReLU())
        self.output = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.feature_dim, NUM_CATEGORIES))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Return penultimate activations [n, feature_dim]."""
        return self.penultimate(self.convolutions(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return class logits [n, 10]."""
        return self.output(self.features(images))

    def loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Cross-entropy and the batch accuracy."""
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        return {"loss": loss, "accuracy": accuracy.detach()}
