"""Garment categories as the contract defines them: ``tryon.v1.GarmentCategory``.

The enum names the ten Fashion-MNIST classes; a category's label (0-9, the class index)
is its proto value minus one, the value 0 meaning "not given".
"""

from __future__ import annotations

from tryon.shared.proto import common_pb2

_PREFIX = "GARMENT_CATEGORY_"

CATEGORY_NAMES: tuple[str, ...] = tuple(
    name.removeprefix(_PREFIX).lower()
    for name, value in common_pb2.GarmentCategory.items()
    if value != common_pb2.GARMENT_CATEGORY_UNSPECIFIED
)
"""Category names in label order: "t_shirt_top", "trouser", ..., "ankle_boot"."""
