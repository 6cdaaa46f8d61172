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

``OutfitSessionSimulator`` adds shopping sessions, the data the compatibility space learns from.
THESE DATA ARE SIMULATED: a storefront trains on its own event log. Each shopper has an ANSUR II
body (a real survey subject of ``services/body``'s subset) and a few preferred hidden outfit
styles. In a session the shopper buys one outfit (top + bottom + shoes, or dress + shoes) whose
pieces follow a hidden style rule: every role has its own prototypes of the style directions,
so "goes together" is a relation per pair of roles that no fixed similarity of content latents
reproduces; one piece in ``style_noise`` is picked off-style. Every garment carries a size chart
(tops and dresses a women's or a men's tops chart, trousers a women's or a men's trousers chart,
shoes none). A share of garments (``size_offset_share``, none by default) runs one size small
or large against its chart, as real garments do (SizeFlags, KDD 2021): its girth ranges lie one
range's width lower or higher, which nobody is told. The shopper picks the size nearest to their
body as they believe it to be (each measurement off by about 3%) and sends the garment back when
that size, as the garment is really cut, does not fit their real body, saying whether it was too
small or too large; and 3% of the rest for other reasons:

    python -m tryon.services.recommendation.simulator --out DIR --sessions 3 [--size-offset-share 0.3]

writes ``interactions.parquet`` with ``session_id``, ``size`` (bought or sent back) and
``return_reason`` columns, what a storefront's event log holds, and ``purchases.parquet`` (the
simulated truth: size bought, whether it fit, the garment's hidden offset).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from tryon.services.recommendation.catalogue import CATEGORY_NAMES, Catalogue, synthetic_catalogue, write_table
from tryon.services.recommendation.history import InteractionKind
from tryon.services.recommendation.outfits import OUTFIT_FORMS, ROLES, role_of

INTERACTION_COLUMNS = ("user_id", "garment_id", "type", "occurred_at")
"""Columns of an interactions table: type is an InteractionKind name, occurred_at a UTC timestamp."""
SESSION_COLUMNS = (*INTERACTION_COLUMNS, "session_id", "size", "return_reason")
"""Columns of a sessions table: the interactions' columns, the order or session id, and on PURCHASE
and RETURN the size label ("" without a chart), on RETURN the reason (a ``ReturnReason`` name)."""
PURCHASE_COLUMNS = ("session_id", "user_id", "garment_id", "role", "size", "fits", "returned", "reason", "offset")
"""Columns of the simulated truth of each purchase (never in an event log)."""

CHARTS_BY_ROLE = {
    "top": ("eu_womens_tops", "eu_mens_tops"),
    "dress": ("eu_womens_tops",),
    "bottom": ("eu_womens_trousers", "us_mens_trousers"),
    "shoes": ("",),
}
"""Size charts a simulated garment of each role may carry (shipped chart ids; "" = no chart)."""


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


@dataclass(frozen=True)
class SessionShopper:
    """A shopper of outfit sessions: a browsing taste, preferred hidden outfit styles, an ANSUR body."""

    shopper: Shopper
    style_preferences: np.ndarray = field(repr=False)
    body: dict[str, float] = field(repr=False)
    sex: str = "female"


@dataclass(frozen=True)
class Purchase:
    """One garment bought in a session, with the simulated truth of its fit."""

    session_id: str
    user_id: str
    garment_id: str
    role: str
    size: str
    fits: bool
    returned: bool
    reason: str = ""
    """Why it was returned: TOO_SMALL, TOO_LARGE or OTHER ("" when kept)."""
    offset: int = 0
    """Sizes the garment runs off its chart (hidden truth; negative: small)."""


def load_charts() -> dict:
    """The size charts BodyService ships, by chart id (the simulator's only tie to BodyService's data)."""
    # The simulator is an offline tool: it reads BodyService's packaged data, never its process.
    from tryon.services.body.sizing import shipped_charts

    return shipped_charts()


def load_bodies() -> pd.DataFrame:
    """The committed ANSUR II subset: one real body per row, sex and measurements in mm and kg."""
    from tryon.services.body.dataset import load_subset

    return load_subset()


FIT_TOLERANCE = 0.5
"""A garment still fits a measurement up to this share of its range's width outside the range (ease)."""


def misfit_reason(size, body: dict[str, float]) -> str:
    """Why ``size`` does not fit ``body``, each range widened by ``FIT_TOLERANCE`` of its width:
    TOO_SMALL when a measurement is above its range (first), TOO_LARGE when one is below; "" when it fits."""
    outside = [
        (body[r.measurement] > r.maximum + FIT_TOLERANCE * (r.maximum - r.minimum),
         body[r.measurement] < r.minimum - FIT_TOLERANCE * (r.maximum - r.minimum))
        for r in size.ranges
    ]
    if any(above for above, _ in outside):
        return "TOO_SMALL"
    return "TOO_LARGE" if any(below for _, below in outside) else ""


def cut_as(size, offset: int):
    """``size`` as a garment that runs ``offset`` sizes off its chart is cut: every girth range moved by
    ``offset`` of its widths (negative: smaller); lengths such as the inseam stay."""
    if offset == 0:
        return size
    return replace(
        size,
        ranges=tuple(
            replace(r, minimum=r.minimum + offset * (r.maximum - r.minimum), maximum=r.maximum + offset * (r.maximum - r.minimum))
            if r.measurement.endswith("_circumference") else r
            for r in size.ranges
        ),
    )


def distance_outside(size, body: dict[str, float]) -> float:
    """How far ``body`` lies outside the ranges of ``size``, in widths of each range (0 inside)."""
    return sum(
        max(0.0, r.minimum - body[r.measurement], body[r.measurement] - r.maximum) / (r.maximum - r.minimum)
        for r in size.ranges
    )


def self_chosen_size(chart, perceived_body: dict[str, float]):
    """The size a shopper picks alone: the one nearest to the body as the shopper believes it to be."""
    return min(chart.sizes, key=lambda size: distance_outside(size, perceived_body))


class OutfitSessionSimulator:
    """Shopping sessions in which shoppers buy whole outfits by hidden style rules, and return misfits (simulated data).

    The hidden style of a garment is the nearest of ``n_styles`` prototype directions of its role
    in the centred content-latent space (the prototypes differ per role); an outfit of style ``s``
    takes every piece of style ``s``.
    """

    def __init__(
        self,
        catalogue: Catalogue,
        seed: int = 0,
        n_styles: int = 6,
        style_noise: float = 0.1,
        self_error: float = 0.03,
        bodies: pd.DataFrame | None = None,
        charts: dict | None = None,
        size_offset_share: float = 0.0,
    ) -> None:
        self.catalogue = catalogue
        self.browsing = ShopperSimulator(catalogue, seed=seed)
        self.rng = np.random.default_rng(seed + 7_919)
        self.n_styles = n_styles
        self.style_noise = style_noise
        self.self_error = self_error
        self.bodies = bodies if bodies is not None else load_bodies()
        self.charts = charts if charts is not None else load_charts()
        # -1: a garment outside outfits (a bag).
        self.roles = np.array([ROLES.index(r) if (r := role_of(label)) else -1 for label in catalogue.categories])
        style_unit = self.browsing._style_unit
        self.styles = np.full(len(catalogue), -1, dtype=np.int64)
        for role_index in range(len(ROLES)):
            prototypes = self.rng.normal(size=(n_styles, catalogue.latent_dim))
            members = self.roles == role_index
            self.styles[members] = np.argmax(style_unit[members] @ prototypes.T, axis=1)
        self.chart_ids = np.array(
            [self.rng.choice(CHARTS_BY_ROLE[ROLES[r]]) if r >= 0 else "" for r in self.roles.tolist()], dtype=object
        )
        # Drawn from their own stream, so that the share changes no other draw of a given seed.
        offsets = np.random.default_rng(seed + 104_729)
        self.size_offsets = np.array(
            [
                int(offsets.choice((-1, 1))) if offsets.random() < size_offset_share and chart else 0
                for chart in self.chart_ids.tolist()
            ],
            dtype=np.int64,
        )
        """Sizes each garment runs off its chart (hidden; negative: small)."""
        # Shoppers mostly pick garments cut for their sex; one in five picks is of the other cut.
        womens = np.array(["womens" in chart for chart in self.chart_ids])
        mens = np.array(["mens" in chart and "womens" not in chart for chart in self.chart_ids])
        self._cut_weight = {"female": np.where(mens, 0.25, 1.0), "male": np.where(womens, 0.25, 1.0)}
        self._members = {
            (role, style): np.flatnonzero((self.roles == role) & (self.styles == style))
            for role in range(len(ROLES))
            for style in range(n_styles)
        }
        self._role_members = {role: np.flatnonzero(self.roles == role) for role in range(len(ROLES))}

    def compatible(self, positions: list[int]) -> bool:
        """The hidden rule: an outfit's pieces go together when they share one hidden style."""
        return len({int(self.styles[p]) for p in positions}) == 1

    def make_shoppers(self, n_shoppers: int, id_prefix: str = "shopper-") -> list[SessionShopper]:
        """Shoppers with a browsing taste, 1-2 preferred outfit styles and a body drawn from ANSUR II."""
        shoppers = []
        for shopper in self.browsing.make_shoppers(n_shoppers, id_prefix):
            preferences = np.full(self.n_styles, 0.1)
            favourites = self.rng.choice(self.n_styles, size=self.rng.integers(1, 3), replace=False)
            preferences[favourites] += 1.0
            row = self.bodies.iloc[int(self.rng.integers(len(self.bodies)))]
            body = {name: float(row[name]) for name in self.bodies.columns if name not in ("subject_id", "sex")}
            shoppers.append(SessionShopper(shopper, preferences / preferences.sum(), body, str(row["sex"])))
        return shoppers

    def pick_outfit(self, shopper: SessionShopper, taste: np.ndarray, advice=None) -> list[int]:
        """Catalogue positions of the outfit the shopper buys in one session.

        ``taste`` weighs garments within a role and style (the shopper's view probabilities, or a
        recommender's ranking); ``advice`` (optional) maps positions to a weight in [0, 1] that
        multiplies it, which is how a fit-aware storefront steers the choice.
        """
        has_dress = len(self._role_members[ROLES.index("dress")]) > 0
        form = OUTFIT_FORMS[1] if has_dress and shopper.sex == "female" and self.rng.random() < 0.3 else OUTFIT_FORMS[0]
        style = int(self.rng.choice(self.n_styles, p=shopper.style_preferences))
        chosen = []
        for role in form:
            role_index = ROLES.index(role)
            pool = self._members[(role_index, style)]
            if len(pool) == 0 or self.rng.random() < self.style_noise:
                pool = self._role_members[role_index]
            weights = taste[pool] * self._cut_weight[shopper.sex][pool] * (advice[pool] if advice is not None else 1.0)
            weights = weights / weights.sum() if weights.sum() > 0 else None
            chosen.append(int(self.rng.choice(pool, p=weights)))
        return chosen

    def perceived(self, shopper: SessionShopper) -> dict[str, float]:
        """The body as the shopper believes it to be: each measurement off by about ``self_error``."""
        return {name: value * (1.0 + self.self_error * self.rng.normal()) for name, value in shopper.body.items()}

    def buy(self, shopper: SessionShopper, session_id: str, position: int, size_label: str | None = None) -> Purchase:
        """Buy the garment at ``position`` in ``size_label`` (default: the shopper's own pick), and maybe return it."""
        role = ROLES[self.roles[position]]
        chart_id = self.chart_ids[position]
        garment_id = self.catalogue.garment_ids[position]
        offset = int(self.size_offsets[position])
        if not chart_id:
            reason, label = "", "one size"
        else:
            chart = self.charts[chart_id]
            size = next((s for s in chart.sizes if s.label == size_label), None) or self_chosen_size(
                chart, self.perceived(shopper)
            )
            reason, label = misfit_reason(cut_as(size, offset), shopper.body), size.label
        fits = not reason
        returned = not fits or self.rng.random() < 0.03
        reason = reason or ("OTHER" if returned else "")
        return Purchase(session_id, shopper.shopper.user_id, garment_id, role, label, fits, returned, reason, offset)

    def sessions(
        self, shoppers: list[SessionShopper], sessions_per_shopper: int = 3, views_per_session: int = 4
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Every shopper's sessions: the interactions (``SESSION_COLUMNS``) and the purchases' truth.

        A session views a few garments by taste, then views, adds to the cart and buys one outfit
        under one session id, and returns the pieces that do not fit.
        """
        rows, purchases = [], []
        for shopper in shoppers:
            taste = self.browsing.view_probabilities(shopper.shopper)
            user_id = shopper.shopper.user_id
            for number in range(sessions_per_shopper):
                session_id = f"{user_id}/s{number}"
                for position in self.rng.choice(len(self.catalogue), size=views_per_session, p=taste).tolist():
                    rows.append((user_id, self.catalogue.garment_ids[position], "VIEW", session_id, "", ""))
                bought = [self.buy(shopper, session_id, p) for p in self.pick_outfit(shopper, taste)]
                for kind in ("VIEW", "ADD_TO_CART"):
                    rows.extend((user_id, b.garment_id, kind, session_id, "", "") for b in bought)
                # The log names only a chart's labels; a garment without a chart is bought with no size.
                sizes = [b.size if self.chart_ids[self.catalogue.position[b.garment_id]] else "" for b in bought]
                rows.extend((user_id, b.garment_id, "PURCHASE", session_id, size, "") for b, size in zip(bought, sizes))
                rows.extend(
                    (user_id, b.garment_id, "RETURN", session_id, size, b.reason)
                    for b, size in zip(bought, sizes)
                    if b.returned
                )
                purchases.extend(bought)
        frame = pd.DataFrame(rows, columns=["user_id", "garment_id", "type", "session_id", "size", "return_reason"])
        frame.insert(3, "occurred_at", pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(len(frame)), unit="s"))
        truth = pd.DataFrame([tuple(vars(p).values()) for p in purchases], columns=list(PURCHASE_COLUMNS))
        return frame, truth


def session_outfits(interactions: pd.DataFrame) -> list[list[str]]:
    """The outfits of an event log: the garments bought (PURCHASE) under each session id, in order.

    Sessions with a single purchase say nothing about what goes together and are left out.
    """
    bought = interactions[(interactions["type"] == "PURCHASE") & (interactions["session_id"].fillna("") != "")]
    outfits = bought.groupby("session_id", sort=False)["garment_id"].agg(list)
    return [list(dict.fromkeys(garments)) for garments in outfits if len(set(garments)) > 1]


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: write a simulated catalogue and interactions table."""
    parser = argparse.ArgumentParser(description="Simulate a catalogue and its shoppers' interactions.")
    parser.add_argument("--out", type=Path, required=True, help="folder for catalogue.parquet and interactions.parquet")
    parser.add_argument("--garments", type=int, default=2000)
    parser.add_argument("--shoppers", type=int, default=1000)
    parser.add_argument("--views", type=int, default=30, help="garment views per shopper")
    parser.add_argument("--latent-dim", type=int, default=16, help="size of the simulated content latents")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sessions", type=int, default=0,
        help="outfit sessions per shopper instead of browsing (adds session_id and purchases.parquet)",
    )
    parser.add_argument(
        "--size-offset-share", type=float, default=0.0,
        help="share of garments with a chart that run one size small or large (sessions only)",
    )
    args = parser.parse_args(argv)
    catalogue = synthetic_catalogue(args.garments, args.latent_dim, seed=args.seed)
    if args.sessions:
        sessions = OutfitSessionSimulator(catalogue, seed=args.seed, size_offset_share=args.size_offset_share)
        interactions, purchases = sessions.sessions(sessions.make_shoppers(args.shoppers), args.sessions)
        args.out.mkdir(parents=True, exist_ok=True)
        catalogue.save(args.out / "catalogue.parquet")
        write_table(interactions, args.out / "interactions.parquet")
        write_table(purchases, args.out / "purchases.parquet")
        print(f"simulated: {len(purchases)} purchases in {interactions['session_id'].nunique()} sessions, "
              f"{100 * purchases['returned'].mean():.1f} returns per 100 purchases -> {args.out}")
        return
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
