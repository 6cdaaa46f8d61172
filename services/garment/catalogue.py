"""The garment catalogue: registered garments in a pandas DataFrame persisted as Parquet.

The catalogue is append-only and ordered by registration, so a page token that records the
position after the last garment of a page stays valid while garments are added. Every change
is written to a temporary file in the same folder and renamed over the old one, so a crash
leaves either the old or the new catalogue, never half of one.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tryon.shared.errors import InvalidArgument, NotFound
from tryon.shared.files import atomic_write

CATALOGUE_FILE = "catalogue.parquet"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_TOKEN_VERSION = 1
_COLUMNS = (
    "garment_id",
    "name",
    "category",
    "currency_code",
    "amount_minor",
    "size_chart_json",
    "content_latent",
    "image_png",
    "create_time",
)


@dataclass(frozen=True)
class Garment:
    """A catalogue garment.

    ``category`` is the Fashion-MNIST label (0-9); ``size_chart`` is the JSON-ready mapping
    ``{"chart_id": str, "sizes": [{"label": str, "ranges": [{"measurement", "min", "max"}]}]}``
    or None; ``content_latent`` is the VAE posterior mean of ``image_png`` (28 x 28 grey PNG).
    """

    garment_id: str
    name: str
    category: int
    currency_code: str
    amount_minor: int
    size_chart: dict[str, Any] | None
    content_latent: np.ndarray
    image_png: bytes
    create_time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


def new_garment_id() -> str:
    """A fresh random garment identifier (uuid4)."""
    return str(uuid.uuid4())


def encode_page_token(position: int, categories: Sequence[int]) -> str:
    """An opaque token for the page starting at ``position`` of the catalogue, tied to the filter."""
    payload = {"v": _TOKEN_VERSION, "after": position, "categories": sorted(set(categories))}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def decode_page_token(token: str, categories: Sequence[int]) -> int:
    """The catalogue position a token points to; InvalidArgument for a token not made by this service
    or made for a different category filter."""
    if not token:
        return 0
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode("ascii")).decode())
        position = payload["after"]
        token_categories = payload["categories"]
        valid = (
            payload.get("v") == _TOKEN_VERSION
            and isinstance(position, int)
            and not isinstance(position, bool)
            and position >= 0
            and isinstance(token_categories, list)
        )
    except (binascii.Error, UnicodeError, ValueError, KeyError, TypeError, AttributeError):
        valid = False
    if not valid:
        raise InvalidArgument(
            "page_token is not a token returned by ListGarments; send an empty page_token for the first page"
        )
    if token_categories != sorted(set(categories)):
        raise InvalidArgument(
            "page_token was made for a different categories filter; repeat the first request's categories"
        )
    return position


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype="object") for column in _COLUMNS})


class Catalogue:
    """Registered garments, kept in memory and persisted to ``<directory>/catalogue.parquet``.

    Thread-safe: gRPC handlers call it from several worker threads.
    """

    def __init__(self, directory: Path | str | None) -> None:
        """Open the catalogue stored in ``directory`` (created when missing); None keeps it in memory only."""
        self._path = Path(directory) / CATALOGUE_FILE if directory is not None else None
        self._lock = threading.Lock()
        if self._path is not None and self._path.exists():
            self._frame = pd.read_parquet(self._path).reset_index(drop=True)
        else:
            self._frame = _empty_frame()
        self._position_by_id = {gid: index for index, gid in enumerate(self._frame["garment_id"])}

    def __len__(self) -> int:
        with self._lock:
            return len(self._frame)

    def add(self, garment: Garment) -> None:
        """Append a garment and persist the catalogue."""
        row = {
            "garment_id": garment.garment_id,
            "name": garment.name,
            "category": int(garment.category),
            "currency_code": garment.currency_code,
            "amount_minor": int(garment.amount_minor),
            "size_chart_json": json.dumps(garment.size_chart) if garment.size_chart is not None else None,
            "content_latent": np.asarray(garment.content_latent, dtype=np.float32).tolist(),
            "image_png": bytes(garment.image_png),
            "create_time": garment.create_time.astimezone(timezone.utc).isoformat(),
        }
        with self._lock:
            if garment.garment_id in self._position_by_id:
                raise InvalidArgument(f"garment_id {garment.garment_id} is already registered")
            frame = pd.concat([self._frame, pd.DataFrame([row], columns=list(_COLUMNS))], ignore_index=True)
            self._write(frame)
            self._frame = frame
            self._position_by_id[garment.garment_id] = len(frame) - 1

    def _write(self, frame: pd.DataFrame) -> None:
        """Write the whole catalogue atomically (``atomic_write``)."""
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self._path, lambda temporary: frame.to_parquet(temporary, index=False))

    def get(self, garment_id: str) -> Garment:
        """The garment with this id; NotFound naming the id otherwise."""
        with self._lock:
            position = self._position_by_id.get(garment_id)
            if position is None:
                raise NotFound(f"garment {garment_id!r} is not in the catalogue; register it first")
            return _garment_from_row(self._frame.iloc[position])

    def list(
        self, page_size: int = 0, page_token: str = "", categories: Sequence[int] = ()
    ) -> tuple[list[Garment], str]:
        """One page of garments, oldest first, optionally only of ``categories`` (labels).

        Returns the garments and the next page's token ("" on the last page). ``page_size`` 0
        means 50; other values must lie in 1 to 1000.
        """
        if page_size == 0:
            page_size = DEFAULT_PAGE_SIZE
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be 0 (meaning {DEFAULT_PAGE_SIZE}) or 1 to {MAX_PAGE_SIZE}; got {page_size}")
        start = decode_page_token(page_token, categories)
        with self._lock:
            frame = self._frame.iloc[start:]
            if categories:
                frame = frame[frame["category"].isin(list(categories))]
            page = frame.iloc[: page_size + 1]
            garments = [_garment_from_row(row) for _, row in page.iloc[:page_size].iterrows()]
            if len(page) > page_size:
                next_position = int(page.index[page_size])
                return garments, encode_page_token(next_position, categories)
        return garments, ""


def _garment_from_row(row: pd.Series) -> Garment:
    size_chart = row["size_chart_json"]
    return Garment(
        garment_id=str(row["garment_id"]),
        name=str(row["name"]),
        category=int(row["category"]),
        currency_code=str(row["currency_code"]),
        amount_minor=int(row["amount_minor"]),
        size_chart=json.loads(size_chart) if isinstance(size_chart, str) else None,
        content_latent=np.asarray(row["content_latent"], dtype=np.float32),
        image_png=bytes(row["image_png"]),
        create_time=datetime.fromisoformat(str(row["create_time"])),
    )
