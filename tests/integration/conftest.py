"""Fixtures of the tests that run the services as processes."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_training() -> dict[str, str]:
    """Settings that make each service's start-up training take seconds (quality is not tested here)."""
    return {
        "TRYON_BODY_TRAIN_EPOCHS": "2",
        "TRYON_GARMENT_TRAIN_EPOCHS": "1",
        "TRYON_GARMENT_TRAIN_IMAGES": "600",
        "TRYON_RECOMMENDATION_DEMO_GARMENTS": "100",
        "TRYON_RECOMMENDATION_DEMO_SHOPPERS": "40",
        "TRYON_RECOMMENDATION_TRAIN_EPOCHS": "2",
    }
