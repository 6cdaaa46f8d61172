"""Outfit roles: which categories make a top, a bottom, a dress or shoes, and which sets form an outfit.

An outfit is a top + a bottom + shoes, or a dress + shoes. A dress stands for a top and a
bottom, so it cannot go with either. Every outfit feature (the simulator's sessions, the
compatibility space, CompleteOutfit and RecommendOutfits) reads roles from here.
"""

from __future__ import annotations

from collections.abc import Sequence

from tryon.services.recommendation.catalogue import (
    BOTTOM_CATEGORIES,
    DRESS_CATEGORIES,
    SHOE_CATEGORIES,
    TOP_CATEGORIES,
)
from tryon.shared.errors import InvalidArgument

ROLES: tuple[str, ...] = ("top", "bottom", "dress", "shoes")
"""Outfit roles; a role's position in this tuple is its index in the compatibility model."""
ROLE_CATEGORIES: dict[str, frozenset[int]] = {
    "top": TOP_CATEGORIES,
    "bottom": BOTTOM_CATEGORIES,
    "dress": DRESS_CATEGORIES,
    "shoes": SHOE_CATEGORIES,
}
OUTFIT_FORMS: tuple[tuple[str, ...], ...] = (("top", "bottom", "shoes"), ("dress", "shoes"))
"""The two shapes of an outfit."""
ROLE_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (first, second) for form in OUTFIT_FORMS for i, first in enumerate(form) for second in form[i + 1 :]
)
"""Pairs of roles that meet in some outfit: (top, bottom), (top, shoes), (bottom, shoes), (dress, shoes)."""

_ROLE_OF_CATEGORY = {label: role for role, labels in ROLE_CATEGORIES.items() for label in labels}


def role_of(category: int) -> str | None:
    """The outfit role of a category label, or None for a category outside outfits (bags)."""
    return _ROLE_OF_CATEGORY.get(int(category))


def pair_index(first: str, second: str) -> int:
    """Position of an unordered role pair in ``ROLE_PAIRS``; ValueError when the roles never meet."""
    for index, pair in enumerate(ROLE_PAIRS):
        if pair in ((first, second), (second, first)):
            return index
    raise ValueError(f"roles {first!r} and {second!r} never meet in an outfit")


def missing_roles(given: Sequence[str], field: str = "garment_ids") -> tuple[str, ...]:
    """The roles that complete an outfit holding ``given`` roles, in form order.

    Raises InvalidArgument naming the clash when two garments share a role or a dress meets a
    top or a bottom. Given only shoes, the outfit is completed as top + bottom (the larger form).
    """
    seen: set[str] = set()
    for role in given:
        if role in seen:
            raise InvalidArgument(f"{field} holds two garments of role {role!r}; an outfit has one of each role")
        seen.add(role)
    for form in OUTFIT_FORMS:
        if seen <= set(form):
            return tuple(role for role in form if role not in seen)
    raise InvalidArgument(
        f"{field} mixes a dress with a top or a bottom; an outfit is a top, a bottom and shoes, or a dress and shoes"
    )
