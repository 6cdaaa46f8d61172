"""Train the default models of every service and ship them as package data: ``make weights``.

Usage: python -m tryon.services.weights [--only body garment recommendation] [--check]

Each service's models are trained exactly as its first start would train them without shipped
weights (the settings' defaults: epochs, seeds, images, simulated catalogue, torch threads) and
written to ``services/<name>/weights/<folder>/`` with a ``PROVENANCE.json`` (command, training
settings, data, date, commit, machine, seconds, size and SHA-256 of every file). A service whose
data folder holds no model copies them there at start instead of training (see each service's
``models_store``). Commit the folders with the change that made them. ``--check`` trains nothing
and says whether each service's default settings would start from its shipped weights.
"""

from __future__ import annotations

import argparse
import sys

from tryon.services.body import mesh_fit as body_mesh_store
from tryon.services.body import models_store as body_store
from tryon.services.body.settings import BodySettings
from tryon.services.garment import models_store as garment_store
from tryon.services.garment.settings import GarmentSettings
from tryon.services.recommendation import models_store as recommendation_store
from tryon.services.recommendation.settings import RecommendationSettings
from tryon.shared.shipped_weights import check_shipped

STORES = {
    "body": body_store,
    "body_mesh": body_mesh_store,
    "garment": garment_store,
    "recommendation": recommendation_store,
}
DEFAULT_SETTINGS = {
    "body": BodySettings,
    "body_mesh": BodySettings,
    "garment": GarmentSettings,
    "recommendation": RecommendationSettings,
}


def shipped_weights_problems(names: list[str] | tuple[str, ...] = tuple(STORES)) -> list[str]:
    """Why services started with their default settings would train instead of copying the shipped weights."""
    problems = []
    for name in names:
        store = STORES[name]
        provenance, reason = check_shipped(store.SHIPPED_DIR, store.training_settings(DEFAULT_SETTINGS[name]()))
        if provenance is None:
            problems.append(f"{name}: {reason}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Train and write the shipped weights of the chosen services; print what each took."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(STORES), default=list(STORES), help="services to train")
    parser.add_argument("--check", action="store_true", help="train nothing; check the shipped weights")
    options = parser.parse_args(argv)
    if options.check:
        problems = shipped_weights_problems(options.only)
        sys.stdout.write("".join(f"{problem}\n" for problem in problems) or "the shipped weights are usable\n")
        return 1 if problems else 0
    every_folder = tuple(store.WEIGHTS_DIR for store in STORES.values())
    for name in options.only:
        provenance = STORES[name].write_weights(unrelated=every_folder)
        size = sum(facts["bytes"] for facts in provenance["files"].values())
        sys.stdout.write(
            f"{name}: {len(provenance['files'])} files, {size / 1e6:.2f} MB, trained in {provenance['seconds']:.0f} s "
            f"into {STORES[name].WEIGHTS_DIR}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
