"""Writing files so that a crash or a concurrent reader never sees half of one.

Every model, index, catalogue, snapshot and stored body is written through ``atomic_write``:
the new content goes to a temporary file in the same folder (a rename is atomic only within
one file system), is flushed to the disk, and is then renamed over the target; the folder is
flushed too, so that the rename itself survives a power cut. A reader sees the old file or the
whole new one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"
"""Suffix of the temporary files; a file ``<name>.<random>.tmp`` beside a target is one a crash left."""


def _fsync_path(path: str | Path, flags: int = os.O_RDONLY) -> None:
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write(
    path: str | os.PathLike,
    content: bytes | str | Callable[[Path], object],
    *,
    mode: int = 0o644,
) -> Path:
    """Replace the file at ``path`` with ``content``, atomically and durably; returns the path.

    ``content`` is bytes, text (written as UTF-8), or a callable that writes the file at the
    temporary path it is given (for writers that want a path, such as ``torch.save``,
    ``faiss.write_index`` or ``DataFrame.to_parquet``). ``mode`` is the new file's permission
    bits (0o600 for personal data). On any error the temporary file is removed and ``path`` is
    left as it was; the folder must exist.
    """
    target = Path(path)
    descriptor, temporary_name = tempfile.mkstemp(dir=target.parent, prefix=f"{target.name}.", suffix=TEMPORARY_SUFFIX)
    temporary = Path(temporary_name)
    try:
        os.fchmod(descriptor, mode)
        if callable(content):
            os.close(descriptor)
            descriptor = -1
            content(temporary)
            _fsync_path(temporary)
        else:
            data = content.encode("utf-8") if isinstance(content, str) else content
            with os.fdopen(descriptor, "wb") as handle:
                descriptor = -1
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        if descriptor >= 0:
            os.close(descriptor)
        temporary.unlink(missing_ok=True)
        raise
    _fsync_path(target.parent)
    return target
