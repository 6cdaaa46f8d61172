"""The rules of the ``tryon.v1`` contract that protobuf types cannot express, in one place.

buf's protovalidate would carry these rules in the protos as field options, checked by one
interceptor; its Python runtime cannot be installed offline here, so the rules live in this
module instead, the protos' comments state the same numbers, and every servicer and event
handler checks its input with these functions. A rule broken by an RPC request is an
``InvalidArgument``; the same rule broken by an event is an ``InvalidEvent`` (pass
``error=InvalidEvent``), which sends the event to the dead-letter topic with the message as
its reason.

- Categories: a label (0-9, the Fashion-MNIST class index) is the proto ``GarmentCategory``
  value minus one; 0 (UNSPECIFIED) means "not given".
- Sex: ``SEX_FEMALE`` / ``SEX_MALE`` are "female" / "male"; ``SEX_UNSPECIFIED`` is None.
- Ids (user, garment, body, chart): 1 to ``MAX_ID_LENGTH`` characters, no control characters.
- Display names: 1 to ``MAX_NAME_LENGTH`` characters after surrounding blanks, no control characters.
- Latent vectors (content latents, body latents): the expected length, finite numbers, and an
  L2 norm of at most ``MAX_LATENT_NORM``.
- Shipped size charts: ``SHIPPED_CHART_IDS``, the charts BodyService can advise sizes from, and
  ``SHIPPED_CHART_SIZES``, the size labels of each.
"""

from __future__ import annotations

import operator
import unicodedata
from collections.abc import Iterable

import numpy as np

from tryon.shared.errors import DomainError, InvalidArgument
from tryon.shared.proto import common_pb2

# Categories ---------------------------------------------------------------------------------

CATEGORY_NAMES: tuple[str, ...] = tuple(
    name.removeprefix("GARMENT_CATEGORY_").lower()
    for name, value in common_pb2.GarmentCategory.items()
    if value != common_pb2.GARMENT_CATEGORY_UNSPECIFIED
)
"""Category names in label order: "t_shirt_top", "trouser", ..., "ankle_boot"."""

NUM_CATEGORIES = len(CATEGORY_NAMES)

CATEGORY_PROTO_VALUES: tuple[int, ...] = tuple(
    common_pb2.GarmentCategory.Value(f"GARMENT_CATEGORY_{name.upper()}") for name in CATEGORY_NAMES
)
"""The proto value of each label, indexed by label: a table for answers built in bulk."""

ACCEPTED_CATEGORIES = ", ".join(
    f"{value} (GARMENT_CATEGORY_{name.upper()})" for value, name in zip(CATEGORY_PROTO_VALUES, CATEGORY_NAMES)
)
"""The accepted proto values with their names, for error messages."""


def _as_int(value: object) -> int | None:
    """``value`` as a Python int (numpy integers included), or None when it is not an integer."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def category_from_proto(value: int, field: str = "category", error: type[DomainError] = InvalidArgument) -> int:
    """The label (0-9) of a proto ``GarmentCategory`` value; UNSPECIFIED and unknown values are refused."""
    number = _as_int(value)
    if number is None or not 1 <= number <= NUM_CATEGORIES:
        raise error(f"{field} must be one of {ACCEPTED_CATEGORIES}; got {value!r}")
    return number - 1


def check_label(label: int, field: str = "category label", error: type[DomainError] = InvalidArgument) -> int:
    """``label`` as an int after checking that it is a category label in [0, 9]."""
    number = _as_int(label)
    if number is None or not 0 <= number < NUM_CATEGORIES:
        raise error(f"{field} must be an integer in [0, {NUM_CATEGORIES - 1}]; got {label!r}")
    return number


def category_to_proto(label: int) -> int:
    """The proto ``GarmentCategory`` value of a label (0-9)."""
    return check_label(label) + 1


# Sex ----------------------------------------------------------------------------------------

SEX_FROM_PROTO: dict[int, str | None] = {
    common_pb2.SEX_UNSPECIFIED: None,
    common_pb2.SEX_FEMALE: "female",
    common_pb2.SEX_MALE: "male",
}
"""The domain's sex of each ``Sex`` value: "female", "male", or None when not given."""

SEX_TO_PROTO: dict[str | None, int] = {sex: value for value, sex in SEX_FROM_PROTO.items()}
"""The ``Sex`` value of each domain sex."""


def sex_from_proto(value: int, field: str = "sex", error: type[DomainError] = InvalidArgument) -> str | None:
    """The domain's sex of a ``Sex`` value; a value outside the enum is refused."""
    if value not in SEX_FROM_PROTO:
        raise error(f"{field} must be SEX_UNSPECIFIED (0), SEX_FEMALE (1) or SEX_MALE (2); got {value}")
    return SEX_FROM_PROTO[value]


# Ids and names ------------------------------------------------------------------------------

MAX_ID_LENGTH = 256
"""Longest id (user, garment, body, chart) in characters: room for a storefront's own ids."""

MAX_NAME_LENGTH = 200
"""Longest display name (of a garment) in characters, after surrounding blanks are removed."""

_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
# Cc: C0/C1 controls (NUL, tab, newline, escape); Cf: invisible format characters such as
# bidirectional overrides and zero-width spaces, which make two different ids look the same;
# Zl/Zp: line and paragraph separators, which split log lines and displays.


def first_control_character(text: str) -> int | None:
    """The position of the first control, format or line-separator character of ``text``, or None."""
    if text.isprintable():
        # isprintable() is False for every forbidden character, so most texts end here.
        return None
    for position, character in enumerate(text):
        if unicodedata.category(character) in _CONTROL_CATEGORIES:
            return position
    return None


def check_text(value: str, field: str, error: type[DomainError] = InvalidArgument) -> str:
    """``value`` after checking that it holds no control, format or line-separator character."""
    position = first_control_character(value)
    if position is not None:
        raise error(
            f"{field} must not hold control characters; character {position} is U+{ord(value[position]):04X}"
        )
    return value


def check_name(value: str, field: str = "name", error: type[DomainError] = InvalidArgument) -> str:
    """A display name without surrounding blanks: 1 to ``MAX_NAME_LENGTH`` characters, no control characters."""
    stripped = check_text(value, field, error).strip()
    if not stripped:
        raise error(f"{field} must not be empty; give a display name of 1 to {MAX_NAME_LENGTH} characters")
    if len(stripped) > MAX_NAME_LENGTH:
        raise error(f"{field} has {len(stripped)} characters; at most {MAX_NAME_LENGTH} are accepted")
    return stripped


def check_id(value: str, field: str, error: type[DomainError] = InvalidArgument) -> str:
    """An id of 1 to ``MAX_ID_LENGTH`` characters without control characters."""
    if not value:
        raise error(f"{field} is required")
    if len(value) > MAX_ID_LENGTH:
        raise error(f"{field} must be at most {MAX_ID_LENGTH} characters; got {len(value)}")
    return check_text(value, field, error)


def check_optional_id(value: str, field: str, error: type[DomainError] = InvalidArgument) -> str:
    """An id that may be left empty (not given); when given, as ``check_id`` requires."""
    return check_id(value, field, error) if value else value


# Latent vectors -----------------------------------------------------------------------------

CONTENT_LATENT_DIM = 16
"""Length of a garment's content latent with the shipped models (GarmentService's VAE latent size),
and of the simulated catalogue's latents. A consumer checks a content latent against the length
its own model was fitted on."""

BODY_LATENT_DIM = 16
"""Length of a body latent (BodyService's CVAE latent size)."""

MAX_LATENT_NORM = 24.0
"""Largest L2 norm of a content or body latent: about three times the largest the trained models give.

Both models are VAEs with a standard normal prior in 16 dimensions. Measured with their default
configs (seed 0): the garment VAE's content latents of the 60,000 Fashion-MNIST training
pictures have norms of at most 8.6 (99.9th percentile 5.9, median 2.8; 6.7 at most on the
10,000 test pictures); the body CVAE's latents of the ANSUR II subjects at most 0.19 (0.24 for
the extreme statures and weights BodyService accepts); the recommender's simulated catalogues
at most 12.1. The bound refuses finite but huge latents, which the recommender's linear
cold-start map would turn into a garment that outranks every other for every shopper.
"""


def check_latent(
    values: Iterable[float],
    field: str,
    length: int,
    error: type[DomainError] = InvalidArgument,
    max_norm: float = MAX_LATENT_NORM,
) -> np.ndarray:
    """``values`` as float32 [length] after checking the length, that all are finite and the L2 norm."""
    latent = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
    if latent.shape != (length,):
        raise error(f"{field} must hold {length} numbers; got {latent.size}")
    if not np.isfinite(latent).all():
        raise error(f"{field} must hold finite numbers; it holds NaN or infinity")
    norm = float(np.linalg.norm(latent))
    if not norm <= max_norm:
        raise error(f"{field} must have an L2 norm of at most {max_norm:g}; got {norm:.4g}")
    return latent.astype(np.float32)


# Size charts --------------------------------------------------------------------------------

SHIPPED_CHART_IDS: tuple[str, ...] = (
    "en13402_womens_tops",
    "en13402_mens_tops",
    "eu_womens_tops",
    "eu_womens_trousers",
    "eu_mens_tops",
    "us_mens_trousers",
)
"""The charts shipped with BodyService (``services/body/size_charts.json``; a test keeps the two equal).

GarmentService accepts a garment's ``size_chart.chart_id`` only when it names one of these, so
that BodyService can later advise a size from it."""


SHIPPED_CHART_SIZES: dict[str, tuple[str, ...]] = {
    "en13402_womens_tops": ("XXS", "XS", "S", "M", "L", "XL", "XXL", "3XL"),
    "en13402_mens_tops": ("XXS", "XS", "S", "M", "L", "XL", "XXL", "3XL"),
    "eu_womens_tops": ("32", "34", "36", "38", "40", "42", "44", "46", "48", "50"),
    "eu_womens_trousers": ("32", "34", "36", "38", "40", "42", "44", "46", "48", "50"),
    "eu_mens_tops": ("44", "46", "48", "50", "52", "54", "56", "58", "60"),
    "us_mens_trousers": (
        "28/30", "28/32", "28/34", "30/30", "30/32", "30/34", "32/30", "32/32", "32/34", "34/30", "34/32", "34/34",
        "36/30", "36/32", "36/34", "38/30", "38/32", "38/34", "40/30", "40/32", "40/34", "42/30", "42/32", "42/34",
    ),
}
"""The size labels of each shipped chart, smallest first, as BodyService spells them (a test keeps
them equal to ``size_charts.json``): the sizes an interaction may name for a garment of that chart."""


def check_chart_id(chart_id: str, field: str = "size_chart.chart_id", error: type[DomainError] = InvalidArgument) -> str:
    """A shipped chart id; anything else is refused with the list of known ids."""
    if chart_id not in SHIPPED_CHART_IDS:
        shown = repr(chart_id) if len(chart_id) <= MAX_ID_LENGTH else f"an id of {len(chart_id)} characters"
        raise error(f"{field} {shown} is not a shipped chart; known charts: {', '.join(SHIPPED_CHART_IDS)}")
    return chart_id


def check_size(size: str, chart_id: str, field: str = "size", error: type[DomainError] = InvalidArgument) -> str:
    """A size label of the shipped chart ``chart_id`` ("" for none); anything else is refused with the chart's labels."""
    if not size:
        return ""
    labels = SHIPPED_CHART_SIZES.get(chart_id)
    shown = repr(size) if len(size) <= MAX_ID_LENGTH else f"a label of {len(size)} characters"
    if labels is None:
        raise error(f"{field} {shown} names a size of a garment without a shipped size chart; leave it empty")
    if size not in labels:
        raise error(f"{field} {shown} is not a size of chart {chart_id}; its sizes: {', '.join(labels)}")
    return size
