"""One rank of a Mult-VAE training under torchrun, for test_distributed_training.

    torchrun --standalone --nproc_per_node N tests/recommendation/ddp_worker.py MATRIX.npz CONFIG.json SEED OUT.json

Trains on the sparse matrix with the configuration given and, on rank 0, writes the per-epoch
loss and seconds and the trained weights as JSON. ``tests/benchmarks/bench_ddp_training.py`` runs it too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from scipy import sparse

from tryon.services.recommendation.distributed import World, start_distributed, stop_distributed
from tryon.services.recommendation.multvae import MultVAEConfig
from tryon.services.recommendation.trainer import train_multvae


def main() -> None:
    matrix_path, config_path, seed, out_path = sys.argv[1:5]
    torch.set_num_threads(1)
    world = start_distributed()
    try:
        config = MultVAEConfig.from_json_dict(json.loads(Path(config_path).read_text()))
        model, history = train_multvae(sparse.load_npz(matrix_path), config, seed=int(seed), progress=False)
        if world.is_main:
            weights = {name: tensor.flatten().tolist() for name, tensor in model.state_dict().items()}
            Path(out_path).write_text(json.dumps({
                "world_size": World.current().size, "loss": history.loss, "epoch_seconds": history.epoch_seconds,
                "weights": weights,
            }))
    finally:
        stop_distributed()


if __name__ == "__main__":
    main()
