"""Train the default models of every service and ship them as package data: ``make weights``.

Usage: python -m tryon.services.weights [--only body garment recommendation]

Each service's models are trained exactly as its first start would train them without shipped
weights (the settings' defaults: epochs, seeds, images, simulated catalogue, torch threads) and
written to ``services/<name>/weights/<folder>/`` with a ``PROVENANCE.json`` (command, training
settings, data, date, commit, machine, seconds, size and SHA-256 of every file). A service whose
data folder holds no model copies them there at start instead of training (see each service's
``models_store``). Commit the folders with the change that made them.
"""

from __future__ import annotations

import argparse
import sys

from tryon.services.body import models_store as body_store
from tryon.services.garment import models_store as garment_store
from tryon.services.recommendation import models_store as recommendation_store

STORES = {"body": body_store, "garment": garment_store, "recommendation": recommendation_store}


def main(argv: list[str] | None = None) -> int:
    """Train and write the shipped weights of the chosen services; print what each took."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(STORES), default=list(STORES), help="services to train")
    options = parser.parse_args(argv)
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
