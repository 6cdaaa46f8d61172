"""Helpers of the recommendation benchmarks: untrained artifacts of any size and the service as a subprocess.

Serving cost does not depend on how well a model is trained, so the benchmarks serve a
Mult-VAE with its initial weights at the serving size (hidden 200, latent 64) over a
simulated catalogue, which takes seconds to prepare instead of a training run.
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

from tryon.services.recommendation.catalogue import synthetic_catalogue
from tryon.services.recommendation.index import ItemIndex
from tryon.services.recommendation.multvae import MultVAE
from tryon.services.recommendation.recommender import ColdStartMap, ModelArtifacts, similarity_vectors
from tryon.services.recommendation.train import SERVING_CONFIG


def untrained_artifacts(n_garments: int, factory: str, directory: Path, seed: int = 0) -> None:
    """Write artifacts for ``n_garments`` garments with an untrained serving-size Mult-VAE."""
    torch.manual_seed(seed)
    catalogue = synthetic_catalogue(n_garments, latent_dim=16, seed=seed)
    model = MultVAE(n_garments, SERVING_CONFIG).eval()
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
