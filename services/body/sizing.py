"""Size advice: the probability that each size of a chart fits a body, by Monte Carlo.

A size chart lists, for each size, the body measurement ranges it is made for. A size
fits a body when every one of its measurements lies in its range. The body model gives
posterior samples of the whole body for what the shopper told us, so the share of
samples inside a size's ranges is the probability that the size fits, with the
uncertainty of every inferred measurement carried through (observed measurements are
the same in every sample).

The shipped charts are in ``size_charts.json`` beside this module, each with its source.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from tryon.services.body.measurements import BY_NAME, NAMES
from tryon.shared.errors import InvalidArgument, NotFound

MAX_SIZES = 200
MAX_RANGES_PER_SIZE = len(NAMES)
MAX_LABEL_LENGTH = 64


@dataclass(frozen=True)
class SizeRange:
    """An inclusive range of one body measurement, in the measurement's unit."""

    measurement: str
    minimum: float
    maximum: float


@dataclass(frozen=True)
class Size:
    """One size of a chart: its label and the ranges it is made for."""

    label: str
    ranges: tuple[SizeRange, ...]


@dataclass(frozen=True)
class SizeChart:
    """Sizes from smallest to largest; ``chart_id`` is empty for a chart given inline."""

    chart_id: str
    sizes: tuple[Size, ...]
    title: str = ""
    source: str = ""


@dataclass(frozen=True)
class SizeFit:
    """Probability that one size fits."""

    label: str
    probability: float


@dataclass(frozen=True)
class MeasurementPull:
    """The size one measurement of the body points to, taken alone."""

    measurement: str
    size: str


@dataclass(frozen=True)
class SizeAdvice:
    """The advice for one body and one chart.

    ``between_sizes`` names, smallest first, the sizes the body falls between (empty when one
    size is made for it); ``pulls`` says for every measurement of the chart which size it alone
    points to.
    """

    recommended_size: str
    fits: tuple[SizeFit, ...]
    deciding_measurement: str
    explanation: str
    between_sizes: tuple[str, ...] = ()
    pulls: tuple[MeasurementPull, ...] = ()


BETWEEN_SHARE = 0.25
"""Two neighbouring sizes that each fit with at least this probability, the best under 0.5 of
them, also leave the body between them (one measurement near a boundary of its ranges)."""


@lru_cache(maxsize=1)
def shipped_charts() -> dict[str, SizeChart]:
    """The charts shipped with the service, by chart_id."""
    text = resources.files("tryon.services.body").joinpath("size_charts.json").read_text(encoding="utf-8")
    charts = {}
    for entry in json.loads(text)["charts"]:
        sizes = tuple(
            Size(
                label=size["label"],
                ranges=tuple(
                    SizeRange(measurement, float(bounds[0]), float(bounds[1]))
                    for measurement, bounds in size["ranges"].items()
                ),
            )
            for size in entry["sizes"]
        )
        charts[entry["chart_id"]] = validate_chart(
            SizeChart(entry["chart_id"], sizes, title=entry["title"], source=entry["source"])
        )
    return charts


def resolve_chart(chart_id: str, sizes: tuple[Size, ...]) -> SizeChart:
    """The chart a request names: a shipped one by id, or the inline sizes after validation."""
    if chart_id and sizes:
        raise InvalidArgument("size_chart: give either chart_id (a shipped chart) or sizes (inline), not both")
    if chart_id:
        charts = shipped_charts()
        if chart_id not in charts:
            raise NotFound(
                f"size_chart.chart_id {chart_id!r} is not a shipped chart; known charts: {', '.join(charts)}"
            )
        return charts[chart_id]
    if not sizes:
        raise InvalidArgument(
            f"size_chart: give a chart_id ({', '.join(shipped_charts())}) or at least one size inline"
        )
    return validate_chart(SizeChart("", sizes))


def validate_chart(chart: SizeChart) -> SizeChart:
    """Return the chart if every size and range is usable, else raise InvalidArgument naming the field."""
    if not chart.sizes:
        raise InvalidArgument("size_chart.sizes is empty: give at least one size")
    if len(chart.sizes) > MAX_SIZES:
        raise InvalidArgument(f"size_chart.sizes has {len(chart.sizes)} sizes; at most {MAX_SIZES} are accepted")
    seen_labels: set[str] = set()
    for size_index, size in enumerate(chart.sizes):
        field = f"size_chart.sizes[{size_index}]"
        if not size.label.strip():
            raise InvalidArgument(f"{field}.label is empty: give the size label printed on the garment")
        if len(size.label) > MAX_LABEL_LENGTH:
            raise InvalidArgument(f"{field}.label is longer than {MAX_LABEL_LENGTH} characters")
        if size.label in seen_labels:
            raise InvalidArgument(f"{field}.label {size.label!r} appears twice; labels must be unique")
        seen_labels.add(size.label)
        if not size.ranges:
            raise InvalidArgument(f"{field}.ranges is empty: give at least one measurement range")
        if len(size.ranges) > MAX_RANGES_PER_SIZE:
            raise InvalidArgument(f"{field}.ranges has {len(size.ranges)} ranges; at most {MAX_RANGES_PER_SIZE}")
        seen_measurements: set[str] = set()
        for range_index, size_range in enumerate(size.ranges):
            _validate_range(f"{field}.ranges[{range_index}]", size_range, seen_measurements)
    return chart


def _validate_range(field: str, size_range: SizeRange, seen_measurements: set[str]) -> None:
    name = size_range.measurement
    if name not in BY_NAME:
        raise InvalidArgument(f"{field}.measurement {name!r} is unknown; known measurements: {', '.join(NAMES)}")
    if name in seen_measurements:
        raise InvalidArgument(f"{field}.measurement {name!r} appears twice in the same size")
    seen_measurements.add(name)
    measurement = BY_NAME[name]
    if not (math.isfinite(size_range.minimum) and math.isfinite(size_range.maximum)):
        raise InvalidArgument(f"{field}: min and max of {name} must be finite numbers")
    if not size_range.minimum < size_range.maximum:
        raise InvalidArgument(
            f"{field}: min of {name} must be smaller than max; got min {size_range.minimum:g}, "
            f"max {size_range.maximum:g}"
        )
    if size_range.maximum < measurement.human_min or size_range.minimum > measurement.human_max:
        raise InvalidArgument(
            f"{field}: the range {size_range.minimum:g}-{size_range.maximum:g} of {name} lies outside the human "
            f"range {measurement.human_min:g}-{measurement.human_max:g} {measurement.unit}; ranges are in "
            f"{_unit_word(measurement.unit)}"
        )


def _unit_word(unit: str) -> str:
    return "millimetres" if unit == "mm" else "kilograms"


def _size_odds(
    chart: SizeChart, samples: np.ndarray, names: tuple[str, ...]
) -> tuple[dict[str, int], list[float], list[dict[str, float]], dict[str, float], int]:
    """What ``advise_size`` and ``fit_profile`` both need: the samples' column per name, each size's
    probability to fit, per size the share of samples inside each of its ranges, the mean of each
    charted measurement, and the index of the recommended size."""
    if samples.ndim != 2 or samples.shape[1] != len(names) or samples.shape[0] == 0:
        raise ValueError(f"samples must be [count > 0, {len(names)}], got {samples.shape}")
    column = {name: index for index, name in enumerate(names)}
    # Every range of every size is tested in one comparison, and each size's ranges are joined in one
    # reduction: a fit profile tests about 70 sizes, and a loop over their ranges cost most of its time.
    ranges = [size_range for size in chart.sizes for size_range in size.ranges]
    # One row per range (rows are contiguous, which the reduction over each size's rows needs to be fast).
    values = samples.T[[column[size_range.measurement] for size_range in ranges]]
    minima, maxima = np.array([[r.minimum, r.maximum] for r in ranges]).T
    inside = (values >= minima[:, None]) & (values <= maxima[:, None])
    starts = np.cumsum([0] + [len(size.ranges) for size in chart.sizes[:-1]])
    count = samples.shape[0]
    probabilities = (np.logical_and.reduceat(inside, starts, axis=0).sum(axis=1) / count).tolist()
    shares = iter((inside.sum(axis=1) / count).tolist())
    marginals = [{size_range.measurement: next(shares) for size_range in size.ranges} for size in chart.sizes]

    # Only the chart's measurements: the 2,000-row column means are a large share of a fit profile's cost.
    charted = dict.fromkeys(size_range.measurement for size in chart.sizes for size_range in size.ranges)
    means = {name: float(samples[:, column[name]].mean()) for name in charted}
    if max(probabilities) > 0.0:
        best = int(np.argmax(probabilities))
    else:
        best = min(range(len(chart.sizes)), key=lambda index: _distance_outside(chart.sizes[index], means))
    return column, probabilities, marginals, means, best


def advise_size(chart: SizeChart, samples: np.ndarray, names: tuple[str, ...] = NAMES) -> SizeAdvice:
    """Advise a size from posterior samples of a body.

    ``samples`` is ``[count, len(names)]`` in measurement units. The recommended size is the
    one most likely to fit; when no sample fits any size, it is the size whose ranges are
    closest to the body's mean. The deciding measurement is the one of the recommended size
    least likely to lie in its range (ties go to the one whose mean is nearest a bound).
    """
    column, probabilities, marginals, means, best = _size_odds(chart, samples, names)
    size = chart.sizes[best]
    deciding = min(
        size.ranges,
        key=lambda size_range: (marginals[best][size_range.measurement], _relative_margin(size_range, means)),
    )
    fits = tuple(SizeFit(s.label, p) for s, p in zip(chart.sizes, probabilities, strict=True))
    pulls = _pulls(chart, marginals, means)
    between = _between(chart, probabilities, pulls)
    explanation = _explain(chart, best, probabilities, deciding, samples[:, column[deciding.measurement]])
    if between:
        explanation += " " + _explain_between(between, pulls)
    return SizeAdvice(size.label, fits, deciding.measurement, explanation, between, pulls)


def _pulls(
    chart: SizeChart, marginals: list[dict[str, float]], means: dict[str, float]
) -> tuple[MeasurementPull, ...]:
    """For each measurement of the chart, the size whose range of it alone holds the most samples.

    ``marginals`` holds per size the share of samples inside each of its ranges. Ties (no sample
    inside any range) go to the size whose range is nearest the measurement's mean.
    """
    pulls = []
    measurements = dict.fromkeys(r.measurement for size in chart.sizes for r in size.ranges)
    for measurement in measurements:
        mean = means[measurement]
        candidates = []
        for index, size in enumerate(chart.sizes):
            size_range = next((r for r in size.ranges if r.measurement == measurement), None)
            if size_range is None:
                continue
            outside = max(0.0, size_range.minimum - mean, mean - size_range.maximum)
            candidates.append((-marginals[index][measurement], outside, index))
        pulls.append(MeasurementPull(measurement, chart.sizes[min(candidates)[2]].label))
    return tuple(pulls)


def _between(chart: SizeChart, probabilities: list[float], pulls: tuple[MeasurementPull, ...]) -> tuple[str, ...]:
    """The sizes the body falls between, smallest first: those its measurements point to when they
    differ, else two neighbouring sizes that share the probability (see ``BETWEEN_SHARE``)."""
    order = {size.label: index for index, size in enumerate(chart.sizes)}
    pulled = sorted({pull.size for pull in pulls}, key=order.__getitem__)
    if len(pulled) > 1:
        return tuple(pulled)
    ranked = sorted(range(len(chart.sizes)), key=lambda index: -probabilities[index])[:2]
    if (
        len(ranked) == 2
        and abs(ranked[0] - ranked[1]) == 1
        and probabilities[ranked[0]] < 0.5
        and probabilities[ranked[1]] >= BETWEEN_SHARE
    ):
        return tuple(chart.sizes[index].label for index in sorted(ranked))
    return ()


def _explain_between(between: tuple[str, ...], pulls: tuple[MeasurementPull, ...]) -> str:
    """A sentence naming the sizes the body falls between and where each measurement points."""
    sizes = ", ".join(between[:-1]) + f" and {between[-1]}"
    sentence = f"Your body falls between sizes {sizes}"
    if len({pull.size for pull in pulls}) > 1:
        directions = [f"your {_readable(pull.measurement)} points to {pull.size}" for pull in pulls]
        sentence += ": " + ", ".join(directions)
    return sentence + "."


def fit_profile(
    samples: np.ndarray, names: tuple[str, ...] = NAMES
) -> dict[str, tuple[tuple[str, ...], tuple[float, ...], str]]:
    """For every shipped chart: its size labels, the probability that each fits and the recommended size.

    Exactly what ``advise_size`` answers for each chart; BodyUpdated carries it so that the
    recommender can rank garments by fit without a measurement. ``samples`` as for ``advise_size``.
    """
    profile = {}
    for chart_id, chart in shipped_charts().items():
        _, probabilities, _, _, best = _size_odds(chart, samples, names)
        profile[chart_id] = (
            tuple(size.label for size in chart.sizes), tuple(probabilities), chart.sizes[best].label
        )
    return profile


def _distance_outside(size: Size, means: dict[str, float]) -> float:
    """How far the mean body lies outside a size's ranges, in units of each range's width."""
    total = 0.0
    for size_range in size.ranges:
        value = means[size_range.measurement]
        width = size_range.maximum - size_range.minimum
        total += max(0.0, size_range.minimum - value, value - size_range.maximum) / width
    return total


def _relative_margin(size_range: SizeRange, means: dict[str, float]) -> float:
    """Distance of the mean to the nearest bound, as a share of the range width (negative outside)."""
    value = means[size_range.measurement]
    width = size_range.maximum - size_range.minimum
    return min(value - size_range.minimum, size_range.maximum - value) / width


def _readable(name: str) -> str:
    return name.replace("_", " ")


def _percent(probability: float) -> str:
    """A probability as a shopper reads it; a rare but possible outcome is not shown as 0%."""
    if 0.0 < probability < 0.005:
        return "under 1%"
    if 0.995 <= probability < 1.0:
        return "over 99%"
    return f"{probability:.0%}"


def _explain(
    chart: SizeChart, best: int, probabilities: list[float], deciding: SizeRange, deciding_values: np.ndarray
) -> str:
    """Two short sentences a shopper can read; they name no measurement value."""
    label = chart.sizes[best].label
    measurement = _readable(deciding.measurement)
    below = float((deciding_values < deciding.minimum).mean())
    above = float((deciding_values > deciding.maximum).mean())
    if probabilities[best] == 0.0:
        side = "above" if above >= below else "below"
        return (
            f"No size of this chart is made for this body; {label} is the closest, and your {measurement} "
            f"is {side} its range."
        )
    sentence = f"Size {label} fits with a probability of {_percent(probabilities[best])}"
    if above == 0.0 and below == 0.0:
        sentence += f"; your {measurement} is the closest to the edge of its range."
    else:
        direction, share = ("larger", above) if above >= below else ("smaller", below)
        sentence += (
            f"; your {measurement} decides: it may be {direction} than this size is made for "
            f"(probability {_percent(share)})."
        )
    runner_up = max(
        (index for index in range(len(chart.sizes)) if index != best),
        key=lambda index: probabilities[index],
        default=None,
    )
    if runner_up is not None and probabilities[runner_up] > 0.0:
        sentence += (
            f" Next most likely: size {chart.sizes[runner_up].label} ({_percent(probabilities[runner_up])})."
        )
    return sentence
