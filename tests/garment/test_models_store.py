"""GarmentService's models at start: the stored ones, else the shipped ones, else training, as the settings say."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest

from tryon.services.garment import models_store
from tryon.services.garment.models_store import load_or_train_models, models_dir, training_settings
from tryon.services.garment.settings import GarmentSettings
from tryon.shared.shipped_weights import PROVENANCE_FILE, write_shipped


@pytest.fixture
def shipped(trained_garment_models, tmp_path):
    """The session's small models shipped as if make weights had trained them with ``settings``' training."""
    settings = GarmentSettings(data_dir=tmp_path / "data", train_epochs=1, train_images=3000)

    def train(data_dir):
        return trained_garment_models.save(data_dir / "models")

    folder = tmp_path / "weights" / "models"
    write_shipped(folder, train, service="garment", training=training_settings(settings), data="3,000 images")
    return settings, folder


def _refuse_training(*args, **kwargs):
    raise AssertionError("trained although the shipped models could be used")


def test_an_empty_data_folder_gets_the_shipped_models_without_training(
    shipped, trained_garment_models, monkeypatch, caplog
):
    settings, folder = shipped
    monkeypatch.setattr(models_store, "train_models", _refuse_training)
    with caplog.at_level(logging.INFO, logger="tryon.services.garment"):
        models = load_or_train_models(settings, shipped=folder)
    images, _ = models.generate(3, 4, seed=5)
    np.testing.assert_array_equal(images, trained_garment_models.generate(3, 4, seed=5)[0])
    assert (models_dir(settings) / PROVENANCE_FILE).is_file()
    assert any(record.getMessage().startswith("copied the shipped weights") for record in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tryon.services.garment"):
        load_or_train_models(settings, shipped=folder.parent / "removed")
    assert [record.source for record in caplog.records if record.getMessage() == "garment models loaded"] == ["stored"]


@pytest.mark.parametrize("change", [{"train_on_start": True}, {"train_images": 600}], ids=["asked", "images"])
def test_the_service_trains_when_asked_or_when_the_shipped_models_were_trained_otherwise(
    shipped, trained_garment_models, monkeypatch, change
):
    settings, folder = shipped
    settings = replace(settings, **change)
    trained_with = []

    def train_models(settings, progress=False):
        trained_with.append(settings)
        return trained_garment_models

    monkeypatch.setattr(models_store, "train_models", train_models)
    assert load_or_train_models(settings, shipped=folder) is trained_garment_models
    assert trained_with == [settings]
