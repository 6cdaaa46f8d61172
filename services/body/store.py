"""Stored bodies: in memory, and one JSON file per body written atomically under a folder.

A body is kept under an opaque random id (uuid4). Every write goes to a temporary file in
the same folder that is then renamed over the body's file, so a crash leaves either the
old or the new file, never half of one; a restart reads the folder back. Deleting a body
removes its file and its entry in memory. Files are readable by their owner only, since
they hold a person's measurements.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tryon.shared.errors import InvalidArgument, NotFound
from tryon.shared.files import TEMPORARY_SUFFIX, atomic_write

FORMAT_VERSION = 1
FILE_SUFFIX = ".json"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MeasurementEstimate:
    """One measurement of a stored body, observed or inferred, in the measurement's unit."""

    name: str
    unit: str
    value: float
    stddev: float
    lower_90: float
    upper_90: float
    observed: bool


@dataclass(frozen=True)
class BodyRecord:
    """A stored body: what the shopper gave, what the model inferred, and its latent code."""

    body_id: str
    sex: str | None
    observed: dict[str, float]
    estimates: tuple[MeasurementEstimate, ...]
    latent: tuple[float, ...]
    created_at: datetime

    def values(self) -> dict[str, float]:
        """Best value of every measurement by name."""
        return {estimate.name: estimate.value for estimate in self.estimates}


def new_body_id() -> str:
    """A fresh opaque body id."""
    return str(uuid.uuid4())


def check_body_id(body_id: str) -> str:
    """The id in canonical form, or InvalidArgument when it cannot be an id CreateBody returned."""
    if not body_id:
        raise InvalidArgument("body_id is empty: give the body_id that CreateBody returned")
    try:
        parsed = uuid.UUID(body_id)
    except ValueError:
        raise InvalidArgument(
            "body_id is not a body id: give the body_id that CreateBody returned (a UUID)"
        ) from None
    return str(parsed)


class BodyStore:
    """Bodies by id, in memory and (when ``directory`` is given) on disk; safe across threads."""

    def __init__(self, directory: Path | None) -> None:
        self._directory = directory
        self._lock = threading.Lock()
        self._bodies: dict[str, BodyRecord] = {}
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._load_all(directory)

    @property
    def directory(self) -> Path | None:
        """Folder of the body files, None when bodies live in memory only."""
        return self._directory

    def __len__(self) -> int:
        with self._lock:
            return len(self._bodies)

    def path_of(self, body_id: str) -> Path | None:
        """The file a body is (or would be) stored in."""
        if self._directory is None:
            return None
        return self._directory / f"{check_body_id(body_id)}{FILE_SUFFIX}"

    def put(self, record: BodyRecord) -> None:
        """Store a body: its file first, so what is in memory is always on disk too."""
        with self._lock:
            path = self.path_of(record.body_id)
            if path is not None:
                # Measurements are personal data: readable by the service alone.
                atomic_write(path, json.dumps(_to_document(record), separators=(",", ":")), mode=0o600)
            self._bodies[record.body_id] = record

    def get(self, body_id: str) -> BodyRecord:
        """The body with this id, or NotFound."""
        body_id = check_body_id(body_id)
        with self._lock:
            record = self._bodies.get(body_id)
        if record is None:
            raise NotFound(f"body_id {body_id} is not a stored body (never created, or deleted)")
        return record

    def delete(self, body_id: str) -> None:
        """Remove a body from memory and disk, or raise NotFound."""
        body_id = check_body_id(body_id)
        with self._lock:
            if body_id not in self._bodies:
                raise NotFound(f"body_id {body_id} is not a stored body (never created, or deleted)")
            path = self.path_of(body_id)
            if path is not None:
                path.unlink(missing_ok=True)
            del self._bodies[body_id]

    def _load_all(self, directory: Path) -> None:
        for path in sorted(directory.glob(f"*{FILE_SUFFIX}")):
            try:
                record = _from_document(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError, InvalidArgument):
                # The file name is an opaque id; the content (personal data) is never logged.
                logger.warning("skipping an unreadable body file", extra={"file": path.name})
                continue
            self._bodies[record.body_id] = record
        for leftover in directory.glob(f"*{FILE_SUFFIX}.*{TEMPORARY_SUFFIX}"):
            # A temporary file left by a crash mid-write: the rename never happened.
            leftover.unlink(missing_ok=True)
        logger.info("loaded stored bodies", extra={"bodies": len(self._bodies)})


def _to_document(record: BodyRecord) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "body_id": record.body_id,
        "sex": record.sex,
        "created_at": record.created_at.isoformat(),
        "observed": record.observed,
        "estimates": [
            [e.name, e.unit, e.value, e.stddev, e.lower_90, e.upper_90, e.observed] for e in record.estimates
        ],
        "latent": list(record.latent),
    }


def _from_document(document: dict) -> BodyRecord:
    if document["format_version"] != FORMAT_VERSION:
        raise ValueError(f"unknown body file format {document['format_version']}")
    return BodyRecord(
        body_id=check_body_id(document["body_id"]),
        sex=document["sex"],
        observed={str(name): float(value) for name, value in document["observed"].items()},
        estimates=tuple(
            MeasurementEstimate(str(name), str(unit), float(value), float(stddev), float(low), float(high), bool(obs))
            for name, unit, value, stddev, low, high, obs in document["estimates"]
        ),
        latent=tuple(float(value) for value in document["latent"]),
        created_at=datetime.fromisoformat(document["created_at"]),
    )
