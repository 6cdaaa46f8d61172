"""Images per second of the garment generators (VAE decoder, GAN generator) at batch 1 and 64.

Usage: ``python tests/benchmarks/bench_garment_generation.py [--models-dir DIR] [--seconds S]``

Measures ``GarmentModels.generate`` (the path GenerateGarments takes: argument checks, seeded
noise, forward pass, numpy conversion) and, as the reference measured in the same run, the bare
``nn.Module`` forward pass on the same batch; the ratio is the share of the raw speed the facade
keeps. Without ``--models-dir`` the models are freshly initialised: speed does not depend on
the weights. Each measurement is bounded by a call count and a time budget.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch

from tryon.services.garment.garment_models import GarmentModels
from tryon.services.garment.trainer import one_hot
from tryon.shared.results import add_results_option, recording_stdout


def images_per_second(call: Callable[[], object], batch: int, seconds: float, max_calls: int) -> float:
    """Run ``call`` after two warm-up calls until ``seconds`` or ``max_calls`` pass; return images per second."""
    call()
    call()
    calls = 0
    started = time.perf_counter()
    while calls < max_calls and time.perf_counter() - started < seconds:
        call()
        calls += 1
    return calls * batch / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    """Print a table of generation speed per generator and batch size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, help="trained models (default: freshly initialised ones)")
    parser.add_argument("--seconds", type=float, default=2.0, help="time budget per measurement")
    parser.add_argument("--max-calls", type=int, default=2000, help="call budget per measurement")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    add_results_option(parser)
    args = parser.parse_args(argv)
    with recording_stdout(args.results, "bench_garment_generation", "Garment generators, images per second"):
        if args.threads:
            torch.set_num_threads(args.threads)
        models = GarmentModels.load(args.models_dir) if args.models_dir else GarmentModels.untrained()
        modules = {"vae": models.vae, "gan": models.generator}
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, models: {args.models_dir or 'untrained'}")
        print("| generator | batch | facade images/s | raw forward images/s | facade / raw |")
        print("| --- | --- | --- | --- | --- |")
        for name, module in modules.items():
            for batch in (1, 64):
                seed = iter(range(10**9))
                facade = images_per_second(
                    lambda: models.generate(3, batch, next(seed), name), batch, args.seconds, args.max_calls
                )
                labels = one_hot(torch.full((batch,), 3))
                source = torch.Generator().manual_seed(0)

                def raw_forward() -> None:
                    with torch.no_grad():
                        module.sample(labels, generator=source)

                raw = images_per_second(raw_forward, batch, args.seconds, args.max_calls)
                print(f"| {name} | {batch} | {facade:,.0f} | {raw:,.0f} | {facade / raw:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
