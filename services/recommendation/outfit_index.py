"""Latent outfit retrieval: FAISS indexes in the compatibility space, one per ordered pair of roles.

For an anchor role u and a target role v that meet in an outfit, the index (u, v) holds every
garment y of role v as ``[m_uv * f(y), -|m_uv * f(y)|^2 / 2]``; the query of an anchor x is
``[m_uv * f(x), 1]``. Their inner product is ``-(|m_uv * (f(x) - f(y))|^2 - |m_uv * f(x)|^2) / 2``,
so an inner-product search (``index.ItemIndex``, on a GPU copy when one is present) returns the
garments closest to x under the (u, v) projection, and ``2 * score - |query|^2`` is the exact
compatibility of ``compatibility.TypeAwareCompatibility``.

``complete`` fills the missing roles of an outfit: each missing role's candidates are the union of
the nearest garments to each given piece, rescored by the sum of their compatibilities with all
given pieces; when two roles are missing, the candidates are combined and the pair between the
new pieces counts too. An outfit's compatibility is the mean over its pairs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tryon.services.recommendation.compatibility import CompatibilitySpace
from tryon.services.recommendation.index import ItemIndex
from tryon.services.recommendation.outfits import ROLE_PAIRS, ROLES, pair_index

CANDIDATES_PER_ROLE = 8
"""Garments each given piece proposes for a missing role."""


@dataclass(frozen=True)
class Completion:
    """Garments added for the missing roles (catalogue positions in role order) and the outfit's compatibility."""

    added: tuple[int, ...]
    compatibility: float


class OutfitIndex:
    """The per-role-pair indexes of one compatibility space."""

    def __init__(self, space: CompatibilitySpace, factory: str = "Flat") -> None:
        self.space = space
        self.indexes: dict[tuple[int, int], ItemIndex] = {}
        for first, second in ROLE_PAIRS:
            for anchor, target in ((first, second), (second, first)):
                a, t = ROLES.index(anchor), ROLES.index(target)
                members = np.flatnonzero(space.roles == t)
                if len(members) == 0:
                    continue
                self.indexes[(a, t)] = ItemIndex.build(
                    [space.garment_ids[p] for p in members], self._stored(members, pair_index(anchor, target)), factory
                )

    def _stored(self, positions: np.ndarray, pair: int) -> np.ndarray:
        projected = self.space.projected(positions, pair)
        return np.hstack([projected, -0.5 * (projected**2).sum(axis=1, keepdims=True)])

    def nearest(self, anchor: int, target_role: int, k: int, keep: Callable[[str], bool] | None = None) -> list[int]:
        """Positions of the ``k`` garments of ``target_role`` most compatible with the garment at ``anchor``."""
        index = self.indexes.get((int(self.space.roles[anchor]), target_role))
        if index is None:
            return []
        pair = pair_index(ROLES[self.space.roles[anchor]], ROLES[target_role])
        query = np.append(self.space.projected(np.array([anchor]), pair)[0], 1.0)[None, :]
        found = index.search(query, k, keep=keep, keep_rate=0.9)[0]
        return [self.space.position[g] for g, _ in found]

    def complete(
        self,
        given: Sequence[int],
        missing: Sequence[str],
        k: int,
        keep: Callable[[str], bool] | None = None,
        candidates: int = CANDIDATES_PER_ROLE,
    ) -> list[Completion]:
        """The ``k`` most compatible ways to fill ``missing`` roles around the ``given`` positions, best first."""
        space = self.space
        pools = []
        for role in missing:
            target = ROLES.index(role)
            pool = sorted({p for anchor in given for p in self.nearest(anchor, target, candidates, keep)})
            # The best by their compatibility with every given piece, not only the one that proposed them.
            pool.sort(key=lambda p: -sum(space.score(p, g) for g in given))
            pools.append(pool[: max(candidates, k)])
        completions = []
        for added in itertools.product(*pools):
            outfit = [*given, *added]
            completions.append(Completion(tuple(added), space.outfit_score(outfit)))
        completions.sort(key=lambda c: -c.compatibility)
        return completions[:k]
