"""Mult-VAE model: one-epoch smoke training, the exact MIPS form, save/load round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import sparse

from tryon.services.recommendation.multvae import MultVAE, MultVAEConfig, load_model, save_model
from tryon.services.recommendation.recvae import RecVAE, RecVAEConfig
from tryon.services.recommendation.trainer import train_multvae, train_recvae


def clustered_interactions(n_users: int = 96, n_items: int = 120, seed: int = 0) -> sparse.csr_matrix:
    """Binary users x items with taste clusters and a popularity skew, like a small rating log."""
    rng = np.random.default_rng(seed)
    n_clusters = 4
    item_cluster = rng.integers(0, n_clusters, n_items)
    popularity = rng.zipf(1.5, n_items).clip(max=50).astype(float)
    rows, cols = [], []
    for user in range(n_users):
        taste = user % n_clusters
        weights = popularity * np.where(item_cluster == taste, 8.0, 1.0)
        n = int(rng.integers(5, 25))
        items = rng.choice(n_items, size=n, replace=False, p=weights / weights.sum())
        rows.extend([user] * n)
        cols.extend(items)
    return sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))


def eval_loss(model: MultVAE, matrix: sparse.csr_matrix) -> float:
    model.eval()
    with torch.no_grad():
        return float(model.loss(torch.from_numpy(matrix.toarray()), beta=0.0))


def test_one_epoch_loss_is_finite_and_falls():
    matrix = clustered_interactions()
    config = MultVAEConfig(hidden_dims=(32,), latent_dim=8, batch_size=8, epochs=1, lr=1e-2)
    torch.manual_seed(3)
    untrained = MultVAE(matrix.shape[1], config)
    trained, history = train_multvae(matrix, config, seed=3, progress=False)
    assert len(history.loss) == 1
    assert np.isfinite(history.loss[0])
    assert eval_loss(trained, matrix) < eval_loss(untrained, matrix)


def test_user_queries_times_item_embeddings_equals_score():
    matrix = clustered_interactions()
    model = MultVAE(matrix.shape[1], MultVAEConfig(hidden_dims=(16, 12), latent_dim=6))
    history = matrix[:10].toarray()
    history[0, :3] = [-1.0, 2.5, 0.5]  # weighted history with a dislike
    expected = model.score(torch.from_numpy(history)).numpy()
    queries = model.user_queries(history)
    items = model.item_embeddings()
    # the decoder mirrors the encoder, so h(z) has the width of the first hidden layer
    assert queries.shape == (10, 17) and items.shape == (matrix.shape[1], 17)
    np.testing.assert_allclose(queries @ items.T, expected, atol=1e-4)


def test_negative_weights_are_ignored_by_the_input():
    model = MultVAE(5, MultVAEConfig(hidden_dims=(4,), latent_dim=2))
    with_dislike = torch.tensor([[1.0, -3.0, 0.0, 1.0, 0.0]])
    without = torch.tensor([[1.0, 0.0, 0.0, 1.0, 0.0]])
    torch.testing.assert_close(model.score(with_dislike), model.score(without))


def test_save_and_load_round_trip(tmp_path):
    matrix = clustered_interactions()
    config = MultVAEConfig(hidden_dims=(24,), latent_dim=8, epochs=1, batch_size=32)
    model, _ = train_multvae(matrix, config, seed=5, progress=False)
    save_model(model, tmp_path / "vae")
    saved = json.loads((tmp_path / "vae" / "config.json").read_text())
    assert saved["config"]["hidden_dims"] == [24] and saved["n_items"] == matrix.shape[1]
    loaded = load_model(tmp_path / "vae")
    assert loaded.config == config
    x = torch.from_numpy(matrix[:7].toarray())
    torch.testing.assert_close(loaded.score(x), model.score(x))


def test_config_rejects_impossible_values():
    with pytest.raises(ValueError, match="dropout"):
        MultVAEConfig(dropout=1.0)


def test_recvae_loss_falls_and_keeps_the_mips_form(tmp_path):
    matrix = clustered_interactions()
    config = RecVAEConfig(hidden_dim=24, encoder_layers=2, latent_dim=8, batch_size=16, epochs=2, lr=5e-3)
    torch.manual_seed(1)
    untrained = RecVAE(matrix.shape[1], config)
    model, history = train_recvae(matrix, config, seed=1, progress=False)
    assert np.all(np.isfinite(history.loss)) and len(history.loss) == 2
    x = matrix[:9].toarray()
    untrained.eval()
    model.eval()
    with torch.no_grad():
        before = float(untrained.loss(torch.from_numpy(x), dropout=0.0))
        after = float(model.loss(torch.from_numpy(x), dropout=0.0))
    assert after < before
    np.testing.assert_allclose(
        model.user_queries(x) @ model.item_embeddings().T, model.score(torch.from_numpy(x)).numpy(), atol=1e-4
    )
    save_model(model, tmp_path / "recvae")
    saved = torch.load(tmp_path / "recvae" / "model.pt", weights_only=True)
    assert saved and not any(name.startswith("previous_encoder.") for name in saved)
    loaded = load_model(tmp_path / "recvae")
    assert isinstance(loaded, RecVAE) and loaded.config == config
    torch.testing.assert_close(loaded.score(torch.from_numpy(x)), model.score(torch.from_numpy(x)))
    # The prior's copy of the encoder, left out of the file, is rebuilt from the loaded encoder.
    prior = loaded.previous_encoder.state_dict()
    for name, tensor in loaded.encoder.state_dict().items():
        torch.testing.assert_close(prior[name], tensor)
