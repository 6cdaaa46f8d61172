"""Mult-VAE trainer: KL annealing, best-epoch selection on validation users, early stop, weight averaging."""

from __future__ import annotations

from dataclasses import replace

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


def test_weight_average_returns_the_corrected_moving_average_of_the_updates(split):
    # 80 training users in one batch: one update an epoch, so a run of k epochs ends at w_k,
    # the same trajectory as the first k updates of a longer run with the same seed.
    base = MultVAEConfig(hidden_dims=(16,), latent_dim=4, batch_size=80, lr=1e-2)
    trajectory = []
    for epochs in (1, 2, 3):
        model, _ = train_multvae(split.train, replace(base, epochs=epochs), seed=0, progress=False)
        trajectory.append({name: p.detach().clone() for name, p in model.named_parameters()})
    decay = 0.5
    averaged, _ = train_multvae(
        split.train, replace(base, epochs=3, weight_average_decay=decay), seed=0, progress=False
    )
    weights = [(1 - decay) * decay**2, (1 - decay) * decay, 1 - decay]
    for name, parameter in averaged.named_parameters():
        expected = sum(w * step[name] for w, step in zip(weights, trajectory)) / (1 - decay**3)
        torch.testing.assert_close(parameter.detach(), expected)
        assert not torch.allclose(parameter.detach(), trajectory[-1][name])


def test_weight_average_is_what_validation_chooses(split):
    config = MultVAEConfig(
        hidden_dims=(32,), latent_dim=8, batch_size=16, epochs=4, lr=1e-2, weight_average_decay=0.9
    )
    model, history = train_multvae(split.train, config, seed=0, progress=False, validation=split.validation)
    raw, raw_history = train_multvae(
        split.train, replace(config, weight_average_decay=0.0), seed=0, progress=False, validation=split.validation
    )
    assert history.loss == raw_history.loss
    assert history.validation_ndcg != raw_history.validation_ndcg

    def score(rows: np.ndarray) -> np.ndarray:
        return model.score(torch.from_numpy(rows)).numpy()

    returned = evaluate_fold_in(score, split.validation, (("ndcg", 100),))
    assert returned["ndcg@100"] == pytest.approx(history.best_validation_ndcg)
