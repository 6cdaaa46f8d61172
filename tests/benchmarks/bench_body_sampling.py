"""Benchmark: body samples per second from the VAE and the GAN at batch sizes 1, 100 and 10,000.

Usage: ``python tests/benchmarks/bench_body_sampling.py [--model DIR] [--seconds S]``. Without
``--model`` it trains the default architecture for one epoch on the committed ANSUR II subset (speed
does not depend on how well the weights are trained). The reference, measured in the same run, is
numpy drawing the same number of vectors from a 22-dimensional Gaussian, so the ratio says how many
times slower than the simplest possible sampler each generator is. Each cell repeats its call until
``--seconds`` have passed or 200 calls were made.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from tryon.services.body.body_model import BodyModel, BodyModelConfig
from tryon.services.body.dataset import load_subset
from tryon.services.body.measurements import NAMES
from tryon.shared.results import add_results_option, recording_stdout

BATCH_SIZES = (1, 100, 10_000)
MAX_CALLS = 200


def rate(call, count: int, seconds: float) -> float:
    """Samples per second of ``call`` (which makes ``count`` samples), after one warm-up call."""
    call()
    calls, started = 0, time.perf_counter()
    while calls < MAX_CALLS and (calls == 0 or time.perf_counter() - started < seconds):
        call()
        calls += 1
    return count * calls / (time.perf_counter() - started)


def main() -> None:
    """Print a markdown table of samples per second and ratios to the numpy Gaussian reference."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="folder of a saved body model (default: train one epoch)")
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per cell")
    add_results_option(parser)
    arguments = parser.parse_args()
    with recording_stdout(arguments.results, "bench_body_sampling", "Body samples per second, VAE and GAN"):
        if arguments.model:
            model = BodyModel.load(arguments.model)
        else:
            model = BodyModel.train(load_subset(), BodyModelConfig(), epochs=1, seed=0, progress=False, gan_epochs=1)
        covariance = np.eye(len(NAMES))
        rng = np.random.default_rng(0)
        print(f"torch threads: {torch.get_num_threads()}; figures are noisy on a shared machine")
        print("| generator | batch | samples/s (arrays) | samples/s (sample(): dicts) | numpy Gaussian samples/s | arrays / reference |")
        print("|---|---:|---:|---:|---:|---:|")
        for generator in ("vae", "gan"):
            for batch in BATCH_SIZES:
                reference = rate(lambda: rng.multivariate_normal(np.zeros(len(NAMES)), covariance, size=batch), batch, arguments.seconds)
                arrays = rate(lambda: model.sample_arrays(batch, 1, None, generator), batch, arguments.seconds)
                dicts = rate(lambda: model.sample(batch, 1, None, generator), batch, arguments.seconds)
                print(f"| {generator} | {batch} | {arrays:,.0f} | {dicts:,.0f} | {reference:,.0f} | {arrays / reference:.3f} |")


if __name__ == "__main__":
    main()
