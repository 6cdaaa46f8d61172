"""atomic_write: the whole new file or the old one, never a part, and no temporary file left behind."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tryon.shared.files import atomic_write


def test_bytes_text_and_a_writer_callback_each_replace_the_file(tmp_path: Path) -> None:
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")

    assert atomic_write(target, b"\x00new bytes") == target
    assert target.read_bytes() == b"\x00new bytes"
    atomic_write(target, "naïve text")
    assert target.read_text(encoding="utf-8") == "naïve text"
    atomic_write(target, lambda temporary: temporary.write_bytes(b"from a writer"))
    assert target.read_bytes() == b"from a writer"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_permission_bits(tmp_path: Path) -> None:
    atomic_write(tmp_path / "public.json", "{}")
    atomic_write(tmp_path / "personal.json", "{}", mode=0o600)

    assert stat.S_IMODE((tmp_path / "public.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "personal.json").stat().st_mode) == 0o600


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "catalogue.parquet"
    target.write_bytes(b"complete old catalogue")

    def half_then_crash(temporary: Path) -> None:
        temporary.write_bytes(b"half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_crash)
    with pytest.raises(TypeError):
        atomic_write(target, 42)

    assert target.read_bytes() == b"complete old catalogue"
    assert [p.name for p in tmp_path.iterdir()] == ["catalogue.parquet"]


def test_the_temporary_file_is_beside_the_target(tmp_path: Path) -> None:
    seen = []
    atomic_write(tmp_path / "items.faiss", lambda temporary: seen.append(temporary) or temporary.write_bytes(b"x"))

    assert seen[0].parent == tmp_path
    assert seen[0].name.startswith("items.faiss.") and seen[0].name.endswith(".tmp")
