"""RecommendationService's artifacts at start: the stored ones, else the shipped ones, else training."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from tryon.services.recommendation import models_store
from tryon.services.recommendation.models_store import (
    load_or_train_artifacts,
    train_default_artifacts,
    training_settings,
)
from tryon.services.recommendation.settings import RecommendationSettings
from tryon.shared.shipped_weights import PROVENANCE_FILE, write_shipped

TINY = {"demo_garments": 40, "demo_shoppers": 20, "train_epochs": 1}


@pytest.fixture
def shipped(tmp_path):
    """Tiny artifacts shipped as make weights ships the default ones: trained as a first start would."""
    settings = RecommendationSettings(data_dir=tmp_path / "data", **TINY)

    def train(data_dir):
        trained = replace(settings, data_dir=data_dir)
        train_default_artifacts(trained)
        return trained.artifacts_dir

    folder = tmp_path / "weights" / "artifacts"
    write_shipped(folder, train, service="recommendation", training=training_settings(settings), data="simulated")
    return settings, folder


def _refuse_training(*args, **kwargs):
    raise AssertionError("trained although the shipped artifacts could be used")


def test_an_empty_data_folder_gets_the_shipped_artifacts_without_training(shipped, monkeypatch, caplog):
    settings, folder = shipped
    monkeypatch.setattr(models_store, "train_default_artifacts", _refuse_training)
    with caplog.at_level(logging.INFO, logger="tryon.services.recommendation"):
        artifacts = load_or_train_artifacts(settings, shipped=folder)
    assert len(artifacts.item_index) == TINY["demo_garments"]
    assert (settings.artifacts_dir / PROVENANCE_FILE).is_file()
    assert any(record.getMessage().startswith("copied the shipped weights") for record in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tryon.services.recommendation"):
        load_or_train_artifacts(settings, shipped=folder.parent / "removed")
    sources = [record.source for record in caplog.records if record.getMessage() == "recommendation artifacts loaded"]
    assert sources == ["stored"]


@pytest.mark.parametrize(
    "change", [{"train_on_start": True}, {"index_factory": "HNSW32"}, {"demo_shoppers": 30}],
    ids=["asked", "index", "shoppers"],
)
def test_the_service_trains_when_asked_or_when_the_shipped_artifacts_were_trained_otherwise(shipped, change):
    settings, folder = shipped
    settings = replace(settings, **change)
    artifacts = load_or_train_artifacts(settings, shipped=folder)
    assert len(artifacts.item_index) == TINY["demo_garments"]
    assert not (settings.artifacts_dir / PROVENANCE_FILE).exists()
    assert (settings.data_dir / "simulated_interactions.parquet").is_file()
