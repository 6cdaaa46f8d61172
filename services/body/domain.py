"""BodyService's domain: validate measurements, create and keep bodies, advise sizes, render silhouettes.

No grpc or kafka here: the servicer converts protobuf to the plain types below, and events
leave through an optional `BodyEvents` publisher (None in tests that need no broker).
Errors a caller can fix are raised as `tryon.shared.errors` exceptions whose message names
the field and what is accepted; a measurement value is never logged.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

from tryon.services.body import sizing
from tryon.services.body.measurements import BY_NAME, NAMES, REQUIRED, SEXES
from tryon.services.body.mesh import BodyMesh
from tryon.services.body.meshes import BodyMeshes
from tryon.services.body.silhouette import Silhouette, picture_size, render_mesh_silhouette, render_silhouette
from tryon.services.body.store import BodyRecord, BodyStore, MeasurementEstimate, new_body_id
from tryon.shared.errors import FailedPrecondition, InvalidArgument, NotFound

MAX_SAMPLE_COUNT = 10_000
SAMPLE_CHUNK = 500
GENERATORS = ("vae", "gan")
DEFAULT_ADVICE_SAMPLES = 2_000
# Bodies whose posterior samples are kept, so the advice for a second chart is quick.
CACHED_SAMPLE_SETS = 128
POUNDS_PER_KILOGRAM = 2.20462

# Landmark heights that must come in this order from the floor up when given together.
HEIGHT_ORDER = ("knee_height", "inseam", "waist_height", "shoulder_height", "neck_height", "stature")

logger = logging.getLogger(__name__)


class BodyModelLike(Protocol):
    """What the domain needs of `tryon.services.body.body_model.BodyModel`."""

    def infer(self, observed: dict[str, float], sex: str | None) -> dict: ...

    def posterior_samples(self, observed: dict[str, float], sex: str | None, count: int, seed: int) -> np.ndarray: ...

    def latent(self, observed: dict[str, float], sex: str | None) -> np.ndarray: ...

    def sample_arrays(self, count: int, seed: int, sex: str | None, generator: str) -> tuple[list[str], np.ndarray]: ...


class BodyEvents(Protocol):
    """Where the domain announces changes to bodies (Kafka in the service)."""

    def body_updated(
        self,
        body_id: str,
        sex: str | None,
        latent: Sequence[float],
        fit_profile: Mapping[str, tuple[Sequence[str], Sequence[float], str]] | None = None,
    ) -> None:
        """A body was created or changed; only its latent code and fit profile leave the service.

        ``fit_profile`` maps each shipped chart id to its size labels, the probability that each
        fits and the recommended size (``sizing.fit_profile``): no measurement.
        """

    def body_deleted(self, body_id: str) -> None:
        """A body and every trace of it were deleted."""


@dataclass(frozen=True)
class SampledBody:
    """A body drawn from a generative model; it is not stored."""

    sex: str
    values: dict[str, float]


def check_sex(sex: str | None) -> str | None:
    """The sex if it is one of SEXES or None, else InvalidArgument."""
    if sex is not None and sex not in SEXES:
        raise InvalidArgument(f"sex must be one of {', '.join(SEXES)} or unspecified; got {sex!r}")
    return sex


def validate_measurements(measurements: Sequence[tuple[str, float]]) -> dict[str, float]:
    """The observed measurements as a dict, or InvalidArgument naming the field and the accepted range."""
    if not measurements:
        raise InvalidArgument(
            f"measurements is empty: give at least {' and '.join(_with_range(name) for name in REQUIRED)}"
        )
    observed: dict[str, float] = {}
    for index, (name, value) in enumerate(measurements):
        field = f"measurements[{index}]"
        if name not in BY_NAME:
            raise InvalidArgument(
                f"{field}.name {name!r} is not a known measurement; known measurements: {', '.join(NAMES)}"
            )
        if name in observed:
            raise InvalidArgument(f"{field}.name {name!r} is given twice; give each measurement once")
        observed[name] = _checked_value(field, name, value)
    missing = [name for name in REQUIRED if name not in observed]
    if missing:
        raise InvalidArgument(
            f"measurements lacks {' and '.join(_with_range(name) for name in missing)}; they are required"
        )
    _check_height_order(observed)
    return observed


def _with_range(name: str) -> str:
    measurement = BY_NAME[name]
    return f"{name} ({measurement.human_min:g}-{measurement.human_max:g} {measurement.unit})"


def _checked_value(field: str, name: str, value: float) -> float:
    measurement = BY_NAME[name]
    expected = f"expected {measurement.human_min:g}-{measurement.human_max:g}"
    if not math.isfinite(value):
        raise InvalidArgument(f"{field}: {name} must be a finite number; {expected} {measurement.unit}")
    if measurement.human_min <= value <= measurement.human_max:
        return float(value)
    # The message says the value back to the caller, who sent it; it is never logged.
    if measurement.unit == "mm":
        hint = ""
        if measurement.human_min <= value * 10 <= measurement.human_max:
            hint = " (that looks like centimetres)"
        elif measurement.human_min <= value * 1000 <= measurement.human_max:
            hint = " (that looks like metres)"
        raise InvalidArgument(f"{field}: {name} is in millimetres: got {value:g}, {expected}{hint}")
    hint = ""
    if measurement.human_min <= value / POUNDS_PER_KILOGRAM <= measurement.human_max and value > measurement.human_max:
        hint = " (that looks like pounds)"
    elif measurement.human_min <= value / 1000 <= measurement.human_max:
        hint = " (that looks like grams)"
    raise InvalidArgument(f"{field}: {name} is in kilograms: got {value:g}, {expected}{hint}")


def _check_height_order(observed: dict[str, float]) -> None:
    given = [name for name in HEIGHT_ORDER if name in observed]
    for lower, higher in zip(given, given[1:]):
        if observed[lower] >= observed[higher]:
            raise InvalidArgument(
                f"measurements: {lower} must be less than {higher} (both are heights from the floor, in mm)"
            )


def _seed_of(body_id: str) -> int:
    """A stable seed per body, so the same question about a body gets the same answer."""
    return int.from_bytes(hashlib.sha256(body_id.encode()).digest()[:8], "big") >> 1


class BodyDomain:
    """The operations of BodyService on a trained body model and a store."""

    def __init__(
        self,
        model: BodyModelLike,
        store: BodyStore,
        events: BodyEvents | None = None,
        advice_samples: int = DEFAULT_ADVICE_SAMPLES,
        meshes: BodyMeshes | None = None,
    ) -> None:
        self.model = model
        self.store = store
        self.events = events
        self.advice_samples = advice_samples
        self.meshes = meshes
        self._samples: OrderedDict[str, np.ndarray] = OrderedDict()
        self._samples_lock = threading.Lock()

    def create_body(self, measurements: Sequence[tuple[str, float]], sex: str | None) -> BodyRecord:
        """Validate, infer every measurement, publish BodyUpdated and store the body."""
        observed = validate_measurements(measurements)
        check_sex(sex)
        estimates = self.model.infer(observed, sex)
        record = BodyRecord(
            body_id=new_body_id(),
            sex=sex,
            observed=observed,
            estimates=tuple(
                MeasurementEstimate(
                    name=name,
                    unit=BY_NAME[name].unit,
                    value=float(estimates[name].value),
                    stddev=float(estimates[name].stddev),
                    lower_90=float(estimates[name].lower_90),
                    upper_90=float(estimates[name].upper_90),
                    observed=name in observed,
                )
                for name in NAMES
            ),
            latent=tuple(float(value) for value in self.model.latent(observed, sex)),
            created_at=datetime.now(UTC),
        )
        # Announced before it is stored, so that a refused publish (UNAVAILABLE) leaves no body
        # behind for a retry to duplicate. A store failing after it leaves only an event that
        # names an id no caller holds, and no measurement.
        samples = None
        if self.events is not None:
            # The draw AdviseSize would make on its first call: made now and kept for it.
            samples = self._draw_samples(record)
            self.events.body_updated(record.body_id, sex, record.latent, fit_profile=sizing.fit_profile(samples))
        self.store.put(record)
        if samples is not None:
            self._remember_samples(record.body_id, samples)
        logger.info("body created", extra={"body_id": record.body_id, "observed_count": len(observed)})
        return record

    def get_body(self, body_id: str) -> BodyRecord:
        """The stored body, or NotFound."""
        return self.store.get(body_id)

    def delete_body(self, body_id: str) -> str:
        """Publish BodyDeleted, then delete the body from memory and disk; returns the id."""
        record = self.store.get(body_id)
        # Announced before the deletion: a refused publish leaves the body in place, so the caller's
        # retry deletes it and consumers hear of it, instead of NOT_FOUND and a body they keep.
        if self.events is not None:
            self.events.body_deleted(record.body_id)
        self.store.delete(record.body_id)
        with self._samples_lock:
            self._samples.pop(record.body_id, None)
        if self.meshes is not None:
            self.meshes.forget(record.body_id)
        logger.info("body deleted", extra={"body_id": record.body_id})
        return record.body_id

    def check_sample_request(self, count: int, sex: str | None, generator: str) -> None:
        """InvalidArgument unless SampleBodies can answer these parameters."""
        if not 1 <= count <= MAX_SAMPLE_COUNT:
            raise InvalidArgument(f"count must be 1-{MAX_SAMPLE_COUNT}; got {count}")
        check_sex(sex)
        if generator not in GENERATORS:
            raise InvalidArgument(f"generator must be one of {', '.join(GENERATORS)}; got {generator!r}")

    def sample_bodies(self, count: int, seed: int, sex: str | None, generator: str) -> Iterator[SampledBody]:
        """Stream ``count`` sampled bodies, generated in chunks so the first arrive at once.

        Chunk i is drawn with a seed derived from (seed, i), so the same seed gives the same
        bodies, and a longer stream starts with the bodies of a shorter one.
        """
        self.check_sample_request(count, sex, generator)
        return self._sample_chunks(count, seed, sex, generator)

    def _sample_chunks(self, count: int, seed: int, sex: str | None, generator: str) -> Iterator[SampledBody]:
        seeds = np.random.SeedSequence(seed).spawn((count + SAMPLE_CHUNK - 1) // SAMPLE_CHUNK)
        produced = 0
        for chunk_seed in seeds:
            size = min(SAMPLE_CHUNK, count - produced)
            torch_seed = int(chunk_seed.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
            # Always a whole chunk, cut afterwards: the draws of a chunk depend on its size.
            sexes, values = self.model.sample_arrays(SAMPLE_CHUNK, torch_seed, sex, generator)
            for body_sex, row in zip(sexes[:size], values[:size]):
                yield SampledBody(body_sex, dict(zip(NAMES, (float(value) for value in row))))
            produced += size

    def advise_size(self, body_id: str, chart_id: str, sizes: tuple[sizing.Size, ...]) -> sizing.SizeAdvice:
        """Fit probabilities of every size of the chart for a stored body, by Monte Carlo."""
        record = self.store.get(body_id)
        chart = sizing.resolve_chart(chart_id, sizes)
        return sizing.advise_size(chart, self._posterior_samples(record))

    def _posterior_samples(self, record: BodyRecord) -> np.ndarray:
        """Posterior samples of a stored body, drawn once (seeded by its id) and kept for the next chart."""
        with self._samples_lock:
            if record.body_id in self._samples:
                self._samples.move_to_end(record.body_id)
                return self._samples[record.body_id]
        samples = self._draw_samples(record)
        self._remember_samples(record.body_id, samples)
        return samples

    def _remember_samples(self, body_id: str, samples: np.ndarray) -> None:
        """Keep a stored body's samples for its next charts (the least recently used set goes first)."""
        with self._samples_lock:
            if self._is_stored(body_id):
                self._samples[body_id] = samples
                while len(self._samples) > CACHED_SAMPLE_SETS:
                    self._samples.popitem(last=False)

    def _draw_samples(self, record: BodyRecord) -> np.ndarray:
        """Posterior samples of a body, seeded by its id (the same draw every time), read-only."""
        samples = self.model.posterior_samples(
            record.observed, record.sex, self.advice_samples, _seed_of(record.body_id)
        )
        for name, value in record.observed.items():
            # Exact, whatever rounding the model's float32 arithmetic did to an observed value.
            samples[:, NAMES.index(name)] = value
        samples.setflags(write=False)
        return samples

    def _is_stored(self, body_id: str) -> bool:
        """Whether a body is still stored (a deletion may have raced with a request)."""
        try:
            self.store.get(body_id)
        except NotFound:
            return False
        return True

    def render_silhouette(self, body_id: str, width: int, height: int) -> Silhouette:
        """A front-view PNG of a stored body with its keypoints: from its fitted mesh once the mesh
        model is loaded, from its measurements until then."""
        width, height = picture_size(width, height)
        record = self.store.get(body_id)
        if self.meshes is not None and self.meshes.model is not None:
            return render_mesh_silhouette(self.get_body_mesh(body_id), width, height)
        return render_silhouette(record.values(), width, height)

    def get_body_mesh(self, body_id: str) -> BodyMesh:
        """The stored body's 3D mesh fitted to its measurements; Unavailable while the mesh model loads."""
        record = self.store.get(body_id)
        if self.meshes is None:
            raise FailedPrecondition("this BodyService runs without the body mesh model")
        mesh = self.meshes.mesh(record.body_id, record.values(), record.sex)
        if not self._is_stored(record.body_id):
            # Deleted while it was being fitted: keep nothing of it.
            self.meshes.forget(record.body_id)
        return mesh
