"""Garment categories: the ten Fashion-MNIST classes by name and the body region each is worn on.

A category's integer label is its Fashion-MNIST class index (0-9); the mapping to and from the
proto enum ``tryon.v1.GarmentCategory`` is the contract's (``tryon.shared.contract``).
"""

from __future__ import annotations

from typing import Literal

from tryon.shared.contract import CATEGORY_NAMES, NUM_CATEGORIES, check_label
from tryon.shared.errors import InvalidArgument

CATEGORIES: tuple[str, ...] = CATEGORY_NAMES
"""Fashion-MNIST class names in label order."""

Region = Literal["top", "bottom", "full", "feet", "carried"]

REGION_BY_CATEGORY: dict[str, Region] = {
    "t_shirt_top": "top",
    "trouser": "bottom",
    "pullover": "top",
    "dress": "full",
    "coat": "full",
    "sandal": "feet",
    "shirt": "top",
    "sneaker": "feet",
    "bag": "carried",
    "ankle_boot": "feet",
}
"""The body region each category is worn on (a bag is carried)."""


def category_name(label: int) -> str:
    """Return the name of a label (0-9), for example ``"trouser"`` for 1."""
    return CATEGORIES[check_label(label)]


def label_from_name(name: str) -> int:
    """Return the label of a category name such as ``"ankle_boot"``."""
    try:
        return CATEGORIES.index(name)
    except ValueError:
        raise InvalidArgument(
            f"category name must be one of {', '.join(CATEGORIES)}; got {name!r}"
        ) from None


def region_of(label: int) -> Region:
    """Return the body region a garment of this label is worn on."""
    return REGION_BY_CATEGORY[category_name(label)]
