"""The garment catalogue: registered garments in SQLite (WAL), their original pictures in an `ImageStore`.

Registering a garment appends one row in one transaction and writes one picture file, so its
cost does not grow with the catalogue (the Parquet file kept before was rewritten whole on
every registration: see ``tests/benchmarks/bench_catalogue.py``). Opening the catalogue reads
nothing but the row count, so start-up does not grow with it either. A commit is durable
(``synchronous=FULL``: the write-ahead log is flushed to the disk before the call returns), and
a crash leaves every committed garment and nothing of an uncommitted one.

Garments are ordered by registration: each row's ``position`` only grows, so a page token that
records the position of the next page's first garment stays valid while garments are added or
removed. A catalogue found as ``catalogue.parquet`` (the earlier format) is migrated on the
first start, keeping every garment's position, and the file is renamed
``catalogue.parquet.migrated``; garments registered before originals were kept have only their
28 x 28 picture, which `Catalogue.original_image` then serves in its place.

Each garment keeps two pictures: ``image_png``, the 28 x 28 grey form the generative models
read, in the row; and the picture the caller registered (PNG or JPEG, colour, up to the
contract's 4096 x 4096 and 8 MiB), as sent, in the image store.
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from tryon.services.garment import images
from tryon.services.garment.image_store import IMAGES_FOLDER, FileImageStore, ImageStore, MemoryImageStore
from tryon.shared.errors import InvalidArgument, NotFound, Unavailable

CATALOGUE_DB = "catalogue.sqlite3"
"""The catalogue's SQLite database, in the service's data folder."""
LEGACY_CATALOGUE_FILE = "catalogue.parquet"
"""The earlier catalogue format, migrated on the first start that finds it."""
MIGRATED_SUFFIX = ".migrated"
"""Suffix the Parquet file is renamed with once its garments are in the database."""
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
    "has_original",
)
_SELECT = f"SELECT position, {', '.join(_COLUMNS)} FROM garments"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS garments (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    garment_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    category INTEGER NOT NULL,
    currency_code TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    size_chart_json TEXT,
    content_latent BLOB NOT NULL,
    image_png BLOB NOT NULL,
    create_time TEXT NOT NULL,
    has_original INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS garments_by_category ON garments (category, position);
CREATE TABLE IF NOT EXISTS catalogue_facts (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_MIGRATED_KEY = "migrated_from_parquet"
CLOSED_MESSAGE = "the garment catalogue is closed: GarmentService is shutting down; retry the call in a moment"
"""What a call answers (UNAVAILABLE) when it reaches the catalogue after the service closed it."""


@dataclass(frozen=True)
class Garment:
    """A catalogue garment.

    ``category`` is the Fashion-MNIST label (0-9); ``size_chart`` is the JSON-ready mapping
    ``{"chart_id": str, "sizes": [{"label": str, "ranges": [{"measurement", "min", "max"}]}]}``
    or None; ``content_latent`` is the VAE posterior mean of ``image_png`` (28 x 28 grey PNG);
    ``has_original_image`` says whether the picture the caller registered is stored (false only
    for garments migrated from a catalogue that did not keep it).
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
    has_original_image: bool = False


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
            and 0 <= position < 2**63
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


def _row_values(garment: Garment, has_original: bool) -> tuple:
    """The column values of ``garment`` in ``_COLUMNS`` order."""
    return (
        garment.garment_id,
        garment.name,
        int(garment.category),
        garment.currency_code,
        int(garment.amount_minor),
        json.dumps(garment.size_chart) if garment.size_chart is not None else None,
        np.asarray(garment.content_latent, dtype="<f4").tobytes(),
        bytes(garment.image_png),
        garment.create_time.astimezone(timezone.utc).isoformat(),
        int(has_original),
    )


def _garment_from_row(row: Sequence[Any]) -> Garment:
    """A garment from a row of ``_SELECT`` (position first)."""
    _, garment_id, name, category, currency, amount, chart, latent, png, created, has_original = row
    return Garment(
        garment_id=garment_id,
        name=name,
        category=int(category),
        currency_code=currency,
        amount_minor=int(amount),
        size_chart=json.loads(chart) if chart is not None else None,
        content_latent=np.frombuffer(latent, dtype="<f4").astype(np.float32),
        image_png=bytes(png),
        create_time=datetime.fromisoformat(created),
        has_original_image=bool(has_original),
    )


def _connect(path: Path | None) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), shared by the handler threads."""
    connection = sqlite3.connect(
        ":memory:" if path is None else str(path), check_same_thread=False, isolation_level=None
    )
    try:
        if path is not None:
            connection.execute("PRAGMA journal_mode=WAL")
            # FULL flushes the log on every commit: a registration that answered OK survives a power cut.
            connection.execute("PRAGMA synchronous=FULL")
        connection.executescript(_SCHEMA)
    except BaseException:
        connection.close()
        raise
    return connection


class CatalogueUnreadable(RuntimeError):
    """The catalogue's database file exists but cannot be read as one; the message names the file."""


class Catalogue:
    """Registered garments in ``<directory>/catalogue.sqlite3`` and their original pictures.

    The pictures go to ``image_store``, by default a `FileImageStore` under
    ``<directory>/images`` (in memory when ``directory`` is None). Thread-safe: gRPC handlers
    call it from several worker threads. `close` releases the database at shutdown; a call that
    comes later raises Unavailable (`CLOSED_MESSAGE`).
    """

    def __init__(self, directory: Path | str | None, image_store: ImageStore | None = None) -> None:
        """Open the catalogue stored in ``directory`` (created when missing; a Parquet catalogue
        found there is migrated); None keeps it in memory only.

        CatalogueUnreadable, naming the file and what to do, when the database there is damaged or
        not SQLite.
        """
        self._lock = threading.Lock()
        folder = Path(directory) if directory is not None else None
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        self._images: ImageStore = image_store or (
            FileImageStore(folder / IMAGES_FOLDER) if folder is not None else MemoryImageStore()
        )
        database = folder / CATALOGUE_DB if folder is not None else None
        self._db: sqlite3.Connection | None = None
        try:
            self._db = _connect(database)
            if folder is not None:
                self._migrate_parquet(folder / LEGACY_CATALOGUE_FILE)
            self._count = int(self._database().execute("SELECT COUNT(*) FROM garments").fetchone()[0])
        except sqlite3.DatabaseError as error:
            self.close()
            raise CatalogueUnreadable(
                f"the garment catalogue {database} cannot be read ({error}); restore it from a backup, or "
                "move it away to start with an empty catalogue"
            ) from error

    def close(self) -> None:
        """Close the database, waiting for a call in progress; safe to call more than once.

        Closing folds the write-ahead log into the database file and removes it, so the folder
        holds the catalogue alone. Calls made afterwards raise Unavailable (`CLOSED_MESSAGE`).
        """
        with self._lock:
            db, self._db = self._db, None
            if db is not None:
                db.close()

    def _database(self) -> sqlite3.Connection:
        """The open connection (call with the lock held); Unavailable once the catalogue is closed."""
        if self._db is None:
            raise Unavailable(CLOSED_MESSAGE)
        return self._db

    def _migrate_parquet(self, parquet: Path) -> None:
        """Copy a Parquet catalogue's garments into the database once, then rename the file."""
        migrated = self._database().execute("SELECT 1 FROM catalogue_facts WHERE key = ?", (_MIGRATED_KEY,)).fetchone()
        if parquet.exists() and migrated is None:
            frame = pd.read_parquet(parquet).reset_index(drop=True)
            rows = []
            for position, row in frame.iterrows():
                chart = row["size_chart_json"]
                garment = Garment(
                    garment_id=str(row["garment_id"]),
                    name=str(row["name"]),
                    category=int(row["category"]),
                    currency_code=str(row["currency_code"]),
                    amount_minor=int(row["amount_minor"]),
                    size_chart=json.loads(chart) if isinstance(chart, str) else None,
                    content_latent=np.asarray(row["content_latent"], dtype=np.float32),
                    image_png=bytes(row["image_png"]),
                    create_time=datetime.fromisoformat(str(row["create_time"])),
                )
                # Positions as the Parquet rows had them, so page tokens handed out before stay valid.
                rows.append((int(position), *_row_values(garment, has_original=False)))
            with self._transaction() as db:
                db.executemany(
                    f"INSERT INTO garments (position, {', '.join(_COLUMNS)}) VALUES ({', '.join('?' * (len(_COLUMNS) + 1))})",
                    rows,
                )
                db.execute(
                    "INSERT INTO catalogue_facts (key, value) VALUES (?, ?)",
                    (_MIGRATED_KEY, json.dumps({"file": parquet.name, "garments": len(rows)})),
                )
        if parquet.exists():
            parquet.replace(parquet.with_name(parquet.name + MIGRATED_SUFFIX))

    def _transaction(self):
        """A context in which statements commit together or not at all."""
        return _Transaction(self._database())

    def __len__(self) -> int:
        with self._lock:
            return self._count

    def add(self, garment: Garment, original: bytes | None = None) -> Garment:
        """Append a garment with its original picture (as sent: PNG or JPEG bytes); returns it as stored.

        InvalidArgument when the id is already registered (the stored garment is left as it was).
        """
        return self.add_many([(garment, original)])[0]

    def add_many(self, items: Iterable[tuple[Garment, bytes | None]]) -> list[Garment]:
        """Append garments with their original pictures in one transaction; returns them as stored.

        All or nothing: InvalidArgument when an id is already registered or repeated, and then no
        garment of ``items`` is added.
        """
        items = list(items)
        ids = [garment.garment_id for garment, _ in items]
        if len(set(ids)) != len(ids):
            raise InvalidArgument("garment ids repeat within one registration; each must be unique")
        stored = [replace(garment, has_original_image=original is not None) for garment, original in items]
        with self._lock:
            db = self._database()
            for garment_id in ids:
                if db.execute("SELECT 1 FROM garments WHERE garment_id = ?", (garment_id,)).fetchone():
                    raise InvalidArgument(f"garment_id {garment_id} is already registered")
            # Pictures first: a crash in between leaves an unreferenced picture, never a garment
            # whose picture is missing.
            for garment, original in items:
                if original is not None:
                    self._images.put(garment.garment_id, original)
            try:
                with self._transaction():
                    db.executemany(
                        f"INSERT INTO garments ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                        [_row_values(garment, garment.has_original_image) for garment in stored],
                    )
            except BaseException:
                for garment, original in items:
                    if original is not None:
                        self._images.delete(garment.garment_id)
                raise
            self._count += len(stored)
        return stored

    def remove(self, garment_id: str) -> None:
        """Delete a garment and its original picture; NotFound naming the id when it is not registered.

        The id may be registered again afterwards; it is then placed after every other garment.
        """
        with self._lock:
            with self._transaction() as db:
                deleted = db.execute("DELETE FROM garments WHERE garment_id = ?", (garment_id,)).rowcount
            if not deleted:
                raise NotFound(f"garment {garment_id!r} is not in the catalogue; register it first")
            self._images.delete(garment_id)
            self._count -= 1

    def get(self, garment_id: str) -> Garment:
        """The garment with this id; NotFound naming the id otherwise."""
        with self._lock:
            row = self._database().execute(f"{_SELECT} WHERE garment_id = ?", (garment_id,)).fetchone()
        if row is None:
            raise NotFound(f"garment {garment_id!r} is not in the catalogue; register it first")
        return _garment_from_row(row)

    def original_bytes(self, garment_id: str) -> bytes:
        """The picture the garment was registered with, as sent (PNG or JPEG).

        A garment migrated without one answers its 28 x 28 picture as a dark garment on white
        (the way product photographs show garments); NotFound for an unknown id.
        """
        garment = self.get(garment_id)
        if garment.has_original_image:
            return self._images.get(garment_id)
        return images.encode_png(1.0 - images.decode_png(garment.image_png))

    def original_image(self, garment_id: str) -> Image.Image:
        """The garment's original picture as a loaded RGBA PIL image, upright (EXIF orientation applied).

        This is the picture try-on draws from: full size and colour, background as photographed
        (opaque unless the PNG had transparency; `tryon.services.garment.images.cut_out` makes
        the background transparent). NotFound for an unknown id.
        """
        return images.to_rgba(images.decode_image(self.original_bytes(garment_id), "original picture"))

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
        labels = sorted({int(label) for label in categories})
        where = "position >= ?"
        if labels:
            where += f" AND category IN ({', '.join('?' * len(labels))})"
        with self._lock:
            rows = self._database().execute(
                f"{_SELECT} WHERE {where} ORDER BY position LIMIT ?", (start, *labels, page_size + 1)
            ).fetchall()
        garments = [_garment_from_row(row) for row in rows[:page_size]]
        if len(rows) > page_size:
            return garments, encode_page_token(int(rows[page_size][0]), categories)
        return garments, ""


class _Transaction:
    """BEGIN on entry; COMMIT on a clean exit, ROLLBACK on an exception."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> sqlite3.Connection:
        self._connection.execute("BEGIN IMMEDIATE")
        return self._connection

    def __exit__(self, kind, value, traceback) -> None:
        self._connection.execute("COMMIT" if kind is None else "ROLLBACK")
