"""Training loops for the body models: the masked conditional VAE and the conditional WGAN-GP.

The loops are kept apart from the models so the models stay small (loss, predict/sample) and the
loops own optimisers, schedules, shuffling, seeding and progress bars.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from tryon.services.body.cvae import MaskedCVAE, drop_sex, random_masks
from tryon.services.body.gan import ConditionalWGAN
from tryon.shared.progress import progress_bar

# Learning rates decay along a cosine to this share of their start value by the last epoch.
FINAL_LEARNING_RATE_SHARE = 0.05


@dataclass(frozen=True)
class BodyTensors:
    """Standardized measurement vectors [n, features] with their sex one-hot [n, sexes]."""

    x: torch.Tensor
    sex: torch.Tensor


@dataclass
class History:
    """Per-epoch training curves, as plain floats for JSON and plots."""

    curves: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        """Append one epoch's value of a curve."""
        self.curves.setdefault(name, []).append(float(value))


def _cosine_scheduler(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine decay from the start learning rate to FINAL_LEARNING_RATE_SHARE of it."""
    base = optimizer.param_groups[0]["lr"]
    return torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(total_steps, 1), eta_min=base * FINAL_LEARNING_RATE_SHARE
    )


def train_cvae(
    model: MaskedCVAE,
    train: BodyTensors,
    validation: BodyTensors | None,
    required: list[int],
    epochs: int,
    seed: int,
    progress: bool = True,
) -> History:
    """Fit the conditional VAE with random masks; returns train (and validation) loss per epoch.

    The validation loss uses one fixed set of masks drawn from the training distribution, so its
    curve is comparable across epochs.
    """
    config = model.config
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model.fit_gaussian(train.x, train.sex)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, -(-train.x.shape[0] // config.batch_size))
    scheduler = _cosine_scheduler(optimizer, epochs * steps_per_epoch)
    if validation is not None:
        validation_generator = torch.Generator().manual_seed(seed + 1)
        validation_masks = random_masks(validation.x.shape[0], config.features, required, config, validation_generator)
        validation_sex = drop_sex(validation.sex, config.sex_dropout, validation_generator)
    history = History()
    bar = progress_bar(range(epochs), desc="body cvae", unit="epoch", enabled=progress, leave=False)
    for _ in bar:
        model.train()
        order = torch.randperm(train.x.shape[0], generator=generator)
        total, count = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            rows = order[start : start + config.batch_size]
            x = train.x[rows]
            mask = random_masks(len(rows), config.features, required, config, generator)
            sex = drop_sex(train.sex[rows], config.sex_dropout, generator)
            loss = model.loss(x, mask, sex)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(rows)
            count += len(rows)
        history.add("cvae_train_loss", total / count)
        if validation is not None:
            model.eval()
            with torch.no_grad():
                history.add("cvae_validation_loss", model.loss(validation.x, validation_masks, validation_sex).item())
        bar.set_postfix(loss=f"{total / count:.3f}")
    model.eval()
    return history


def train_gan(
    model: ConditionalWGAN, train: BodyTensors, epochs: int, seed: int, progress: bool = True
) -> History:
    """Fit the conditional WGAN-GP; returns the critic's Wasserstein estimate and losses per epoch.

    One epoch is one pass of the training vectors through the critic; after the first
    ``critic_warmup_epochs`` the generator takes one step after every ``critic_steps`` critic batches.
    The generator keeps the moving average of its weights (``ema_decay``), then is re-centred on the
    training means (``recentre``).
    """
    config = model.config
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model.fit_gaussian(train.x, train.sex)
    critic_optimizer = torch.optim.Adam(model.critic.parameters(), lr=config.critic_learning_rate, betas=(0.5, 0.9))
    generator_optimizer = torch.optim.Adam(
        model.generator.parameters(), lr=config.generator_learning_rate, betas=(0.5, 0.9)
    )
    history = History()
    averaged = None
    if config.ema_decay > 0:
        averaged = torch.optim.swa_utils.AveragedModel(
            model.generator, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(config.ema_decay)
        )
    critic_batches = 0
    bar = progress_bar(range(epochs), desc="body gan", unit="epoch", enabled=progress, leave=False)
    for epoch in bar:
        model.train()
        warming_up = epoch < config.critic_warmup_epochs
        order = torch.randperm(train.x.shape[0], generator=generator)
        wasserstein_sum, critic_sum, generator_sum, batches, generator_steps = 0.0, 0.0, 0.0, 0, 0
        for start in range(0, len(order), config.batch_size):
            rows = order[start : start + config.batch_size]
            noise = torch.randn(len(rows), config.noise_dim, generator=generator)
            critic_loss, wasserstein = model.critic_loss(train.x[rows], train.sex[rows], noise)
            critic_optimizer.zero_grad(set_to_none=True)
            critic_loss.backward()
            critic_optimizer.step()
            wasserstein_sum += wasserstein.item()
            critic_sum += critic_loss.item()
            batches += 1
            critic_batches += 1
            if not warming_up and critic_batches % config.critic_steps == 0:
                noise = torch.randn(len(rows), config.noise_dim, generator=generator)
                generator_loss = model.generator_loss(train.sex[rows], noise)
                generator_optimizer.zero_grad(set_to_none=True)
                generator_loss.backward()
                generator_optimizer.step()
                if averaged is not None:
                    averaged.update_parameters(model.generator)
                generator_sum += generator_loss.item()
                generator_steps += 1
        history.add("gan_wasserstein", wasserstein_sum / batches)
        history.add("gan_critic_loss", critic_sum / batches)
        if generator_steps:
            history.add("gan_generator_loss", generator_sum / generator_steps)
        bar.set_postfix(wasserstein=f"{wasserstein_sum / batches:.3f}")
    if averaged is not None:
        model.generator.load_state_dict(averaged.module.state_dict())
    if config.recentre:
        model.recentre(train.x, train.sex, torch.Generator().manual_seed(seed + 5))
    model.eval()
    return history
