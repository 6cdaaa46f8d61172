"""What GarmentService does, without transport: validation, models, catalogue and try-on.

`GarmentDomain` answers every RPC with plain Python and numpy values and raises the domain
errors of `tryon.shared.errors`; the servicer converts protos and the server maps errors to
statuses. A domain without models serves the catalogue alone (GetGarment, ListGarments,
RenderTryOn), as the service does while its models load; its model calls answer
FailedPrecondition. Publishing GarmentRegistered and fetching body meshes are injected
callables, so this module needs neither Kafka nor gRPC; try-on itself is `tryon.services.garment.tryon`.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
from PIL import Image

from tryon.services.garment import images
from tryon.services.garment.catalogue import Catalogue, Garment, new_garment_id
from tryon.services.garment.mesh_render import View
from tryon.services.garment.tryon import MeshSource, TryOnItem, TryOnRenderer, TryOnResult
from tryon.shared.contract import MAX_ID_LENGTH, check_chart_id, check_id, check_label, check_name, check_text
from tryon.shared.errors import DomainError, FailedPrecondition, InvalidArgument

MAX_GENERATE_COUNT = 64
MIN_STEPS, MAX_STEPS = 2, 32
MAX_TRYON_GARMENTS = 8
MIN_WIDTH, MAX_WIDTH, DEFAULT_WIDTH = 64, 2048, 256
MIN_HEIGHT, MAX_HEIGHT, DEFAULT_HEIGHT = 128, 4096, 512
MAX_SIZES, MAX_RANGES_PER_SIZE, MAX_LABEL_LENGTH = 64, 64, 100
MIN_GARMENT_MM, MAX_GARMENT_MM = 1.0, 5000.0
"""Range of a garment's own measurement in a size chart, in millimetres."""
MAX_SEED = 2**63 - 1
MAX_IMPORT_GARMENTS = 10_000
"""Garments one ImportGarments stream registers; the rest are left unread."""
MIN_IMAGE_SIDE = 16
"""Largest seed: torch generators take signed 64-bit seeds."""
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")

GeneratorName = Literal["vae", "gan"]


class GarmentModelsLike(Protocol):
    """The part of `tryon.services.garment.garment_models.GarmentModels` the service uses."""

    latent_dim: int

    def generate(self, label: int, count: int, seed: int, generator: str) -> tuple[np.ndarray, np.ndarray]: ...

    def encode(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray: ...

    def decode(self, latents: np.ndarray, labels: np.ndarray) -> np.ndarray: ...

    def predict(self, images: np.ndarray) -> np.ndarray: ...

    def interpolate(
        self, latent_a: np.ndarray, label_a: int, latent_b: np.ndarray, label_b: int, steps: int
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class GarmentPicture:
    """A 28 x 28 garment picture (levels in [0, 1]), the latent it was decoded from and its category."""

    levels: np.ndarray
    latent: np.ndarray
    category: int


@dataclass(frozen=True)
class Encoding:
    """The content latent of a picture, the category used, and the reconstruction from the latent."""

    latent: np.ndarray
    category: int
    reconstruction: np.ndarray


@dataclass(frozen=True)
class GarmentReference:
    """A garment named by its catalogue id or given as image bytes (exactly one of the two)."""

    garment_id: str | None = None
    image: bytes | None = None


@dataclass(frozen=True)
class Price:
    """An ISO 4217 currency code and an amount in its minor unit."""

    currency_code: str
    amount_minor: int


@dataclass(frozen=True)
class Registration:
    """What RegisterGarment takes: picture bytes, name, category label, price and optional size chart."""

    image: bytes
    name: str
    category: int
    price: Price | None
    size_chart: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ImportResult:
    """The outcome of one garment of an import: its registered garment, or the error that refused it."""

    index: int
    item_ref: str
    garment: Garment | None = None
    error: DomainError | None = None


@dataclass(frozen=True)
class ImportSummary:
    """Every garment's outcome in stream order, and whether garments beyond the limit were left unread."""

    results: list[ImportResult]
    truncated: bool

    @property
    def registered_count(self) -> int:
        """Garments registered."""
        return sum(result.garment is not None for result in self.results)


@dataclass(frozen=True)
class StoredPicture:
    """A garment's picture as sent to a caller: bytes, media type, size, and whether it is the original."""

    data: bytes
    media_type: str
    width: int
    height: int
    original: bool


def check_in_range(field: str, value: int, low: int, high: int) -> int:
    """``value`` when ``low <= value <= high``; InvalidArgument naming the field and range otherwise."""
    if not low <= value <= high:
        raise InvalidArgument(f"{field} must be {low} to {high}; got {value}")
    return value


def picture_size(width: int, height: int) -> tuple[int, int]:
    """The try-on picture size asked for (0 means the default), or InvalidArgument."""
    width = width or DEFAULT_WIDTH
    height = height or DEFAULT_HEIGHT
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        raise InvalidArgument(f"width must be 0 (meaning {DEFAULT_WIDTH}) or {MIN_WIDTH} to {MAX_WIDTH}; got {width}")
    if not MIN_HEIGHT <= height <= MAX_HEIGHT:
        raise InvalidArgument(
            f"height must be 0 (meaning {DEFAULT_HEIGHT}) or {MIN_HEIGHT} to {MAX_HEIGHT}; got {height}"
        )
    return width, height


def check_price(price: Price | None) -> Price:
    """A price with a three-letter upper-case currency code and a non-negative amount."""
    if price is None:
        raise InvalidArgument("price is required: give currency_code (for example EUR) and amount_minor >= 0")
    if not _CURRENCY_CODE.fullmatch(price.currency_code):
        raise InvalidArgument(
            f"price.currency_code must be an ISO 4217 code of three upper-case letters such as EUR; "
            f"got {price.currency_code!r}"
        )
    if price.amount_minor < 0:
        raise InvalidArgument(f"price.amount_minor must not be negative; got {price.amount_minor}")
    return price


def check_size_chart(chart: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A size chart ``{"chart_id", "sizes": [{"label", "ranges": [{"measurement", "min", "max"}],
    "garment_measurements": [{"name", "value"}]}]}`` checked and normalised (a size without garment
    measurements has no such key); None (or an empty chart) means no chart."""
    if chart is None:
        return None
    chart_id = str(chart.get("chart_id", "") or "")
    sizes = list(chart.get("sizes", []) or [])
    if not chart_id and not sizes:
        return None
    if chart_id and sizes:
        raise InvalidArgument("size_chart: give either chart_id (a shipped chart) or sizes (inline), not both")
    if chart_id:
        return {"chart_id": check_chart_id(chart_id), "sizes": []}
    if len(sizes) > MAX_SIZES:
        raise InvalidArgument(f"size_chart has {len(sizes)} sizes; at most {MAX_SIZES}")
    checked_sizes, labels = [], set()
    for index, size in enumerate(sizes):
        where = f"size_chart.sizes[{index}]"
        label = check_text(str(size.get("label", "") or ""), f"{where}.label").strip()
        if not label or len(label) > MAX_LABEL_LENGTH:
            raise InvalidArgument(f"{where}.label must be 1 to {MAX_LABEL_LENGTH} characters; got {label!r}")
        if label in labels:
            raise InvalidArgument(f"{where}.label {label!r} appears twice; size labels must be unique")
        labels.add(label)
        ranges = list(size.get("ranges", []) or [])
        if len(ranges) > MAX_RANGES_PER_SIZE:
            raise InvalidArgument(f"{where} has {len(ranges)} ranges; at most {MAX_RANGES_PER_SIZE}")
        checked_ranges = []
        for range_index, measurement_range in enumerate(ranges):
            range_where = f"{where}.ranges[{range_index}]"
            measurement = check_text(str(measurement_range.get("measurement", "") or ""), f"{range_where}.measurement").strip()
            low, high = float(measurement_range.get("min", 0.0)), float(measurement_range.get("max", 0.0))
            if not measurement or len(measurement) > MAX_ID_LENGTH:
                raise InvalidArgument(f"{range_where}.measurement must name a body measurement such as chest_circumference")
            if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
                raise InvalidArgument(f"{range_where} must have finite 0 <= min <= max; got min={low}, max={high}")
            checked_ranges.append({"measurement": measurement, "min": low, "max": high})
        garment_measurements = list(size.get("garment_measurements", []) or [])
        if len(garment_measurements) > MAX_RANGES_PER_SIZE:
            raise InvalidArgument(
                f"{where} has {len(garment_measurements)} garment_measurements; at most {MAX_RANGES_PER_SIZE}"
            )
        checked_garment = []
        for value_index, measured in enumerate(garment_measurements):
            value_where = f"{where}.garment_measurements[{value_index}]"
            name = check_text(str(measured.get("name", "") or ""), f"{value_where}.name").strip()
            value = float(measured.get("value", 0.0))
            if not name or len(name) > MAX_ID_LENGTH:
                raise InvalidArgument(f"{value_where}.name must name a measurement such as chest_circumference")
            if not (math.isfinite(value) and MIN_GARMENT_MM <= value <= MAX_GARMENT_MM):
                raise InvalidArgument(f"{value_where}.value must be {MIN_GARMENT_MM:g} to {MAX_GARMENT_MM:g} mm; got {value}")
            checked_garment.append({"name": name, "value": value})
        checked_size = {"label": label, "ranges": checked_ranges}
        if checked_garment:
            checked_size["garment_measurements"] = checked_garment
        checked_sizes.append(checked_size)
    return {"chart_id": chart_id, "sizes": checked_sizes}


def check_garment_id(garment_id: str, field: str = "garment_id") -> str:
    """A garment id as the contract allows it (1 to 256 characters, no control characters)."""
    if not garment_id:
        raise InvalidArgument(f"{field} must not be empty; use an id returned by RegisterGarment or ListGarments")
    return check_id(garment_id, field)


class GarmentDomain:
    """GarmentService's behaviour over a catalogue, optional models, a publisher and a body source."""

    def __init__(
        self,
        catalogue: Catalogue,
        models: GarmentModelsLike | None = None,
        publish_registered: Callable[[Garment], None] | None = None,
        bodies: MeshSource | None = None,
    ) -> None:
        self._catalogue = catalogue
        self._models = models
        self._publish_registered = publish_registered
        self._tryon = TryOnRenderer(
            self._catalogue.get,
            bodies,
            lambda garment: self._catalogue.original_image(garment.garment_id) if garment.has_original_image else None,
        )
        # One model call at a time: the models are small, the machine's cores are few, and
        # seeded generation must not interleave with another call's random draws.
        self._model_lock = threading.Lock()

    def _require_models(self) -> GarmentModelsLike:
        models = self._models
        if models is None:
            raise FailedPrecondition("the garment models are not loaded")
        return models

    def generate(self, category: int, count: int, seed: int, generator: GeneratorName = "vae") -> list[GarmentPicture]:
        """``count`` (1-64) pictures of a category, the same for the same seed, count and generator."""
        label = check_label(category)
        check_in_range("count", count, 1, MAX_GENERATE_COUNT)
        check_in_range("seed", seed, 0, MAX_SEED)
        if generator not in ("vae", "gan"):
            raise InvalidArgument(f"generator must be 'vae' or 'gan'; got {generator!r}")
        models = self._require_models()
        with self._model_lock:
            pictures, latents = models.generate(label, count, seed, generator)
        return [GarmentPicture(np.asarray(p, np.float32), np.asarray(z, np.float32), label) for p, z in zip(pictures, latents, strict=True)]

    def _encode_levels(self, levels: np.ndarray, category: int | None) -> Encoding:
        models = self._require_models()
        batch = levels[None].astype(np.float32)
        with self._model_lock:
            label = check_label(category) if category is not None else int(models.predict(batch)[0])
            labels = np.array([label], dtype=np.int64)
            latent = np.asarray(models.encode(batch, labels), np.float32)
            reconstruction = np.asarray(models.decode(latent, labels), np.float32)
        return Encoding(latent=latent[0], category=label, reconstruction=reconstruction[0])

    def encode(self, image: bytes, category: int | None = None) -> Encoding:
        """Content latent of a garment picture; the category is predicted when not given."""
        if category is not None:
            check_label(category)
        return self._encode_levels(images.model_input_from_bytes(image), category)

    def _resolve(self, reference: GarmentReference, field: str) -> tuple[np.ndarray, int]:
        """Latent and category of a referenced garment."""
        if (reference.garment_id is None) == (reference.image is None):
            raise InvalidArgument(f"{field} must give exactly one of garment_id or image")
        if reference.garment_id is not None:
            garment = self._catalogue.get(check_garment_id(reference.garment_id, f"{field}.garment_id"))
            return garment.content_latent, garment.category
        encoding = self._encode_levels(images.model_input_from_bytes(reference.image or b"", f"{field}.image"), None)
        return encoding.latent, encoding.category

    def interpolate(self, start: GarmentReference, end: GarmentReference, steps: int) -> list[GarmentPicture]:
        """``steps`` (2-32) pictures from ``start`` to ``end``, linear in the latent space."""
        check_in_range("steps", steps, MIN_STEPS, MAX_STEPS)
        models = self._require_models()
        latent_a, label_a = self._resolve(start, "start")
        latent_b, label_b = self._resolve(end, "end")
        with self._model_lock:
            pictures = np.asarray(models.interpolate(latent_a, label_a, latent_b, label_b, steps), np.float32)
        weights = np.linspace(0.0, 1.0, steps, dtype=np.float32)
        return [
            GarmentPicture(pictures[i], (1 - w) * latent_a + w * latent_b, label_a if w < 0.5 else label_b)
            for i, w in enumerate(weights)
        ]

    def register(
        self,
        image: bytes,
        name: str,
        category: int,
        price: Price | None,
        size_chart: Mapping[str, Any] | None = None,
    ) -> Garment:
        """Store a catalogue garment with its content latent and original picture, and publish
        GarmentRegistered (which carries no picture)."""
        name = check_name(name)
        label = check_label(category)
        price = check_price(price)
        chart = check_size_chart(size_chart)
        levels = images.model_input_from_bytes(image)
        encoding = self._encode_levels(levels, label)
        garment = Garment(
            garment_id=new_garment_id(),
            name=name,
            category=label,
            currency_code=price.currency_code,
            amount_minor=price.amount_minor,
            size_chart=chart,
            content_latent=encoding.latent,
            image_png=images.encode_png(levels),
        )
        # Published before it is stored: a broker failure then leaves nothing registered and the
        # caller may simply retry.
        if self._publish_registered is not None:
            self._publish_registered(garment)
        return self._catalogue.add(garment, original=image)

    def import_garments(self, items: Iterable[tuple[str, Callable[[], Registration]]]) -> ImportSummary:
        """Register garments one by one as `register` does, each with its event; a refused one is
        reported in its result and the rest go on.

        ``items`` yields (the caller's reference, a callable that builds the registration or raises
        the DomainError that refuses it), so a malformed item is refused alone. At most
        ``MAX_IMPORT_GARMENTS`` are read; the summary says when more were waiting.
        """
        results: list[ImportResult] = []
        for index, (item_ref, registration) in enumerate(items):
            if index == MAX_IMPORT_GARMENTS:
                return ImportSummary(results, truncated=True)
            try:
                if item_ref:
                    check_id(item_ref, "item_ref")
                wanted = registration()
                garment = self.register(wanted.image, wanted.name, wanted.category, wanted.price, wanted.size_chart)
            except DomainError as error:
                results.append(ImportResult(index, item_ref, error=error))
            else:
                results.append(ImportResult(index, item_ref, garment=garment))
        return ImportSummary(results, truncated=False)

    def get(self, garment_id: str) -> Garment:
        """A catalogue garment by id."""
        return self._catalogue.get(check_garment_id(garment_id))

    def picture(self, garment_id: str, max_side: int = 0) -> StoredPicture:
        """The picture a garment was registered with: as sent when ``max_side`` is 0 or the picture
        fits in it, else scaled down so its longer side is ``max_side`` (16 to 4096)."""
        if max_side != 0:
            check_in_range("max_side (0 sends the picture as registered)", max_side, MIN_IMAGE_SIDE, images.MAX_IMAGE_SIDE)
        garment = self._catalogue.get(check_garment_id(garment_id))
        data, media_type, (width, height) = images.fit_within(self._catalogue.original_bytes(garment.garment_id), max_side)
        return StoredPicture(data, media_type, width, height, garment.has_original_image)

    def original_image(self, garment_id: str) -> Image.Image:
        """The garment's original picture as an RGBA PIL image (see `Catalogue.original_image`)."""
        return self._catalogue.original_image(check_garment_id(garment_id))

    def list(self, page_size: int, page_token: str, categories: Sequence[int]) -> tuple[list[Garment], str]:
        """A page of catalogue garments and the next page's token."""
        labels = [check_label(category) for category in categories]
        return self._catalogue.list(page_size, page_token, labels)

    def _try_on_items(self, body_id: str, items: Sequence[TryOnItem]) -> list[TryOnItem]:
        """The body id and 1 to 8 garments checked, as the contract allows them."""
        if not body_id:
            raise InvalidArgument("body_id must not be empty; use an id returned by BodyService.CreateBody")
        check_id(body_id, "body_id")
        if not 1 <= len(items) <= MAX_TRYON_GARMENTS:
            raise InvalidArgument(f"garments must list 1 to {MAX_TRYON_GARMENTS} garments; got {len(items)}")
        checked = []
        for index, item in enumerate(items):
            label = check_text(item.size_label, f"garments[{index}].size_label")
            if len(label) > MAX_LABEL_LENGTH:
                raise InvalidArgument(f"garments[{index}].size_label must be at most {MAX_LABEL_LENGTH} characters")
            checked.append(TryOnItem(check_garment_id(item.garment_id, f"garments[{index}].garment_id"), label))
        return checked

    def render_try_on(
        self, body_id: str, items: Sequence[TryOnItem], view: View = "front", width: int = 0, height: int = 0
    ) -> TryOnResult:
        """A PNG of the body seen from ``view`` wearing the garments at their sizes (later ones on
        top), and how each size fits."""
        checked = self._try_on_items(body_id, items)
        width, height = picture_size(width, height)
        return self._tryon.render(body_id, checked, view, width, height)

    def render_try_on_model(self, body_id: str, items: Sequence[TryOnItem], texture_size: int = 0) -> TryOnResult:
        """A GLB of the body wearing the garments at their sizes as textures, and how each size fits."""
        return self._tryon.model(body_id, self._try_on_items(body_id, items), texture_size)
