"""Mult-VAE trainer: KL annealing, best-epoch selection on validation users, early stop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tryon.services.recommendation.multvae import MultVAEConfig
from tryon.services.recommendation.protocol import evaluate_fold_in, strong_generalization_split
from tryon.services.recommendation.trainer import train_multvae

from .test_multvae import clustered_interactions


@pytest.fixture(scope="module")
def split():
    return strong_generalization_split(clustered_interactions(n_users=120), 20, 20, seed=1)


def test_beta_rises_per_update_and_stops_at_the_cap(split):
    # 80 training users in batches of 20: 4 updates an epoch, beta = updates / 10 before each
    config = MultVAEConfig(
        hidden_dims=(16,), latent_dim=4, batch_size=20, epochs=3, total_anneal_steps=10, beta_cap=0.5
    )
    _, history = train_multvae(split.train, config, seed=0, progress=False)
    assert split.train.shape[0] == 80
    np.testing.assert_allclose(history.beta, [0.3, 0.5, 0.5])


def test_validation_chooses_the_returned_epoch(split):
    config = MultVAEConfig(hidden_dims=(32,), latent_dim=8, batch_size=16, epochs=4, lr=1e-2)
    model, history = train_multvae(split.train, config, seed=0, progress=False, validation=split.validation)
    assert len(history.validation_ndcg) == 4
    assert history.best_validation_ndcg == max(history.validation_ndcg)
    assert all(np.isfinite(history.loss))
    def score(rows: np.ndarray) -> np.ndarray:
        return model.score(torch.from_numpy(rows)).numpy()

    returned = evaluate_fold_in(score, split.validation, (("ndcg", 100),))
    assert returned["ndcg@100"] == pytest.approx(history.best_validation_ndcg)


def test_patience_stops_training_early(split):
    # a learning rate too small to change the ranking: no epoch beats the first
    config = MultVAEConfig(hidden_dims=(8,), latent_dim=4, batch_size=40, epochs=50, lr=1e-9)
    _, history = train_multvae(split.train, config, seed=0, progress=False, validation=split.validation, patience=3)
    assert len(history.loss) < 50
