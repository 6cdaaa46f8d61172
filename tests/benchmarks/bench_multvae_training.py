"""Mult-VAE (and RecVAE) training seconds per epoch and fold-in scoring throughput on MovieLens-100K.

Reference measured in the same run: EASE (closed-form fit, and scoring by one matrix
product), so the ratios stay meaningful on a busy machine.

Run: ``python tests/benchmarks/bench_multvae_training.py [--epochs 20] [--threads 2]``.
Needs ``var/data/ml-100k.inter`` (python -m tryon.services.recommendation.movielens WHEEL).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from tryon.services.recommendation.ease import EASE
from tryon.services.recommendation.evaluate import ML100K_MULTVAE, ML100K_RECVAE
from tryon.services.recommendation.movielens import DEFAULT_DATA_PATH, load_ml100k
from tryon.services.recommendation.protocol import positives_from_ratings, strong_generalization_split
from tryon.services.recommendation.trainer import train_multvae, train_recvae
from tryon.shared.results import add_results_option, recording_stdout

MAX_SECONDS_PER_MEASURE = 30.0


def throughput(score, rows: np.ndarray, batch_size: int) -> float:
    """Users scored per second, repeating full passes for at most MAX_SECONDS_PER_MEASURE/3."""
    users, started = 0, time.perf_counter()
    for _ in range(1000):
        for start in range(0, len(rows), batch_size):
            score(rows[start : start + batch_size])
            users += len(rows[start : start + batch_size])
        if time.perf_counter() - started > MAX_SECONDS_PER_MEASURE / 3:
            break
    return users / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_PATH)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    add_results_option(parser)
    args = parser.parse_args()
    with recording_stdout(args.results, "bench_multvae_training", "Mult-VAE training and fold-in speed on MovieLens-100K"):
        torch.set_num_threads(args.threads)
        matrix, user_ids, item_ids = positives_from_ratings(load_ml100k(args.data))
        split = strong_generalization_split(matrix, 100, 100, seed=0, user_ids=user_ids, item_ids=item_ids)
        print(f"MovieLens-100K positives: {split.train.shape[0]} training users x {split.train.shape[1]} items, "
              f"{split.train.nnz} interactions; torch threads {args.threads}")

        started = time.perf_counter()
        ease = EASE(300.0).fit(split.train)
        ease_fit = time.perf_counter() - started

        config = replace(ML100K_MULTVAE, epochs=args.epochs)
        _, history = train_multvae(split.train, config, seed=0, progress=False)
        _, with_validation = train_multvae(
            split.train, replace(config, epochs=min(args.epochs, 10)), seed=0, progress=False, validation=split.validation
        )
        model, _ = train_multvae(split.train, replace(config, epochs=1), seed=0, progress=False)
        _, recvae_history = train_recvae(split.train, replace(ML100K_RECVAE, epochs=4), seed=0, progress=False)
        per_epoch = np.array(history.epoch_seconds[1:] or history.epoch_seconds)
        recvae_per_epoch = np.median(recvae_history.epoch_seconds[1:])
        per_epoch_validated = np.array(with_validation.epoch_seconds[1:] or with_validation.epoch_seconds)

        rows = split.test.fold_in.toarray().astype(np.float32)
        tiled = np.tile(rows, (10, 1))
        results = []
        for batch_size in (1, 64, 512):
            vae = throughput(lambda x: model.score(torch.from_numpy(x)), tiled, batch_size)
            linear = throughput(ease.score, tiled, batch_size)
            results.append((batch_size, vae, linear))

        print()
        print("| measure | Mult-VAE | EASE reference | ratio |")
        print("| --- | --- | --- | --- |")
        print(f"| training s/epoch (median of {len(per_epoch)}) | {np.median(per_epoch):.3f} "
              f"| fit {ease_fit:.3f} s | epoch = {np.median(per_epoch) / ease_fit:.2f}x EASE fit |")
        print(f"| training s/epoch incl. validation NDCG@100 | {np.median(per_epoch_validated):.3f} | | |")
        print(f"| RecVAE (ML-100K config) s/outer epoch | {recvae_per_epoch:.3f} | | "
              f"{recvae_per_epoch / np.median(per_epoch):.1f}x a Mult-VAE epoch |")
        for batch_size, vae, linear in results:
            print(f"| fold-in scoring users/s, batch {batch_size} | {vae:,.0f} | {linear:,.0f} | {vae / linear:.2f}x |")
        spread = f"{per_epoch.min():.3f}/{per_epoch.max():.3f}"
        print(f"\nFigures on a shared machine are noisy; epoch times min/max {spread} s.")


if __name__ == "__main__":
    main()
