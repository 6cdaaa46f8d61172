"""The recommendation engine: Mult-VAE or RecVAE fold-in, FAISS retrieval, live state and its snapshots.

A shopper's query vector is ``[h(mu(x)), 1]`` (RecVAE: ``[mu(x), 1]``) for the shopper's current
weighted history row ``x``; every garment's vector is ``[W_i, b_i]`` from the decoder's last
layer, so the inner product is exactly the model's logit and a FAISS inner-product search
returns the model's top garments. Both families serve through ``multvae.ServableModel``. A garment that entered the catalogue after training (or never had an
interaction) gets its vector from its content latent through a ridge-regression map fitted
on the garments that have both (``ColdStartMap``), so it is recommendable at once.

State that events change (histories, garments registered since training, bodies, and the
ids of the events applied) lives here, behind locks, and can be snapshotted and restored;
applying an event twice is a no-op, so a replay from an older offset is harmless.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from tryon.services.recommendation.compatibility import (
    TypeAwareCompatibility,
    embed_catalogue,
    load_compatibility,
    save_compatibility,
)
from tryon.services.recommendation.catalogue import (
    BOTTOM_CATEGORIES,
    CATEGORY_NAMES,
    DRESS_CATEGORIES,
    SHOE_CATEGORIES,
    TOP_CATEGORIES,
    Catalogue,
    Garment,
)
from tryon.services.recommendation.fit import (
    FIT_POOL,
    FIT_THRESHOLD,
    FIT_WEIGHT,
    RETURN_REASONS,
    SIZE_STEPS,
    FitProfile,
    SizeOffsets,
    best_size,
    fit_terms,
    most_probable_offset,
    profile_from_state,
    profile_state,
)
from tryon.services.recommendation.history import HistoryStore, InteractionKind
from tryon.services.recommendation.index import ItemIndex
from tryon.services.recommendation.multvae import ServableModel, load_model, save_model
from tryon.services.recommendation.outfit_index import ANCHOR_CANDIDATES, ANCHOR_COMPLETIONS, OutfitIndex
from tryon.services.recommendation.outfits import missing_roles, role_of
from tryon.shared.errors import FailedPrecondition, InvalidArgument, InvalidEvent, NotFound
from tryon.shared.files import atomic_write

logger = logging.getLogger(__name__)

MODEL_DIR = "model"
ARTIFACTS_FILE = "artifacts.json"
CATALOGUE_FILE = "catalogue.parquet"
ITEM_INDEX_FILE = "items.faiss"
SIMILAR_INDEX_FILE = "similar.faiss"
COMPATIBILITY_DIR = "compatibility"

QUERY_CACHE_SIZE = 200_000
"""Shoppers whose query vectors are kept between requests (the cache starts over when full)."""

OUTFIT_CANDIDATES_PER_ROLE = 12
"""Garments per outfit role (top, bottom, dress, shoes) combined into outfits."""
COMPATIBILITY_WEIGHT = 1.0
"""Weight of the style compatibility of an outfit's pieces against the shopper's scores."""
ROLE_CATEGORIES_OF = {"top": TOP_CATEGORIES, "dress": DRESS_CATEGORIES}
"""Categories whose garments anchor the outfits of RecommendOutfits."""
_ANCHOR_ROLE_OF = {label: role for role, labels in ROLE_CATEGORIES_OF.items() for label in labels}
_ANCHOR_CODE_OF = {label: code for code, labels in enumerate(ROLE_CATEGORIES_OF.values()) for label in labels}


class ScoredItem(NamedTuple):
    """A garment with its score for one answer, and its advised size for the body asked about."""

    garment_id: str
    score: float
    category: int
    advised_size: str = ""
    fit_probability: float = 0.0
    size_offset: int = 0
    """Sizes the garment runs off its chart, as learned (``fit.SizeOffsets``; negative: small)."""


@dataclass(frozen=True)
class Recommendation:
    """Garments for a shopper, and whether they came from popularity (no usable history)."""

    garments: list[ScoredItem]
    cold_start: bool
    history_size: int


@dataclass(frozen=True)
class OutfitChoice:
    """An outfit's garments (top + bottom + shoes, or dress + shoes) and its score."""

    garments: list[ScoredItem]
    score: float


class ColdStartMap:
    """Ridge least squares from ``[content_latent, one_hot(category), 1]`` to item vectors ``[W_i, b_i]``.

    The category is part of the input because the garment VAE is class-conditional: its content
    latent describes style given the category, not the category itself.
    """

    def __init__(self, coefficients: np.ndarray) -> None:
        self.coefficients = np.asarray(coefficients, dtype=np.float64)

    @property
    def latent_dim(self) -> int:
        """Size of the content latents the map takes."""
        return self.coefficients.shape[0] - len(CATEGORY_NAMES) - 1

    @staticmethod
    def _design(latents: np.ndarray, categories: np.ndarray) -> np.ndarray:
        latents = np.atleast_2d(np.asarray(latents, dtype=np.float64))
        one_hot = np.eye(len(CATEGORY_NAMES))[np.asarray(categories, dtype=np.int64).reshape(-1)]
        return np.hstack([latents, one_hot, np.ones((len(latents), 1))])

    @classmethod
    def fit(cls, latents: np.ndarray, categories: np.ndarray, item_vectors: np.ndarray, l2: float = 1.0) -> ColdStartMap:
        """Solve (X^T X + l2 I) B = X^T Y for the design X (the intercept is not penalised)."""
        design = cls._design(latents, categories)
        penalty = l2 * np.eye(design.shape[1])
        penalty[-1, -1] = 0.0
        coefficients = np.linalg.solve(design.T @ design + penalty, design.T @ item_vectors.astype(np.float64))
        return cls(coefficients)

    def __call__(self, latents: np.ndarray, categories: np.ndarray) -> np.ndarray:
        return (self._design(latents, categories) @ self.coefficients).astype(np.float32)


def similarity_vectors(item_vectors: np.ndarray) -> np.ndarray:
    """Unit-length ``W_i`` (the bias left out): inner product = cosine, free of popularity."""
    weights = np.asarray(item_vectors, dtype=np.float32)[:, :-1]
    return weights / np.maximum(np.linalg.norm(weights, axis=1, keepdims=True), 1e-12)


def sparse_user_query(model: ServableModel, positions: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
    """``model.user_queries`` for one history given as (column positions, weights), without a dense row.

    Negative weights count as zero and the rest are scaled to unit length, as the models prepare
    a dense row; the model then reads only the history's columns (``history_query``). Returns
    None when no weight is positive (nothing to fold in).
    """
    weights = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    keep = weights > 0
    if not keep.any():
        return None
    positions = np.asarray(positions, dtype=np.int64)[keep]
    weights = weights[keep] / np.linalg.norm(weights[keep])
    return model.history_query(torch.from_numpy(positions), torch.from_numpy(weights.astype(np.float32)))


@dataclass
class ModelArtifacts:
    """What the train command writes and the service loads."""

    model: ServableModel
    model_items: list[str]
    catalogue: Catalogue
    cold_start_map: ColdStartMap
    popularity: dict[str, float]
    item_index: ItemIndex
    similar_index: ItemIndex
    compatibility: TypeAwareCompatibility | None = None

    def save(self, directory: Path) -> None:
        """Write the model, the catalogue, the maps and both indexes under ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_model(self.model, directory / MODEL_DIR)
        self.catalogue.save(directory / CATALOGUE_FILE)
        self.item_index.save(directory / ITEM_INDEX_FILE)
        self.similar_index.save(directory / SIMILAR_INDEX_FILE)
        if self.compatibility is not None:
            save_compatibility(self.compatibility, directory / COMPATIBILITY_DIR)
        payload = {
            "model_items": self.model_items,
            "cold_start_map": self.cold_start_map.coefficients.tolist(),
            "popularity": self.popularity,
        }
        atomic_write(directory / ARTIFACTS_FILE, json.dumps(payload))

    @classmethod
    def load(cls, directory: Path, *, nprobe: int | None = None, ef_search: int | None = None) -> ModelArtifacts:
        """Read what ``save`` wrote; nprobe/ef_search tune the loaded indexes."""
        directory = Path(directory)
        payload = json.loads((directory / ARTIFACTS_FILE).read_text(encoding="utf-8"))
        return cls(
            model=load_model(directory / MODEL_DIR),
            model_items=list(payload["model_items"]),
            catalogue=Catalogue.load(directory / CATALOGUE_FILE),
            cold_start_map=ColdStartMap(np.asarray(payload["cold_start_map"])),
            popularity={g: float(p) for g, p in payload["popularity"].items()},
            item_index=ItemIndex.load(directory / ITEM_INDEX_FILE, nprobe=nprobe, ef_search=ef_search),
            similar_index=ItemIndex.load(directory / SIMILAR_INDEX_FILE, nprobe=nprobe, ef_search=ef_search),
            compatibility=(
                load_compatibility(directory / COMPATIBILITY_DIR) if (directory / COMPATIBILITY_DIR).exists() else None
            ),
        )

    @staticmethod
    def exists(directory: Path) -> bool:
        """True when ``directory`` holds a complete set of artifacts."""
        directory = Path(directory)
        return all((directory / name).exists() for name in (ARTIFACTS_FILE, MODEL_DIR, CATALOGUE_FILE, ITEM_INDEX_FILE))


class Recommender:
    """Answers recommendation queries from a trained model and applies events to live state."""

    def __init__(self, artifacts: ModelArtifacts, histories: HistoryStore | None = None) -> None:
        self.model = artifacts.model.eval()
        self.cold_start_map = artifacts.cold_start_map
        self.item_index = artifacts.item_index
        self.similar_index = artifacts.similar_index
        self.histories = histories or HistoryStore()
        self._model_position = {g: i for i, g in enumerate(artifacts.model_items)}
        self._lock = threading.RLock()
        self._catalogue_garments: dict[str, Garment] = {g.garment_id: g for g in artifacts.catalogue.garments}
        self._registered: dict[str, Garment] = {}
        self._categories: dict[str, int] = {g: garment.category for g, garment in self._catalogue_garments.items()}
        self._popularity = dict(artifacts.popularity)
        self._popular_order: list[str] = []
        self._category_means = self._means_by_category(artifacts.catalogue)
        self._bodies: dict[str, dict] = {}
        self._fit_profiles: dict[str, FitProfile] = {}
        self.fit_weight = FIT_WEIGHT
        """Weight of ln(fit probability) in rankings with a body (``fit.FIT_WEIGHT``)."""
        self.fit_threshold = FIT_THRESHOLD
        """Fit probability under which a garment is demoted in rankings with a body (``fit.FIT_THRESHOLD``)."""
        self.size_offsets = SizeOffsets()
        """By how many sizes each garment runs off its chart, and which size of each chart each body wears,
        learned from sized purchases and returns."""
        self._query_cache: dict[str, tuple[int, np.ndarray | None]] = {}
        self._trained_vectors = self.model.item_embeddings()
        self._largest_trained_norm = float(np.linalg.norm(self._trained_vectors, axis=1).max(initial=0.0))
        self._category_counts = Counter(int(label) for label in artifacts.catalogue.categories)
        # Outfits come from the learned compatibility space when the artifacts hold one.
        self.outfit_index = (
            OutfitIndex(embed_catalogue(artifacts.compatibility, artifacts.catalogue))
            if artifacts.compatibility is not None
            else None
        )
        self._anchor_roles: tuple[ItemIndex | None, np.ndarray] = (None, np.empty(0, dtype=np.int8))
        """The item index whose int ids' anchor roles ``_anchor_roles_of_ids`` keeps, and those roles."""
        if self.outfit_index is not None:
            self._anchor_roles_of_ids(self.item_index, self.item_index.id_bound())
        self._sort_popularity()

    # ---- lookups -------------------------------------------------------------------------

    @staticmethod
    def _means_by_category(catalogue: Catalogue) -> dict[int, np.ndarray]:
        return {
            int(label): catalogue.latents[catalogue.categories == label].mean(axis=0)
            for label in np.unique(catalogue.categories)
        }

    def _sort_popularity(self) -> None:
        known = self._all_garment_ids()
        self._popular_order = sorted(known, key=lambda g: (-self._popularity.get(g, 0.0), g))

    def _all_garment_ids(self) -> list[str]:
        return [*self._catalogue_garments, *(g for g in self._registered if g not in self._catalogue_garments)]

    def garment(self, garment_id: str) -> Garment | None:
        """The garment with this id (registered since training or from the catalogue), or None."""
        with self._lock:
            return self._registered.get(garment_id) or self._catalogue_garments.get(garment_id)

    def has_garment(self, garment_id: str) -> bool:
        """True when the garment is in the catalogue the service knows."""
        return self.garment(garment_id) is not None

    def fit_profile(self, body_id: str) -> FitProfile:
        """The body's fit profile as its sized purchases corrected it (``SizeOffsets.corrected``; empty when its
        BodyUpdated carried none); NotFound for an unknown body."""
        with self._lock:
            if body_id not in self._bodies:
                raise NotFound(
                    f"body_id {body_id!r} is not known; create the body with BodyService first "
                    "(or wait until its BodyUpdated event has reached the recommender)"
                )
            return self.size_offsets.corrected(body_id, self._fit_profiles.get(body_id, {}))

    def advise(self, items: list[ScoredItem], profile: FitProfile) -> list[ScoredItem]:
        """``items`` with each garment's advised size and its fit probability for the profile's body."""
        with self._lock:
            garments = [self.garment(item.garment_id) for item in items]
            charts = [garment.size_chart_id if garment else "" for garment in garments]
            posteriors = [
                self.size_offsets.posterior(item.garment_id) if chart_id else None for item, chart_id in zip(items, charts)
            ]
        advised = []
        for item, chart_id, offsets in zip(items, charts, posteriors):
            label, probability = best_size(profile, chart_id, offsets)
            advised.append(
                item._replace(
                    advised_size=label,
                    fit_probability=probability if label else 0.0,
                    size_offset=most_probable_offset(offsets),
                )
            )
        return advised

    def _fit_ranked(self, items: list[ScoredItem], profile: FitProfile, k: int) -> list[ScoredItem]:
        """The ``k`` best of ``items`` by score + the fit term of their best size, each with its advice."""
        advised = self.advise(items, profile)
        terms = self._fit_terms(advised)
        ranked = sorted(
            (item._replace(score=item.score + float(term)) for item, term in zip(advised, terms)),
            key=lambda item: -item.score,
        )
        return ranked[:k]

    def _fit_terms(self, items: list[ScoredItem]) -> np.ndarray:
        """The fit term of each advised item (``fit.fit_terms``; p = 1 without an advised size)."""
        probabilities = (item.fit_probability if item.advised_size else 1.0 for item in items)
        return fit_terms(probabilities, self.fit_weight, self.fit_threshold)

    def has_body(self, body_id: str) -> bool:
        """True when a BodyUpdated for this body was applied and no BodyDeleted after it."""
        with self._lock:
            return body_id in self._bodies

    @property
    def garment_count(self) -> int:
        """Garments that can be recommended."""
        return len(self.item_index)

    def _category(self, garment_id: str) -> int:
        return self._categories[garment_id]

    # ---- queries -------------------------------------------------------------------------

    def user_query(self, user_id: str) -> np.ndarray | None:
        """The shopper's query vector from their current history (cached until it changes)."""
        version = self.histories.version(user_id)
        cached = self._query_cache.get(user_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        history = self.histories.get(user_id)
        positions, weights, outside = [], [], []
        for garment_id, weight in history.weights.items():
            position = self._model_position.get(garment_id)
            if position is not None:
                positions.append(position)
                weights.append(weight)
            elif weight > 0:
                outside.append((garment_id, weight))
        query = sparse_user_query(self.model, np.asarray(positions), np.asarray(weights)) if positions else None
        if query is None and outside:
            # Only garments the model has never seen: lean on their own item vectors.
            vectors = self._vectors_of([g for g, _ in outside])
            if vectors is not None:
                mean = np.average(vectors[:, :-1], axis=0, weights=[w for _, w in outside])
                query = np.append(mean, 1.0).astype(np.float32)
        if len(self._query_cache) >= QUERY_CACHE_SIZE:
            self._query_cache.clear()
        self._query_cache[user_id] = (version, query)
        return query

    def _vectors_of(self, garment_ids: list[str]) -> np.ndarray | None:
        with self._lock:
            garments = [self.garment(g) for g in garment_ids]
        known = [g for g in garments if g is not None]
        if not known:
            return None
        return self._cold_start_vectors(np.stack([g.content_latent for g in known]), [g.category for g in known])

    def _cold_start_vectors(self, latents: np.ndarray, categories: list[int]) -> np.ndarray:
        """Item vectors of garments without interactions, from their content latents.

        The map is linear, so a latent far from every trained one (yet inside the contract's norm
        bound) would give a vector longer than any trained garment's and come first for nearly
        every shopper: vectors are shortened to the longest trained vector's norm.
        """
        vectors = self.cold_start_map(latents, categories)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if self._largest_trained_norm > 0:
            vectors *= np.minimum(1.0, self._largest_trained_norm / np.maximum(norms, 1e-12)).astype(vectors.dtype)
        return vectors

    def recommend(
        self,
        user_id: str,
        k: int,
        categories: Collection[int] | None = None,
        include_seen: bool = False,
        body_id: str = "",
    ) -> Recommendation:
        """The ``k`` best garments for a shopper, optionally within categories, unseen by default.

        With a body, the shopper's ``k + FIT_POOL`` best garments by taste are ranked again by taste
        plus the fit term of each garment's best size (``fit``), and each carries its advised size;
        a shopper without history gets the popular garments in popularity order with their advice.
        An unknown body -> NotFound.
        """
        profile = self.fit_profile(body_id) if body_id else None
        history = self.histories.get(user_id)
        seen = history.seen if not include_seen else frozenset()
        wanted = frozenset(categories) if categories else None

        def keep(garment_id: str) -> bool:
            if garment_id in seen:
                return False
            return wanted is None or self._category(garment_id) in wanted

        query = self.user_query(user_id)
        if query is None:
            items = self._popular(k, keep)
            if profile is not None:
                items = self.advise(items, profile)
            return Recommendation(items, cold_start=True, history_size=history.interaction_count)
        fetch = k + FIT_POOL if profile is not None else k
        found = self.item_index.search(query[None, :], fetch, keep=keep, keep_rate=self._share_of(wanted), skip=len(seen))[0]
        items = [ScoredItem(g, s, self._category(g)) for g, s in found]
        if profile is not None:
            items = self._fit_ranked(items, profile, k)
        return Recommendation(items, cold_start=False, history_size=history.interaction_count)

    def _share_of(self, categories: frozenset[int] | None) -> float:
        """The share of garments in ``categories`` (1 for all), to size filtered searches."""
        if categories is None:
            return 1.0
        with self._lock:
            counts = self._category_counts
            total = sum(counts.values())
        return sum(counts.get(label, 0) for label in categories) / max(total, 1)

    def _popular(self, k: int, keep) -> list[ScoredItem]:
        with self._lock:
            order = self._popular_order
        chosen = []
        for garment_id in order:
            if keep(garment_id):
                chosen.append(ScoredItem(garment_id, self._popularity.get(garment_id, 0.0), self._category(garment_id)))
                if len(chosen) == k:
                    break
        return chosen

    def similar(self, garment_id: str, k: int) -> list[ScoredItem]:
        """The ``k`` garments nearest to a garment by cosine of item vectors, without itself."""
        garment = self.garment(garment_id)
        if garment is None:
            raise NotFound(f"garment_id {garment_id!r} is not in the catalogue")
        query = similarity_vectors(self._item_vector(garment_id))
        found = self.similar_index.search(query, k, keep=lambda g: g != garment_id, skip=1)[0]
        return [ScoredItem(g, s, self._category(g)) for g, s in found]

    def _item_vector(self, garment_id: str) -> np.ndarray:
        position = self._model_position.get(garment_id)
        if position is not None:
            return self._trained_vectors[position : position + 1]
        garment = self.garment(garment_id)
        return self._cold_start_vectors(garment.content_latent, [garment.category])

    def outfits(self, user_id: str, k: int, body_id: str = "") -> tuple[list[OutfitChoice], bool]:
        """The ``k`` best outfits for a shopper, and whether they came from popularity.

        An outfit is a top + a bottom + shoes, or a dress + shoes. Its score is the mean of the
        pieces' standardised scores for the shopper plus ``COMPATIBILITY_WEIGHT`` times the
        outfit's (standardised) compatibility. With a body, each piece's standardised score gains
        the fit term of its best size (``fit``) and each piece carries its advised size; an
        unknown body -> NotFound.
        """
        profile = self.fit_profile(body_id) if body_id else None
        history = self.histories.get(user_id)
        disliked = {g for g, w in history.weights.items() if w < 0}
        query = self.user_query(user_id)
        cold = query is None
        if self.outfit_index is not None:
            return self._learned_outfits(query, disliked, k, profile), cold
        roles = {"top": TOP_CATEGORIES, "bottom": BOTTOM_CATEGORIES, "dress": DRESS_CATEGORIES, "shoes": SHOE_CATEGORIES}
        candidates: dict[str, list[ScoredItem]] = {}
        for role, allowed in roles.items():
            def keep(garment_id: str, allowed=allowed) -> bool:
                return garment_id not in disliked and self._category(garment_id) in allowed

            if cold:
                candidates[role] = self._popular(OUTFIT_CANDIDATES_PER_ROLE, keep)
            else:
                found = self.item_index.search(
                    query[None, :], OUTFIT_CANDIDATES_PER_ROLE, keep=keep, keep_rate=self._share_of(allowed),
                    skip=len(disliked),
                )[0]
                candidates[role] = [ScoredItem(g, s, self._category(g)) for g, s in found]
        return self._combine_outfits(candidates, k, profile), cold

    def _taste(self, query: np.ndarray | None, garment_ids: list[str]) -> np.ndarray:
        """The shopper's scores of garments (their model logits), or popularity when cold."""
        if query is None:
            return np.array([self._popularity.get(g, 0.0) for g in garment_ids], dtype=np.float64)
        positions = [self._model_position.get(g, -1) for g in garment_ids]
        vectors = self._trained_vectors[positions]
        for row in (row for row, position in enumerate(positions) if position < 0):
            vectors[row] = self._item_vector(garment_ids[row])[0]
        return vectors.astype(np.float64) @ query.astype(np.float64)

    def _learned_outfits(
        self, query: np.ndarray | None, disliked: set[str], k: int, profile: FitProfile | None = None
    ) -> list[OutfitChoice]:
        """Outfits around the shopper's favourite tops and dresses, completed in the compatibility space.

        Score: the mean of the pieces' standardised taste plus ``COMPATIBILITY_WEIGHT`` times the
        outfit's standardised compatibility (both standardised over the outfits considered).
        """
        anchors = self._outfit_anchors(query, disliked)
        space = self.outfit_index.space
        position, names, categories = space.position, space.garment_ids, self._categories
        keep_liked = (lambda g: g not in disliked) if disliked else None
        drafts = []
        for role in ROLE_CATEGORIES_OF:
            positions = np.array(
                [position[g] for g in anchors if g in position and _ANCHOR_ROLE_OF.get(categories[g]) == role],
                dtype=np.int64,
            )
            drafts += [
                ([names[anchor], *[names[p] for p in completion.added]], completion.compatibility)
                for anchor, completion in self.outfit_index.complete_anchors(
                    positions, ANCHOR_COMPLETIONS, keep=keep_liked, candidates=ANCHOR_CANDIDATES
                )
            ]
        return self._rank_outfits(query, drafts, k, profile)

    def _outfit_anchors(self, query: np.ndarray | None, disliked: set[str]) -> list[str]:
        """The shopper's ``OUTFIT_CANDIDATES_PER_ROLE`` favourite tops, then dresses (popular ones when cold).

        One search fetches as many of the shopper's best garments as the rarer role's own search
        would (its share of the catalogue sized as ``ItemIndex.search`` sizes a filtered search),
        and each role takes its best from them: the same garments as a search per role, for one
        scan of the item index instead of two. A role left short searches on its own.
        """
        def keeper(allowed: frozenset[int]):
            return lambda garment_id: garment_id not in disliked and self._category(garment_id) in allowed

        if query is None:
            return [
                item.garment_id
                for role in ROLE_CATEGORIES_OF
                for item in self._popular(OUTFIT_CANDIDATES_PER_ROLE, keeper(ROLE_CATEGORIES_OF[role]))
            ]
        rarest = min(self._share_of(allowed) for allowed in ROLE_CATEGORIES_OF.values())
        fetch = int(1.5 * OUTFIT_CANDIDATES_PER_ROLE / max(rarest, 1e-3)) + 16
        index = self.item_index
        # The disliked are among the first fetch + len(disliked) hits at most: the first fetch others are the best.
        best = index.search_ids(query[None, :], fetch + len(disliked))[0]
        best = best[best >= 0]
        if disliked:
            best = best[~np.isin(best, index.int_ids_of(disliked))]
        best = best[:fetch]
        roles = self._anchor_roles_of_ids(index, int(best.max(initial=-1)) + 1)[best]
        chosen = {
            role: index.garment_ids_of(best[roles == code][:OUTFIT_CANDIDATES_PER_ROLE].tolist())
            for code, role in enumerate(ROLE_CATEGORIES_OF)
        }
        for role, allowed in ROLE_CATEGORIES_OF.items():
            if len(chosen[role]) < OUTFIT_CANDIDATES_PER_ROLE and len(best) == fetch:
                found = self.item_index.search(
                    query[None, :], OUTFIT_CANDIDATES_PER_ROLE, keep=keeper(allowed), keep_rate=self._share_of(allowed),
                    skip=len(disliked),
                )[0]
                chosen[role] = [g for g, _ in found]
        return [g for garments in chosen.values() for g in garments]

    def _anchor_roles_of_ids(self, index: ItemIndex, bound: int) -> np.ndarray:
        """The anchor role (position in ``ROLE_CATEGORIES_OF``, -1 for none) of ``index``'s int ids, at least below ``bound``.

        Each int id's role is looked up once and kept: reading a 200-hit search's roles from an
        array costs a fraction of looking up each hit's category by its garment id. A registration
        that changes a garment's category starts them over (``_add_registered``).
        """
        with self._lock:
            known, roles = self._anchor_roles
            if known is not index:
                roles = np.empty(0, dtype=np.int8)
            if len(roles) < bound:
                categories = self._categories
                added = [
                    _ANCHOR_CODE_OF.get(categories.get(g, -1), -1)
                    for g in index.garment_ids_of(range(len(roles), index.id_bound()))
                ]
                roles = np.concatenate([roles, np.array(added, dtype=np.int8)])
                self._anchor_roles = (index, roles)
            return roles

    def _rank_outfits(
        self, query, drafts: list[tuple[list[str], float]], k: int, profile: FitProfile | None = None
    ) -> list[OutfitChoice]:
        if not drafts:
            return []
        pieces = sorted({g for garments, _ in drafts for g in garments})
        taste_values = self._taste(query, pieces)
        taste_mean, taste_spread = taste_values.mean(), taste_values.std() or 1.0
        advice = {item.garment_id: item for item in self.advise([ScoredItem(g, 0.0, 0) for g in pieces], profile)} if profile is not None else {}
        if advice:
            # The fit term joins each piece's standardised taste (in spreads of taste).
            taste_values = taste_values + taste_spread * self._fit_terms([advice[g] for g in pieces])
        taste = dict(zip(pieces, taste_values.tolist()))
        compatibilities = np.array([c for _, c in drafts])
        compat_mean, compat_spread = compatibilities.mean(), compatibilities.std() or 1.0
        mean_tastes = np.array([sum(taste[g] for g in garments) / len(garments) for garments, _ in drafts])
        scores = (mean_tastes - taste_mean) / taste_spread + COMPATIBILITY_WEIGHT * (
            compatibilities - compat_mean
        ) / compat_spread
        order = np.argsort(-scores, kind="stable").tolist()
        answered = [order[i] for i in self._spread([drafts[d][0] for d in order], k)]
        scores = scores.tolist()
        # Pieces are built only for the outfits answered.
        return [OutfitChoice([self._piece(g, taste[g], advice) for g in drafts[d][0]], scores[d]) for d in answered]

    def _piece(self, garment_id: str, score: float, advice: dict[str, ScoredItem]) -> ScoredItem:
        advised = advice.get(garment_id)
        if advised is None:
            return ScoredItem(garment_id, score, self._category(garment_id))
        return advised._replace(score=score, category=self._category(garment_id))

    def complete_outfit(self, garment_ids: list[str], k: int, user_id: str = "") -> list[OutfitChoice]:
        """The ``k`` best completions of an outfit holding ``garment_ids``, by compatibility (and taste).

        Unknown garments -> NotFound; garments that cannot share an outfit (two of a role, a dress
        with a top or a bottom, a bag) -> InvalidArgument; no compatibility space -> FailedPrecondition.
        """
        if self.outfit_index is None:
            raise FailedPrecondition(
                "no compatibility model is loaded: train the recommender on interactions with session ids"
            )
        space = self.outfit_index.space
        roles = []
        for position, garment_id in enumerate(garment_ids):
            garment = self.garment(garment_id)
            if garment is None:
                raise NotFound(f"garment_ids[{position}] {garment_id!r} is not in the catalogue")
            role = role_of(garment.category)
            if role is None:
                raise InvalidArgument(f"garment_ids[{position}] {garment_id!r} is a bag, which is no part of an outfit")
            if garment_id not in space.position:
                raise FailedPrecondition(
                    f"garment_ids[{position}] {garment_id!r} was registered after the compatibility model was "
                    "trained; it joins outfits after the next training"
                )
            roles.append(role)
        missing = missing_roles(roles)
        given = [space.position[g] for g in garment_ids]
        if not missing:
            return [OutfitChoice([ScoredItem(g, 0.0, self._category(g)) for g in garment_ids], space.outfit_score(given))]
        completions = self.outfit_index.complete(given, missing, k)
        if not user_id:
            return [
                OutfitChoice(
                    [ScoredItem(g, 0.0, self._category(g)) for g in garment_ids]
                    + [ScoredItem(space.garment_ids[p], 0.0, self._category(space.garment_ids[p])) for p in c.added],
                    c.compatibility,
                )
                for c in completions
            ]
        drafts = [([*garment_ids, *(space.garment_ids[p] for p in c.added)], c.compatibility) for c in completions]
        return self._rank_outfits(self.user_query(user_id), drafts, k)

    def _style(self, garment_id: str) -> np.ndarray:
        garment = self.garment(garment_id)
        centred = garment.content_latent - self._category_means.get(garment.category, 0.0)
        return centred / max(float(np.linalg.norm(centred)), 1e-12)

    def _combine_outfits(
        self, candidates: dict[str, list[ScoredItem]], k: int, profile: FitProfile | None = None
    ) -> list[OutfitChoice]:
        pooled = np.array([item.score for items in candidates.values() for item in items], dtype=np.float64)
        if pooled.size == 0:
            return []
        mean, spread = pooled.mean(), pooled.std() or 1.0
        if profile is not None:
            # As in _rank_outfits: the fit term joins each piece's standardised score.
            candidates = {role: self.advise(items, profile) for role, items in candidates.items()}
            candidates = {
                role: [
                    item._replace(score=item.score + spread * float(term))
                    for item, term in zip(items, self._fit_terms(items))
                ]
                for role, items in candidates.items()
            }
        styles = {item.garment_id: self._style(item.garment_id) for items in candidates.values() for item in items}

        def outfit(pieces: tuple[ScoredItem, ...]) -> OutfitChoice:
            preference = float(np.mean([(p.score - mean) / spread for p in pieces]))
            pairs = [(a, b) for i, a in enumerate(pieces) for b in pieces[i + 1 :]]
            compatibility = float(np.mean([styles[a.garment_id] @ styles[b.garment_id] for a, b in pairs]))
            return OutfitChoice(list(pieces), preference + COMPATIBILITY_WEIGHT * compatibility)

        options = [outfit((t, b, s)) for t in candidates["top"] for b in candidates["bottom"] for s in candidates["shoes"]]
        options += [outfit((d, s)) for d in candidates["dress"] for s in candidates["shoes"]]
        options.sort(key=lambda o: -o.score)
        return [options[i] for i in self._spread([[p.garment_id for p in o.garments] for o in options], k)]

    @staticmethod
    def _spread(outfits: list[list[str]], k: int) -> list[int]:
        """Positions of the best ``k`` of ``outfits`` (garment ids, best first), each garment in few outfits where possible."""
        # Spread the answer over different garments: each piece in at most `limit` outfits first.
        limit = max(1, math.ceil(k / OUTFIT_CANDIDATES_PER_ROLE))
        uses: dict[str, int] = {}
        chosen, held_back = [], []
        for position, garments in enumerate(outfits):
            if all(uses.get(g, 0) < limit for g in garments):
                chosen.append(position)
                for g in garments:
                    uses[g] = uses.get(g, 0) + 1
            else:
                held_back.append(position)
            if len(chosen) == k:
                return chosen
        return sorted(chosen + held_back[: k - len(chosen)])

    # ---- events --------------------------------------------------------------------------

    def apply_interaction(self, user_id: str, garment_id: str, kind: InteractionKind) -> None:
        """Add an interaction to a history. Unknown garment or kind -> InvalidEvent."""
        try:
            kind = InteractionKind(kind)
        except ValueError:
            raise InvalidEvent(f"interaction type {kind!r} is not one of {[k.name for k in InteractionKind]}") from None
        with self._lock:
            if not self.has_garment(garment_id):
                raise InvalidEvent(f"garment_id {garment_id!r} is not in the catalogue")
            self.histories.record(user_id, garment_id, kind)

    def learn_fit(self, user_id: str, garment_id: str, kind: int, size: str, reason: int, body_id: str) -> bool:
        """Learn how the garment's sizes run, and how the buyer's body wears its chart, from a sized PURCHASE or a
        RETURN with its reason (``fit.SizeOffsets``).

        The interaction must keep the contract (the event handler checks it). A purchase teaches
        only with a size and a body whose fit profile covers the garment's chart; a return only for
        TOO_SMALL or TOO_LARGE. True when something was learned.
        """
        with self._lock:
            garment = self.garment(garment_id)
            chart_id = garment.size_chart_id if garment else ""
            if kind == InteractionKind.PURCHASE:
                fit = self._fit_profiles.get(body_id, {}).get(chart_id) if size and body_id else None
                if fit is None or size not in fit.labels:
                    return False
                self.size_offsets.purchase(user_id, garment_id, size, fit, SIZE_STEPS.get(chart_id, 1), (body_id, chart_id))
                return True
            if kind == InteractionKind.RETURN and reason in RETURN_REASONS:
                return self.size_offsets.returned(user_id, garment_id, size, RETURN_REASONS[reason])
            return False

    def forget_user(self, user_id: str) -> None:
        """Forget a shopper's history (and the sized purchases kept for their returns)."""
        with self._lock:
            self.histories.forget(user_id)
            self.size_offsets.forget_user(user_id)
            self._query_cache.pop(user_id, None)

    def register_garment(self, garment: Garment) -> None:
        """Make a new garment recommendable through its content latent.

        The garment must keep the contract, its latent of ``cold_start_map.latent_dim`` numbers
        included; the event handler checks it.
        """
        with self._lock:
            self._add_registered(garment)

    def _add_registered(self, garment: Garment) -> None:
        if self.garment(garment.garment_id) is None:
            self._category_counts[garment.category] += 1
        if self._categories.get(garment.garment_id, garment.category) != garment.category:
            # A garment the model knows keeps its int id: its anchor role is looked up afresh.
            self._anchor_roles = (None, self._anchor_roles[1][:0])
        self._registered[garment.garment_id] = garment
        self._categories[garment.garment_id] = garment.category
        if garment.garment_id in self._model_position:
            return
        vector = self._cold_start_vectors(garment.content_latent, [garment.category])
        self.item_index.add([garment.garment_id], vector)
        self.similar_index.add([garment.garment_id], similarity_vectors(vector))
        if garment.garment_id not in self._popularity:
            # No interactions yet: it ranks last by popularity, so appending keeps the order sorted.
            self._popularity[garment.garment_id] = 0.0
            self._popular_order = [*self._popular_order, garment.garment_id]

    def set_body(self, body_id: str, sex: int, latent: list[float], fit_profile: FitProfile | None = None) -> None:
        """Keep a body's latent code and fit profile (checked against the contract by the event handler).

        A chart whose fit changed (the shopper's numbers changed) drops what purchases taught about the
        body in it; the others keep it.
        """
        profile = dict(fit_profile or {})
        with self._lock:
            known = self._fit_profiles.get(body_id)
            if known is not None:
                changed = [chart for chart in known.keys() | profile.keys() if known.get(chart) != profile.get(chart)]
                if changed:
                    self.size_offsets.forget_body(body_id, changed)
            self._bodies[body_id] = {"sex": int(sex), "latent": [float(v) for v in latent], "fit": profile_state(profile)}
            self._fit_profiles[body_id] = profile

    def forget_body(self, body_id: str) -> None:
        """Forget a body, its fit profile and what its purchases taught about it."""
        with self._lock:
            self._bodies.pop(body_id, None)
            self._fit_profiles.pop(body_id, None)
            self.size_offsets.forget_body(body_id)

    # ---- snapshots -----------------------------------------------------------------------

    def state(self) -> dict:
        """A JSON-ready copy of everything events changed."""
        with self._lock:
            return {
                "histories": self.histories.to_state(),
                "registered": [
                    {
                        "garment_id": g.garment_id,
                        "category": g.category,
                        "content_latent": [float(v) for v in g.content_latent],
                        "price_minor": g.price_minor,
                        "name": g.name,
                        "size_chart_id": g.size_chart_id,
                    }
                    for g in self._registered.values()
                ],
                "bodies": dict(self._bodies),
                "size_offsets": self.size_offsets.state(),
            }

    def restore(self, state: Mapping) -> None:
        """Bring back a state from ``state()`` (on a freshly loaded recommender)."""
        with self._lock:
            self.histories = HistoryStore.from_state(state.get("histories", {}))
            self._query_cache.clear()
            for entry in state.get("registered", []):
                self._add_registered(
                    Garment(
                        entry["garment_id"],
                        int(entry["category"]),
                        np.asarray(entry["content_latent"], dtype=np.float32),
                        int(entry["price_minor"]),
                        entry["name"],
                        entry.get("size_chart_id", ""),
                    )
                )
            self._bodies = dict(state.get("bodies", {}))
            self._fit_profiles = {body: profile_from_state(entry.get("fit", {})) for body, entry in self._bodies.items()}
            self.size_offsets = SizeOffsets.from_state(state.get("size_offsets", {}))


def write_snapshot(path: Path, state: Mapping, offsets: Mapping[str, int]) -> None:
    """Write state and the consumer offsets it corresponds to in one file, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({"offsets": dict(offsets), "state": state}))


def read_snapshot(path: Path) -> tuple[dict, dict[str, int]] | None:
    """The (state, offsets) of a snapshot file, or None when there is none."""
    path = Path(path)
    if not path.exists():
        return None
    payload = json.loads(path.read_text(encoding="utf-8"))
    return payload["state"], {key: int(value) for key, value in payload["offsets"].items()}
