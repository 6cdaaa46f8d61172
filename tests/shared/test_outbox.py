"""The outbox: records survive a reopen, come back in the order they were appended, it is bounded, and one holder at a time."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from tryon.shared.outbox import Outbox, OutboxRecord, OutboxUnavailable


def record(key: str, n: int) -> OutboxRecord:
    return OutboxRecord("tryon.users.v1", key.encode(), f"{key}-{n}".encode(), (("event-type", b"tryon.v1.UserDeleted"),))


def test_records_survive_a_reopen_in_order_with_their_bytes(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    appended = [record("a", 0), record("b", 0), record("a", 1)]
    first = outbox.append(appended[:2])
    second = outbox.append(appended[2:])
    assert first < second and len(outbox) == 3
    outbox.close()

    reopened = Outbox(tmp_path / "outbox.sqlite")
    kept = reopened.oldest(10)
    assert [(r.topic, r.key, r.value, r.headers) for r in kept] == [
        (r.topic, r.key, r.value, r.headers) for r in appended
    ]
    assert [r.seq for r in kept] == [*first, *second]


def test_removed_records_stay_removed_and_sequence_numbers_never_repeat(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    seqs = outbox.append([record("a", n) for n in range(4)])
    outbox.remove(seqs[:2])
    assert outbox.sent_below() == seqs[2]
    outbox.remove(seqs[2:])
    assert len(outbox) == 0 and outbox.sent_below() == seqs[-1] + 1
    outbox.close()
    reopened = Outbox(tmp_path / "outbox.sqlite")
    assert reopened.oldest(10) == [] and reopened.append([record("a", 9)])[0] > seqs[-1]


def test_a_full_outbox_refuses_the_whole_call(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite", max_pending=3)
    outbox.append([record("a", 0), record("a", 1)])
    with pytest.raises(OutboxUnavailable, match="at most 3"):
        outbox.append([record("a", 2), record("a", 3)])
    assert [r.value for r in outbox.oldest(10)] == [b"a-0", b"a-1"]


def test_a_closed_outbox_refuses_records_as_unavailable(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    outbox.close()
    with pytest.raises(OutboxUnavailable, match="is closed"):
        outbox.append([record("a", 0)])


def test_a_second_holder_of_one_file_is_refused_until_the_first_closes(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    outbox.append([record("a", 0)])
    with pytest.raises(OutboxUnavailable, match="held by another publisher.*data folder of its own"):
        Outbox(tmp_path / "outbox.sqlite")
    assert len(outbox) == 1
    outbox.close()
    reopened = Outbox(tmp_path / "outbox.sqlite")
    assert [r.value for r in reopened.oldest(10)] == [b"a-0"]
    reopened.close()
    reopened.close()  # a second close lets go of nothing more


def test_a_second_process_cannot_hold_the_file_while_the_first_does(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    script = (
        "import sys\n"
        "from tryon.shared.outbox import Outbox, OutboxUnavailable\n"
        "try:\n"
        "    Outbox(sys.argv[1])\n"
        "except OutboxUnavailable as error:\n"
        "    print(error)\n"
        "    sys.exit(3)\n"
    )
    held = subprocess.run([sys.executable, "-c", script, str(tmp_path / "outbox.sqlite")], capture_output=True, text=True, timeout=60)
    assert held.returncode == 3 and "held by another publisher" in held.stdout
    outbox.close()
    free = subprocess.run([sys.executable, "-c", script, str(tmp_path / "outbox.sqlite")], capture_output=True, text=True, timeout=60)
    assert free.returncode == 0, free.stdout + free.stderr


def test_a_file_that_is_not_an_outbox_is_refused_and_left_unlocked(tmp_path):
    (tmp_path / "outbox.sqlite").write_bytes(b"not a database " * 100)
    with pytest.raises(sqlite3.DatabaseError):
        Outbox(tmp_path / "outbox.sqlite")
    (tmp_path / "outbox.sqlite").unlink()
    Outbox(tmp_path / "outbox.sqlite").close()
