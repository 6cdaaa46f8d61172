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
from tryon.services.recommendation.outfits import ROLE_PAIRS, ROLES, missing_roles, pair_index

CANDIDATES_PER_ROLE = 8
"""Garments each given piece proposes for a missing role."""
FLAT_LIMIT = 5_000
"""Garments of one role up to which its role-pair indexes are exact ("Flat"); above, IVF lists
(``role_index_options``): at 100k garments a Flat scan of the 40k tops for 12 anchors took 3-6 ms
on 2 loaded cores, which alone spent RecommendOutfits' 10 ms."""


def role_index_options(count: int) -> dict:
    """``ItemIndex.build`` options of a role-pair index over ``count`` garments.

    Flat up to ``FLAT_LIMIT``; above, about sqrt(count) IVF lists (a power of two, so that
    training stays short at 100k garments) of which an eighth, and at least 16, are probed (recall@4
    against Flat is checked in tests/recommendation/test_outfit_retrieval.py).
    """
    if count <= FLAT_LIMIT:
        return {"factory": "Flat"}
    lists = 2 ** round(np.log2(np.sqrt(count)))
    return {"factory": f"IVF{lists},Flat", "nprobe": max(16, lists // 8)}


@dataclass(frozen=True)
class Completion:
    """Garments added for the missing roles (catalogue positions in role order) and the outfit's compatibility."""

    added: tuple[int, ...]
    compatibility: float


class OutfitIndex:
    """The per-role-pair indexes of one compatibility space."""

    def __init__(self, space: CompatibilitySpace, factory: str | None = None) -> None:
        """``factory`` names one FAISS factory for every index; None picks ``role_index_options`` by each role's size."""
        self.space = space
        self.indexes: dict[tuple[int, int], ItemIndex] = {}
        for first, second in ROLE_PAIRS:
            for anchor, target in ((first, second), (second, first)):
                a, t = ROLES.index(anchor), ROLES.index(target)
                members = np.flatnonzero(space.roles == t)
                if len(members) == 0:
                    continue
                self.indexes[(a, t)] = ItemIndex.build(
                    [space.garment_ids[p] for p in members],
                    self._stored(members, pair_index(anchor, target)),
                    **({"factory": factory} if factory else role_index_options(len(members))),
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

    def nearest_many(
        self, anchors: np.ndarray, target_role: int, k: int, keep: Callable[[str], bool] | None = None
    ) -> np.ndarray:
        """``[len(anchors), k]`` positions of the garments of ``target_role`` most compatible with each anchor.

        All anchors share one role, so one batched search answers them all; a row holds -1 where
        fewer than ``k`` garments are kept.
        """
        found = np.full((len(anchors), k), -1, dtype=np.int64)
        if len(anchors) == 0:
            return found
        anchor_role = int(self.space.roles[anchors[0]])
        index = self.indexes.get((anchor_role, target_role))
        if index is None:
            return found
        pair = pair_index(ROLES[anchor_role], ROLES[target_role])
        projected = self.space.projected(np.asarray(anchors), pair)
        queries = np.hstack([projected, np.ones((len(anchors), 1), dtype=np.float32)])
        position = self.space.position
        for row, hits in enumerate(index.search(queries, k, keep=keep, keep_rate=0.9)):
            found[row, : len(hits)] = [position[g] for g, _ in hits]
        return found

    def complete_anchors(
        self,
        anchors: np.ndarray,
        per_anchor: int,
        keep: Callable[[str], bool] | None = None,
        candidates: int = CANDIDATES_PER_ROLE,
    ) -> list[tuple[int, Completion]]:
        """The ``per_anchor`` most compatible outfits around each garment of ``anchors`` (all of one role).

        One batched search per missing role finds each anchor's ``candidates``; every combination of
        them is scored at once (the mean compatibility over the outfit's pairs, as ``complete``).
        Returns (anchor position, completion) pairs, each anchor's best first.
        """
        anchors = np.asarray(anchors, dtype=np.int64)
        if len(anchors) == 0:
            return []
        space = self.space
        anchor_role = ROLES[int(space.roles[anchors[0]])]
        missing = missing_roles([anchor_role])
        pools = [self.nearest_many(anchors, ROLES.index(role), candidates, keep) for role in missing]
        if len(missing) == 1:
            (pool,) = pools
            total = space.pair_scores(anchors[:, None], pool, pair_index(anchor_role, missing[0]))
            choices = pool[:, :, None]
            pairs_counted = 1
        else:
            first, second = pools
            first_scores = space.pair_scores(anchors[:, None], first, pair_index(anchor_role, missing[0]))
            second_scores = space.pair_scores(anchors[:, None], second, pair_index(anchor_role, missing[1]))
            between = space.pair_scores(first[:, :, None], second[:, None, :], pair_index(missing[0], missing[1]))
            total = (first_scores[:, :, None] + second_scores[:, None, :] + between).reshape(len(anchors), -1)
            choices = np.stack(np.broadcast_arrays(first[:, :, None], second[:, None, :]), axis=-1).reshape(
                len(anchors), -1, 2
            )
            pairs_counted = 3
        # A garment missing from a pool (-1) makes no outfit.
        total = np.where((choices >= 0).all(axis=-1), total / pairs_counted, -np.inf)
        best = np.argsort(-total, axis=1, kind="stable")[:, :per_anchor]
        completions = []
        for row, anchor in enumerate(anchors.tolist()):
            for column in best[row].tolist():
                if np.isfinite(total[row, column]):
                    completions.append((anchor, Completion(tuple(choices[row, column].tolist()), float(total[row, column]))))
        return completions

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
