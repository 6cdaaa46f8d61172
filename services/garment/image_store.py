"""Where the catalogue keeps each garment's original picture: put, get and delete by garment id.

`ImageStore` is the whole interface the catalogue uses, so an object store (S3, GCS) plugs in
as one more class with these three methods. `FileImageStore`, the default, keeps one file per
garment under the service's data folder, written with ``atomic_write`` (a reader sees the old
picture or the whole new one, never half of one). The file name is the SHA-256 of the garment
id, so any id the contract allows (up to 256 characters of any printable text) is a safe name,
and the first two hex digits fan the files out over 256 folders, so that no folder holds more
than a few thousand files even at a million garments. The bytes are stored as the caller sent
them (PNG or JPEG): the original, not a re-encoding.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Protocol

from tryon.shared.errors import NotFound
from tryon.shared.files import atomic_write

IMAGES_FOLDER = "images"
"""Folder under the service's data folder that `FileImageStore` uses by default."""


class ImageStore(Protocol):
    """Original garment pictures by garment id."""

    def put(self, garment_id: str, data: bytes) -> None:
        """Store ``data`` as the picture of ``garment_id``, replacing any earlier one."""

    def get(self, garment_id: str) -> bytes:
        """The picture of ``garment_id``; NotFound when there is none."""

    def delete(self, garment_id: str) -> None:
        """Forget the picture of ``garment_id``; nothing happens when there is none."""


def _missing(garment_id: str) -> NotFound:
    return NotFound(f"garment {garment_id!r} has no original picture stored")


class FileImageStore:
    """One file per garment under ``directory`` (created when missing)."""

    def __init__(self, directory: Path | str) -> None:
        """Keep pictures under ``directory``."""
        self._directory = Path(directory)

    def path_of(self, garment_id: str) -> Path:
        """The file that holds (or would hold) the picture of ``garment_id``."""
        digest = hashlib.sha256(garment_id.encode("utf-8")).hexdigest()
        return self._directory / digest[:2] / digest

    def put(self, garment_id: str, data: bytes) -> None:
        """Write the picture atomically and durably (``atomic_write``)."""
        path = self.path_of(garment_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, bytes(data))

    def get(self, garment_id: str) -> bytes:
        """The stored bytes; NotFound when the garment has no picture."""
        try:
            return self.path_of(garment_id).read_bytes()
        except FileNotFoundError:
            raise _missing(garment_id) from None

    def delete(self, garment_id: str) -> None:
        """Remove the file, if any."""
        self.path_of(garment_id).unlink(missing_ok=True)


class MemoryImageStore:
    """Pictures in a dict: the store of a catalogue kept in memory only (tests, tools)."""

    def __init__(self) -> None:
        """An empty store."""
        self._pictures: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, garment_id: str, data: bytes) -> None:
        """Keep a copy of ``data``."""
        with self._lock:
            self._pictures[garment_id] = bytes(data)

    def get(self, garment_id: str) -> bytes:
        """The kept bytes; NotFound when the garment has no picture."""
        with self._lock:
            try:
                return self._pictures[garment_id]
            except KeyError:
                raise _missing(garment_id) from None

    def delete(self, garment_id: str) -> None:
        """Drop the picture, if any."""
        with self._lock:
            self._pictures.pop(garment_id, None)
