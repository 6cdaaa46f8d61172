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

The space changes only when the model is trained again, so each garment of an anchor role of
RecommendOutfits (tops and dresses) has its ``TABLE_WIDTH`` nearest garments of each role it meets
looked up once, when the index is built (``nearest_table``): a RecommendOutfits call then reads
its anchors' candidates from that table instead of making three FAISS searches (at 100,000
garments those searches took 2.6 ms of the 4.8 ms of processor time a call spent in the
recommender, on 2 loaded cores). The table holds what the searches return, so the answers are the
same; at 100,000 garments it takes 6 s of processor time at start-up and 6.6 MB.

Without a garment to leave out, an anchor's best completions from its first candidates depend on
the anchor alone, so they are scored once too, when the table is built (``best_completions``):
RecommendOutfits then reads them instead of scoring its 24 anchors' combinations on every call.
They are what ``complete_anchors`` computes, by the same arrays in larger batches.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from tryon.services.recommendation.compatibility import CompatibilitySpace
from tryon.services.recommendation.index import ItemIndex
from tryon.services.recommendation.outfits import ROLE_PAIRS, ROLES, missing_roles, pair_index

CANDIDATES_PER_ROLE = 8
"""Garments each given piece proposes for a missing role."""
TABLE_WIDTH = CANDIDATES_PER_ROLE
"""Nearest garments the table keeps per anchor and missing role: what ``complete`` asks for; RecommendOutfits
asks for 4, and the rest stands in for candidates a shopper dislikes."""
ANCHOR_CANDIDATES = 4
"""Garments of each missing role that RecommendOutfits combines around an anchor: the first of its table row."""
ANCHOR_COMPLETIONS = 2
"""Outfits RecommendOutfits keeps around each anchor, and the completions scored per anchor at start-up."""
COMPLETION_BATCH = 4096
"""Anchors scored at once when the best completions are scored at start-up (a two-role batch holds 16 combinations of
32-number differences per anchor: 8 MB)."""
TABLE_ANCHOR_ROLES: tuple[str, ...] = ("top", "dress")
"""Roles whose garments get a row of the table: the anchors of RecommendOutfits."""
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


class Completion(NamedTuple):
    """Garments added for the missing roles (catalogue positions in role order) and the outfit's compatibility."""

    added: tuple[int, ...]
    compatibility: float


class OutfitIndex:
    """The per-role-pair indexes of one compatibility space, and the nearest-garment table of its anchors."""

    def __init__(
        self, space: CompatibilitySpace, factory: str | None = None, table_roles: Sequence[str] = TABLE_ANCHOR_ROLES
    ) -> None:
        """``factory`` names one FAISS factory for every index; None picks ``role_index_options`` by each role's size.

        ``table_roles`` are the anchor roles whose nearest garments are looked up at once (``nearest_table``).
        """
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
        self._table_row = np.full(len(space.garment_ids), -1, dtype=np.int64)
        self.nearest_table: dict[tuple[int, int], np.ndarray] = {}
        """``[garments of the anchor role, TABLE_WIDTH]`` positions per (anchor role, target role), -1 past the last."""
        for anchor_role in (ROLES.index(role) for role in table_roles):
            members = np.flatnonzero(space.roles == anchor_role)
            self._table_row[members] = np.arange(len(members))
            for a, t in self.indexes:
                if a == anchor_role:
                    self.nearest_table[(a, t)] = self._searched(members, t, TABLE_WIDTH, None)
        self.best_completions: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        """Per anchor role of the table: each anchor's ``ANCHOR_COMPLETIONS`` best completions from ``ANCHOR_CANDIDATES``
        candidates, as ``complete_anchors`` without ``keep`` scores them: ``[anchors, ANCHOR_COMPLETIONS, missing roles]``
        added positions and ``[anchors, ANCHOR_COMPLETIONS]`` compatibilities (-inf where no outfit is left)."""
        for anchor_role in (ROLES.index(role) for role in table_roles):
            members = np.flatnonzero(space.roles == anchor_role)
            if len(members) == 0:
                continue
            batches = [
                self._completion_arrays(members[start : start + COMPLETION_BATCH], ANCHOR_COMPLETIONS, None, ANCHOR_CANDIDATES)
                for start in range(0, len(members), COMPLETION_BATCH)
            ]
            self.best_completions[anchor_role] = (
                np.concatenate([added for added, _ in batches]), np.concatenate([scores for _, scores in batches])
            )

    def _stored(self, positions: np.ndarray, pair: int) -> np.ndarray:
        projected = self.space.projected(positions, pair)
        return np.hstack([projected, -0.5 * (projected**2).sum(axis=1, keepdims=True)])

    def nearest(self, anchor: int, target_role: int, k: int, keep: Callable[[str], bool] | None = None) -> list[int]:
        """Positions of the ``k`` garments of ``target_role`` most compatible with the garment at ``anchor``."""
        return [p for p in self.nearest_many(np.array([anchor]), target_role, k, keep)[0].tolist() if p >= 0]

    def nearest_many(
        self, anchors: np.ndarray, target_role: int, k: int, keep: Callable[[str], bool] | None = None
    ) -> np.ndarray:
        """``[len(anchors), k]`` positions of the garments of ``target_role`` most compatible with each anchor.

        All anchors share one role. Anchors with a table row read it; the others, and those whose
        row holds fewer than ``k`` kept garments while more may exist, are answered by one batched
        search. A row holds -1 where fewer than ``k`` garments are kept.
        """
        anchors = np.asarray(anchors, dtype=np.int64)
        if len(anchors) == 0:
            return np.full((0, k), -1, dtype=np.int64)
        table = self.nearest_table.get((int(self.space.roles[anchors[0]]), target_role))
        if table is None or k > table.shape[1]:
            return self._searched(anchors, target_role, k, keep)
        rows = table[self._table_row[anchors]]
        if keep is None:
            return rows[:, :k]
        found = np.full((len(anchors), k), -1, dtype=np.int64)
        short = []
        garment_ids = self.space.garment_ids
        for row, candidates in enumerate(rows.tolist()):
            kept = [p for p in candidates if p >= 0 and keep(garment_ids[p])][:k]
            found[row, : len(kept)] = kept
            # A full row may have left out kept garments beyond its width; a shorter one holds the whole role.
            if len(kept) < k and candidates[-1] >= 0:
                short.append(row)
        if short:
            found[short] = self._searched(anchors[short], target_role, k, keep)
        return found

    def _searched(
        self, anchors: np.ndarray, target_role: int, k: int, keep: Callable[[str], bool] | None
    ) -> np.ndarray:
        """``nearest_many`` by one batched search of the (anchor role, ``target_role``) index."""
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

        Each anchor's ``candidates`` of each missing role come from the table (``nearest_many``); every
        combination of them is scored at once (the mean compatibility over the outfit's pairs, as ``complete``).
        Without ``keep``, at most ``ANCHOR_COMPLETIONS`` per anchor from ``ANCHOR_CANDIDATES`` are read from
        ``best_completions``. Returns (anchor position, completion) pairs, each anchor's best first.
        """
        anchors = np.asarray(anchors, dtype=np.int64)
        if len(anchors) == 0:
            return []
        scored = self.best_completions.get(int(self.space.roles[anchors[0]]))
        if scored is not None and keep is None and candidates == ANCHOR_CANDIDATES and per_anchor <= ANCHOR_COMPLETIONS:
            rows = self._table_row[anchors]
            added, scores = scored[0][rows, :per_anchor], scored[1][rows, :per_anchor]
        else:
            added, scores = self._completion_arrays(anchors, per_anchor, keep, candidates)
        found = np.isfinite(scores)
        return [
            (anchor, Completion(tuple(pieces), score))
            for anchor, pieces, score in zip(
                np.broadcast_to(anchors[:, None], scores.shape)[found].tolist(), added[found].tolist(), scores[found].tolist()
            )
        ]

    def _completion_arrays(
        self, anchors: np.ndarray, per_anchor: int, keep: Callable[[str], bool] | None, candidates: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``complete_anchors`` as arrays: ``[anchors, per_anchor, missing roles]`` positions and ``[anchors, per_anchor]``
        compatibilities, -inf where no outfit is left."""
        space = self.space
        anchor_role = ROLES[int(space.roles[anchors[0]])]
        missing = missing_roles([anchor_role])
        pools = [self.nearest_many(anchors, ROLES.index(role), candidates, keep) for role in missing]
        if len(missing) == 1:
            (pool,) = pools
            total = space.pair_scores(anchors[:, None], pool, pair_index(anchor_role, missing[0]))
            present = pool >= 0
            pairs_counted = 1
        else:
            first, second = pools
            first_scores = space.pair_scores(anchors[:, None], first, pair_index(anchor_role, missing[0]))
            second_scores = space.pair_scores(anchors[:, None], second, pair_index(anchor_role, missing[1]))
            between = space.pair_scores(first[:, :, None], second[:, None, :], pair_index(missing[0], missing[1]))
            total = (first_scores[:, :, None] + second_scores[:, None, :] + between).reshape(len(anchors), -1)
            present = ((first >= 0)[:, :, None] & (second >= 0)[:, None, :]).reshape(len(anchors), -1)
            pairs_counted = 3
        # A garment missing from a pool (-1) makes no outfit.
        total = np.where(present, total / pairs_counted, -np.inf)
        best = np.argsort(-total, axis=1, kind="stable")[:, :per_anchor]
        rows = np.arange(len(anchors))[:, None]
        # Combination c of two pools is (first c // width, second c % width), as the reshape above laid them out.
        added = (
            pool[rows, best][:, :, None]
            if len(missing) == 1
            else np.stack([first[rows, best // second.shape[1]], second[rows, best % second.shape[1]]], axis=-1)
        )
        return added, total[rows, best]

    def complete(
        self,
        given: Sequence[int],
        missing: Sequence[str],
        k: int,
        keep: Callable[[str], bool] | None = None,
        candidates: int = CANDIDATES_PER_ROLE,
    ) -> list[Completion]:
        """The ``k`` most compatible ways to fill ``missing`` roles around the ``given`` positions, best first.

        Every combination of the missing roles' candidates is scored at once: the outfit's
        compatibility is the mean over its pairs, and the pairs among the given pieces, between a
        candidate and the given pieces, and between candidates each form one array.
        """
        space = self.space
        given = np.asarray(given, dtype=np.int64)
        given_roles = [ROLES[space.roles[g]] for g in given.tolist()]
        pools, with_given = [], []
        for role in missing:
            target = ROLES.index(role)
            proposed = np.concatenate([self.nearest_many(given[i : i + 1], target, candidates, keep)[0] for i in range(len(given))])
            pool = np.unique(proposed[proposed >= 0])
            # The best by their compatibility with every given piece, not only the one that proposed them.
            scores = sum(
                (space.pair_scores(pool, g, pair_index(role, r)) for g, r in zip(given.tolist(), given_roles)),
                np.zeros(len(pool), dtype=np.float64),
            )
            order = np.argsort(-scores, kind="stable")[: max(candidates, k)]
            pools.append(pool[order])
            with_given.append(scores[order])
        if not pools:
            return [Completion((), space.outfit_score(given.tolist()))]
        if any(len(pool) == 0 for pool in pools):
            return []
        dims = len(pools)
        total = np.full(tuple(len(pool) for pool in pools), sum(
            space.score(int(a), int(b)) for i, a in enumerate(given) for b in given[i + 1 :]
        ), dtype=np.float64)
        for i, scores in enumerate(with_given):
            total += scores.reshape([-1 if d == i else 1 for d in range(dims)])
        for i, j in itertools.combinations(range(dims), 2):
            between = space.pair_scores(pools[i][:, None], pools[j][None, :], pair_index(missing[i], missing[j]))
            total += np.expand_dims(between, [d for d in range(dims) if d not in (i, j)])
        pieces = len(given) + dims
        total = total.ravel() / (pieces * (pieces - 1) // 2)
        choices = np.stack(np.meshgrid(*pools, indexing="ij"), axis=-1).reshape(-1, dims)
        best = np.argsort(-total, kind="stable")[:k]
        return [Completion(tuple(choices[c].tolist()), float(total[c])) for c in best.tolist()]
