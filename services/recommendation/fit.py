"""Fit-aware ranking: a body's fit profile, each garment's best size for it, and the ranking term.

The recommender never sees a body measurement. BodyService, which holds the body's posterior
samples, computes a fit profile when it creates or changes a body: for every shipped size chart,
the probability that each size fits (exactly what AdviseSize answers for that chart), and sends
it in BodyUpdated; BodyDeleted drops it. A garment names its shipped chart in GarmentRegistered
(``size_chart_id``), so the best size of any garment for any known body is a lookup: no call to
BodyService on the request path, no coupling of the recommender's latency or availability to
BodyService's, and a profile of a few hundred bytes per body (measured by
``python -m tryon.services.recommendation.fit_evaluation``). The price: garments with an inline
chart are ranked as if they had none, and a chart shipped later counts once bodies are updated.

A garment ranks by ``taste + FIT_WEIGHT * ln(max(p, FIT_FLOOR))``, p the probability that its best
size fits; a garment without a chart the profile knows has p = 1 (one size, or nothing to say).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tryon.shared.contract import check_chart_id
from tryon.shared.errors import InvalidEvent

FIT_WEIGHT = 1.0
"""Weight of ln(fit probability) against the shopper's taste score."""
FIT_FLOOR = 0.01
"""Probabilities below this count as this, so that a garment that cannot fit sinks but stays finite."""
FIT_POOL = 200
"""Extra garments by taste that fit may lift into a RecommendGarments answer of k garments."""
MAX_CHARTS = 64
"""Charts a fit profile may hold."""
MAX_SIZES = 200
MAX_LABEL_LENGTH = 64


@dataclass(frozen=True)
class ChartFit:
    """How the sizes of one chart fit one body: labels in chart order and their probabilities."""

    labels: tuple[str, ...]
    probabilities: tuple[float, ...]
    recommended: str = ""
    """The size AdviseSize recommends (the closest when none may fit); empty: the most likely."""

    def best(self) -> tuple[str, float]:
        """The advised size and its probability: the recommended one, else the most likely (the smaller of ties)."""
        if self.recommended in self.labels:
            index = self.labels.index(self.recommended)
        else:
            index = max(range(len(self.probabilities)), key=lambda i: (self.probabilities[i], -i))
        return self.labels[index], self.probabilities[index]


FitProfile = dict[str, ChartFit]
"""A body's fit per shipped chart id."""


def best_size(profile: FitProfile | None, chart_id: str) -> tuple[str, float]:
    """The advised size of a garment with ``chart_id`` for the body, and its probability.

    ("", 1.0) when there is no profile, no chart, or a chart the profile does not know.
    """
    if not profile or not chart_id or chart_id not in profile:
        return "", 1.0
    return profile[chart_id].best()


def fit_terms(probabilities: Iterable[float], weight: float = FIT_WEIGHT) -> np.ndarray:
    """``weight * ln(max(p, FIT_FLOOR))`` of each probability."""
    values = np.maximum(np.fromiter(probabilities, dtype=np.float64), FIT_FLOOR)
    return weight * np.log(values)


def check_fit_profile(entries) -> FitProfile:
    """The fit profile of BodyUpdated's ``fit_profile`` (ChartFit messages), or InvalidEvent naming the rule broken."""
    if len(entries) > MAX_CHARTS:
        raise InvalidEvent(f"fit_profile holds {len(entries)} charts; at most {MAX_CHARTS}")
    profile: FitProfile = {}
    for position, entry in enumerate(entries):
        field = f"fit_profile[{position}]"
        chart_id = check_chart_id(entry.chart_id, f"{field}.chart_id", InvalidEvent)
        if chart_id in profile:
            raise InvalidEvent(f"{field}.chart_id {chart_id!r} appears twice")
        labels, probabilities = tuple(entry.size_labels), tuple(float(p) for p in entry.probabilities)
        if not 1 <= len(labels) <= MAX_SIZES or len(probabilities) != len(labels):
            raise InvalidEvent(
                f"{field} needs 1 to {MAX_SIZES} size_labels and as many probabilities; "
                f"got {len(labels)} and {len(probabilities)}"
            )
        if any(not label or len(label) > MAX_LABEL_LENGTH for label in labels):
            raise InvalidEvent(f"{field}.size_labels must each be 1 to {MAX_LABEL_LENGTH} characters")
        if any(not (math.isfinite(p) and 0.0 <= p <= 1.0) for p in probabilities):
            raise InvalidEvent(f"{field}.probabilities must each be in [0, 1]")
        if entry.recommended_size and entry.recommended_size not in labels:
            raise InvalidEvent(f"{field}.recommended_size {entry.recommended_size!r} is not one of its size_labels")
        profile[chart_id] = ChartFit(labels, probabilities, entry.recommended_size)
    return profile


def profile_state(profile: FitProfile) -> dict:
    """A JSON-ready copy of a fit profile (for snapshots)."""
    return {
        chart: {"labels": list(fit.labels), "probabilities": list(fit.probabilities), "recommended": fit.recommended}
        for chart, fit in profile.items()
    }


def profile_from_state(state: dict) -> FitProfile:
    """The fit profile ``profile_state`` wrote."""
    return {
        chart: ChartFit(
            tuple(entry["labels"]), tuple(float(p) for p in entry["probabilities"]), entry.get("recommended", "")
        )
        for chart, entry in state.items()
    }
