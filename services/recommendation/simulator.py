"""Simulated shoppers with hidden tastes who browse the catalogue and act on what they see.

A shopper prefers a few categories (Dirichlet weights) and a style: a direction in the
content-latent space, measured from each category's mean latent so that it means the same
thing for a coat as for a sneaker. A shopper views garments drawn from a softmax over their
affinity (with some random browsing), and each view goes down a funnel whose rates grow
with how well the garment matches the shopper's taste:

    VIEW -> TRY_ON (15% + 45% x match) -> ADD_TO_CART (20% + 50% x match)
         -> PURCHASE (60%) -> RETURN (35% - 25% x match)

which gives the few-percent conversion and the 20-30% return rate typical of online fashion.
The simulator writes training tables and is the load generator of benchmarks and the demo.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tryon.services.recommendation.catalogue import CATEGORY_NAMES, Catalogue
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
