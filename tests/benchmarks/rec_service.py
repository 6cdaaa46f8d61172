"""Helpers of the recommendation benchmarks: serving-shaped artifacts of any size and the service as a subprocess.

Serving cost depends on the sizes of the model and the index and, for approximate indexes,
on the structure of the vectors: with an untrained model's isotropic vectors an HNSW search
finds almost none of the true top 10 (recall@10 0.05 at 100k). The benchmarks therefore serve
a serving-size Mult-VAE (hidden 200, latent 64) shaped like a trained one, over a simulated
catalogue: its item vectors [W_i, b_i] are ``bench_faiss.make_vectors``'s (low rank, varied
norms, a bias column) and its first decoder layer maps the latent code into the same rank-32
space, so a shopper's query tanh(.) has the shape of that benchmark's queries. It takes
seconds to prepare instead of a training run at 100k garments.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_faiss import make_vectors  # noqa: E402

from tryon.services.recommendation.catalogue import synthetic_catalogue  # noqa: E402
from tryon.services.recommendation.index import ItemIndex  # noqa: E402
from tryon.services.recommendation.multvae import MultVAE, MultVAEConfig  # noqa: E402
from tryon.services.recommendation.recommender import ColdStartMap, ModelArtifacts, similarity_vectors  # noqa: E402

SERVING_SIZE = MultVAEConfig(hidden_dims=(200,), latent_dim=64)
"""Item vectors of 201 numbers, as the served RecVAE's (latent 200 + bias); the query costs less
than RecVAE's fold-in, which these benchmarks do not yet serve."""


def serving_shaped_artifacts(n_garments: int, factory: str, directory: Path, seed: int = 0) -> None:
    """Write artifacts for ``n_garments`` garments: a serving-size Mult-VAE with learned-shape vectors."""
    torch.manual_seed(seed)
    catalogue = synthetic_catalogue(n_garments, latent_dim=16, seed=seed)
    model = MultVAE(n_garments, SERVING_SIZE).eval()
    items, _, basis = make_vectors(n_garments, 1, seed)
    first_decoder_layer = model.decoder_hidden[0]
    with torch.no_grad():
        model.decoder_out.weight.copy_(torch.from_numpy(items[:, :-1]))
        model.decoder_out.bias.copy_(torch.from_numpy(items[:, -1]))
        # Latent codes of typical histories, to give the rank-32 coordinates unit spread.
        histories = torch.zeros(256, n_garments)
        histories[torch.arange(256).repeat_interleave(20), torch.randint(n_garments, (256 * 20,))] = 1.0
        codes = model.encode(histories).mu
        mixing = torch.randn(basis.shape[0], SERVING_SIZE.latent_dim) / (codes.std() * SERVING_SIZE.latent_dim**0.5)
        first_decoder_layer.weight.copy_(torch.from_numpy(basis.T).float() @ mixing)
        first_decoder_layer.bias.zero_()
    vectors = model.item_embeddings()
    rng = np.random.default_rng(seed)
    ModelArtifacts(
        model=model,
        model_items=catalogue.garment_ids,
        catalogue=catalogue,
        cold_start_map=ColdStartMap.fit(catalogue.latents, catalogue.categories, vectors),
        popularity={g: float(c) for g, c in zip(catalogue.garment_ids, rng.poisson(5.0, n_garments))},
        item_index=ItemIndex.build(catalogue.garment_ids, vectors, factory),
        similar_index=ItemIndex.build(catalogue.garment_ids, similarity_vectors(vectors), factory),
    ).save(directory / "artifacts")


class ServiceProcess:
    """``python -m tryon.services.recommendation`` on a free loopback port, with its log in a file."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None, timeout: float = 120.0) -> None:
        self.log_path = data_dir / "service.log"
        env = os.environ | {
            "TRYON_RECOMMENDATION_DATA_DIR": str(data_dir),
            "TRYON_RECOMMENDATION_PORT": "0",
            "TRYON_RECOMMENDATION_HOST": "127.0.0.1",
        } | (extra_env or {})
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tryon.services.recommendation"], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.address = self._wait_for_line('"listening"', timeout)["address"]
        self._wait_for_line('"recommendation service ready"', timeout)

    def _wait_for_line(self, marker: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
                if marker in line:
                    return json.loads(line)
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited; see {self.log_path}")
            time.sleep(0.1)
        raise TimeoutError(f"no {marker} in {self.log_path} within {timeout} s")

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
