"""RecVAE: Mult-VAE with a composite prior, alternating updates and a KL weight per input size.

Shenbin, Alekseev, Tutubalina, Malykh and Nikolenko, "RecVAE: a New Variational
Autoencoder for Top-N Recommendations with Implicit Feedback", WSDM 2020
(arXiv:1912.11160). Changes to Mult-VAE (Liang et al., WWW 2018):

- encoder: five (``encoder_layers``) densely connected layers with swish activations and layer norm;
- composite prior: a mixture of a standard normal, a wide normal (log-variance 10) and
  the posterior of the encoder as it was after the previous epoch, so the encoder cannot
  drift far from its last state; the KL term is estimated with the sampled z;
- KL weight of a user = gamma x the number of items in the user's input;
- alternating updates: several encoder epochs (with input dropout) per decoder epoch
  (without dropout), see ``trainer.train_recvae``.

The decoder is one linear layer, so ``score(x) == mu(x) @ W.T + b`` exactly, which is
the maximum-inner-product form a FAISS index serves.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tryon.services.recommendation.multvae import item_vectors, prepare_input


@dataclass(frozen=True)
class RecVAEConfig:
    """Hyperparameters of RecVAE and its training, with the paper's values as defaults.

    Attributes:
        hidden_dim: width of each encoder layer (paper: 600).
        encoder_layers: number of densely connected encoder layers (paper: 5); fewer make
            training cheaper on small data.
        latent_dim: size of the latent vector z, and of the item embeddings (paper: 200).
        dropout: input dropout during encoder epochs (paper: 0.5).
        gamma: KL weight per input item; a user's KL weight is gamma x |input| (paper: 0.005).
        mixture_weights: prior weights of standard normal, previous posterior, wide normal
            (paper: 3/20, 3/4, 1/10).
        lr: Adam learning rate for both encoder and decoder (paper: 5e-4).
        batch_size: users per gradient update (paper: 500).
        epochs: outer epochs (paper: 50); the trainer keeps the best validation epoch.
        encoder_epochs: encoder passes per outer epoch (paper: 3).
        decoder_epochs: decoder passes per outer epoch (paper: 1).
    """

    hidden_dim: int = 600
    encoder_layers: int = 5
    latent_dim: int = 200
    dropout: float = 0.5
    gamma: float = 0.005
    mixture_weights: tuple[float, float, float] = (3 / 20, 3 / 4, 1 / 10)
    lr: float = 5e-4
    batch_size: int = 500
    epochs: int = 50
    encoder_epochs: int = 3
    decoder_epochs: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "mixture_weights", tuple(float(w) for w in self.mixture_weights))
        if len(self.mixture_weights) != 3 or min(self.mixture_weights) <= 0.0:
            raise ValueError("mixture_weights must be three positive numbers")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        sizes = (self.hidden_dim, self.encoder_layers, self.latent_dim, self.batch_size, self.epochs)
        if min(sizes) < 1 or self.lr <= 0.0:
            raise ValueError("hidden_dim, encoder_layers, latent_dim, batch_size, epochs must be >= 1, lr > 0")

    def to_json_dict(self) -> dict:
        """The config as plain JSON types."""
        values = asdict(self)
        values["mixture_weights"] = list(self.mixture_weights)
        return values

    @classmethod
    def from_json_dict(cls, values: dict) -> RecVAEConfig:
        """Rebuild a config from ``to_json_dict``'s output, ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def _swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


def _log_normal_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * (logvar + math.log(2 * math.pi) + (z - mu).pow(2) / logvar.exp())


class DenseEncoder(nn.Module):
    """Densely connected swish + layer-norm layers to a Gaussian posterior."""

    def __init__(self, n_items: int, hidden_dim: int, latent_dim: int, n_layers: int = 5) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [nn.Linear(n_items, hidden_dim)] + [nn.Linear(hidden_dim, hidden_dim) for _ in range(n_layers - 1)]
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_dim, eps=0.1) for _ in range(n_layers))
        self.mu = nn.Linear(hidden_dim, latent_dim)
        self.logvar = nn.Linear(hidden_dim, latent_dim)

    def forward(self, x: torch.Tensor, dropout: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of each row of ``x`` (negative weights clamped)."""
        h = F.dropout(prepare_input(x), p=dropout, training=self.training)
        return self.from_first_layer(self.layers[0](h))

    def from_first_layer(self, first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance from the first layer's output (before its activation)."""
        h = self.norms[0](_swish(first))
        skip = h
        for layer, norm in zip(self.layers[1:], self.norms[1:]):
            h = norm(_swish(layer(h) + skip))
            skip = skip + h
        return self.mu(h), self.logvar(h)


class RecVAE(nn.Module):
    """RecVAE over ``n_items`` items: ``loss`` for training, ``score`` for ranking."""

    TRAINING_ONLY = ("previous_encoder.",)
    """Weights ``multvae.save_model`` leaves out: the prior's copy of the encoder, which serving never reads."""

    def __init__(self, n_items: int, config: RecVAEConfig | None = None) -> None:
        super().__init__()
        if n_items < 1:
            raise ValueError(f"n_items must be at least 1, got {n_items}")
        self.n_items = int(n_items)
        self.config = config or RecVAEConfig()
        dims = (self.n_items, self.config.hidden_dim, self.config.latent_dim, self.config.encoder_layers)
        self.encoder = DenseEncoder(*dims)
        self.previous_encoder = DenseEncoder(*dims)
        self.previous_encoder.requires_grad_(False)
        self.decoder_out = nn.Linear(self.config.latent_dim, self.n_items)
        self.update_prior()

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load weights, then copy the loaded encoder into the prior (``TRAINING_ONLY``: saved models lack it)."""
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self.update_prior()
        return result

    def update_prior(self) -> None:
        """Copy the encoder into the prior's posterior component (done after encoder epochs)."""
        self.previous_encoder.load_state_dict(self.encoder.state_dict())

    def _log_prior(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        self.previous_encoder.eval()
        previous_mu, previous_logvar = self.previous_encoder(x, dropout=0.0)
        zeros = torch.zeros_like(z)
        components = torch.stack(
            [
                _log_normal_density(z, zeros, zeros),
                _log_normal_density(z, previous_mu, previous_logvar),
                _log_normal_density(z, zeros, zeros + 10.0),
            ],
            dim=-1,
        )
        log_weights = torch.log(torch.tensor(self.config.mixture_weights, dtype=z.dtype, device=z.device))
        return torch.logsumexp(components + log_weights, dim=-1)

    def loss(self, x: torch.Tensor, dropout: float | None = None) -> torch.Tensor:
        """Negative ELBO averaged over the batch, with the composite prior and gamma x |x| KL weight.

        ``dropout`` defaults to the config's; the trainer passes 0 on decoder epochs.
        """
        rate = self.config.dropout if dropout is None else dropout
        mu, logvar = self.encoder(x, dropout=rate)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if self.training else mu
        logits = self.decoder_out(z)
        counts = x.clamp(min=0.0)
        log_likelihood = (F.log_softmax(logits, dim=1) * counts).sum(dim=1)
        kl = (_log_normal_density(z, mu, logvar) - self._log_prior(x, z)).sum(dim=1)
        kl_weight = self.config.gamma * counts.sum(dim=1)
        return -(log_likelihood - kl_weight * kl).mean()

    @torch.no_grad()
    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Logits over all items for each history row of ``x`` [batch, n_items], in eval mode."""
        was_training = self.training
        self.eval()
        try:
            mu, _ = self.encoder(x.to(self.decoder_out.weight.device, torch.float32), dropout=0.0)
            logits = self.decoder_out(mu)
        finally:
            self.train(was_training)
        return logits

    @torch.no_grad()
    def item_embeddings(self) -> np.ndarray:
        """Rows [W_i, b_i] of the linear decoder, float32 [n_items, latent_dim + 1]."""
        return item_vectors(self.decoder_out)

    @torch.no_grad()
    def history_query(self, positions: torch.Tensor, weights: torch.Tensor) -> np.ndarray:
        """``user_queries`` of one history given sparsely, in eval mode: item ``positions`` and their
        ``weights``, positive and of unit L2 norm (as ``prepare_input`` leaves a row).

        Only the encoder's first layer touches the items, so only its columns at the history's
        positions are read.
        """
        first = self.encoder.layers[0]
        mu, _ = self.encoder.from_first_layer(first.weight[:, positions] @ weights + first.bias)
        return np.append(mu.numpy(), np.float32(1.0)).astype(np.float32)

    @torch.no_grad()
    def user_queries(self, x: np.ndarray) -> np.ndarray:
        """Queries [mu(x), 1] so that ``user_queries(x) @ item_embeddings().T == score(x)``."""
        was_training = self.training
        self.eval()
        try:
            rows = torch.as_tensor(np.asarray(x), dtype=torch.float32, device=self.decoder_out.weight.device)
            mu, _ = self.encoder(rows if rows.dim() == 2 else rows[None, :], dropout=0.0)
        finally:
            self.train(was_training)
        features = mu.cpu().numpy()
        ones = np.ones((features.shape[0], 1), dtype=np.float32)
        return np.ascontiguousarray(np.hstack([features, ones]), dtype=np.float32)
