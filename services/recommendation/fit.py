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

Garments run small or large against their chart (SizeFlags, KDD 2021). ``SizeOffsets`` learns by
how many sizes each garment runs from the event log alone: purchases with the size bought and the
buyer's body id (whose fit profile it reads), and returns with their reason (too small, too
large). For an offset ``d`` (negative: runs small), the label at chart position ``i`` fits the
bodies the chart's size at ``i + d * step`` fits (``SIZE_STEPS``); the likelihood of each outcome
under each ``d`` comes from what the recommender knows of the buyer's size, and a prior says that
most garments are true to size. The advised size is the label likeliest to be kept over that posterior
of offsets (the body's own likeliest size for a garment nobody bought with a size): a garment that
runs small is advised a size up. Bodies are learned the same way (Sembium et al., "Recommending
Product Sizes to Customers", RecSys 2017, learn a true size per customer and per product from
purchases and returns):
a profile inferred from a few self-measured numbers can miss the size a body wears, or its length,
so each (body, chart) keeps the likelihood of every chart position, and of no size fitting, from the
body's own sized purchases and returns, with the profile as their prior (``size_prior``). The
recommender ranks and advises by how likely the body keeps each size (``worn_fit``, with a size's
neighbours kept at ``SIZE_EASE``). Measured on the simulator (``fit_ranking``).

Ranking: by taste plus ``FIT_WEIGHT * ln(max(p, FIT_FLOOR))`` of the advised size's probability p, so
a garment the body would likely send back drops a few places rather than out of sight. Optionally, a
garment whose p is under a threshold (``FIT_THRESHOLD``; none by default) loses ``DEMOTION`` and comes
after every candidate whose size may fit. Measured on the simulator over five seeds (``fit_ranking``),
with bodies learned by the size they wear, means at 0 / 25 / 50% of garments off their chart: advice
alone (taste order) cut 32 to 34% of returns at no cost in NDCG@20; a weight of 0.03 cut 34 to 37% for
0.5 to 1.5% of NDCG@20 against all held-out purchases (0.02: 34 to 37% for 0.3 to 0.7%; 0.05: 37 to
39% for 1.1 to 2.3%); demotion under 0.01 cut 46 to 51% for 3.7 to 5.2%. 0.03 is the largest weight
measured whose cost stayed within 2% in every setting, chosen on those same seeds. A garment without a
chart the profile knows has p = 1.
"""
from __future__ import annotations

import enum
import functools
import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tryon.services.recommendation.history import InteractionKind
from tryon.shared.contract import check_chart_id, check_size
from tryon.shared.errors import DomainError, InvalidEvent

FIT_WEIGHT = 0.03
"""Weight of ln(fit probability) against the shopper's taste score (Mult-VAE logits, or standardised
scores in outfits)."""
FIT_THRESHOLD = 0.0
"""Fit probability under which a garment is demoted below the others; 0: none is (demotion under 0.01 cost
3.7 to 5.2% of NDCG@20 on the simulator, ``fit_ranking``)."""
DEMOTION = 1000.0
"""What a demoted garment loses: more than any spread of taste scores, so it comes after the rest."""
FIT_FLOOR = 0.01
"""Probabilities below this count as this, so that a garment that cannot fit sinks but stays finite; a chart
none of whose sizes reaches it for a body has no size that may fit it."""
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

    def best(self, offsets: np.ndarray | None = None, step: int = 1) -> tuple[str, float]:
        """The advised size and its probability: the recommended one, else the most likely (the smaller of ties).

        ``offsets`` (optional) weighs each of ``OFFSETS`` by how likely the garment runs that many
        sizes off its chart (``SizeOffsets.posterior``): the label at position ``i`` then fits with
        the weighted probability of the chart's sizes at ``i + d * step``, and the advice is the
        label likeliest to fit; when none may fit (each under ``FIT_FLOOR``), the one nearest the
        body's own size under the likeliest offset.
        """
        if self.recommended in self.labels:
            index = self.labels.index(self.recommended)
        else:
            index = max(range(len(self.probabilities)), key=lambda i: (self.probabilities[i], -i))
        if offsets is None:
            return self.labels[index], self.probabilities[index]
        probabilities = np.asarray(self.probabilities, dtype=np.float64)
        # A label cut as a size beyond the chart's ends fits no body the profile knows.
        shifted = _moved(probabilities, np.asarray(OFFSETS) * step) @ np.asarray(offsets, dtype=np.float64)
        if shifted.max() >= FIT_FLOOR:
            best = int(np.argmax(shifted))
        else:
            best = min(max(index - OFFSETS[int(np.argmax(offsets))] * step, 0), len(probabilities) - 1)
        return self.labels[best], float(shifted[best])


def _moved(probabilities: np.ndarray, moves: np.ndarray) -> np.ndarray:
    """``[positions, moves]``: the probability of the size ``move`` positions from each, 0 beyond the chart's ends."""
    count = len(probabilities)
    sources = np.arange(count)[:, None] + moves[None, :]
    return np.where((sources >= 0) & (sources < count), probabilities[np.clip(sources, 0, count - 1)], 0.0)


FitProfile = dict[str, ChartFit]
"""A body's fit per shipped chart id."""


def best_size(profile: FitProfile | None, chart_id: str, offsets: np.ndarray | None = None) -> tuple[str, float]:
    """The advised size of a garment with ``chart_id`` and its probability (``ChartFit.best``).

    ``offsets``: how likely the garment runs each of ``OFFSETS`` sizes off its chart (None: true
    to size). ("", 1.0) when there is no profile, no chart, or a chart the profile does not know.
    """
    if not profile or not chart_id or chart_id not in profile:
        return "", 1.0
    return profile[chart_id].best(offsets, SIZE_STEPS.get(chart_id, 1))


def fit_terms(
    probabilities: Iterable[float], weight: float = FIT_WEIGHT, threshold: float = FIT_THRESHOLD
) -> np.ndarray:
    """``weight * ln(max(p, FIT_FLOOR))`` of each probability, less ``DEMOTION`` under ``threshold``."""
    values = np.fromiter(probabilities, dtype=np.float64)
    return weight * np.log(np.maximum(values, FIT_FLOOR)) - DEMOTION * (values < threshold)


# Garments that run small or large -----------------------------------------------------------

SIZE_STEPS: dict[str, int] = {"us_mens_trousers": 3}
"""Chart positions from one size to the next larger (1 when not named): us_mens_trousers lists three
inseams per waist, so one size larger is the next waist (a test checks this against the charts)."""
OFFSETS = (-2, -1, 0, 1, 2)
"""Sizes a garment may run off its chart (negative: small), the values ``SizeOffsets`` weighs."""
OFFSET_PRIOR = np.log([0.03, 0.12, 0.7, 0.12, 0.03])
"""Log prior of each offset: most garments are true to size; one size off is common, two rare."""
PROFILE_ERROR_PRIOR = np.exp(OFFSET_PRIOR)
"""How likely a fit profile is each of ``OFFSETS`` sizes off the size the body wears: a profile inferred from a
few self-measured numbers, taken as exact, is often a size off (most are right, two sizes off is rare)."""
BODY_SIZE_FLOOR = 1e-3
"""Prior weight of every size a body may wear, beside its profile's probability: a profile inferred from a few
self-measured numbers can miss the size a body wears (or the length, in charts of several), and the body's own
purchases must be able to say so."""
OUTCOME_NOISE = 0.1
"""Share of purchases whose outcome the size explains not (a fit profile's error, a change of mind)."""
SIZE_EASE = 0.5
"""Chance that a body of the size next to the one a garment is cut as still wears it (a cut's ease):
charts name exact ranges, bodies at their edges wear both neighbours."""
PENDING_PURCHASES = 100_000
"""Sized purchases remembered for a return to find (the oldest go first)."""


class Outcome(enum.IntEnum):
    """What became of a sized purchase: kept, or sent back because the size was too small or too large."""

    KEPT = 0
    TOO_SMALL = 1
    TOO_LARGE = 2


RETURN_REASONS = {1: Outcome.TOO_SMALL, 2: Outcome.TOO_LARGE}
"""``tryon.v1.ReturnReason`` values that blame the size, and the outcome each means."""
REASON_NAMES = {0: "UNSPECIFIED", 1: "TOO_SMALL", 2: "TOO_LARGE", 3: "OTHER"}
"""``tryon.v1.ReturnReason`` values and names."""
PURCHASE, RETURN = InteractionKind.PURCHASE, InteractionKind.RETURN
"""The interaction kinds that may carry a size."""


def check_sizing(kind: int, size: str, reason: int, chart_id: str, field: str, error: type[DomainError]) -> None:
    """An interaction's size and return reason keep the contract, or ``error`` names the rule broken.

    The size is a label of the garment's shipped chart, on PURCHASE or RETURN only; the return
    reason a ``ReturnReason`` value, on RETURN only.
    """
    if reason not in REASON_NAMES:
        accepted = ", ".join(f"{value} ({name})" for value, name in REASON_NAMES.items())
        raise error(f"{field}return_reason must be one of {accepted}; got {reason}")
    if reason and kind != RETURN:
        raise error(f"{field}return_reason is only for interactions of type RETURN; leave it UNSPECIFIED")
    if size and kind not in (PURCHASE, RETURN):
        raise error(f"{field}size is only for interactions of type PURCHASE or RETURN; leave it empty")
    check_size(size, chart_id, f"{field}size", error)


@functools.lru_cache(maxsize=64)
def _size_relations(count: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """How the positions of a chart of ``count`` sizes relate, ``[garment's position, body's position]``.

    ``kept``: how likely a body that wears position ``w`` keeps a garment cut as position ``e``: 1 when
    they are one, ``SIZE_EASE`` for a neighbour (the next size up or down, or in a chart of ``step`` lengths
    per size the next length of the same size), 0 otherwise. ``larger``: whether ``w`` is larger than ``e``
    (a larger size, or the same size and a longer length), so that a garment it does not keep is too small.
    """
    positions = np.arange(count)
    cut, worn = positions[:, None], positions[None, :]
    same_size = cut // step == worn // step
    neighbour = (np.abs(cut - worn) == step) | (same_size & (np.abs(cut % step - worn % step) == 1))
    kept = np.where(cut == worn, 1.0, np.where(neighbour, SIZE_EASE, 0.0))
    larger = (worn // step > cut // step) | (same_size & (worn % step > cut % step))
    kept.flags.writeable = larger.flags.writeable = False
    return kept, larger


def outcome_table(fit: ChartFit, label: str, step: int = 1) -> np.ndarray:
    """P(outcome | garment's offset, body's size) of a purchase of ``label``: ``[Outcome, OFFSETS, sizes + 1]``.

    Under offset ``d`` the label is cut as the chart's size at ``e = i + d * step``. A body that wears
    position ``w`` keeps it as ``_size_relations`` says, and sends back what it does not keep as too
    small when ``w`` is larger than ``e``, else as too large; a garment cut beyond the chart's ends is
    too small for every body below its first size and too large above its last. The last column is a
    body that no size of the chart fits: it keeps nothing and blames either way alike. Mixed with
    ``OUTCOME_NOISE``.
    """
    count, position = len(fit.labels), fit.labels.index(label)
    kept, larger = _size_relations(count, step)
    table = np.empty((len(Outcome), len(OFFSETS), count + 1))
    for column, offset in enumerate(OFFSETS):
        cut = position + offset * step
        if 0 <= cut < count:
            keeps, too_small = kept[cut], larger[cut]
        else:
            keeps, too_small = np.zeros(count), np.full(count, cut < 0)
        table[Outcome.KEPT, column, :count] = keeps
        table[Outcome.TOO_SMALL, column, :count] = (1.0 - keeps) * too_small
        table[Outcome.TOO_LARGE, column, :count] = (1.0 - keeps) * ~too_small
        table[:, column, count] = (0.0, 0.5, 0.5)
    return (1.0 - OUTCOME_NOISE) * table + OUTCOME_NOISE / 3


def size_prior(fit: ChartFit, step: int = 1) -> np.ndarray:
    """Prior weights of the position a body of this fit wears in the chart, and last of no size fitting it:
    each size's probability in the profile, spread over how likely the profile is each number of sizes off
    (``PROFILE_ERROR_PRIOR``), at least ``BODY_SIZE_FLOOR``; and what the profile's probabilities leave (no
    size fits)."""
    probabilities = np.asarray(fit.probabilities, dtype=np.float64)
    spread = _moved(probabilities, -np.asarray(OFFSETS) * step) @ PROFILE_ERROR_PRIOR
    weights = np.append(np.maximum(spread, BODY_SIZE_FLOOR), max(1.0 - probabilities.sum(), BODY_SIZE_FLOOR))
    return weights / weights.sum()


def worn_fit(fit: ChartFit, worn: np.ndarray, step: int = 1) -> ChartFit:
    """``fit`` as a body wears the chart: ``worn`` weighs each position it may wear and, last, none fitting
    (``SizeOffsets.size_posterior``); each label fits with the probability that the body keeps it cut true to
    size. The recommended size is the likeliest, or, when none may fit (each under ``FIT_FLOOR``), the
    profile's own advice (``ChartFit.best``)."""
    kept, _ = _size_relations(len(fit.labels), step)
    probabilities = kept @ np.asarray(worn[:-1], dtype=np.float64)
    recommended = fit.labels[int(np.argmax(probabilities))] if probabilities.max() >= FIT_FLOOR else fit.best()[0]
    return ChartFit(fit.labels, tuple(float(p) for p in probabilities), recommended)


def most_probable_offset(weights: np.ndarray | None) -> int:
    """The most probable of ``OFFSETS`` under a ``SizeOffsets.posterior`` (0 for None: nobody bought it with a size)."""
    return 0 if weights is None else OFFSETS[int(np.argmax(weights))]


class SizeOffsets:
    """How each garment runs off its chart, and which size each body wears in it, learned from sized purchases
    and returns.

    A purchase's outcome depends on the garment's offset ``d`` and the chart position the buyer wears
    (or on no size fitting them), through ``outcome_table``. Each garment keeps the log-likelihood of
    every offset in ``OFFSETS``; each (body, chart) that of every position and of none fitting, whose
    prior is the body's fit profile (``size_prior``): a profile inferred from a few self-measured
    numbers may be a size or a length off, and what the body kept or sent back corrects it. An event
    updates both, each averaging the other's current posterior (an online approximation of the joint
    one). A purchase adds the likelihood of being kept; a return for a size reason, matched to the
    shopper's latest purchase of the garment (of the same size when given), swaps it for that of its
    reason. Not thread-safe: the recommender calls it under its lock.
    """

    def __init__(self) -> None:
        self._log_likelihood: dict[str, np.ndarray] = {}
        self._size_log_likelihood: dict[tuple[str, str], np.ndarray] = {}
        self._pending: OrderedDict[tuple[str, str], list[list]] = OrderedDict()
        # Each body's corrected profile, with the profile it came from: rankings ask for it on every
        # request, and it changes only when the profile or what the body taught does.
        self._corrected: dict[str, tuple[FitProfile, FitProfile]] = {}

    def purchase(
        self,
        user_id: str,
        garment_id: str,
        label: str,
        fit: ChartFit,
        step: int = 1,
        body: tuple[str, str] | None = None,
    ) -> None:
        """A purchase of ``label`` by a body of fit ``fit``: counted as kept until a return says otherwise.

        ``body``: (body id, chart id) of the buyer, whose size the purchase teaches too (None: the garment only).
        """
        table = outcome_table(fit, label, step)
        # Each side averages the other's posterior as it was before this purchase.
        worn = self.size_posterior(*body, fit, step) if body else size_prior(fit, step)
        offsets = self.posterior(garment_id)
        garment_table = np.log(table @ worn)
        self._add(self._log_likelihood, garment_id, garment_table[Outcome.KEPT])
        entry = [label, garment_table, None, None, None]
        if body:
            body_table = np.log(np.einsum("odw,d->ow", table, np.exp(OFFSET_PRIOR) if offsets is None else offsets))
            if self._learned(body, body_table.shape[1]) is None:
                # Nothing learned yet, or the chart's sizes changed since: what it taught no longer applies.
                self._size_log_likelihood.pop(body, None)
            self._add(self._size_log_likelihood, body, body_table[Outcome.KEPT])
            self._corrected.pop(body[0], None)
            entry[2:] = [body[0], body[1], body_table]
        key = (user_id, garment_id)
        self._pending.setdefault(key, []).append(entry)
        self._pending.move_to_end(key)
        while len(self._pending) > PENDING_PURCHASES:
            self._pending.popitem(last=False)

    def returned(self, user_id: str, garment_id: str, label: str, outcome: Outcome) -> bool:
        """A return for ``outcome`` of the shopper's latest purchase of the garment (of ``label`` when given).

        False, and nothing learned, when no such purchase is remembered.
        """
        purchases = self._pending.get((user_id, garment_id), [])
        match = next((n for n in range(len(purchases) - 1, -1, -1) if not label or purchases[n][0] == label), None)
        if match is None:
            return False
        _, garment_table, body_id, chart_id, body_table = purchases.pop(match)
        if not purchases:
            del self._pending[(user_id, garment_id)]
        self._add(self._log_likelihood, garment_id, garment_table[outcome] - garment_table[Outcome.KEPT])
        if body_table is not None and self._learned((body_id, chart_id), body_table.shape[1]) is not None:
            self._corrected.pop(body_id, None)
            self._add(self._size_log_likelihood, (body_id, chart_id), body_table[outcome] - body_table[Outcome.KEPT])
        return True

    @staticmethod
    def _add(store: dict, key, values: np.ndarray) -> None:
        current = store.get(key)
        store[key] = values.copy() if current is None else current + values

    def posterior(self, garment_id: str) -> np.ndarray | None:
        """How likely the garment runs each of ``OFFSETS`` sizes off its chart (None: nobody bought it with a size)."""
        return _posterior(OFFSET_PRIOR, self._log_likelihood.get(garment_id))

    def offset(self, garment_id: str) -> int:
        """The garment's most probable offset (0 for a garment nobody bought with a size)."""
        return most_probable_offset(self.posterior(garment_id))

    def size_posterior(self, body_id: str, chart_id: str, fit: ChartFit, step: int = 1) -> np.ndarray:
        """How likely the body of fit ``fit`` wears each position of the chart, and last that none fits it:
        the profile's prior (``size_prior``) until the body buys from the chart, then corrected by its outcomes."""
        prior = size_prior(fit, step)
        log_likelihood = self._learned((body_id, chart_id), len(prior))
        return prior if log_likelihood is None else _posterior(np.log(prior), log_likelihood)

    def _learned(self, body: tuple[str, str], width: int) -> np.ndarray | None:
        """What a (body, chart) learned, when it was learned over a chart of ``width - 1`` sizes (else None)."""
        log_likelihood = self._size_log_likelihood.get(body)
        return log_likelihood if log_likelihood is not None and len(log_likelihood) == width else None

    def has_learned(self, body_id: str, chart_id: str) -> bool:
        """Whether the body's sized purchases in the chart taught anything (that its numbers have not since dropped)."""
        return (body_id, chart_id) in self._size_log_likelihood

    def corrected(self, body_id: str, profile: FitProfile) -> FitProfile:
        """The body's profile as it wears each chart (``worn_fit`` of ``size_posterior``): the profile's own
        prior until the body buys from the chart, so a kept purchase makes the size kept likelier and a
        return moves it."""
        cached = self._corrected.get(body_id)
        if cached is not None and cached[0] is profile:
            return cached[1]
        corrected = {}
        for chart_id, fit in profile.items():
            step = SIZE_STEPS.get(chart_id, 1)
            corrected[chart_id] = worn_fit(fit, self.size_posterior(body_id, chart_id, fit, step), step)
        self._corrected[body_id] = (profile, corrected)
        return corrected

    def forget_user(self, user_id: str) -> None:
        """Drop the shopper's remembered purchases (what they taught the garments stays, unattributed)."""
        for key in [key for key in self._pending if key[0] == user_id]:
            del self._pending[key]

    def forget_body(self, body_id: str, charts: Iterable[str] | None = None) -> None:
        """Drop what the body's purchases taught about it (in ``charts`` only, when given), and the body from
        the purchases remembered for returns: a later return of one of them teaches the garment only."""
        charts = None if charts is None else set(charts)
        self._corrected.pop(body_id, None)

        def forgotten(body: str | None, chart: str | None) -> bool:
            return body == body_id and (charts is None or chart in charts)

        for key in [key for key in self._size_log_likelihood if forgotten(*key)]:
            del self._size_log_likelihood[key]
        for purchases in self._pending.values():
            for entry in purchases:
                if forgotten(entry[2], entry[3]):
                    entry[2:] = [None, None, None]

    def state(self) -> dict:
        """A JSON-ready copy (for snapshots)."""
        return {
            "log_likelihood": {g: values.tolist() for g, values in self._log_likelihood.items()},
            "size_log_likelihood": [[b, c, values.tolist()] for (b, c), values in self._size_log_likelihood.items()],
            "pending": [
                [user, garment, [[label, _listed(table), body, chart, _listed(body_table)]
                                 for label, table, body, chart, body_table in purchases]]
                for (user, garment), purchases in self._pending.items()
            ],
        }

    @classmethod
    def from_state(cls, state: dict) -> SizeOffsets:
        """The offsets ``state`` wrote. A state written before bodies were learned by size holds garments only
        (what it learned of bodies, by shifts of their profiles, is dropped: their next purchases teach afresh)."""
        offsets = cls()
        offsets._log_likelihood = {g: _array(v) for g, v in state.get("log_likelihood", {}).items()}
        sized = "size_log_likelihood" in state
        offsets._size_log_likelihood = {(b, c): _array(v) for b, c, v in state.get("size_log_likelihood", [])}
        for user, garment, purchases in state.get("pending", []):
            entries = [list(purchase) + [None] * (5 - len(purchase)) for purchase in purchases]
            offsets._pending[(user, garment)] = [
                [label, _array(table), *((body, chart, _array(body_table)) if sized else (None, None, None))]
                for label, table, body, chart, body_table in entries
            ]
        return offsets


def _listed(table: np.ndarray | None) -> list | None:
    """A table as JSON-ready lists (None stays None)."""
    return None if table is None else table.tolist()


def _array(table: list | None) -> np.ndarray | None:
    """A table read back from ``_listed`` (None stays None)."""
    return None if table is None else np.asarray(table, dtype=np.float64)


def _posterior(log_prior: np.ndarray, log_likelihood: np.ndarray | None) -> np.ndarray | None:
    """Normalised posterior weights of a log prior and a summed log-likelihood (None without one)."""
    if log_likelihood is None:
        return None
    log_posterior = log_prior + log_likelihood
    weights = np.exp(log_posterior - log_posterior.max())
    return weights / weights.sum()


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
