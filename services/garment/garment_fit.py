"""Garment-fit model: a garment's own measurements per size, and how each size fits a body.

A size chart lists, per size, the BODY ranges the size is made for (``SizeChart`` in
``common.proto``). The garment itself is larger than the body it is made for by its wearing
ease, so the model is:

    garment girth (size, m) = midpoint of the size's body range for m + EASE_MM[category][m]

for the girths the chart gives (chest, waist, hip), unless the chart states the garment's own
measurement for the size (``garment_measurements``), which is then used as it is. A girth the
chart does not give (the waist
and hip of a top sized by chest alone) is graded with the given ones: the garment is the body's
own girth there plus the category's ease plus the mean offset (range midpoint - body) of the
given girths, since a chart's sizes step by the same amount at chest, waist and hip (EN 13402-3
and the German DOB and HAKA systems in ``size_charts.json`` all do). A trouser's inseam is the
inseam range midpoint, which the shipped charts state as the body's crotch height, so a trouser
of the right length reaches the ankle.

Ease = garment - body, per measurement. A size *fits* a measurement when the body lies in the
range the size is made for, that is when the ease is within half the range's width of the ease
the size intends (garment - range midpoint); below that the garment is *tight* (the body is
larger than the size is made for), above it *loose*. A stated garment measurement without a
body range is taken as made for a body one category ease smaller, give or take half an EN 13402
step (40 mm). Lengths read *short* / *fitting* / *long* by the same rule.

EASE_MM, the wearing ease a garment of each category has over the body it is made for, starts
from the minimum ease of the pattern companies' slopers, about 2 1/2 in (64 mm) at the bust,
1 in (25 mm) at the waist and 2 in (51 mm) at the hip (Palmer and Pletsch, *Fit for Real People*,
"Fit Facts"), for close-fitting garments (T-shirts, trousers). The looser categories' values
(dresses 76 mm, shirts 90 mm, pullovers 115 mm, coats 150 mm at the bust) are this model's own choice, graded
above that minimum by how loosely each category is cut, not taken from a published table; a chart
that states garment measurements overrides them. Garments cut straight (shirts, pullovers, coats)
carry their bust ease down to the waist and hip.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from tryon.services.garment.categories import category_name
from tryon.shared.errors import InvalidArgument

CHEST, WAIST, HIP, INSEAM = "chest_circumference", "waist_circumference", "hip_circumference", "inseam"
GIRTHS: tuple[str, ...] = (CHEST, WAIST, HIP)
"""The girths the renderer draws a garment's width by, top to bottom."""
LENGTHS: tuple[str, ...] = (INSEAM,)
"""The lengths the renderer draws a garment's length by."""

Fit = Literal["tight", "fitting", "loose", "short", "long"]

EASE_MM: dict[str, dict[str, float]] = {
    "t_shirt_top": {CHEST: 64.0, WAIST: 25.0, HIP: 51.0},
    "shirt": {CHEST: 90.0, WAIST: 90.0, HIP: 90.0},
    "pullover": {CHEST: 115.0, WAIST: 115.0, HIP: 90.0},
    "dress": {CHEST: 76.0, WAIST: 25.0, HIP: 51.0},
    "coat": {CHEST: 150.0, WAIST: 150.0, HIP: 150.0},
    "trouser": {CHEST: 0.0, WAIST: 25.0, HIP: 51.0},
}
"""Wearing ease (garment - body, mm) a garment of each sized category has at its size's midpoint."""

_STEP_MM = 80.0
"""An EN 13402-3 girth step (8 cm): the body range a size is taken to cover when its chart states
the garment's own measurement but no body range for it."""

SIZED_CATEGORIES: frozenset[str] = frozenset(EASE_MM)
"""Categories drawn by their size (shoes and bags are drawn at their own size in mm)."""


@dataclass(frozen=True)
class MeasurementFit:
    """How one size fits one body at one measurement (mm)."""

    measurement: str
    body_mm: float
    garment_mm: float
    ease_mm: float
    fit: Fit


@dataclass(frozen=True)
class SizedFit:
    """A garment at one size on one body: per chart measurement the fit; per drawn girth and length
    the ratio garment / body the renderer scales the body's width or length by; and the largest
    share of the body's girth by which the garment is smaller (``tightness``) or larger
    (``looseness``) than the size intends, which the renderer shows as pull lines or folds."""

    label: str
    measurements: tuple[MeasurementFit, ...]
    girth_ratios: Mapping[str, float]
    length_ratio: float
    tightness: float = 0.0
    looseness: float = 0.0


@lru_cache(maxsize=1)
def shipped_chart_sizes() -> dict[str, list[dict[str, Any]]]:
    """The sizes of each chart shipped with BodyService (its ``size_charts.json``), by chart id, in
    the catalogue's form ``[{"label", "ranges": [{"measurement", "min", "max"}]}]``."""
    text = resources.files("tryon.services.body").joinpath("size_charts.json").read_text(encoding="utf-8")
    return {
        entry["chart_id"]: [
            {
                "label": size["label"],
                "ranges": [
                    {"measurement": name, "min": float(low), "max": float(high)}
                    for name, (low, high) in size["ranges"].items()
                ],
            }
            for size in entry["sizes"]
        ]
        for entry in json.loads(text)["charts"]
    }


def chart_sizes(chart: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """A catalogue garment's sizes: the inline ones, or those of the shipped chart it names; [] for none."""
    if not chart:
        return []
    if chart.get("sizes"):
        return list(chart["sizes"])
    return shipped_chart_sizes().get(str(chart.get("chart_id", "")), [])


def size_labels(sizes: Sequence[Mapping[str, Any]]) -> list[str]:
    """The labels of a chart's sizes, smallest first."""
    return [str(size["label"]) for size in sizes]


def find_size(sizes: Sequence[Mapping[str, Any]], label: str, garment_id: str) -> Mapping[str, Any]:
    """The size of a chart with this label, or InvalidArgument naming the garment and its sizes."""
    for size in sizes:
        if size["label"] == label:
            return size
    raise InvalidArgument(
        f"garment {garment_id!r} has no size {label!r}; its sizes are {', '.join(size_labels(sizes))}"
    )


def _ranges(size: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    return {str(r["measurement"]): (float(r["min"]), float(r["max"])) for r in size.get("ranges", [])}


def _garment_measurements(size: Mapping[str, Any]) -> dict[str, float]:
    return {str(m["name"]): float(m["value"]) for m in size.get("garment_measurements", []) or []}


def own_size(sizes: Sequence[Mapping[str, Any]], body_mm: Mapping[str, float]) -> str:
    """The label of the size made for this body: the one whose ranges the body misses by the least
    (in range widths, summed over the measurements both know); the smaller of two equal ones."""
    best_label, best_miss = str(sizes[0]["label"]), float("inf")
    for size in sizes:
        miss = 0.0
        for measurement, (low, high) in _ranges(size).items():
            if measurement not in body_mm:
                continue
            value, width = body_mm[measurement], max(high - low, 1.0)
            miss += max(low - value, 0.0, value - high) / width
        if miss < best_miss:
            best_label, best_miss = str(size["label"]), miss
    return best_label


def _classify(deviation: float, half_width: float, length: bool) -> Fit:
    """Fit of a measurement whose ease is ``deviation`` mm away from the ease the size intends."""
    if deviation < -half_width:
        return "short" if length else "tight"
    if deviation > half_width:
        return "long" if length else "loose"
    return "fitting"


def fit_size(category: int, size: Mapping[str, Any] | None, body_mm: Mapping[str, float]) -> SizedFit:
    """How a garment of ``category`` at ``size`` (None: made for this very body) fits a body whose
    girths and inseam are ``body_mm``. Measurements the body lacks are not assessed."""
    ease = EASE_MM.get(category_name(category), {})
    ranges = _ranges(size) if size is not None else {}
    stated = _garment_measurements(size) if size is not None else {}
    measurements: list[MeasurementFit] = []
    offsets: list[float] = []
    garment_mm: dict[str, float] = {}
    intended_mm: dict[str, float] = {}
    for measurement in [*ranges, *(name for name in stated if name not in ranges)]:
        body = body_mm.get(measurement)
        if body is None or body <= 0 or (measurement not in GIRTHS and measurement not in LENGTHS):
            continue
        category_ease = ease.get(measurement, 0.0) if measurement in GIRTHS else 0.0
        # Without a body range the size is taken as made for the body the garment's own value
        # less the category's ease fits, give or take half an EN 13402 size step.
        low, high = ranges.get(measurement) or (
            stated[measurement] - category_ease - _STEP_MM / 2,
            stated[measurement] - category_ease + _STEP_MM / 2,
        )
        garment = stated.get(measurement, (low + high) / 2 + category_ease)
        intended = garment - (low + high) / 2
        garment_mm[measurement], intended_mm[measurement] = garment, intended
        if measurement in GIRTHS:
            offsets.append((low + high) / 2 - body)
        measurements.append(
            MeasurementFit(
                measurement=measurement,
                body_mm=float(body),
                garment_mm=float(garment),
                ease_mm=float(garment - body),
                fit=_classify(garment - body - intended, (high - low) / 2, measurement in LENGTHS),
            )
        )
    graded_offset = sum(offsets) / len(offsets) if offsets else 0.0
    ratios, deviations = {}, [0.0]
    for girth in GIRTHS:
        body = body_mm.get(girth)
        if body is None or body <= 0:
            continue
        garment = garment_mm.get(girth, body + ease.get(girth, 0.0) + graded_offset)
        ratios[girth] = max(garment, 1.0) / body
        deviations.append((garment - body - intended_mm.get(girth, ease.get(girth, 0.0))) / body)
    body_inseam = body_mm.get(INSEAM)
    length_ratio = garment_mm[INSEAM] / body_inseam if INSEAM in garment_mm and body_inseam else 1.0
    label = str(size["label"]) if size is not None else ""
    return SizedFit(
        label=label,
        measurements=tuple(measurements),
        girth_ratios=ratios,
        length_ratio=length_ratio,
        tightness=max(0.0, -min(deviations)),
        looseness=max(0.0, max(deviations)),
    )
