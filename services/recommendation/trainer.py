"""Training loops for Mult-VAE (Liang et al., WWW 2018) and RecVAE (Shenbin et al., WSDM 2020).

Mult-VAE: Adam; beta rises linearly by 1 / ``total_anneal_steps`` per gradient update and
stops at ``beta_cap``; with ``weight_average_decay`` set, an exponential moving average of the
weights is what is validated and returned. RecVAE: alternating encoder epochs (with input
dropout, then the prior is refreshed) and decoder epochs (without dropout), each with its
own Adam. When validation users are given, NDCG@100 on them is measured after every epoch
and the returned model is the one from the best epoch, as in both papers.

Mult-VAE trains the same way on one process and on several under ``torchrun``
(``distributed.start_distributed``; DistributedDataParallel, gloo on CPUs, NCCL on GPUs): every
rank walks the same shuffled order and draws the same random numbers for each global batch of
``batch_size`` rows (``TrainingNoise``), takes its share of the rows and their draws, and weights
its summed loss by world size / batch rows, so DDP's averaged gradient is the whole batch's mean
gradient: N processes compute what one does, up to the order of floating-point sums.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy import sparse

from tryon.services.recommendation.distributed import World, training_device
from tryon.services.recommendation.multvae import MultVAE, MultVAEConfig, TrainingNoise
from tryon.services.recommendation.protocol import FoldInSet, evaluate_fold_in
from tryon.services.recommendation.recvae import RecVAE, RecVAEConfig
from tryon.shared.progress import progress_bar


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
        if self.best_epoch is None or not self.beta:
            return None
        return self.beta[self.best_epoch]

    def to_json_dict(self) -> dict:
        """The history as plain JSON types."""
        return asdict(self)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The requested device, or CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class _BestEpoch:
    """Measures validation NDCG@100 after each epoch and keeps the best weights."""

    def __init__(self, model: torch.nn.Module, validation: FoldInSet | None, history: TrainingHistory) -> None:
        self.model = model
        self.validation = validation if validation is not None and validation.n_users > 0 else None
        self.history = history
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_ndcg = -np.inf
        self.epochs_without_gain = 0

    def after_epoch(self, epoch: int, postfix: dict[str, str]) -> None:
        if self.validation is None:
            return

        def score(rows: np.ndarray) -> np.ndarray:
            return self.model.score(torch.from_numpy(rows)).cpu().numpy()

        ndcg = evaluate_fold_in(score, self.validation, (("ndcg", 100),))["ndcg@100"]
        self.history.validation_ndcg.append(ndcg)
        postfix["val_ndcg@100"] = f"{ndcg:.4f}"
        if ndcg > self.best_ndcg:
            self.best_ndcg = ndcg
            self.history.best_epoch = epoch
            self.best_state = copy.deepcopy(self.model.state_dict())
            self.epochs_without_gain = 0
        else:
            self.epochs_without_gain += 1

    def should_stop(self, patience: int | None) -> bool:
        return patience is not None and self.epochs_without_gain >= patience

    def finish(self):
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        else:
            self.history.best_epoch = len(self.history.loss) - 1
        return self.model.cpu().eval()


class _WeightAverage:
    """Exponential moving average of a model's parameters, corrected for its start at zero.

    After t updates with decay d the average is sum_k (1 - d) d^(t - k) w_k / (1 - d^t) over
    the weights w_k after each update k, so early averages are not pulled towards zero (the
    same correction as Adam's moment estimates). ``averaged`` is a copy of the model that
    ``refresh`` loads with the current average.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.parameters = list(model.parameters())
        self.sums = [torch.zeros_like(parameter) for parameter in self.parameters]
        self.updates = 0
        self.averaged = copy.deepcopy(model)

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        for total, parameter in zip(self.sums, self.parameters):
            total.mul_(self.decay).add_(parameter, alpha=1.0 - self.decay)

    @torch.no_grad()
    def refresh(self) -> None:
        # Called after an epoch, so after at least one update: the correction is positive.
        correction = 1.0 - self.decay**self.updates
        for target, total in zip(self.averaged.parameters(), self.sums):
            target.copy_(total / correction)


class _BatchLoss(torch.nn.Module):
    """The Mult-VAE's summed loss as a module's forward, so DistributedDataParallel can wrap it."""

    def __init__(self, model: MultVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, beta: float, noise: TrainingNoise) -> torch.Tensor:
        return self.model.loss(x, beta, noise=noise, reduction="sum")


def _check_matrix(matrix: sparse.spmatrix) -> sparse.csr_matrix:
    matrix = sparse.csr_matrix(matrix, dtype=np.float32)
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError("the training matrix needs at least one user and one item")
    return matrix


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
        progress: show a progress bar over epochs (log lines in a service, see tryon.shared.progress).
        validation: held-out users whose NDCG@100 chooses the returned epoch.
        device: where to train; CUDA when available unless given (this rank's GPU under torchrun).
        patience: stop after this many epochs without a better validation NDCG@100.

    Returns:
        The model (in eval mode, on CPU) from the best validation epoch, or the last epoch
        without validation, and the per-epoch history. With ``config.weight_average_decay``
        set, the moving average of the weights is validated after each epoch and returned.
        Under torchrun every rank returns the same model and history (see the module docstring).
    """
    config = config or MultVAEConfig()
    matrix = _check_matrix(matrix)
    n_users, n_items = matrix.shape
    world = World.current()
    target = pick_device(device) if device is not None or world.size == 1 else training_device(world)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = MultVAE(n_items, config).to(target)
    batch_loss: torch.nn.Module = _BatchLoss(model)
    if world.size > 1:
        batch_loss = torch.nn.parallel.DistributedDataParallel(
            batch_loss, device_ids=[target.index] if target.type == "cuda" else None
        )
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history = TrainingHistory()
    average = _WeightAverage(model, config.weight_average_decay) if config.weight_average_decay > 0 else None
    selector = _BestEpoch(average.averaged if average is not None else model, validation, history)
    update_count = 0

    bar = progress_bar(
        range(config.epochs), desc="recommendation Mult-VAE", unit="epoch", enabled=progress and world.is_main
    )
    for epoch in bar:
        started = time.perf_counter()
        model.train()
        order = rng.permutation(n_users)
        total_loss = torch.zeros((), dtype=torch.float64)
        beta = 0.0
        for start in range(0, n_users, config.batch_size):
            batch_rows = order[start : start + config.batch_size]
            noise = TrainingNoise.draw(len(batch_rows), n_items, config, target)
            share = world.share(len(batch_rows))
            x = torch.from_numpy(matrix[batch_rows[share]].toarray()).to(target)
            beta = min(config.beta_cap, update_count / config.total_anneal_steps)
            summed = batch_loss(x, beta, noise.rows(share))
            optimizer.zero_grad(set_to_none=True)
            (summed * (world.size / len(batch_rows))).backward()
            optimizer.step()
            if average is not None:
                average.update()
            update_count += 1
            total_loss += summed.detach().cpu().double()
        history.loss.append(float(world.sum(total_loss)) / n_users)
        history.beta.append(beta)
        history.epoch_seconds.append(time.perf_counter() - started)
        postfix = {"loss": f"{history.loss[-1]:.2f}", "beta": f"{beta:.3f}"}
        if average is not None:
            average.refresh()
        selector.after_epoch(epoch, postfix)
        bar.set_postfix(postfix)
        if selector.should_stop(patience):
            break
    return selector.finish(), history


def train_recvae(
    matrix: sparse.csr_matrix,
    config: RecVAEConfig | None = None,
    seed: int = 0,
    progress: bool = True,
    validation: FoldInSet | None = None,
    device: str | torch.device | None = None,
    patience: int | None = None,
) -> tuple[RecVAE, TrainingHistory]:
    """Train a RecVAE with alternating encoder and decoder epochs; arguments as ``train_multvae``.

    The history's loss is the mean loss of the encoder passes of each outer epoch.
    """
    config = config or RecVAEConfig()
    matrix = _check_matrix(matrix)
    n_users, n_items = matrix.shape
    target = pick_device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = RecVAE(n_items, config).to(target)
    encoder_optimizer = torch.optim.Adam(model.encoder.parameters(), lr=config.lr)
    decoder_optimizer = torch.optim.Adam(model.decoder_out.parameters(), lr=config.lr)
    history = TrainingHistory()
    selector = _BestEpoch(model, validation, history)

    def one_pass(optimizer: torch.optim.Optimizer, dropout: float) -> float:
        order = rng.permutation(n_users)
        total = 0.0
        for start in range(0, n_users, config.batch_size):
            batch_rows = order[start : start + config.batch_size]
            x = torch.from_numpy(matrix[batch_rows].toarray()).to(target)
            loss = model.loss(x, dropout=dropout)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch_rows)
        return total / n_users

    bar = progress_bar(range(config.epochs), desc="recommendation RecVAE", unit="epoch", enabled=progress)
    for epoch in bar:
        started = time.perf_counter()
        model.train()
        # Only the optimised half needs gradients; freezing the other saves its backward pass.
        model.decoder_out.requires_grad_(False)
        encoder_losses = []
        for _ in range(config.encoder_epochs):
            encoder_losses.append(one_pass(encoder_optimizer, config.dropout))
        model.decoder_out.requires_grad_(True)
        model.update_prior()
        model.encoder.requires_grad_(False)
        for _ in range(config.decoder_epochs):
            one_pass(decoder_optimizer, 0.0)
        model.encoder.requires_grad_(True)
        history.loss.append(float(np.mean(encoder_losses)))
        history.epoch_seconds.append(time.perf_counter() - started)
        postfix = {"loss": f"{history.loss[-1]:.2f}"}
        selector.after_epoch(epoch, postfix)
        bar.set_postfix(postfix)
        if selector.should_stop(patience):
            break
    return selector.finish(), history
