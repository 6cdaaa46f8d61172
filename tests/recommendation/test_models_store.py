"""RecommendationService's artifacts at start: the stored ones, else the shipped ones, else training.

The last test starts the service's domain from the real shipped artifacts: their outfits come from
the learned compatibility space.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import grpc
import numpy as np
import pytest

from tryon.services.recommendation import models_store
from tryon.services.recommendation.compatibility import embed_catalogue
from tryon.services.recommendation.domain import RecommendationDomain
from tryon.services.recommendation.models_store import (
    load_or_train_artifacts,
    train_default_artifacts,
    training_settings,
)
from tryon.services.recommendation.recommender import Recommender
from tryon.services.recommendation.servicer import RecommendationServicer, registration
from tryon.services.recommendation.settings import RecommendationSettings
from tryon.shared.proto import recommendation_service_pb2 as pb
from tryon.shared.proto import recommendation_service_pb2_grpc as pb_grpc
from tryon.shared.server import serve
from tryon.shared.settings import ServerSettings
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


class NoPublisher:
    """The domain's publisher, never called by the outfit calls."""

    def publish_interactions(self, interactions):
        raise AssertionError("no interaction is recorded here")

    def publish_user_deleted(self, user_id):
        raise AssertionError("no user is deleted here")


def test_a_service_started_from_the_shipped_weights_answers_outfits_from_the_learned_space(tmp_path, monkeypatch):
    monkeypatch.setattr(models_store, "train_default_artifacts", _refuse_training)
    artifacts = load_or_train_artifacts(RecommendationSettings(data_dir=tmp_path))
    assert artifacts.compatibility is not None, "the shipped artifacts carry no compatibility space"
    running = serve("recommendation", [registration(RecommendationServicer(
        RecommendationDomain(Recommender(artifacts), NoPublisher())))], ServerSettings())
    try:
        with grpc.insecure_channel(running.address) as channel:
            stub = pb_grpc.RecommendationServiceStub(channel)
            outfits = stub.RecommendOutfits(pb.RecommendOutfitsRequest(user_id="newcomer", k=5)).outfits
            top = outfits[0].garments[0].garment_id
            # Without a compatibility space CompleteOutfit answers FAILED_PRECONDITION.
            completed = stub.CompleteOutfit(pb.CompleteOutfitRequest(garment_ids=[top], k=3)).outfits
    finally:
        running.stop(grace=0)
    assert len(outfits) == 5 and len(completed) == 3
    space = embed_catalogue(artifacts.compatibility, artifacts.catalogue)

    def compatibility(garment_ids):
        return space.outfit_score([space.position[g] for g in garment_ids])

    served = [compatibility([g.garment_id for g in outfit.garments]) for outfit in outfits]
    by_cosine_rule, _ = Recommender(replace(artifacts, compatibility=None)).outfits("newcomer", 5)
    cosine = [compatibility([g.garment_id for g in outfit.garments]) for outfit in by_cosine_rule]
    assert np.mean(served) > np.mean(cosine)
