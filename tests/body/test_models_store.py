"""BodyService's model at start: the stored one, else the shipped one, else training, as the settings say."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest

from tryon.services.body import models_store
from tryon.services.body.body_model import CONFIG_FILE, BodyModel
from tryon.services.body.models_store import load_or_train_model, training_settings
from tryon.services.body.settings import BodySettings
from tryon.shared.shipped_weights import PROVENANCE_FILE, write_shipped

OBSERVED = {"stature": 1750.0, "weight": 78.0}


@pytest.fixture
def shipped(trained_body_model, tmp_path):
    """The session's small model shipped as if make weights had trained it with ``settings``' training."""
    settings = BodySettings(data_dir=tmp_path / "data", train_epochs=8, gan_epochs=4)

    def train(data_dir):
        trained_body_model.save(data_dir / "model")
        return data_dir / "model"

    folder = tmp_path / "weights" / "model"
    write_shipped(folder, train, service="body", training=training_settings(settings), data="400 subjects")
    return settings, folder


def _refuse_training(*args, **kwargs):
    raise AssertionError("trained although the shipped model could be used")


def test_an_empty_data_folder_gets_the_shipped_model_without_training(
    shipped, trained_body_model, monkeypatch, caplog
):
    settings, folder = shipped
    monkeypatch.setattr(models_store, "train_model", _refuse_training)
    with caplog.at_level(logging.INFO, logger="tryon.services.body"):
        model = load_or_train_model(settings, shipped=folder)
    assert model.infer(OBSERVED, "male") == trained_body_model.infer(OBSERVED, "male")
    assert (settings.model_dir / PROVENANCE_FILE).is_file()
    messages = [record.getMessage() for record in caplog.records]
    assert any(message.startswith("copied the shipped weights") for message in messages)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tryon.services.body"):
        again = load_or_train_model(settings, shipped=folder.parent / "removed")
    assert again.infer(OBSERVED, "female") == model.infer(OBSERVED, "female")
    assert [record.source for record in caplog.records if record.getMessage() == "body model loaded"] == ["stored"]


@pytest.mark.parametrize(
    "change", [{"train_on_start": True}, {"train_seed": 1}, {"train_epochs": 9}], ids=["asked", "seed", "epochs"]
)
def test_the_service_trains_when_asked_or_when_the_shipped_model_was_trained_otherwise(
    shipped, trained_body_model, monkeypatch, change
):
    settings, folder = shipped
    settings = replace(settings, **change)
    trained_with = []

    def train_model(settings, progress=False):
        trained_with.append(settings)
        trained_body_model.save(settings.model_dir)
        return trained_body_model

    monkeypatch.setattr(models_store, "train_model", train_model)
    load_or_train_model(settings, shipped=folder)
    assert trained_with == [settings]
    assert not (settings.model_dir / PROVENANCE_FILE).exists()


def test_a_shipped_model_of_an_older_format_is_replaced_by_training(trained_body_model, tmp_path, monkeypatch):
    settings = BodySettings(data_dir=tmp_path / "data", train_epochs=8, gan_epochs=4)

    def train_older_format(data_dir):
        trained_body_model.save(data_dir / "model")
        document = json.loads((data_dir / "model" / CONFIG_FILE).read_text())
        document["format_version"] = 1
        (data_dir / "model" / CONFIG_FILE).write_text(json.dumps(document))
        return data_dir / "model"

    folder = tmp_path / "weights" / "model"
    write_shipped(folder, train_older_format, service="body", training=training_settings(settings), data="old")
    trained_with = []

    def train_model(settings, progress=False):
        trained_with.append(settings)
        trained_body_model.save(settings.model_dir)
        return trained_body_model

    monkeypatch.setattr(models_store, "train_model", train_model)
    load_or_train_model(settings, shipped=folder)
    assert trained_with == [settings]
    assert BodyModel.load(settings.model_dir).infer(OBSERVED, "male") == trained_body_model.infer(OBSERVED, "male")
    assert not (settings.model_dir / PROVENANCE_FILE).exists(), "the copied provenance would describe another model"
