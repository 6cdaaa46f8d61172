"""Mult-VAE: a variational autoencoder for collaborative filtering.

Liang, Krishnan, Hoffman and Jebara, "Variational Autoencoders for Collaborative
Filtering", WWW 2018 (arXiv:1802.05814). A user's interaction row is L2-normalised,
dropped out at training time, encoded by tanh layers to a Gaussian posterior over a
latent vector, and decoded by tanh layers and a final linear layer to logits over all
items; the likelihood is multinomial over items and the KL term is weighted by an
annealed beta capped below one.

Optional additions from RecVAE (Shenbin, Alekseev, Tutubalina, Malykh and Nikolenko,
"RecVAE: a New Variational Autoencoder for Top-N Recommendations with Implicit
Feedback", WSDM 2020) are off by default so that the plain model stays the paper's:
``beta_per_input`` scales the KL weight of each user by the size of that user's input.

The decoder's last layer is linear, so ``score(x) == h(mu(x)) @ W.T + b`` exactly; this
is the maximum-inner-product form that a FAISS index serves (``user_queries`` and
``item_embeddings``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tryon.shared.files import atomic_write

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.pt"


def item_vectors(decoder_out: nn.Linear) -> np.ndarray:
    """Rows [W_i, b_i] of a model's last layer, float32 [n_items, d + 1]: with a query [h, 1] their
    inner products are the model's scores, so FAISS can search them."""
    weight = decoder_out.weight.detach().cpu().numpy()
    bias = decoder_out.bias.detach().cpu().numpy()[:, None]
    return np.ascontiguousarray(np.hstack([weight, bias]), dtype=np.float32)


@dataclass(frozen=True)
class MultVAEConfig:
    """Hyperparameters of Mult-VAE and its training, with the paper's values as defaults.

    Attributes:
        hidden_dims: widths of the tanh layers between the items and the latent space, from
            the item side inwards; the decoder mirrors them (paper: [600]).
        latent_dim: size of the latent vector z (paper: 200).
        dropout: probability of dropping each input item at training time (paper: 0.5).
        beta_cap: the largest KL weight reached by annealing (paper: 0.2 on ML-20M).
        total_anneal_steps: gradient updates over which beta rises linearly from 0 to 1
            before being capped at ``beta_cap`` (paper: 200,000).
        lr: Adam learning rate (paper: 1e-3).
        weight_decay: L2 penalty on the weights applied by Adam (paper: 0 for Mult-VAE).
        batch_size: users per gradient update (paper: 500).
        epochs: passes over the training users (paper: 200); the trainer keeps the epoch
            with the best validation NDCG@100 when validation users are given.
        beta_per_input: RecVAE's rule, off in the paper: the KL weight of a user is
            multiplied by the number of items in the user's input.
        weight_average_decay: when in (0, 1), the trainer validates and returns an
            exponential moving average of the weights, updated after every gradient update
            with this decay, instead of the current weights; 0 (the paper) keeps them.
    """

    hidden_dims: tuple[int, ...] = (600,)
    latent_dim: int = 200
    dropout: float = 0.5
    beta_cap: float = 0.2
    total_anneal_steps: int = 200_000
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 500
    epochs: int = 200
    beta_per_input: bool = False
    weight_average_decay: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_dims", tuple(int(d) for d in self.hidden_dims))
        if self.latent_dim < 1 or any(d < 1 for d in self.hidden_dims):
            raise ValueError("latent_dim and every hidden_dims entry must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.beta_cap < 0.0 or self.total_anneal_steps < 1:
            raise ValueError("beta_cap must be >= 0 and total_anneal_steps >= 1")
        if self.batch_size < 1 or self.epochs < 1 or self.lr <= 0.0:
            raise ValueError("batch_size and epochs must be >= 1 and lr > 0")
        if not 0.0 <= self.weight_average_decay < 1.0:
            raise ValueError(f"weight_average_decay must be in [0, 1), got {self.weight_average_decay}")

    def to_json_dict(self) -> dict:
        """The config as plain JSON types."""
        values = asdict(self)
        values["hidden_dims"] = list(self.hidden_dims)
        return values

    @classmethod
    def from_json_dict(cls, values: dict) -> MultVAEConfig:
        """Rebuild a config from ``to_json_dict``'s output, ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def _tanh_stack(dims: list[int]) -> nn.ModuleList:
    return nn.ModuleList(nn.Linear(d_in, d_out) for d_in, d_out in zip(dims[:-1], dims[1:]))


def _xavier_init(layers: nn.ModuleList) -> None:
    # The paper's reference code uses Glorot weights and small normal biases.
    for layer in layers:
        nn.init.xavier_uniform_(layer.weight)
        nn.init.normal_(layer.bias, std=0.001)


def prepare_input(x: torch.Tensor) -> torch.Tensor:
    """Clamp negative weights at zero and L2-normalise each row.

    Negative weights (e.g. a dislike) cannot be multinomial counts, so they contribute
    nothing to the input; an all-zero row stays all zero.
    """
    positive = x.clamp(min=0.0)
    return F.normalize(positive, p=2.0, dim=1)


class ServableModel(Protocol):
    """What the recommender serves from; every model ``load_model`` returns (Mult-VAE, RecVAE, CFGAN) offers it.

    ``user_queries(x) @ item_embeddings().T == score(x)``, and ``history_query`` is the query of
    one history given as item positions and unit-norm positive weights.
    """

    n_items: int

    def eval(self) -> nn.Module: ...

    def item_embeddings(self) -> np.ndarray: ...

    def user_queries(self, x: np.ndarray) -> np.ndarray: ...

    def history_query(self, positions: torch.Tensor, weights: torch.Tensor) -> np.ndarray: ...


class _Posterior(NamedTuple):
    mu: torch.Tensor
    logvar: torch.Tensor


class TrainingNoise(NamedTuple):
    """The random draws of one training step, per row: the input dropout's scaled keep mask and z's noise.

    Drawn for a whole batch from the default generator, in the order and form ``nn.Dropout`` and
    ``randn_like`` draw them, so a model given them computes what it computes without them; a
    rank of a distributed training slices the global batch's draws and so computes its rows
    exactly as one process would.
    """

    keep: torch.Tensor | None
    """[rows, items]: 0 or 1 / (1 - dropout); None when dropout is 0."""
    eps: torch.Tensor
    """[rows, latent]: standard normal noise of the reparameterised sample."""

    @classmethod
    def draw(cls, rows: int, n_items: int, config: MultVAEConfig, device: torch.device | str = "cpu") -> TrainingNoise:
        """Draws for ``rows`` rows."""
        keep = None
        if config.dropout > 0 and rows > 0:
            keep = torch.empty(rows, n_items, device=device).bernoulli_(1.0 - config.dropout)
            keep.div_(1.0 - config.dropout)
        return cls(keep=keep, eps=torch.randn(rows, config.latent_dim, device=device))

    def rows(self, share: slice) -> TrainingNoise:
        """The draws of the rows in ``share``."""
        return TrainingNoise(keep=None if self.keep is None else self.keep[share], eps=self.eps[share])


class MultVAE(nn.Module):
    """Mult-VAE over ``n_items`` items: ``loss`` for training, ``score`` for ranking."""

    def __init__(self, n_items: int, config: MultVAEConfig | None = None) -> None:
        super().__init__()
        if n_items < 1:
            raise ValueError(f"n_items must be at least 1, got {n_items}")
        self.n_items = int(n_items)
        self.config = config or MultVAEConfig()
        encoder_dims = [self.n_items, *self.config.hidden_dims]
        # The last encoder layer is linear and emits mean and log-variance together.
        self.encoder_hidden = _tanh_stack(encoder_dims)
        self.encoder_out = nn.Linear(encoder_dims[-1], 2 * self.config.latent_dim)
        decoder_dims = [self.config.latent_dim, *reversed(self.config.hidden_dims)]
        self.decoder_hidden = _tanh_stack(decoder_dims)
        self.decoder_out = nn.Linear(decoder_dims[-1], self.n_items)
        self.input_dropout = nn.Dropout(self.config.dropout)
        _xavier_init(self.encoder_hidden)
        _xavier_init(self.decoder_hidden)
        _xavier_init(nn.ModuleList([self.encoder_out, self.decoder_out]))

    def encode(self, x: torch.Tensor, noise: TrainingNoise | None = None) -> _Posterior:
        """The Gaussian posterior q(z | x) of each row of ``x`` (dropout in training mode, by ``noise`` when given)."""
        if noise is None or not self.training:
            h = self.input_dropout(prepare_input(x))
        elif noise.keep is None:
            h = prepare_input(x)
        else:
            h = prepare_input(x) * noise.keep
        for layer in self.encoder_hidden:
            h = torch.tanh(layer(h))
        mu, logvar = self.encoder_out(h).chunk(2, dim=1)
        return _Posterior(mu=mu, logvar=logvar)

    def decoder_features(self, z: torch.Tensor) -> torch.Tensor:
        """h(z): the decoder's output before its last (linear) layer."""
        h = z
        for layer in self.decoder_hidden:
            h = torch.tanh(layer(h))
        return h

    def forward(self, x: torch.Tensor, noise: TrainingNoise | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits, posterior mean and log-variance; z is sampled only in training mode (with ``noise`` when given)."""
        posterior = self.encode(x, noise)
        if self.training:
            std = torch.exp(0.5 * posterior.logvar)
            z = posterior.mu + std * (torch.randn_like(std) if noise is None else noise.eps)
        else:
            z = posterior.mu
        logits = self.decoder_out(self.decoder_features(z))
        return logits, posterior.mu, posterior.logvar

    def loss_terms(self, x: torch.Tensor, noise: TrainingNoise | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-user multinomial negative log-likelihood and KL divergence, each [batch]."""
        logits, mu, logvar = self(x, noise)
        counts = x.clamp(min=0.0)
        neg_log_likelihood = -(F.log_softmax(logits, dim=1) * counts).sum(dim=1)
        kl = 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum(dim=1)
        return neg_log_likelihood, kl

    def loss(self, x: torch.Tensor, beta: float, noise: TrainingNoise | None = None, reduction: str = "mean") -> torch.Tensor:
        """The negative annealed ELBO averaged (or, with ``reduction="sum"``, summed) over the batch."""
        neg_log_likelihood, kl = self.loss_terms(x, noise)
        kl_weight = torch.full_like(kl, float(beta))
        if self.config.beta_per_input:
            kl_weight = kl_weight * (x > 0).sum(dim=1).to(kl.dtype)
        per_user = neg_log_likelihood + kl_weight * kl
        return per_user.sum() if reduction == "sum" else per_user.mean()

    @torch.no_grad()
    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Logits over all items for each history row of ``x`` [batch, n_items], in eval mode."""
        was_training = self.training
        self.eval()
        try:
            logits, _, _ = self(x.to(self.decoder_out.weight.device, torch.float32))
        finally:
            self.train(was_training)
        return logits

    @torch.no_grad()
    def item_embeddings(self) -> np.ndarray:
        """Rows [W_i, b_i] of the last decoder layer, float32 [n_items, d + 1]."""
        return item_vectors(self.decoder_out)

    @torch.no_grad()
    def history_query(self, positions: torch.Tensor, weights: torch.Tensor) -> np.ndarray:
        """``user_queries`` of one history given sparsely, in eval mode: item ``positions`` and their
        ``weights``, positive and of unit L2 norm (as ``prepare_input`` leaves a row).

        Only the first encoder layer touches the items, so reading its columns at the history's
        positions gives the dense result at a cost that grows with the history, not the catalogue.
        """
        hidden_layers = list(self.encoder_hidden)
        first = hidden_layers[0] if hidden_layers else self.encoder_out
        h = first.weight[:, positions] @ weights + first.bias
        if hidden_layers:
            h = torch.tanh(h)
            for layer in hidden_layers[1:]:
                h = torch.tanh(layer(h))
            h = self.encoder_out(h)
        mu = h[: self.config.latent_dim]
        features = self.decoder_features(mu[None, :])[0].numpy()
        return np.append(features, np.float32(1.0)).astype(np.float32)

    @torch.no_grad()
    def user_queries(self, x: np.ndarray) -> np.ndarray:
        """Queries [h(mu(x)), 1] so that ``user_queries(x) @ item_embeddings().T == score(x)``."""
        was_training = self.training
        self.eval()
        try:
            rows = torch.as_tensor(np.asarray(x), dtype=torch.float32, device=self.decoder_out.weight.device)
            if rows.dim() == 1:
                rows = rows[None, :]
            features = self.decoder_features(self.encode(rows).mu).cpu().numpy()
        finally:
            self.train(was_training)
        ones = np.ones((features.shape[0], 1), dtype=np.float32)
        return np.ascontiguousarray(np.hstack([features, ones]), dtype=np.float32)


def save_model(model: nn.Module, directory: str | os.PathLike) -> Path:
    """Write ``model.pt`` (state_dict) and ``config.json`` into ``directory``, each atomically.

    Works for ``MultVAE``, ``recvae.RecVAE`` and ``cfgan.CFGAN``; the JSON names the class. Weights
    that only training reads (a model's ``TRAINING_ONLY`` prefixes) are left out.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    config = {"model": type(model).__name__, "n_items": model.n_items, "config": model.config.to_json_dict()}
    state = {
        name: tensor.detach().cpu() for name, tensor in model.state_dict().items() if not _training_only(model, name)
    }
    atomic_write(target / WEIGHTS_FILE, lambda p: torch.save(state, p))
    atomic_write(target / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True) + "\n")
    return target


def _training_only(model: nn.Module, name: str) -> bool:
    """Whether the weight ``name`` is one that only training reads (the model's ``TRAINING_ONLY`` prefixes)."""
    return name.startswith(tuple(getattr(model, "TRAINING_ONLY", ())))


def load_model(directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> ServableModel:
    """Load a model saved by ``save_model`` (weights only, no pickled objects), in eval mode.

    Returns a ``MultVAE``, a ``recvae.RecVAE`` or a ``cfgan.CFGAN``, as named in ``config.json``;
    all are ``ServableModel``s and offer ``score`` too.
    """
    source = Path(directory)
    config_path = source / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"no model config at {config_path}")
    saved = json.loads(config_path.read_text())
    kind = saved.get("model", "MultVAE")
    if kind == "MultVAE":
        model = MultVAE(int(saved["n_items"]), MultVAEConfig.from_json_dict(saved["config"]))
    elif kind == "RecVAE":
        # Imported here because recvae imports this module.
        from tryon.services.recommendation.recvae import RecVAE, RecVAEConfig

        model = RecVAE(int(saved["n_items"]), RecVAEConfig.from_json_dict(saved["config"]))
    elif kind == "CFGAN":
        # Imported here because cfgan imports this module.
        from tryon.services.recommendation.cfgan import CFGAN, CFGANConfig

        model = CFGAN(int(saved["n_items"]), CFGANConfig.from_json_dict(saved["config"]))
    else:
        raise ValueError(f"{config_path} names an unknown model {kind!r}; expected MultVAE, RecVAE or CFGAN")
    state = torch.load(source / WEIGHTS_FILE, map_location=map_location, weights_only=True)
    missing, unexpected = model.load_state_dict(state, strict=False)
    absent = [name for name in missing if not _training_only(model, name)]
    if absent or unexpected:
        raise ValueError(f"{source / WEIGHTS_FILE} does not fit its config: missing {absent}, unexpected {unexpected}")
    model.eval()
    return model
