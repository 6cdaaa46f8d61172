"""Simulated shoppers with hidden tastes who browse the catalogue and act on what they see.

A shopper prefers a few categories (Dirichlet weights) and a style: a direction in the
content-latent space, measured from each category's mean latent so that it means the same
thing for a coat as for a sneaker. A shopper views garments drawn from a softmax over their
affinity (with some random browsing), and each view goes down a funnel whose rates grow
with how well the garment matches the shopper's taste:

    VIEW -> TRY_ON (15% + 45% x match) -> ADD_TO_CART (20% + 50% x match)
         -> PURCHASE (60%) -> RETURN (35% - 25% x match)

which gives the few-percent conversion and the 20-30% return rate typical of online fashion.
The simulator writes training tables and is the load generator of benchmarks and the demo:

    python -m tryon.services.recommendation.simulator --out var/recommendation/simulated \
        [--garments 2000] [--shoppers 1000] [--views 30] [--latent-dim 16] [--seed 0]

writes ``catalogue.parquet`` and ``interactions.parquet`` for the train command.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tryon.services.recommendation.catalogue import CATEGORY_NAMES, Catalogue, synthetic_catalogue, write_table
from tryon.services.recommendation.history import InteractionKind

INTERACTION_COLUMNS = ("user_id", "garment_id", "type", "occurred_at")
"""Columns of an interactions table: type is an InteractionKind name, occurred_at a UTC timestamp."""


@dataclass(frozen=True)
class Shopper:
    """A simulated shopper and the hidden taste that drives their actions."""

    user_id: str
    category_preferences: np.ndarray = field(repr=False)
    style_direction: np.ndarray = field(repr=False)
    browsing_randomness: float = 0.2


@dataclass(frozen=True)
class SimulatedInteraction:
    """One action of a simulated shopper."""

    user_id: str
    garment_id: str
    kind: InteractionKind


class ShopperSimulator:
    """Seeded shoppers and their interactions with one catalogue."""

    def __init__(self, catalogue: Catalogue, seed: int = 0, style_sharpness: float = 4.0) -> None:
        self.catalogue = catalogue
        self.rng = np.random.default_rng(seed)
        self.style_sharpness = style_sharpness
        centred = catalogue.latents.astype(np.float64).copy()
        for label in np.unique(catalogue.categories):
            members = catalogue.categories == label
            centred[members] -= centred[members].mean(axis=0)
        norms = np.linalg.norm(centred, axis=1, keepdims=True)
        self._style_unit = centred / np.maximum(norms, 1e-9)

    def make_shopper(self, user_id: str) -> Shopper:
        """A shopper with 1-3 strongly preferred categories and a random style direction."""
        preferences = np.full(len(CATEGORY_NAMES), 0.05)
        favourites = self.rng.choice(len(CATEGORY_NAMES), size=self.rng.integers(1, 4), replace=False)
        preferences[favourites] += self.rng.dirichlet(np.ones(len(favourites))) * 3.0
        direction = self.rng.normal(size=self.catalogue.latent_dim)
        return Shopper(
            user_id=user_id,
            category_preferences=preferences / preferences.sum(),
            style_direction=direction / np.linalg.norm(direction),
        )

    def make_shoppers(self, n_shoppers: int, id_prefix: str = "shopper-") -> list[Shopper]:
        """``n_shoppers`` shoppers with ids ``{id_prefix}{n}``."""
        width = len(str(max(n_shoppers - 1, 0)))
        return [self.make_shopper(f"{id_prefix}{i:0{width}d}") for i in range(n_shoppers)]

    def match(self, shopper: Shopper) -> np.ndarray:
        """How well each garment suits the shopper, in [0, 1] (hidden from the recommender)."""
        style = (self._style_unit @ shopper.style_direction + 1.0) / 2.0
        category = shopper.category_preferences[self.catalogue.categories]
        return category / shopper.category_preferences.max() * style

    def view_probabilities(self, shopper: Shopper) -> np.ndarray:
        """Chance that the shopper's next view is each garment."""
        affinity = np.log(shopper.category_preferences[self.catalogue.categories])
        affinity = affinity + self.style_sharpness * (self._style_unit @ shopper.style_direction)
        weights = np.exp(affinity - affinity.max())
        targeted = weights / weights.sum()
        uniform = np.full(len(self.catalogue), 1.0 / len(self.catalogue))
        return (1.0 - shopper.browsing_randomness) * targeted + shopper.browsing_randomness * uniform

    def session(self, shopper: Shopper, n_views: int) -> Iterator[SimulatedInteraction]:
        """The shopper's actions over ``n_views`` garment views, in the order they happen."""
        probabilities = self.view_probabilities(shopper)
        match = self.match(shopper)
        viewed = self.rng.choice(len(self.catalogue), size=n_views, p=probabilities)
        for position in viewed.tolist():
            garment_id = self.catalogue.garment_ids[position]
            fit = match[position]
            yield SimulatedInteraction(shopper.user_id, garment_id, InteractionKind.VIEW)
            if self.rng.random() >= 0.15 + 0.45 * fit:
                continue
            yield SimulatedInteraction(shopper.user_id, garment_id, InteractionKind.TRY_ON)
            if self.rng.random() >= 0.2 + 0.5 * fit:
                continue
            yield SimulatedInteraction(shopper.user_id, garment_id, InteractionKind.ADD_TO_CART)
            if self.rng.random() >= 0.6:
                continue
            yield SimulatedInteraction(shopper.user_id, garment_id, InteractionKind.PURCHASE)
            if self.rng.random() < 0.35 - 0.25 * fit:
                yield SimulatedInteraction(shopper.user_id, garment_id, InteractionKind.RETURN)

    def interactions_table(
        self,
        shoppers: list[Shopper],
        views_per_shopper: int = 30,
        start: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """All shoppers' sessions as a table (columns ``INTERACTION_COLUMNS``), one second apart."""
        rows = [
            (event.user_id, event.garment_id, event.kind.name)
            for shopper in shoppers
            for event in self.session(shopper, views_per_shopper)
        ]
        frame = pd.DataFrame(rows, columns=list(INTERACTION_COLUMNS[:3]))
        start = start if start is not None else pd.Timestamp("2026-01-01", tz="UTC")
        frame["occurred_at"] = start + pd.to_timedelta(np.arange(len(frame)), unit="s")
        return frame


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: write a simulated catalogue and interactions table."""
    parser = argparse.ArgumentParser(description="Simulate a catalogue and its shoppers' interactions.")
    parser.add_argument("--out", type=Path, required=True, help="folder for catalogue.parquet and interactions.parquet")
    parser.add_argument("--garments", type=int, default=2000)
    parser.add_argument("--shoppers", type=int, default=1000)
    parser.add_argument("--views", type=int, default=30, help="garment views per shopper")
    parser.add_argument("--latent-dim", type=int, default=16, help="size of the simulated content latents")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    catalogue = synthetic_catalogue(args.garments, args.latent_dim, seed=args.seed)
    simulator = ShopperSimulator(catalogue, seed=args.seed)
    interactions = simulator.interactions_table(simulator.make_shoppers(args.shoppers), args.views)
    args.out.mkdir(parents=True, exist_ok=True)
    catalogue.save(args.out / "catalogue.parquet")
    write_table(interactions, args.out / "interactions.parquet")
    counts = interactions["type"].value_counts()
    print(f"{len(catalogue)} garments, {args.shoppers} shoppers, {len(interactions)} interactions -> {args.out}")
    print(", ".join(f"{name} {counts.get(name, 0)}" for name in ("VIEW", "TRY_ON", "ADD_TO_CART", "PURCHASE", "RETURN")))


if __name__ == "__main__":
    main()
