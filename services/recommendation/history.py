"""Shoppers' interaction histories: the weighted rows the recommender folds in.

Each interaction type carries a weight (``INTERACTION_WEIGHTS``) that says how much it tells
about a shopper's taste: a purchase says more than a view, and a return counts against the
garment. A shopper's history is the sum of these weights per garment, so it does not depend
on the order of the interactions, and a replay of the same events gives the same rows.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


class InteractionKind(enum.IntEnum):
    """What a shopper did with a garment; the values are those of ``tryon.v1.InteractionType``."""

    VIEW = 1
    TRY_ON = 2
    ADD_TO_CART = 3
    PURCHASE = 4
    RETURN = 5


INTERACTION_WEIGHTS: dict[InteractionKind, float] = {
    InteractionKind.VIEW: 1.0,
    InteractionKind.TRY_ON: 2.0,
    InteractionKind.ADD_TO_CART: 3.0,
    InteractionKind.PURCHASE: 5.0,
    # A return cancels a purchase: the shopper bought it, then said it does not suit them.
    InteractionKind.RETURN: -5.0,
}
"""Weight of each interaction type in a shopper's history row.

The weights grow with the effort the action costs the shopper (implicit-feedback
confidence, as in Hu, Koren and Volinsky, ICDM 2008). A return weighs as much as a
purchase with the opposite sign, so view + try-on + cart + purchase + return still leaves a
small positive interest (1 + 2 + 3 + 5 - 5 = 6): the shopper liked the look but not the garment.
"""


def kind_from_name(name: str) -> InteractionKind:
    """Parse an interaction type name ("PURCHASE", "purchase" or "INTERACTION_TYPE_PURCHASE")."""
    key = str(name).strip().upper().removeprefix("INTERACTION_TYPE_")
    try:
        return InteractionKind[key]
    except KeyError:
        accepted = ", ".join(kind.name for kind in InteractionKind)
        raise ValueError(f"interaction type must be one of {accepted}; got {name!r}") from None


@dataclass(frozen=True)
class ShopperHistory:
    """A read-only view of one shopper's history: summed weight per garment and the number of interactions.

    ``seen`` holds the garments the shopper interacted with in any way.
    """

    weights: Mapping[str, float]
    interaction_count: int
    seen: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", MappingProxyType(dict(self.weights)))
        object.__setattr__(self, "seen", frozenset(self.weights))


EMPTY_HISTORY = ShopperHistory(weights={}, interaction_count=0)


class HistoryStore:
    """Histories of all shoppers, safe to update from a consumer thread while requests read them.

    ``version(user_id)`` changes whenever the shopper's history changes, so a caller can cache
    anything derived from a history (such as the shopper's query vector) and know when it is stale.
    ``get`` hands out one read-only ``ShopperHistory`` per shopper until the history changes, so
    requests for the same shopper do not copy the history each time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._weights: dict[str, dict[str, float]] = {}
        self._counts: dict[str, int] = {}
        self._versions: dict[str, int] = {}
        self._views: dict[str, ShopperHistory] = {}
        self._clock = 0

    def _touch(self, user_id: str) -> None:
        self._clock += 1
        self._versions[user_id] = self._clock
        self._views.pop(user_id, None)

    def record(self, user_id: str, garment_id: str, kind: InteractionKind) -> None:
        """Add one interaction to a shopper's history."""
        weight = INTERACTION_WEIGHTS[InteractionKind(kind)]
        with self._lock:
            row = self._weights.setdefault(user_id, {})
            row[garment_id] = row.get(garment_id, 0.0) + weight
            self._counts[user_id] = self._counts.get(user_id, 0) + 1
            self._touch(user_id)

    def forget(self, user_id: str) -> bool:
        """Drop a shopper's history; True when there was one."""
        with self._lock:
            existed = self._weights.pop(user_id, None) is not None
            self._counts.pop(user_id, None)
            self._touch(user_id)
            return existed

    def get(self, user_id: str) -> ShopperHistory:
        """The shopper's history as it is now (empty for an unknown shopper); later changes do not touch it."""
        with self._lock:
            view = self._views.get(user_id)
            if view is None:
                row = self._weights.get(user_id)
                if row is None:
                    return EMPTY_HISTORY
                view = self._views[user_id] = ShopperHistory(weights=row, interaction_count=self._counts[user_id])
            return view

    def version(self, user_id: str) -> int:
        """A number that changes whenever the shopper's history changes (0 if it never did)."""
        with self._lock:
            return self._versions.get(user_id, 0)

    def user_ids(self) -> list[str]:
        """Shoppers with a history."""
        with self._lock:
            return list(self._weights)

    def __len__(self) -> int:
        with self._lock:
            return len(self._weights)

    def to_state(self) -> dict[str, dict]:
        """A JSON-ready copy of all histories, for snapshots."""
        with self._lock:
            return {
                user_id: {"weights": dict(row), "count": self._counts[user_id]}
                for user_id, row in self._weights.items()
            }

    @classmethod
    def from_state(cls, state: Mapping[str, Mapping]) -> HistoryStore:
        """Rebuild a store from ``to_state``'s output."""
        store = cls()
        for user_id, entry in state.items():
            store._weights[user_id] = {g: float(w) for g, w in entry["weights"].items()}
            store._counts[user_id] = int(entry["count"])
            store._touch(user_id)
        return store


def fold_interactions(
    interactions: Iterable[tuple[str, str, InteractionKind]],
    deleted_users: Iterable[str] = (),
) -> dict[str, dict[str, float]]:
    """Fold (user_id, garment_id, kind) triples into weighted rows, from scratch.

    Shoppers in ``deleted_users`` are left out. This is the reference a live store must
    agree with after it has applied the same events, in any order within a shopper.
    """
    store = HistoryStore()
    for user_id, garment_id, kind in interactions:
        store.record(user_id, garment_id, kind)
    for user_id in deleted_users:
        store.forget(user_id)
    return {user_id: dict(store.get(user_id).weights) for user_id in store.user_ids()}
