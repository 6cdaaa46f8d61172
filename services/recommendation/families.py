"""The servable recommender families as the MovieLens-100K evaluation trains them, and one way to train each.

A family is a model (Mult-VAE, RecVAE or CFGAN), the configuration the evaluation
(``evaluate``) measured and the patience of its early stopping: training keeps the epoch with
the best NDCG@100 on validation users and stops after ``patience`` epochs without a better one.
``train_family`` is that training; the evaluation and the service (``train``) both call it, so the
family served is trained the way it was evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from scipy import sparse

from tryon.services.recommendation.cfgan import CFGANConfig, train_cfgan
from tryon.services.recommendation.multvae import MultVAEConfig
from tryon.services.recommendation.protocol import FoldInSet
from tryon.services.recommendation.recvae import RecVAEConfig
from tryon.services.recommendation.trainer import TrainingHistory, train_multvae, train_recvae

ModelConfig = MultVAEConfig | RecVAEConfig | CFGANConfig
"""The configuration of any servable family; its type says which model it trains."""

# Mult-VAE on ML-100K: the paper's architecture and values (tanh layer of 600, dropout 0.5,
# Adam 1e-3) except a latent size of 50 instead of 200, which ~740 training users support
# better (chosen on validation users, see evaluate.MULTVAE_TUNING); batches of 100 users because
# ~740 training users would give under two updates an epoch at the paper's 500; beta reaches 1
# after 1,200 updates (~160 epochs). The weights validated and returned are
# an exponential moving average with decay 0.995 per update (a window of ~200 updates, ~25
# epochs), which evens out the epoch-to-epoch noise of the raw weights (see MULTVAE_TUNING).
ML100K_MULTVAE = MultVAEConfig(
    hidden_dims=(600,),
    latent_dim=50,
    dropout=0.5,
    beta_cap=1.0,
    total_anneal_steps=1200,
    lr=1e-3,
    batch_size=100,
    epochs=160,
    weight_average_decay=0.995,
)

# RecVAE on ML-100K: the paper's values except batches of 100 users (as for Mult-VAE) and
# two encoder layers instead of five, which costs a fifth of the time per epoch.
ML100K_RECVAE = RecVAEConfig(
    hidden_dim=600,
    encoder_layers=2,
    latent_dim=200,
    dropout=0.5,
    gamma=0.005,
    lr=5e-4,
    batch_size=100,
    epochs=60,
    encoder_epochs=3,
    decoder_epochs=1,
)
# CFGAN on ML-100K: the paper's ZR and PM variant without noise, one hidden layer each, with dropout
# on the generator's condition for strong generalisation (see cfgan.py).
ML100K_CFGAN = CFGANConfig(hidden_dim=400, discriminator_hidden_dim=400, dropout=0.5, lr=1e-4, batch_size=100, epochs=60)

VALIDATION_USERS = 100
"""Users held out to choose the epoch: the evaluation's validation users per split (of ~940), and
at most this many, a tenth of the shoppers, when the service trains."""


@dataclass(frozen=True)
class Family:
    """A servable model family as evaluated: its name, configuration and early-stopping patience."""

    name: str
    config: ModelConfig
    patience: int
    """Epochs (RecVAE: outer epochs) without a better validation NDCG@100 before training stops."""

    def to_json_dict(self) -> dict:
        """Name, patience, validation users and configuration as plain JSON types (what the evaluation records)."""
        return {
            "family": self.name,
            "patience": self.patience,
            "validation_users": VALIDATION_USERS,
            "config": self.config.to_json_dict(),
        }


FAMILIES: dict[str, Family] = {
    "multvae": Family("Mult-VAE", ML100K_MULTVAE, patience=30),
    "recvae": Family("RecVAE", ML100K_RECVAE, patience=15),
    "cfgan": Family("CFGAN", ML100K_CFGAN, patience=30),
}
"""Every servable family by the key ``evaluate --models`` names it with."""


def family_of(config: ModelConfig) -> Family:
    """The evaluated family whose model ``config`` configures (its patience applies to any size)."""
    for family in FAMILIES.values():
        if type(family.config) is type(config):
            return family
    raise TypeError(f"no servable family is configured by a {type(config).__name__}")


def train_family(
    matrix: sparse.csr_matrix,
    config: ModelConfig,
    seed: int = 0,
    progress: bool = True,
    validation: FoldInSet | None = None,
    device: str | torch.device | None = None,
) -> tuple[torch.nn.Module, TrainingHistory]:
    """Train the model ``config`` configures, keeping its best validation epoch with its family's patience.

    Without validation users (or with none left) every epoch runs and the last one is returned.
    """
    trainer = {RecVAEConfig: train_recvae, CFGANConfig: train_cfgan}.get(type(config), train_multvae)
    return trainer(
        matrix, config, seed=seed, progress=progress, validation=validation, device=device,
        patience=family_of(config).patience,
    )
