"""The served recommender is the family the MovieLens-100K evaluation picked, trained as it was evaluated."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from tryon.services.recommendation.catalogue import synthetic_catalogue
from tryon.services.recommendation.evaluate import pick_served
from tryon.services.recommendation.families import FAMILIES, VALIDATION_USERS
from tryon.services.recommendation.recvae import RecVAEConfig
from tryon.services.recommendation.simulator import ShopperSimulator
from tryon.services.recommendation.train import SERVING_FAMILY, hold_out_validation, train_artifacts_with_history
from tryon.shared.results import end_marker, start_marker

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results.md"
SECTION = "evaluate_recommendation"


def recorded_pick() -> tuple[str, dict]:
    """The family named by the evaluation's latest run in docs/results.md, and its recorded procedure."""
    document = RESULTS.read_text(encoding="utf-8")
    section = document[document.index(start_marker(SECTION)) : document.index(end_marker(SECTION))]
    named = re.search(r"^Served pick: \*\*(.+?)\*\*", section, re.MULTILINE)
    assert named, f"docs/results.md's {SECTION} section names no served pick: run the evaluation with --results"
    procedure = re.search(r"recorded as `(\{.*\})`", section[named.start() :])
    assert procedure, "the served pick is recorded without its configuration"
    return named.group(1), json.loads(procedure.group(1))


def test_the_served_family_is_the_one_the_recorded_evaluation_picked_with_its_configuration():
    family, procedure = recorded_pick()
    assert family == SERVING_FAMILY.name
    assert procedure == json.loads(json.dumps(SERVING_FAMILY.to_json_dict()))


def summary_of(gaps: dict[str, float], ndcg: dict[str, float]) -> dict:
    return {name: {"ndcg@100 vs EASE %": {"mean": gaps[name]}, "ndcg@100": {"mean": ndcg[name]}} for name in gaps}


def test_the_pick_is_the_best_family_within_three_percent_of_ease_or_none():
    families = list(FAMILIES.values())
    summary = summary_of({"Mult-VAE": -2.9, "RecVAE": -1.0, "CFGAN": -3.5}, {"Mult-VAE": 0.46, "RecVAE": 0.45, "CFGAN": 0.47})
    record, text = pick_served(summary, families, VALIDATION_USERS)
    # CFGAN scores highest but lies beyond 3%; of the two within, Mult-VAE scores higher.
    assert record["family"] == "Mult-VAE" and "Served pick: **Mult-VAE**" in text
    record, text = pick_served(summary_of({"Mult-VAE": -4.0}, {"Mult-VAE": 0.4}), families[:1], VALIDATION_USERS)
    assert record is None and "Served pick: **none**" in text


def test_the_service_keeps_the_best_epoch_on_held_out_shoppers_as_the_evaluation_does():
    catalogue = synthetic_catalogue(120, latent_dim=4, seed=3)
    simulator = ShopperSimulator(catalogue, seed=3)
    interactions = simulator.interactions_table(simulator.make_shoppers(60), 15)
    config = RecVAEConfig(hidden_dim=16, encoder_layers=2, latent_dim=4, epochs=4, batch_size=32)
    artifacts, history = train_artifacts_with_history(interactions, catalogue, config, progress=False)
    assert len(history.validation_ndcg) == len(history.loss) == 4
    assert history.best_epoch == int(np.argmax(history.validation_ndcg))
    assert artifacts.model.n_items == len(artifacts.model_items)


@pytest.mark.parametrize(("shoppers", "held_out"), [(60, 6), (3000, VALIDATION_USERS)])
def test_a_tenth_of_the_shoppers_at_most_the_evaluations_count_are_held_out(shoppers, held_out):
    rng = np.random.default_rng(0)
    weights = rng.choice([0.0, 1.0, 5.0, -5.0], p=[0.7, 0.2, 0.05, 0.05], size=(shoppers, 80)).astype(np.float32)
    split = hold_out_validation(sparse.csr_matrix(weights), seed=0)
    assert split.train.shape[0] == shoppers - held_out
    # Returns (negative weights) are no garment the shopper liked: neither trained on nor held out.
    assert split.train.min() >= 0 and split.validation.held_out.min() >= 0
