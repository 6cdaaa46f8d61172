"""Mult-VAE training under torchrun with two processes computes what one process computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from tryon.services.recommendation.distributed import World
from tryon.services.recommendation.multvae import MultVAEConfig
from tryon.services.recommendation.trainer import train_multvae

WORKER = Path(__file__).with_name("ddp_worker.py")
# 45 shoppers in batches of 16: the last global batch of 13 splits 7 / 6, so unequal shares are covered.
CONFIG = MultVAEConfig(hidden_dims=(24,), latent_dim=6, dropout=0.5, batch_size=16, epochs=4, total_anneal_steps=5)
SEED = 3


def tiny_matrix() -> sparse.csr_matrix:
    rng = np.random.default_rng(0)
    return sparse.csr_matrix((rng.random((45, 40)) < 0.2) * rng.integers(1, 6, (45, 40)), dtype=np.float32)


def test_each_rank_takes_a_contiguous_share_and_the_shares_cover_the_batch_once() -> None:
    for rows in (0, 1, 13, 16):
        shares = [World(rank, 3).share(rows) for rank in range(3)]
        covered = [row for share in shares for row in range(rows)[share]]
        assert covered == list(range(rows))
        assert max(len(range(rows)[s]) for s in shares) - min(len(range(rows)[s]) for s in shares) <= 1


def test_two_processes_under_torchrun_match_one_process_loss_and_weights(tmp_path) -> None:
    matrix = tiny_matrix()
    sparse.save_npz(tmp_path / "matrix.npz", matrix)
    (tmp_path / "config.json").write_text(json.dumps(CONFIG.to_json_dict()))
    out = tmp_path / "ddp.json"
    environment = os.environ | {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    finished = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER),
         str(tmp_path / "matrix.npz"), str(tmp_path / "config.json"), str(SEED), str(out)],
        env=environment, capture_output=True, text=True, timeout=180,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    distributed = json.loads(out.read_text())
    assert distributed["world_size"] == 2

    model, history = train_multvae(matrix, CONFIG, seed=SEED, progress=False, device="cpu")
    assert distributed["loss"] == pytest.approx(history.loss, rel=1e-5)
    for name, tensor in model.state_dict().items():
        np.testing.assert_allclose(distributed["weights"][name], tensor.flatten().numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
    # The losses moved: the match is of a training, not of an untouched model.
    assert history.loss[-1] != pytest.approx(history.loss[0], rel=1e-3)
