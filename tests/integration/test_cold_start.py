"""A garment registered now is recommended to a shopper whose taste it fits, before anyone touched it.

The three services run as processes with a broker of their own (so no other test's events
reach this catalogue): GarmentService registers a catalogue of real Fashion-MNIST pictures,
the recommender is trained on that live catalogue with simulated shoppers and started, and
then a new dress is registered. Its GarmentRegistered event carries the content latent that
the recommender maps into its item space, so the dress ranks high for a shopper who buys
dresses and low for one who buys sneakers.
"""

from __future__ import annotations

import io
import time
import uuid

import grpc
import numpy as np
import pytest
from PIL import Image

from tryon.services.garment.categories import CATEGORIES
from tryon.services.garment.dataset import load_fashion_mnist
from tryon.services.recommendation.live_catalogue import train_on_live_catalogue
from tryon.shared.contract import category_to_proto
from tryon.shared.launcher import LocalSuite
from tryon.shared.proto import (
    common_pb2,
    garment_service_pb2 as garment_pb,
    garment_service_pb2_grpc,
    recommendation_service_pb2 as rec_pb,
    recommendation_service_pb2_grpc,
)

pytestmark = pytest.mark.integration

CATALOGUE_PER_CATEGORY = 12
DEADLINE_S = 20.0


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def register(garments, image: np.ndarray, label: int) -> str:
    reply = garments.RegisterGarment(
        garment_pb.RegisterGarmentRequest(
            image=png(image), name=f"{CATEGORIES[label]} {uuid.uuid4().hex[:6]}", category=category_to_proto(label),
            price=common_pb2.Money(currency_code="EUR", amount_minor=2500),
        )
    )
    return reply.garment.garment_id


def ranking(recommendations, user_id: str) -> list[str]:
    reply = recommendations.RecommendGarments(rec_pb.RecommendGarmentsRequest(user_id=user_id, k=1000))
    return [garment.garment_id for garment in reply.garments]


def buy(recommendations, user_id: str, garment_ids: list[str]) -> None:
    recommendations.RecordInteractions(
        rec_pb.RecordInteractionsRequest(
            interactions=[
                rec_pb.Interaction(user_id=user_id, garment_id=g, type=common_pb2.INTERACTION_TYPE_PURCHASE)
                for g in garment_ids
            ]
        )
    )
    deadline = time.monotonic() + DEADLINE_S
    while recommendations.RecommendGarments(
        rec_pb.RecommendGarmentsRequest(user_id=user_id, k=1)
    ).history_size < len(garment_ids):
        assert time.monotonic() < deadline, f"{user_id}'s purchases were not applied"
        time.sleep(0.05)


def test_a_new_dress_reaches_a_dress_lover_before_any_interaction(tmp_path, shipped_weights):
    images, labels = load_fashion_mnist("test")
    positions = {label: np.flatnonzero(labels == label) for label in range(len(CATEGORIES))}
    dress, sneaker = CATEGORIES.index("dress"), CATEGORIES.index("sneaker")
    with LocalSuite(tmp_path, services=("body", "garment"), startup_timeout_s=600) as suite:
        with grpc.insecure_channel(suite.address("garment")) as garment_channel:
            garments = garment_service_pb2_grpc.GarmentServiceStub(garment_channel)
            catalogue = {
                label: [register(garments, images[p], label) for p in positions[label][:CATALOGUE_PER_CATEGORY]]
                for label in range(len(CATEGORIES))
            }
            train_on_live_catalogue(
                suite.address("garment"), tmp_path / "recommendation" / "artifacts", shoppers=400, epochs=20,
                progress=False,
            )
            suite.add("recommendation")
            new_dress = register(garments, images[positions[dress][CATALOGUE_PER_CATEGORY]], dress)

        with grpc.insecure_channel(suite.address("recommendation")) as rec_channel:
            recommendations = recommendation_service_pb2_grpc.RecommendationServiceStub(rec_channel)
            deadline = time.monotonic() + DEADLINE_S
            while new_dress not in ranking(recommendations, "nobody-yet"):
                assert time.monotonic() < deadline, "the new dress never became recommendable"
                time.sleep(0.05)
            buy(recommendations, "dress-lover", catalogue[dress][:3])
            buy(recommendations, "sneaker-lover", catalogue[sneaker][:3])
            dress_lover, sneaker_lover = ranking(recommendations, "dress-lover"), ranking(recommendations, "sneaker-lover")

    assert dress_lover.index(new_dress) < 10
    assert sneaker_lover.index(new_dress) > 20
