"""Training loop for Mult-VAE (Liang et al., WWW 2018): Adam, KL annealing, best-epoch selection.

Beta rises linearly by 1 / ``total_anneal_steps`` per gradient update and stops at
``beta_cap``. When validation users are given, NDCG@100 on them is measured after every
epoch and the returned model is the one from the best epoch, as in the paper.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy import sparse
from tqdm.auto import tqdm

from tryon.services.recommendation.multvae import MultVAE, MultVAEConfig
from tryon.services.recommendation.protocol import FoldInSet, evaluate_fold_in


@dataclass
class TrainingHistory:
    """Per-epoch figures of one training run (for curves and for choosing the epoch)."""

    loss: list[float] = field(default_factory=list)
    beta: list[float] = field(default_factory=list)
    validation_ndcg: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None

    @property
    def best_validation_ndcg(self) -> float | None:
        """Validation NDCG@100 of the chosen epoch, if validation users were given."""
        if self.best_epoch is None or not self.validation_ndcg:
            return None
        return self.validation_ndcg[self.best_epoch]

    @property
    def beta_at_best_epoch(self) -> float | None:
        """The KL weight reached by the end of the chosen epoch (the paper's way to pick a cap)."""
        return None if self.best_epoch is None else self.beta[self.best_epoch]

    def to_json_dict(self) -> dict:
        """The history as plain JSON types."""
        return asdict(self)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The requested device, or CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train_multvae(
    matrix: sparse.csr_matrix,
    config: MultVAEConfig | None = None,
    seed: int = 0,
    progress: bool = True,
    validation: FoldInSet | None = None,
    device: str | torch.device | None = None,
    patience: int | None = None,
) -> tuple[MultVAE, TrainingHistory]:
    """Train a Mult-VAE on the binary (or weighted) user x item ``matrix``.

    Args:
        matrix: training users' rows, [users, items]; negative weights are clamped to 0.
        config: hyperparameters; defaults to the paper's.
        seed: seeds the initialisation, dropout, sampling and batch order.
        progress: show a tqdm bar over epochs.
        validation: held-out users whose NDCG@100 chooses the returned epoch.
        device: where to train; CUDA when available unless given.
        patience: stop after this many epochs without a better validation NDCG@100.

    Returns:
        The model (in eval mode, on CPU) from the best validation epoch, or the last epoch
        without validation, and the per-epoch history.
    """
    config = config or MultVAEConfig()
    matrix = sparse.csr_matrix(matrix, dtype=np.float32)
    n_users, n_items = matrix.shape
    if n_users == 0 or n_items == 0:
        raise ValueError("the training matrix needs at least one user and one item")
    target = pick_device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = MultVAE(n_items, config).to(target)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history = TrainingHistory()
    best_state: dict[str, torch.Tensor] | None = None
    best_ndcg = -np.inf
    update_count = 0
    epochs_without_gain = 0

    def validation_score(rows: np.ndarray) -> np.ndarray:
        return model.score(torch.from_numpy(rows)).cpu().numpy()

    bar = tqdm(range(config.epochs), desc="Mult-VAE", unit="epoch", disable=not progress)
    for epoch in bar:
        started = time.perf_counter()
        model.train()
        order = rng.permutation(n_users)
        total_loss = 0.0
        beta = 0.0
        for start in range(0, n_users, config.batch_size):
            batch_rows = order[start : start + config.batch_size]
            x = torch.from_numpy(matrix[batch_rows].toarray()).to(target)
            beta = min(config.beta_cap, update_count / config.total_anneal_steps)
            loss = model.loss(x, beta)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            update_count += 1
            total_loss += float(loss.detach()) * len(batch_rows)
        history.loss.append(total_loss / n_users)
        history.beta.append(beta)
        history.epoch_seconds.append(time.perf_counter() - started)
        postfix = {"loss": f"{history.loss[-1]:.2f}", "beta": f"{beta:.3f}"}
        if validation is not None and validation.n_users > 0:
            ndcg = evaluate_fold_in(validation_score, validation, (("ndcg", 100),))["ndcg@100"]
            history.validation_ndcg.append(ndcg)
            postfix["val_ndcg@100"] = f"{ndcg:.4f}"
            if ndcg > best_ndcg:
                best_ndcg = ndcg
                history.best_epoch = epoch
                best_state = copy.deepcopy(model.state_dict())
                epochs_without_gain = 0
            else:
                epochs_without_gain += 1
        bar.set_postfix(postfix)
        if patience is not None and epochs_without_gain >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        history.best_epoch = len(history.loss) - 1
    model = model.cpu().eval()
    return model, history
