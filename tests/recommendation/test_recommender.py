"""The recommendation engine on a tiny trained model: fold-in, retrieval, cold start, events, snapshots."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from tryon.services.recommendation.catalogue import (
    BOTTOM_CATEGORIES,
    DRESS_CATEGORIES,
    SHOE_CATEGORIES,
    TOP_CATEGORIES,
    Garment,
    synthetic_catalogue,
)
from tryon.services.recommendation.history import InteractionKind
from tryon.services.recommendation.multvae import MultVAEConfig
from tryon.services.recommendation.recommender import (
    ColdStartMap,
    ModelArtifacts,
    Recommender,
    read_snapshot,
    sparse_user_query,
    write_snapshot,
)
from tryon.services.recommendation.recvae import RecVAEConfig
from tryon.services.recommendation.simulator import ShopperSimulator
from tryon.services.recommendation.train import main as train_main, train_artifacts
from tryon.shared.contract import MAX_LATENT_NORM
from tryon.shared.errors import InvalidEvent, NotFound

TINY_CONFIG = MultVAEConfig(hidden_dims=(32,), latent_dim=8, epochs=3, batch_size=64)


@pytest.fixture(scope="module")
def catalogue():
    return synthetic_catalogue(300, latent_dim=6, seed=11)


@pytest.fixture(scope="module")
def interactions(catalogue):
    simulator = ShopperSimulator(catalogue, seed=4)
    return simulator.interactions_table(simulator.make_shoppers(120), views_per_shopper=15)


@pytest.fixture(scope="module")
def saved_artifacts(tmp_path_factory, catalogue, interactions):
    # Leave some garments without interactions so that the cold-start path is exercised.
    unseen = set(catalogue.garment_ids[-20:])
    table = interactions[~interactions["garment_id"].isin(unseen)]
    directory = tmp_path_factory.mktemp("artifacts")
    train_artifacts(table, catalogue, TINY_CONFIG, progress=False).save(directory)
    return directory


@pytest.fixture
def recommender(saved_artifacts):
    return Recommender(ModelArtifacts.load(saved_artifacts))


def dense_row(recommender, user_id):
    row = np.zeros((1, recommender.model.n_items), dtype=np.float32)
    for garment_id, weight in recommender.histories.get(user_id).weights.items():
        row[0, recommender._model_position[garment_id]] = weight
    return row


def test_artifacts_hold_every_catalogue_garment(recommender, catalogue):
    assert recommender.garment_count == len(catalogue)
    assert recommender.model.n_items <= len(catalogue) - 20


def test_sparse_fold_in_equals_the_models_dense_queries_and_scores(recommender, catalogue):
    for i, garment_id in enumerate(catalogue.garment_ids[:5]):
        recommender.apply_interaction("ann", garment_id, InteractionKind(1 + i))
    row = dense_row(recommender, "ann")
    positions = np.flatnonzero(row[0])
    query = sparse_user_query(recommender.model, positions, row[0, positions])
    np.testing.assert_allclose(query, recommender.model.user_queries(row)[0], atol=1e-5)
    scores = recommender.model.score(torch.from_numpy(row)).numpy()[0]
    np.testing.assert_allclose(query @ recommender.model.item_embeddings().T, scores, atol=1e-4)


@pytest.fixture(scope="module")
def saved_recvae_artifacts(tmp_path_factory, catalogue, interactions):
    directory = tmp_path_factory.mktemp("recvae-artifacts")
    config = RecVAEConfig(hidden_dim=32, encoder_layers=3, latent_dim=8, epochs=2, batch_size=64)
    train_artifacts(interactions, catalogue, config, progress=False).save(directory)
    return directory


def test_a_recvae_model_is_served_like_a_multvae(saved_recvae_artifacts, catalogue):
    recommender = Recommender(ModelArtifacts.load(saved_recvae_artifacts))
    assert type(recommender.model).__name__ == "RecVAE"
    for i, garment_id in enumerate(catalogue.garment_ids[:5]):
        recommender.apply_interaction("ann", garment_id, InteractionKind(1 + i))
    row = dense_row(recommender, "ann")
    positions = np.flatnonzero(row[0])
    query = sparse_user_query(recommender.model, positions, row[0, positions])
    np.testing.assert_allclose(query, recommender.model.user_queries(row)[0], atol=1e-5)
    scores = recommender.model.score(torch.from_numpy(row)).numpy()[0]
    np.testing.assert_allclose(query @ recommender.model.item_embeddings().T, scores, atol=1e-4)

    answer = recommender.recommend("ann", 10)
    seen = set(catalogue.garment_ids[:5])
    indexed = {g: float(score) for g, score in recommender.item_index.search(query[None], len(catalogue))[0]}
    model_items = ModelArtifacts.load(saved_recvae_artifacts).model_items
    np.testing.assert_allclose([indexed[g] for g in model_items], scores, atol=1e-4)
    expected = [g for g in sorted(indexed, key=lambda g: -indexed[g]) if g not in seen][:10]
    assert not answer.cold_start
    assert [item.garment_id for item in answer.garments] == expected
    assert recommender.outfits("ann", 3)[0]


def test_recommendations_are_the_models_top_unseen_garments(recommender, catalogue):
    recommender.apply_interaction("ann", catalogue.garment_ids[0], InteractionKind.PURCHASE)
    recommender.apply_interaction("ann", catalogue.garment_ids[1], InteractionKind.VIEW)
    answer = recommender.recommend("ann", 10)
    assert not answer.cold_start and answer.history_size == 2
    query = recommender.user_query("ann")
    all_scores = {g: float(s) for g, s in recommender.item_index.search(query[None], len(catalogue))[0]}
    expected = [g for g in sorted(all_scores, key=lambda g: -all_scores[g]) if g not in catalogue.garment_ids[:2]][:10]
    assert [item.garment_id for item in answer.garments] == expected
    seen_included = recommender.recommend("ann", len(catalogue), include_seen=True)
    assert set(catalogue.garment_ids[:2]) <= {item.garment_id for item in seen_included.garments}


def test_category_filter(recommender, catalogue):
    recommender.apply_interaction("ann", catalogue.garment_ids[0], InteractionKind.PURCHASE)
    for wanted in ({1}, {5, 7, 9}):
        answer = recommender.recommend("ann", 8, categories=wanted)
        assert len(answer.garments) == 8 and {item.category for item in answer.garments} <= wanted


def test_unknown_shopper_gets_popular_garments(recommender):
    answer = recommender.recommend("stranger", 5)
    assert answer.cold_start and answer.history_size == 0
    scores = [item.score for item in answer.garments]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0


def test_a_few_events_change_the_answer(recommender, catalogue):
    before = [item.garment_id for item in recommender.recommend("bob", 10).garments]
    trousers = [g for g in catalogue.garment_ids if catalogue[g].category == 1][:4]
    for i, garment_id in enumerate(trousers):
        recommender.apply_interaction("bob", garment_id, InteractionKind.PURCHASE)
    after = recommender.recommend("bob", 10)
    assert not after.cold_start
    assert [item.garment_id for item in after.garments] != before
    assert not set(trousers) & {item.garment_id for item in after.garments}


def test_invalid_events(recommender, catalogue):
    # Duplicates are the consumer's to skip (tests/shared/test_events.py); here every call applies.
    recommender.apply_interaction("ann", catalogue.garment_ids[0], InteractionKind.VIEW)
    assert recommender.histories.get("ann").interaction_count == 1
    with pytest.raises(InvalidEvent, match="not in the catalogue"):
        recommender.apply_interaction("ann", "no-such-garment", InteractionKind.VIEW)
    recommender.forget_user("ann")
    assert recommender.recommend("ann", 3).cold_start


def test_registered_garment_is_recommendable_before_any_interaction(recommender, catalogue):
    shoes = [g for g in catalogue.garment_ids if catalogue[g].category == 7]
    latent = catalogue[shoes[0]].content_latent + 0.01
    recommender.register_garment(Garment("brand-new-sneaker", 7, latent, 5000, "new sneaker"))
    assert recommender.garment_count == len(catalogue) + 1
    for i, garment_id in enumerate(shoes[:3]):
        recommender.apply_interaction("cara", garment_id, InteractionKind.PURCHASE)
    everything = recommender.recommend("cara", len(catalogue) + 1, categories={7})
    assert "brand-new-sneaker" in {item.garment_id for item in everything.garments}
    recommender.register_garment(Garment("its-twin", 7, latent + 0.001, 5000, "twin sneaker"))
    assert recommender.similar("brand-new-sneaker", 1)[0].garment_id == "its-twin"
    recommender.apply_interaction("cara", "brand-new-sneaker", InteractionKind.VIEW)
    assert "brand-new-sneaker" in recommender.histories.get("cara").seen


def test_a_latent_far_from_the_trained_ones_does_not_come_first_for_every_shopper(recommender, catalogue):
    # The latent inside the contract's norm bound that most raises the cold-start map's bias.
    latent_dim = recommender.cold_start_map.latent_dim
    toward_bias = recommender.cold_start_map.coefficients[:latent_dim, -1]
    latent = (MAX_LATENT_NORM * toward_bias / np.linalg.norm(toward_bias)).astype(np.float32)
    recommender.register_garment(Garment("crafted", 0, latent, 5000, "crafted top"))
    shoppers = [f"shopper-{i}" for i in range(40)]
    for i, shopper in enumerate(shoppers):
        for garment_id in catalogue.garment_ids[3 * i : 3 * i + 3]:
            recommender.apply_interaction(shopper, garment_id, InteractionKind.PURCHASE)
    firsts = [recommender.recommend(shopper, 1).garments[0].garment_id for shopper in shoppers]
    assert firsts.count("crafted") < len(shoppers) // 5  # 15 of 40 when its vector was not shortened
    vector = recommender._item_vector("crafted")
    assert np.linalg.norm(vector) <= np.linalg.norm(recommender.model.item_embeddings(), axis=1).max() * (1 + 1e-5)


def test_similar_garments(recommender, catalogue):
    garment_id = catalogue.garment_ids[3]
    similar = recommender.similar(garment_id, 5)
    assert len(similar) == 5 and garment_id not in {item.garment_id for item in similar}
    assert [item.score for item in similar] == sorted((item.score for item in similar), reverse=True)
    with pytest.raises(NotFound, match="garment_id"):
        recommender.similar("missing", 5)


def test_outfits_are_well_formed_and_ranked(recommender, catalogue):
    recommender.apply_interaction("dan", catalogue.garment_ids[0], InteractionKind.PURCHASE)
    outfits, cold = recommender.outfits("dan", 20)
    assert not cold and len(outfits) == 20
    for outfit in outfits:
        categories = [item.category for item in outfit.garments]
        if len(categories) == 3:
            assert categories[0] in TOP_CATEGORIES and categories[1] in BOTTOM_CATEGORIES
        else:
            assert categories[0] in DRESS_CATEGORIES
        assert categories[-1] in SHOE_CATEGORIES
    assert len({tuple(item.garment_id for item in o.garments) for o in outfits}) == 20
    assert recommender.outfits("nobody", 3)[1]
    with pytest.raises(NotFound, match="body_id"):
        recommender.outfits("dan", 3, body_id="unknown-body")
    recommender.set_body("body-1", 1, [0.1, 0.2])
    assert len(recommender.outfits("dan", 3, body_id="body-1")[0]) == 3


def test_snapshot_restores_the_same_answers(tmp_path, saved_artifacts, recommender, catalogue):
    recommender.register_garment(Garment("late-coat", 4, catalogue.latents[5], 9000, "coat"))
    for i, garment_id in enumerate([*catalogue.garment_ids[:6], "late-coat"]):
        recommender.apply_interaction("eve", garment_id, InteractionKind.TRY_ON)
    recommender.set_body("body-1", 2, [0.5])
    write_snapshot(tmp_path / "snapshot.json", recommender.state(), {"tryon.interactions.v1:0": 7})
    state, offsets = read_snapshot(tmp_path / "snapshot.json")
    restored = Recommender(ModelArtifacts.load(saved_artifacts))
    restored.restore(state)
    assert offsets == {"tryon.interactions.v1:0": 7}
    assert restored.recommend("eve", 10) == recommender.recommend("eve", 10)
    assert restored.has_garment("late-coat") and restored.has_body("body-1")
    assert read_snapshot(tmp_path / "absent.json") is None


def test_cold_start_map_recovers_a_linear_map_of_latent_and_category():
    rng = np.random.default_rng(0)
    latents = rng.normal(size=(400, 4))
    categories = rng.integers(0, 10, size=400)
    truth = rng.normal(size=(4 + 10, 3))
    vectors = np.hstack([latents, np.eye(10)[categories]]) @ truth
    fitted = ColdStartMap.fit(latents, categories, vectors, l2=1e-6)
    assert fitted.latent_dim == 4
    np.testing.assert_allclose(fitted(latents[:3], categories[:3]), vectors[:3], atol=1e-3)
    other_category = (categories[:1] + 1) % 10
    assert not np.allclose(fitted(latents[:1], other_category), vectors[:1], atol=1e-2)


def test_train_command_writes_loadable_artifacts(tmp_path, catalogue, interactions):
    catalogue.save(tmp_path / "catalogue.csv")
    interactions.to_parquet(tmp_path / "interactions.parquet")
    train_main([
        "--interactions", str(tmp_path / "interactions.parquet"), "--catalogue", str(tmp_path / "catalogue.csv"),
        "--out", str(tmp_path / "out"), "--index-factory", "HNSW32", "--epochs", "1",
    ])
    loaded = ModelArtifacts.load(tmp_path / "out")
    assert loaded.item_index.factory == "HNSW32" and len(loaded.item_index) == len(catalogue)
