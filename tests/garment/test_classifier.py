"""Smoke tests of the garment classifier: one epoch on a few hundred real images."""

from __future__ import annotations

import math

import numpy as np
import torch

from tryon.services.garment.classifier import ClassifierConfig, GarmentClassifier
from tryon.services.garment.trainer import train_classifier


def test_one_epoch_loss_is_finite_and_falls(fashion_sample) -> None:
    images, labels = fashion_sample
    torch.manual_seed(0)
    model = GarmentClassifier(ClassifierConfig(batch_size=32))
    history = train_classifier(
        model, torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels), epochs=1, progress=False
    )
    losses = history.metrics["loss"]
    assert all(math.isfinite(value) for value in losses)
    quarter = max(1, len(losses) // 4)
    assert np.mean(losses[-quarter:]) < 0.8 * np.mean(losses[:quarter])


def test_features_and_logits_shapes() -> None:
    torch.manual_seed(0)
    model = GarmentClassifier(ClassifierConfig(feature_dim=64)).eval()
    images = torch.rand(3, 1, 28, 28)
    assert model.features(images).shape == (3, 64)
    assert model(images).shape == (3, 10)
