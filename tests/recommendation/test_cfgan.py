"""CFGAN: training runs, the exact MIPS form, sparse fold-in, save/load, and serving."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse

from tryon.services.recommendation.catalogue import synthetic_catalogue
from tryon.services.recommendation.cfgan import CFGAN, CFGANConfig, train_cfgan
from tryon.services.recommendation.history import InteractionKind
from tryon.services.recommendation.multvae import load_model, prepare_input, save_model
from tryon.services.recommendation.recommender import ModelArtifacts, Recommender, sparse_user_query
from tryon.services.recommendation.simulator import ShopperSimulator
from tryon.services.recommendation.train import train_artifacts

TINY = CFGANConfig(hidden_dim=24, discriminator_hidden_dim=24, batch_size=32, epochs=5, lr=3e-3)


def clustered_interactions(n_users: int = 96, n_items: int = 120, seed: int = 0) -> sparse.csr_matrix:
    """Binary users x items where user u mostly takes items of taste cluster u % 4."""
    rng = np.random.default_rng(seed)
    item_cluster = rng.integers(0, 4, n_items)
    rows, cols = [], []
    for user in range(n_users):
        weights = np.where(item_cluster == user % 4, 8.0, 1.0)
        items = rng.choice(n_items, size=int(rng.integers(5, 25)), replace=False, p=weights / weights.sum())
        rows.extend([user] * len(items))
        cols.extend(items)
    return sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))


@pytest.fixture(scope="module")
def trained():
    matrix = clustered_interactions()
    model, history = train_cfgan(matrix, TINY, seed=1, progress=False)
    return matrix, model, history


def test_training_moves_the_generator_and_keeps_a_finite_loss(trained):
    matrix, model, history = trained
    torch.manual_seed(1)
    untrained = CFGAN(matrix.shape[1], TINY)
    assert np.all(np.isfinite(history.loss)) and len(history.loss) == TINY.epochs
    x = torch.from_numpy(matrix[:20].toarray())
    assert torch.isfinite(model.score(x)).all()
    assert not torch.allclose(model.score(x), untrained.score(x), atol=1e-3)


def test_queries_times_item_vectors_are_the_scores_dense_and_sparse(trained):
    matrix, model, _ = trained
    x = matrix[:9].toarray()
    scores = model.score(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.user_queries(x) @ model.item_embeddings().T, scores, atol=1e-4)
    positions = np.flatnonzero(x[0])
    weights = prepare_input(torch.from_numpy(x[:1]))[0, positions]
    folded = model.history_query(torch.from_numpy(positions), weights)
    np.testing.assert_allclose(folded, model.user_queries(x[:1])[0], atol=1e-5)


def test_save_and_load_round_trip(trained, tmp_path):
    matrix, model, _ = trained
    save_model(model, tmp_path / "cfgan")
    saved = torch.load(tmp_path / "cfgan" / "model.pt", weights_only=True)
    assert saved and not any(name.startswith("discriminator.") for name in saved)
    loaded = load_model(tmp_path / "cfgan")
    assert isinstance(loaded, CFGAN) and loaded.config == TINY and not loaded.training
    x = torch.from_numpy(matrix[:5].toarray())
    torch.testing.assert_close(loaded.score(x), model.score(x))


def test_config_rejects_impossible_values():
    with pytest.raises(ValueError, match="dropout"):
        CFGANConfig(dropout=1.0)
    with pytest.raises(ValueError, match="zr_share"):
        CFGANConfig(zr_share=-0.1)


def test_a_cfgan_model_is_served_like_a_multvae(tmp_path):
    catalogue = synthetic_catalogue(200, latent_dim=6, seed=11)
    simulator = ShopperSimulator(catalogue, seed=4)
    interactions = simulator.interactions_table(simulator.make_shoppers(80), views_per_shopper=15)
    config = CFGANConfig(hidden_dim=16, discriminator_hidden_dim=16, batch_size=32, epochs=2)
    train_artifacts(interactions, catalogue, config, progress=False).save(tmp_path)
    recommender = Recommender(ModelArtifacts.load(tmp_path))
    assert type(recommender.model).__name__ == "CFGAN"
    model_items = ModelArtifacts.load(tmp_path).model_items
    # Garments the model learned (training holds some shoppers out, and garments only they touched).
    seen = model_items[:5]
    for i, garment_id in enumerate(seen):
        recommender.apply_interaction("ann", garment_id, InteractionKind(1 + i))
    row = np.zeros((1, recommender.model.n_items), dtype=np.float32)
    for garment_id, weight in recommender.histories.get("ann").weights.items():
        row[0, model_items.index(garment_id)] = weight
    positions = np.flatnonzero(row[0])
    query = sparse_user_query(recommender.model, positions, row[0, positions])
    np.testing.assert_allclose(query, recommender.model.user_queries(row)[0], atol=1e-5)
    indexed = {g: float(score) for g, score in recommender.item_index.search(query[None], len(catalogue))[0]}
    scores = recommender.model.score(torch.from_numpy(row)).numpy()[0]
    np.testing.assert_allclose([indexed[g] for g in model_items], scores, atol=1e-4)
    expected = [g for g in sorted(indexed, key=lambda g: -indexed[g]) if g not in seen][:10]
    answer = recommender.recommend("ann", 10)
    assert not answer.cold_start
    assert [item.garment_id for item in answer.garments] == expected
