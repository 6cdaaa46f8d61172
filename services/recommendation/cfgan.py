"""CFGAN: a conditional GAN that generates a shopper's whole item vector (Chae et al., CIKM 2018).

The generator maps a shopper's history to a vector of purchase scores over every item; the
discriminator tells real history vectors from generated ones, both given the history as its
condition. As in the paper's best variant (CFGAN_ZP, without random noise), the generator's output
is judged only on the shopper's own items plus a random share of the others (partial masking, PM),
and a zero-reconstruction term (ZR) pulls another random share of the other items towards zero;
without them the generator can fool the discriminator by scoring every item high.

Strong generalisation asks the generator to score items the history does not contain, so its
condition is the history with dropout (as Mult-VAE's input; Liang et al., WWW 2018) while the
discriminator and the ZR term see the whole vector: an identity map then no longer wins the game.

The generator's last layer is linear before the sigmoid, so the recommender serves it as it serves
Mult-VAE: item vectors are that layer's rows [W_i, b_i] and a history's query is [h(history), 1]
(``ServableModel``); ranking by the logit equals ranking by the sigmoid score.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import sparse
from torch import nn

from tryon.services.recommendation.multvae import item_vectors, prepare_input
from tryon.services.recommendation.protocol import FoldInSet
from tryon.services.recommendation.trainer import TrainingHistory, _BestEpoch, _check_matrix, pick_device
from tryon.shared.progress import progress_bar


@dataclass(frozen=True)
class CFGANConfig:
    """CFGAN hyperparameters; defaults are the ones the MovieLens-100K evaluation reports."""

    # Width of the generator's hidden tanh layer (its output is the item vectors' size).
    hidden_dim: int = 400
    # Width of the discriminator's hidden layer.
    discriminator_hidden_dim: int = 400
    # Dropout on the generator's condition (the history), so it learns to score unseen items.
    dropout: float = 0.5
    # Share of a shopper's non-interacted items drawn per step for the zero-reconstruction term.
    zr_share: float = 0.5
    # Share of a shopper's non-interacted items drawn per step that the discriminator also sees.
    pm_share: float = 0.5
    # Weight of the zero-reconstruction term against the adversarial loss (the paper's alpha).
    zr_weight: float = 0.1
    # Adam learning rate of both networks.
    lr: float = 1e-3
    # Shoppers per step.
    batch_size: int = 100
    # Passes over the training shoppers.
    epochs: int = 100

    def __post_init__(self) -> None:
        if self.hidden_dim < 1 or self.discriminator_hidden_dim < 1:
            raise ValueError("CFGANConfig widths must be at least 1")
        for name in ("dropout", "zr_share", "pm_share"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"CFGANConfig.{name} must lie in [0, 1)")
        if self.zr_weight < 0 or self.lr <= 0 or self.batch_size < 1 or self.epochs < 1:
            raise ValueError("CFGANConfig needs zr_weight >= 0, lr > 0, batch_size >= 1 and epochs >= 1")

    def to_json_dict(self) -> dict:
        """Plain JSON types, for ``config.json``."""
        return asdict(self)

    @classmethod
    def from_json_dict(cls, values: dict) -> CFGANConfig:
        """Inverse of ``to_json_dict``."""
        return cls(**values)


class CFGAN(nn.Module):
    """Generator and discriminator of CFGAN over ``n_items`` items; see the module docstring."""

    TRAINING_ONLY = ("discriminator.",)
    """Weights ``multvae.save_model`` leaves out: the discriminator, which serving never reads."""

    def __init__(self, n_items: int, config: CFGANConfig | None = None) -> None:
        super().__init__()
        self.n_items = n_items
        self.config = config or CFGANConfig()
        self.generator_hidden = nn.Linear(n_items, self.config.hidden_dim)
        self.decoder_out = nn.Linear(self.config.hidden_dim, n_items)
        self.discriminator = nn.Sequential(
            nn.Linear(2 * n_items, self.config.discriminator_hidden_dim), nn.LeakyReLU(0.2),
            nn.Linear(self.config.discriminator_hidden_dim, 1),
        )

    def generator_parameters(self) -> list[nn.Parameter]:
        """The generator's parameters (its own optimiser's)."""
        return [*self.generator_hidden.parameters(), *self.decoder_out.parameters()]

    def features(self, condition: torch.Tensor) -> torch.Tensor:
        """The generator's hidden features h of a history [batch, n_items] (raw weights)."""
        x = prepare_input(condition)
        if self.training and self.config.dropout > 0:
            x = F.dropout(x, p=self.config.dropout)
        return torch.tanh(self.generator_hidden(x))

    def logits(self, condition: torch.Tensor) -> torch.Tensor:
        """Item logits for each history row; the generated vector is their sigmoid."""
        return self.decoder_out(self.features(condition))

    def discriminate(self, vector: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """The discriminator's logit that ``vector`` is a real history given the condition."""
        return self.discriminator(torch.cat([vector, prepare_input(condition)], dim=-1)).squeeze(-1)

    @torch.no_grad()
    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Logits over all items for each history row of ``x`` [batch, n_items], in eval mode."""
        was_training = self.training
        self.eval()
        try:
            logits = self.logits(x.to(self.decoder_out.weight.device, torch.float32))
        finally:
            self.train(was_training)
        return logits

    @torch.no_grad()
    def item_embeddings(self) -> np.ndarray:
        """Rows [W_i, b_i] of the generator's last layer, float32 [n_items, hidden_dim + 1]."""
        return item_vectors(self.decoder_out)

    @torch.no_grad()
    def history_query(self, positions: torch.Tensor, weights: torch.Tensor) -> np.ndarray:
        """``user_queries`` of one history given as item ``positions`` and unit-norm positive ``weights``.

        Only the generator's first layer touches the items, so only its columns at the history's
        positions are read.
        """
        first = self.generator_hidden
        features = torch.tanh(first.weight[:, positions] @ weights + first.bias)
        return np.append(features.numpy(), np.float32(1.0)).astype(np.float32)

    @torch.no_grad()
    def user_queries(self, x: np.ndarray) -> np.ndarray:
        """Queries [h(x), 1] so that ``user_queries(x) @ item_embeddings().T == score(x)``."""
        was_training = self.training
        self.eval()
        try:
            rows = torch.as_tensor(np.asarray(x), dtype=torch.float32, device=self.decoder_out.weight.device)
            features = self.features(rows if rows.dim() == 2 else rows[None, :]).cpu().numpy()
        finally:
            self.train(was_training)
        ones = np.ones((features.shape[0], 1), dtype=np.float32)
        return np.ascontiguousarray(np.hstack([features, ones]), dtype=np.float32)


def _negative_draws(real: torch.Tensor, share: float) -> torch.Tensor:
    """A random ``share`` of each row's non-interacted items, as a 0/1 mask."""
    return ((torch.rand_like(real) < share) & (real == 0)).float()


def train_cfgan(
    matrix: sparse.csr_matrix,
    config: CFGANConfig | None = None,
    seed: int = 0,
    progress: bool = True,
    validation: FoldInSet | None = None,
    device: str | torch.device | None = None,
    patience: int | None = None,
) -> tuple[CFGAN, TrainingHistory]:
    """Train CFGAN with one discriminator and one generator step per batch; arguments as ``train_multvae``.

    The real vectors are the rows' interactions made binary (positive weight = 1). The history's
    loss is the generator's mean loss per epoch; with validation users the best epoch is returned.
    """
    config = config or CFGANConfig()
    matrix = _check_matrix(matrix)
    n_users, n_items = matrix.shape
    target = pick_device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = CFGAN(n_items, config).to(target)
    generator_optimizer = torch.optim.Adam(model.generator_parameters(), lr=config.lr)
    discriminator_optimizer = torch.optim.Adam(model.discriminator.parameters(), lr=config.lr)
    history = TrainingHistory()
    selector = _BestEpoch(model, validation, history)
    bar = progress_bar(range(config.epochs), desc="recommendation CFGAN", unit="epoch", enabled=progress)
    for epoch in bar:
        started = time.perf_counter()
        model.train()
        order = rng.permutation(n_users)
        total = 0.0
        for start in range(0, n_users, config.batch_size):
            condition = torch.from_numpy(matrix[order[start : start + config.batch_size]].toarray()).to(target)
            real = (condition > 0).float()
            shown = torch.maximum(real, _negative_draws(real, config.pm_share))
            fake = torch.sigmoid(model.logits(condition)) * shown
            real_logit = model.discriminate(real, condition)
            fake_logit = model.discriminate(fake.detach(), condition)
            discriminator_loss = F.binary_cross_entropy_with_logits(
                real_logit, torch.ones_like(real_logit)
            ) + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
            discriminator_optimizer.zero_grad(set_to_none=True)
            discriminator_loss.backward()
            discriminator_optimizer.step()

            zero = _negative_draws(real, config.zr_share)
            generated = torch.sigmoid(model.logits(condition))
            fooled = model.discriminate(generated * shown, condition)
            reconstruction = ((generated * zero) ** 2).sum(dim=-1).mean()
            generator_loss = F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
            generator_loss = generator_loss + config.zr_weight * reconstruction
            generator_optimizer.zero_grad(set_to_none=True)
            generator_loss.backward()
            generator_optimizer.step()
            total += float(generator_loss.detach()) * condition.shape[0]
        history.loss.append(total / n_users)
        history.epoch_seconds.append(time.perf_counter() - started)
        postfix = {"loss": f"{history.loss[-1]:.3f}"}
        selector.after_epoch(epoch, postfix)
        bar.set_postfix(postfix)
        if selector.should_stop(patience):
            break
    return selector.finish(), history
