"""The fashion catalogue the recommender serves: garments with a category, a content latent and a price.

A garment's category is its Fashion-MNIST label (0-9, ``CATEGORY_NAMES``); its content latent
is the code GarmentService's VAE gives its picture, which lets a garment with no interactions
be placed in the recommender's item space (cold start). ``synthetic_catalogue`` makes a
seeded catalogue with latents clustered per category, for tests, benchmarks and the default
embedded service when no real latents are at hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tryon.shared.contract import CATEGORY_NAMES
from tryon.shared.files import atomic_write

TOP_CATEGORIES = frozenset({0, 2, 4, 6})
"""Worn on the upper body: t_shirt_top, pullover, coat, shirt."""
BOTTOM_CATEGORIES = frozenset({1})
"""Worn on the legs: trouser."""
DRESS_CATEGORIES = frozenset({3})
"""A dress stands for a top and a bottom."""
SHOE_CATEGORIES = frozenset({5, 7, 9})
"""Footwear: sandal, sneaker, ankle_boot."""

LATENT_COLUMN_PREFIX = "latent_"


@dataclass(frozen=True)
class Garment:
    """One catalogue garment."""

    garment_id: str
    category: int
    content_latent: np.ndarray = field(repr=False)
    price_minor: int = 0
    name: str = ""
    size_chart_id: str = ""
    """Shipped size chart of the garment (BodyService's chart ids); empty when none."""


class Catalogue:
    """Garments in a fixed order, with lookups by id and column arrays for vector maths."""

    def __init__(self, garments: Sequence[Garment]) -> None:
        if not garments:
            raise ValueError("a catalogue needs at least one garment")
        ids = [g.garment_id for g in garments]
        if len(set(ids)) != len(ids):
            raise ValueError("garment ids must be unique in a catalogue")
        dims = {len(g.content_latent) for g in garments}
        if len(dims) != 1:
            raise ValueError(f"all content latents must have the same size; got sizes {sorted(dims)}")
        self.garments = list(garments)
        self.garment_ids = ids
        self.categories = np.array([g.category for g in garments], dtype=np.int64)
        self.latents = np.stack([np.asarray(g.content_latent, dtype=np.float32) for g in garments])
        self.position = {garment_id: i for i, garment_id in enumerate(ids)}

    @property
    def latent_dim(self) -> int:
        """Size of the content latents."""
        return int(self.latents.shape[1])

    def __len__(self) -> int:
        return len(self.garments)

    def __contains__(self, garment_id: object) -> bool:
        return garment_id in self.position

    def __getitem__(self, garment_id: str) -> Garment:
        return self.garments[self.position[garment_id]]

    def to_frame(self) -> pd.DataFrame:
        """One row per garment: garment_id, category, name, price_minor, size_chart_id, latent_0..latent_{d-1}."""
        frame = pd.DataFrame(
            {
                "garment_id": self.garment_ids,
                "category": self.categories,
                "name": [g.name for g in self.garments],
                "price_minor": [g.price_minor for g in self.garments],
                "size_chart_id": [g.size_chart_id for g in self.garments],
            }
        )
        latents = pd.DataFrame(
            self.latents, columns=[f"{LATENT_COLUMN_PREFIX}{i}" for i in range(self.latent_dim)]
        )
        return pd.concat([frame, latents], axis=1)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Catalogue:
        """Rebuild a catalogue from ``to_frame``'s columns."""
        latent_columns = sorted(
            (c for c in frame.columns if str(c).startswith(LATENT_COLUMN_PREFIX)),
            key=lambda c: int(str(c).removeprefix(LATENT_COLUMN_PREFIX)),
        )
        missing = {"garment_id", "category"} - set(frame.columns)
        if missing or not latent_columns:
            raise ValueError(
                f"a catalogue table needs garment_id, category and latent_0.. columns; missing {sorted(missing) or 'latents'}"
            )
        latents = frame[latent_columns].to_numpy(dtype=np.float32)
        names = frame["name"].fillna("").astype(str) if "name" in frame else [""] * len(frame)
        prices = frame["price_minor"].astype(int) if "price_minor" in frame else [0] * len(frame)
        charts = (
            ["" if pd.isna(chart) else str(chart) for chart in frame["size_chart_id"]]
            if "size_chart_id" in frame
            else [""] * len(frame)
        )
        return cls(
            [
                Garment(str(g), int(c), latent, int(p), str(n), str(chart))
                for g, c, latent, p, n, chart in zip(frame["garment_id"], frame["category"], latents, prices, names, charts)
            ]
        )

    def save(self, path: Path) -> None:
        """Write the catalogue as Parquet (``.parquet``) or CSV (anything else, ``.csv.gz`` compressed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_table(self.to_frame(), path)

    @classmethod
    def load(cls, path: Path) -> Catalogue:
        """Read a catalogue written by ``save`` (Parquet or CSV)."""
        return cls.from_frame(read_table(path, dtype={"garment_id": str}))


def read_table(path: Path, dtype: dict | None = None) -> pd.DataFrame:
    """Read a Parquet file (by suffix) or a CSV file with pandas."""
    path = Path(path)
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        return frame.astype(dtype) if dtype else frame
    return pd.read_csv(path, dtype=dtype)


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write a table as Parquet (``.parquet``) or CSV, atomically."""
    path = Path(path)
    if path.suffix == ".parquet":
        atomic_write(path, lambda temporary: frame.to_parquet(temporary, index=False))
    else:
        compression = "gzip" if path.name.endswith(".gz") else None
        atomic_write(path, lambda temporary: frame.to_csv(temporary, index=False, compression=compression))


def synthetic_catalogue(
    n_garments: int,
    latent_dim: int = 16,
    seed: int = 0,
    categories: Iterable[int] = range(len(CATEGORY_NAMES)),
    id_prefix: str = "g",
) -> Catalogue:
    """A seeded catalogue whose content latents cluster by category, with style sub-clusters.

    Each category gets a centre; each garment is its category centre plus one of a few
    style offsets shared across categories (so that "style" is a direction shoppers can
    prefer whatever they buy) plus noise. Prices follow a log-normal per category.
    """
    rng = np.random.default_rng(seed)
    categories = list(categories)
    category_centres = rng.normal(scale=2.0, size=(len(CATEGORY_NAMES), latent_dim))
    style_offsets = rng.normal(scale=1.0, size=(8, latent_dim))
    labels = rng.choice(categories, size=n_garments)
    styles = rng.integers(0, len(style_offsets), size=n_garments)
    latents = category_centres[labels] + style_offsets[styles] + 0.3 * rng.normal(size=(n_garments, latent_dim))
    base_price = np.array([1500, 4000, 3500, 6000, 9000, 3000, 3000, 6000, 5000, 8000])
    prices = (base_price[labels] * rng.lognormal(0.0, 0.3, size=n_garments)).astype(int)
    width = len(str(n_garments - 1))
    return Catalogue(
        [
            Garment(
                garment_id=f"{id_prefix}{i:0{width}d}",
                category=int(labels[i]),
                content_latent=latents[i].astype(np.float32),
                price_minor=int(prices[i]),
                name=f"{CATEGORY_NAMES[labels[i]]} style {styles[i]}",
            )
            for i in range(n_garments)
        ]
    )
