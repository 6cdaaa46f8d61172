"""Mult-VAE training on one process and on several under torchrun: the same losses and weights, and the time.

Trains a Mult-VAE of hidden 200 and latent 64 (``MULTVAE``: the service's model before it served
RecVAE; DDP trains Mult-VAE only) on the simulated catalogue and shoppers the service trains on
when no model is shipped (2,000 garments, 1,000 shoppers), through
``tests/recommendation/ddp_worker.py`` under ``torchrun --nproc_per_node N`` for each N given
(gloo on CPUs, NCCL with one GPU per process where CUDA is present), and prints each run's
final loss, its largest weight difference from the one-process run and its seconds per epoch.

    nice -n 10 python tests/benchmarks/bench_ddp_training.py [--processes 1 2] [--epochs 5] [--results docs/results.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import sparse

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tryon.services.recommendation.catalogue import synthetic_catalogue  # noqa: E402
from tryon.services.recommendation.multvae import MultVAEConfig  # noqa: E402
from tryon.services.recommendation.simulator import ShopperSimulator  # noqa: E402
from tryon.services.recommendation.train import weighted_matrix  # noqa: E402
from tryon.shared.results import add_results_option, recording_stdout  # noqa: E402

MULTVAE = dict(hidden_dims=(200,), latent_dim=64, dropout=0.5, beta_cap=0.2, total_anneal_steps=2000, batch_size=128)
"""The Mult-VAE measured (hidden 200, latent 64), as in the recorded runs."""

WORKER = Path(__file__).resolve().parents[1] / "recommendation" / "ddp_worker.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    add_results_option(parser)
    args = parser.parse_args()
    with recording_stdout(args.results, "bench_ddp_training", "Mult-VAE training under torchrun: one process against several"):
        catalogue = synthetic_catalogue(2000, latent_dim=16, seed=args.seed)
        simulator = ShopperSimulator(catalogue, seed=args.seed)
        matrix, _, _ = weighted_matrix(simulator.interactions_table(simulator.make_shoppers(1000), 20), catalogue)
        config = MultVAEConfig(**MULTVAE, epochs=args.epochs)
        backend = "NCCL, one GPU a process" if torch.cuda.is_available() else "gloo on CPU"
        print(f"{matrix.shape[0]} shoppers x {matrix.shape[1]} garments, hidden {config.hidden_dims}, latent "
              f"{config.latent_dim}, global batch {config.batch_size}, {args.epochs} epochs, {backend}, one torch thread a process\n")
        print("| processes | final loss | largest weight difference from 1 process | s / epoch (median) | wall s (with start-up) |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        reference = None
        with tempfile.TemporaryDirectory() as folder:
            folder = Path(folder)
            sparse.save_npz(folder / "matrix.npz", matrix)
            (folder / "config.json").write_text(json.dumps(config.to_json_dict()))
            for processes in args.processes:
                out = folder / f"run-{processes}.json"
                started = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
                     str(WORKER), str(folder / "matrix.npz"), str(folder / "config.json"), str(args.seed), str(out)],
                    env=os.environ | {"OMP_NUM_THREADS": "1"}, check=True, capture_output=True,
                )
                wall = time.perf_counter() - started
                run = json.loads(out.read_text())
                weights = {name: np.asarray(values) for name, values in run["weights"].items()}
                reference = reference or weights
                difference = max(float(np.abs(weights[name] - reference[name]).max()) for name in weights)
                print(f"| {processes} | {run['loss'][-1]:.4f} | {difference:.2e} | "
                      f"{float(np.median(run['epoch_seconds'])):.2f} | {wall:.1f} |")


if __name__ == "__main__":
    main()
