"""Garment categories: the ten Fashion-MNIST classes and their proto and body-region mappings.

A category's integer label is its Fashion-MNIST class index (0-9); the proto enum
``tryon.v1.GarmentCategory`` numbers the same classes from 1, keeping 0 for "not given".
"""

from __future__ import annotations

import operator
from typing import Literal

from tryon.shared.categories import CATEGORY_NAMES
from tryon.shared.errors import InvalidArgument

CATEGORIES: tuple[str, ...] = CATEGORY_NAMES
"""Fashion-MNIST class names in label order."""

NUM_CATEGORIES = len(CATEGORIES)

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

_ACCEPTED_PROTO_VALUES = ", ".join(
    f"{label + 1} (GARMENT_CATEGORY_{name.upper()})" for label, name in enumerate(CATEGORIES)
)


def _as_int(value: object) -> int | None:
    """Return ``value`` as a Python int (numpy integers included), or None when it is not an integer."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def category_from_proto(value: int) -> int:
    """Return the label (0-9) of a proto ``GarmentCategory`` value; reject UNSPECIFIED and unknown values."""
    number = _as_int(value)
    if number is None or not 1 <= number <= NUM_CATEGORIES:
        raise InvalidArgument(f"category must be one of {_ACCEPTED_PROTO_VALUES}; got {value!r}")
    return number - 1


def check_label(label: int) -> int:
    """Return ``label`` as an int after checking it is a category label in [0, 9]."""
    number = _as_int(label)
    if number is None or not 0 <= number < NUM_CATEGORIES:
        raise InvalidArgument(
            f"category label must be an integer in [0, {NUM_CATEGORIES - 1}]; got {label!r}"
        )
    return number


def category_to_proto(label: int) -> int:
    """Return the proto ``GarmentCategory`` value of a label (0-9)."""
    return check_label(label) + 1


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
