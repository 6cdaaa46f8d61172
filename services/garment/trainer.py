"""Training loops of the garment models (classifier, conditional VAE, conditional GAN) and their plots.

Each loop takes images as float32 tensors [N, 1, 28, 28] in [0, 1] and int64 labels [N], shows a
tqdm progress bar, and returns a ``TrainingHistory`` of logged losses, which ``plot_history``
draws as training curves.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from tryon.services.garment.categories import NUM_CATEGORIES  # noqa: E402
from tryon.services.garment.classifier import ClassifierConfig, GarmentClassifier  # noqa: E402
from tryon.services.garment.gan import (  # noqa: E402
    ConditionalGenerator,
    GANConfig,
    ProjectionDiscriminator,
    discriminator_loss,
    generator_loss,
)
from tryon.services.garment.vae import ConditionalVAE, VAEConfig  # noqa: E402
from tryon.shared.progress import progress_bar  # noqa: E402

logger = logging.getLogger(__name__)


@dataclass
class TrainingHistory:
    """Losses logged during training: per-window means (``steps``/``metrics``) and per-epoch means."""

    model: str
    steps: list[int] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    epoch_metrics: dict[str, list[float]] = field(default_factory=dict)
    epochs: int = 0
    images_seen: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """Return a JSON-ready dictionary."""
        return {
            "model": self.model,
            "steps": self.steps,
            "metrics": self.metrics,
            "epoch_metrics": self.epoch_metrics,
            "epochs": self.epochs,
            "images_seen": self.images_seen,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: dict) -> TrainingHistory:
        """Rebuild a history written by ``to_dict``."""
        return cls(**data)


class _MetricWindow:
    """Accumulates per-step metrics and flushes their means into a history every ``every`` steps and per epoch."""

    def __init__(self, history: TrainingHistory, every: int) -> None:
        self.history = history
        self.every = every
        self.step = 0
        self._window: dict[str, list[float]] = {}
        self._epoch: dict[str, list[float]] = {}

    def add(self, values: dict[str, torch.Tensor]) -> None:
        self.step += 1
        for name, value in values.items():
            number = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
            self._window.setdefault(name, []).append(number)
            self._epoch.setdefault(name, []).append(number)
        if self.step % self.every == 0:
            self._flush_window()

    def _flush_window(self) -> None:
        if not self._window:
            return
        self.history.steps.append(self.step)
        for name, values in self._window.items():
            self.history.metrics.setdefault(name, []).append(float(np.mean(values)))
        self._window = {}

    def end_epoch(self, started: float) -> dict[str, float]:
        means = {name: float(np.mean(values)) for name, values in self._epoch.items()}
        for name, value in means.items():
            self.history.epoch_metrics.setdefault(name, []).append(value)
        self._epoch = {}
        self.history.epochs += 1
        logger.info(
            "%s epoch %d done after %.0f s: %s",
            self.history.model,
            self.history.epochs,
            time.perf_counter() - started,
            ", ".join(f"{name} {value:.4g}" for name, value in means.items()),
        )
        return means

    def finish(self) -> None:
        self._flush_window()


def one_hot(labels: torch.Tensor) -> torch.Tensor:
    """Return float one-hot label vectors [n, 10]."""
    return F.one_hot(labels, NUM_CATEGORIES).float()


def _batches(count: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Yield shuffled index batches covering ``count`` items once (the last batch may be smaller)."""
    order = torch.randperm(count, generator=generator)
    for start in range(0, count, batch_size):
        yield order[start : start + batch_size]


def _check_data(images: torch.Tensor, labels: torch.Tensor) -> None:
    if images.ndim != 4 or images.shape[1:] != (1, 28, 28):
        raise ValueError(f"training images must have shape [N, 1, 28, 28]; got {tuple(images.shape)}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"training labels must have shape [{images.shape[0]}]; got {tuple(labels.shape)}")
    if images.shape[0] == 0:
        raise ValueError("training needs at least one image")


def _log_every(steps_per_epoch: int) -> int:
    return max(1, steps_per_epoch // 10)


def train_classifier(
    model: GarmentClassifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int | None = None,
    seed: int = 0,
    progress: bool = True,
    device: str = "cpu",
) -> TrainingHistory:
    """Train the classifier with AdamW and a cosine learning-rate schedule; return its history."""
    _check_data(images, labels)
    config: ClassifierConfig = model.config
    epochs = config.epochs if epochs is None else epochs
    shuffle = torch.Generator().manual_seed(seed)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    steps_per_epoch = -(-images.shape[0] // config.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs * steps_per_epoch))
    history = TrainingHistory(model="classifier")
    window = _MetricWindow(history, _log_every(steps_per_epoch))
    started = time.perf_counter()
    for epoch in range(epochs):
        bar = progress_bar(
            _batches(images.shape[0], config.batch_size, shuffle),
            total=steps_per_epoch,
            desc=f"garment classifier epoch {epoch + 1}/{epochs}",
            unit="batch",
            enabled=progress,
            leave=False,
            stage=(epoch, epochs),
        )
        for index in bar:
            batch, batch_labels = images[index].to(device), labels[index].to(device)
            losses = model.loss(batch, batch_labels)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            optimizer.step()
            scheduler.step()
            window.add(losses)
            history.images_seen += batch.shape[0]
            bar.set_postfix(loss=f"{losses['loss'].item():.3f}", acc=f"{losses['accuracy'].item():.3f}")
        window.end_epoch(started)
    window.finish()
    history.seconds = time.perf_counter() - started
    model.eval()
    return history


def train_vae(
    model: ConditionalVAE,
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int | None = None,
    seed: int = 0,
    progress: bool = True,
    device: str = "cpu",
) -> TrainingHistory:
    """Train the conditional VAE on the negative ELBO with Adam; return its history.

    With ``beta_warmup_epochs`` the KL weight grows linearly from 0 to ``beta`` over that many epochs.
    """
    _check_data(images, labels)
    config: VAEConfig = model.config
    epochs = config.epochs if epochs is None else epochs
    shuffle = torch.Generator().manual_seed(seed)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    steps_per_epoch = -(-images.shape[0] // config.batch_size)
    history = TrainingHistory(model="vae")
    window = _MetricWindow(history, _log_every(steps_per_epoch))
    warmup_steps = config.beta_warmup_epochs * steps_per_epoch
    started = time.perf_counter()
    for epoch in range(epochs):
        bar = progress_bar(
            _batches(images.shape[0], config.batch_size, shuffle),
            total=steps_per_epoch,
            desc=f"garment vae epoch {epoch + 1}/{epochs}",
            unit="batch",
            enabled=progress,
            leave=False,
            stage=(epoch, epochs),
        )
        for index in bar:
            batch = images[index].to(device)
            kl_weight = config.beta * min(1.0, window.step / warmup_steps) if warmup_steps else config.beta
            losses = model.loss(batch, one_hot(labels[index]).to(device), kl_weight)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            optimizer.step()
            window.add(losses)
            history.images_seen += batch.shape[0]
            bar.set_postfix(loss=f"{losses['loss'].item():.1f}", kl=f"{losses['kl'].item():.1f}")
        window.end_epoch(started)
    window.finish()
    history.seconds = time.perf_counter() - started
    model.eval()
    return history


@torch.no_grad()
def _update_average(average: nn.Module, current: nn.Module, decay: float) -> None:
    for averaged, live in zip(average.parameters(), current.parameters(), strict=True):
        averaged.lerp_(live, 1.0 - decay)


@torch.no_grad()
def recalibrate_batch_norm(generator: ConditionalGenerator, batches: int = 40, batch_size: int = 250, seed: int = 0) -> None:
    """Set the generator's batch-norm statistics to their exact average over random batches.

    Samples are drawn in eval mode (one image never depends on its batch), so the running
    statistics must describe what the layers see in training; the weight average makes the
    statistics gathered during training stale, hence this pass.
    """
    generator_device = next(generator.parameters()).device
    noise_source = torch.Generator(device="cpu").manual_seed(seed)
    norms = [module for module in generator.modules() if isinstance(module, nn.BatchNorm2d)]
    saved_momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the calibration batches
    generator.train()
    for _ in range(batches):
        labels = torch.randint(0, NUM_CATEGORIES, (batch_size,), generator=noise_source)
        noise = torch.randn(batch_size, generator.noise_dim, generator=noise_source)
        generator(noise.to(generator_device), one_hot(labels).to(generator_device))
    for norm, momentum in zip(norms, saved_momenta, strict=True):
        norm.momentum = momentum
    generator.eval()


def train_gan(
    generator: ConditionalGenerator,
    discriminator: ProjectionDiscriminator,
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int | None = None,
    seed: int = 0,
    progress: bool = True,
    device: str = "cpu",
) -> tuple[ConditionalGenerator, TrainingHistory]:
    """Train the conditional GAN (one discriminator step per generator step); return the averaged generator.

    The returned generator is the exponential moving average of the trained one, with its
    batch-norm statistics recalibrated, in eval mode.
    """
    _check_data(images, labels)
    config: GANConfig = generator.config
    epochs = config.epochs if epochs is None else epochs
    shuffle = torch.Generator().manual_seed(seed)
    noise_source = torch.Generator(device=device).manual_seed(seed + 1)
    generator.to(device).train()
    discriminator.to(device).train()
    average = copy.deepcopy(generator)
    average.requires_grad_(False)
    betas = (config.adam_beta1, config.adam_beta2)
    generator_optimizer = torch.optim.Adam(generator.parameters(), lr=config.generator_learning_rate, betas=betas)
    discriminator_optimizer = torch.optim.Adam(
        discriminator.parameters(), lr=config.discriminator_learning_rate, betas=betas
    )
    steps_per_epoch = -(-images.shape[0] // config.batch_size)
    history = TrainingHistory(model="gan")
    window = _MetricWindow(history, _log_every(steps_per_epoch))
    started = time.perf_counter()
    updates = 0
    for epoch in range(epochs):
        bar = progress_bar(
            _batches(images.shape[0], config.batch_size, shuffle),
            total=steps_per_epoch,
            desc=f"garment gan epoch {epoch + 1}/{epochs}",
            unit="batch",
            enabled=progress,
            leave=False,
            stage=(epoch, epochs),
        )
        for index in bar:
            real = images[index].to(device)
            batch_labels = labels[index].to(device)
            label_vectors = one_hot(batch_labels)
            noise = torch.randn(real.shape[0], config.noise_dim, generator=noise_source, device=device)
            fake = generator(noise, label_vectors)

            d_losses = discriminator_loss(discriminator, real, fake.detach(), batch_labels, config.auxiliary_weight)
            discriminator_optimizer.zero_grad(set_to_none=True)
            d_losses["loss"].backward()
            discriminator_optimizer.step()

            discriminator.requires_grad_(False)
            g_losses = generator_loss(discriminator, fake, batch_labels, config.auxiliary_weight)
            generator_optimizer.zero_grad(set_to_none=True)
            g_losses["loss"].backward()
            generator_optimizer.step()
            discriminator.requires_grad_(True)
            updates += 1
            # Warm-up: the decay grows with the number of updates, so a short training is not
            # averaged with the untrained initial weights (decay 0.999 remembers ~1000 steps).
            _update_average(average, generator, min(config.ema_decay, (updates - 1) / (updates + 9)))

            window.add(
                {
                    "discriminator_loss": d_losses["loss"],
                    "generator_loss": g_losses["loss"],
                    "hinge": d_losses["hinge"],
                    "real_score": d_losses["real_score"],
                    "fake_score": d_losses["fake_score"],
                    "real_class_loss": d_losses["real_class_loss"],
                    "fake_class_loss": g_losses["fake_class_loss"],
                }
            )
            history.images_seen += real.shape[0]
            bar.set_postfix(d=f"{d_losses['loss'].item():.3f}", g=f"{g_losses['loss'].item():.3f}")
        window.end_epoch(started)
    window.finish()
    recalibrate_batch_norm(average, seed=seed)
    history.seconds = time.perf_counter() - started
    generator.eval()
    discriminator.eval()
    return average, history


def plot_history(history: TrainingHistory, path: Path, names: list[str] | None = None) -> Path:
    """Draw the logged metrics of a history against the step, one panel per metric, into a PNG."""
    names = names or list(history.metrics)
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    for axis, name in zip(axes.flat, names, strict=False):
        axis.plot(history.steps, history.metrics[name], linewidth=1.2)
        axis.set_title(name.replace("_", " "))
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(names) :]:
        axis.axis("off")
    figure.suptitle(f"{history.model}: {history.epochs} epochs, {history.seconds:.0f} s")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_image_grid(images: np.ndarray, path: Path, row_titles: list[str] | None = None, title: str = "") -> Path:
    """Draw images [rows, columns, 28, 28] in [0, 1] as a grid PNG, one optional title per row."""
    rows, columns = images.shape[:2]
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 0.75 + 1.4, rows * 0.75 + 0.4), squeeze=False)
    for row in range(rows):
        for column in range(columns):
            axis = axes[row, column]
            axis.imshow(images[row, column], cmap="gray", vmin=0.0, vmax=1.0)
            axis.set_xticks([])
            axis.set_yticks([])
            for spine in axis.spines.values():
                spine.set_visible(False)
        if row_titles:
            axes[row, 0].set_ylabel(row_titles[row], rotation=0, ha="right", va="center", fontsize=8)
    if title:
        figure.suptitle(title)
    figure.subplots_adjust(left=0.14, right=0.99, top=0.95 if title else 0.99, bottom=0.01, wspace=0.05, hspace=0.05)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
