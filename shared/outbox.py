"""A local, durable queue of events on their way to Kafka: the transactional outbox.

A service appends the records of a call here (one SQLite transaction, committed to disk before
``append`` returns), and `tryon.shared.events.EventPublisher` sends them to the broker in the
order they were appended and removes them once the broker acknowledged them. A record keeps
its bytes, and so its ``event_id``, until then: one sent twice (acknowledged by the broker, then
the process killed before its removal) is skipped by consumers, which are idempotent on it.

The file lives in the service's data folder, so a queue that outlives a ``kill -9`` of the
process, or a broker that stays away across a restart, is sent when the broker answers again.
``max_pending`` bounds it: beyond that many records ``append`` raises ``OutboxUnavailable``
instead of filling the disk while the broker is away. One ``Outbox`` at a time holds the file (an
exclusive lock on ``<file>.lock``, let go by ``close`` or the process's end): two publishers on one
file would each send and remove the other's records.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_PENDING = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    headers TEXT NOT NULL
)
"""


class OutboxUnavailable(RuntimeError):
    """The outbox cannot take records: its file cannot be written, another ``Outbox`` holds it, or it holds
    ``max_pending`` already."""


@dataclass(frozen=True)
class OutboxRecord:
    """One Kafka record waiting to be sent; ``seq`` orders records and is 0 until appended."""

    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    seq: int = 0


class Outbox:
    """An SQLite file of records not yet acknowledged by the broker, oldest first.

    Safe to use from several threads. ``synchronous=FULL`` makes each append durable against a
    crash of the machine, not only of the process.
    """

    def __init__(self, path: Path, *, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._holder = _hold(self._path)
        try:
            self._db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.execute(_SCHEMA)
                self._pending = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
                row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
            except BaseException:
                self._db.close()
                raise
        except BaseException:
            # An outbox that did not open must not keep its file locked for the rest of the process.
            os.close(self._holder)
            raise
        self._newest = row[0] if row else 0

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    @property
    def max_pending(self) -> int:
        """How many records the outbox holds at most."""
        return self._max_pending

    def __len__(self) -> int:
        with self._lock:
            return self._pending

    def append(self, records: Sequence[OutboxRecord]) -> list[int]:
        """Store ``records`` in one transaction, in order; their sequence numbers.

        Raises ``OutboxUnavailable`` when the file cannot be written or the outbox is full.
        """
        rows = [
            (record.topic, record.key, record.value, json.dumps([[n, v.hex()] for n, v in record.headers]))
            for record in records
        ]
        with self._lock:
            if self._holder < 0:
                raise OutboxUnavailable(f"the outbox at {self._path} is closed")
            if self._pending + len(rows) > self._max_pending:
                raise OutboxUnavailable(
                    f"the outbox holds {self._pending} events waiting for the broker (at most {self._max_pending})"
                )
            try:
                self._db.execute("BEGIN IMMEDIATE")
                seqs = [
                    self._db.execute(
                        "INSERT INTO outbox (topic, key, value, headers) VALUES (?, ?, ?, ?)", row
                    ).lastrowid
                    for row in rows
                ]
                self._db.execute("COMMIT")
            except sqlite3.Error as error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise OutboxUnavailable(f"the outbox at {self._path} cannot be written: {error}") from error
            self._pending += len(rows)
            self._newest = seqs[-1] if seqs else self._newest
            return seqs

    def oldest(self, limit: int) -> list[OutboxRecord]:
        """Up to ``limit`` records, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, key, value, headers FROM outbox ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [
            OutboxRecord(topic, bytes(key), bytes(value), tuple((n, bytes.fromhex(v)) for n, v in json.loads(headers)), seq)
            for seq, topic, key, value, headers in rows
        ]

    def newest_seq(self) -> int | None:
        """The sequence number of the record appended last (sent or not), or None before any."""
        with self._lock:
            return self._newest or None

    def sent_below(self) -> int:
        """A sequence number below which no record is left: every one of them was removed."""
        with self._lock:
            oldest = self._db.execute("SELECT MIN(seq) FROM outbox").fetchone()[0]
            return oldest if oldest is not None else self._newest + 1

    def remove(self, seqs: Sequence[int]) -> None:
        """Forget records the broker acknowledged."""
        if not seqs:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            removed = self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(seq,) for seq in seqs]).rowcount
            self._db.execute("COMMIT")
            self._pending -= removed

    def close(self) -> None:
        """Close the file; records not sent stay in it for the next start."""
        with self._lock:
            self._db.close()
            if self._holder >= 0:
                os.close(self._holder)
                self._holder = -1


def _hold(path: Path) -> int:
    """A descriptor of ``path``'s lock file holding its exclusive lock; OutboxUnavailable when another holds it."""
    lock_path = path.with_name(path.name + ".lock")
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise OutboxUnavailable(
            f"the outbox at {path} is held by another publisher (its lock {lock_path}); give each service "
            "process a data folder of its own, or stop the other one first"
        ) from None
    return descriptor
