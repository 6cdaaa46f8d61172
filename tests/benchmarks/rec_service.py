"""Helpers of the recommendation benchmarks: serving-shaped artifacts of any size and the service as a subprocess.

Serving cost depends on the sizes of the model and the index and, for approximate indexes,
on the structure of the item vectors: on the isotropic vectors of an untrained model an HNSW
search finds almost none of the true top 10 (recall@10 0.05 at 100k). The benchmarks
therefore serve a serving-size Mult-VAE (hidden 200, latent 64) whose item vectors [W_i, b_i]
are replaced by vectors of learned-embedding shape (``bench_faiss.make_vectors``: low rank,
varied norms, a bias column) over a simulated catalogue, which takes seconds to prepare
instead of a training run at 100k garments.
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
from tryon.services.recommendation.multvae import MultVAE  # noqa: E402
from tryon.services.recommendation.recommender import ColdStartMap, ModelArtifacts, similarity_vectors  # noqa: E402
from tryon.services.recommendation.train import SERVING_CONFIG  # noqa: E402


def serving_shaped_artifacts(n_garments: int, factory: str, directory: Path, seed: int = 0) -> None:
    """Write artifacts for ``n_garments`` garments: a serving-size Mult-VAE with learned-shape item vectors."""
    torch.manual_seed(seed)
    catalogue = synthetic_catalogue(n_garments, latent_dim=16, seed=seed)
    model = MultVAE(n_garments, SERVING_CONFIG).eval()
    items, _ = make_vectors(n_garments, 1, seed)
    with torch.no_grad():
        model.decoder_out.weight.copy_(torch.from_numpy(items[:, :-1]))
        model.decoder_out.bias.copy_(torch.from_numpy(items[:, -1]))
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
