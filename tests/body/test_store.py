"""The body store: ids, atomic persistence across restarts, and deletion without a trace."""

from __future__ import annotations

import json
import stat
import threading
from datetime import UTC, datetime

import pytest

from tryon.services.body.store import BodyRecord, BodyStore, MeasurementEstimate, check_body_id, new_body_id
from tryon.shared.errors import InvalidArgument, NotFound


def record(body_id: str | None = None, stature: float = 1712.5) -> BodyRecord:
    return BodyRecord(
        body_id=body_id or new_body_id(),
        sex="female",
        observed={"stature": stature, "weight": 61.0},
        estimates=(
            MeasurementEstimate("stature", "mm", stature, 0.0, stature, stature, True),
            MeasurementEstimate("chest_circumference", "mm", 901.25, 30.5, 851.1, 951.4, False),
        ),
        latent=(0.25, -1.5),
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def test_a_restarted_store_reads_back_every_body(tmp_path):
    store = BodyStore(tmp_path)
    first, second = record(), record(stature=1800.0)
    store.put(first)
    store.put(second)
    reopened = BodyStore(tmp_path)
    assert len(reopened) == 2
    assert reopened.get(first.body_id) == first
    assert reopened.get(second.body_id).observed["stature"] == 1800.0


def test_delete_removes_the_file_and_the_body(tmp_path):
    store = BodyStore(tmp_path)
    body = record()
    store.put(body)
    path = store.path_of(body.body_id)
    assert path.exists()
    store.delete(body.body_id)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(NotFound, match="not a stored body"):
        store.get(body.body_id)
    with pytest.raises(NotFound):
        store.delete(body.body_id)
    assert len(BodyStore(tmp_path)) == 0


def test_files_are_private_and_a_crash_leftover_is_ignored(tmp_path):
    store = BodyStore(tmp_path)
    body = record()
    store.put(body)
    assert stat.S_IMODE(store.path_of(body.body_id).stat().st_mode) == 0o600
    assert json.loads(store.path_of(body.body_id).read_text())["body_id"] == body.body_id
    # A temporary file from a write interrupted before its rename, and a corrupt file.
    (tmp_path / f"{new_body_id()}.json.abc.tmp").write_text("{half")
    (tmp_path / f"{new_body_id()}.json").write_text("{not json")
    reopened = BodyStore(tmp_path)
    assert len(reopened) == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_rewriting_a_body_replaces_its_file(tmp_path):
    store = BodyStore(tmp_path)
    body_id = new_body_id()
    store.put(record(body_id, stature=1600.0))
    store.put(record(body_id, stature=1650.0))
    assert BodyStore(tmp_path).get(body_id).observed["stature"] == 1650.0
    assert len(list(tmp_path.iterdir())) == 1


def test_ids_are_checked_before_any_file_is_touched(tmp_path):
    store = BodyStore(tmp_path)
    with pytest.raises(InvalidArgument, match="body_id is empty"):
        store.get("")
    for hostile in ("../../etc/passwd", "x" * 40, "a/b"):
        with pytest.raises(InvalidArgument, match="a UUID"):
            store.get(hostile)
    body_id = new_body_id()
    assert check_body_id(body_id.upper()) == body_id
    with pytest.raises(NotFound):
        store.get(new_body_id())


def test_memory_only_store_and_concurrent_writers():
    store = BodyStore(None)
    bodies = [record() for _ in range(64)]
    threads = [threading.Thread(target=store.put, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store) == 64
    assert store.path_of(bodies[0].body_id) is None
