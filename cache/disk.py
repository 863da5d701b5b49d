"""Embedded persistent cache: one sqlite3 file (stdlib), bounded by bytes, LRU by access time.

For users without Redis who want compressed segments to survive restarts. sqlite in WAL mode lets
several processes (e.g. uvicorn workers) share one file; within a process one connection is guarded
by a lock. The byte total is kept in a ``meta`` row maintained by triggers, so it stays exact across
processes without scanning the table. When a put pushes the total over ``max_bytes``, expired rows go
first, then the least recently read ones (``atime``, updated on every hit).

Times are wall-clock (``time.time``) because they must mean the same after a restart.
A file written by another schema version is wiped and recreated (its entries are stale, not data).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .interface import SegmentCache

__all__ = ["DEFAULT_DISK_MAX_BYTES", "DiskCache"]

DEFAULT_DISK_MAX_BYTES = 1024 * 1024 * 1024
SCHEMA_VERSION = "1"
_CHUNK = 500  # keys per IN (...) query, under sqlite's variable limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, size INTEGER NOT NULL, expires REAL, atime REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_atime ON entries(atime);
INSERT OR IGNORE INTO meta VALUES ('schema', '1'), ('total', '0');
CREATE TRIGGER IF NOT EXISTS entries_ins AFTER INSERT ON entries BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + NEW.size WHERE name = 'total'; END;
CREATE TRIGGER IF NOT EXISTS entries_del AFTER DELETE ON entries BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) - OLD.size WHERE name = 'total'; END;
"""


def _chunks(seq: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(seq), _CHUNK):
        yield seq[i : i + _CHUNK]


class DiskCache(SegmentCache):
    """sqlite-backed cache at ``path`` (a file, or a directory that gets ``segments.sqlite``)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_bytes: int = DEFAULT_DISK_MAX_BYTES,
        *,
        default_ttl: float | None = None,
        max_value_bytes: int | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
        super().__init__(max_value_bytes=max_value_bytes or max(1, max_bytes // 4), default_ttl=default_ttl)
        p = Path(path).expanduser()
        if p.is_dir():
            p = p / "segments.sqlite"
        p.parent.mkdir(parents=True, exist_ok=True)
        self.path = p
        self.max_bytes = max_bytes
        self._clock = clock or time.time
        self._lock = threading.Lock()
        try:
            self._db: sqlite3.Connection | None = sqlite3.connect(
                str(p), timeout=10.0, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{p} is not a usable promptpress cache database: {exc}") from exc

    def _init_schema(self) -> None:
        db = self._conn
        db.executescript(_SCHEMA)
        (version,) = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        if version != SCHEMA_VERSION:
            db.executescript("DROP TABLE entries; DROP TABLE meta;")
            db.executescript(_SCHEMA)

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("DiskCache is closed")
        return self._db

    @property
    def current_bytes(self) -> int:
        with self._lock:
            (total,) = self._conn.execute("SELECT value FROM meta WHERE name = 'total'").fetchone()
        return int(total)

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def _get_many(self, keys: list[str]) -> list[bytes | None]:
        now = self._clock()
        found: dict[str, bytes] = {}
        expired: list[str] = []
        with self._lock:
            db = self._conn
            for chunk in _chunks(sorted(set(keys))):  # autocommit reads: never block writers
                marks = ",".join("?" * len(chunk))
                for key, value, expires in db.execute(
                    f"SELECT key, value, expires FROM entries WHERE key IN ({marks})", chunk
                ):
                    if expires is not None and expires <= now:
                        expired.append(key)
                    else:
                        found[key] = bytes(value)
            if found or expired:
                # A write lock taken up front (IMMEDIATE): upgrading a read transaction to a write
                # fails at once with "database is locked" when another connection wrote meanwhile.
                db.execute("BEGIN IMMEDIATE")
                try:
                    for chunk in _chunks(list(found)):
                        marks = ",".join("?" * len(chunk))
                        db.execute(f"UPDATE entries SET atime = ? WHERE key IN ({marks})", [now, *chunk])
                    for chunk in _chunks(expired):
                        marks = ",".join("?" * len(chunk))
                        db.execute(
                            f"DELETE FROM entries WHERE key IN ({marks}) AND expires <= ?", [*chunk, now]
                        )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        return [found.get(k) for k in keys]

    def _put_many(self, items: dict[str, bytes], ttl: float | None) -> None:
        now = self._clock()
        expires = now + ttl if ttl is not None else None
        rows = [(k, v, len(k) + len(v), expires, now) for k, v in items.items()]
        with self._lock:
            db = self._conn
            db.execute("BEGIN IMMEDIATE")
            try:
                # DELETE + INSERT (not INSERT OR REPLACE) so the triggers see the old row's size.
                for chunk in _chunks(list(items)):
                    db.execute(f"DELETE FROM entries WHERE key IN ({','.join('?' * len(chunk))})", chunk)
                db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?)", rows)
                evicted = self._trim(db, now)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        if evicted:
            self._stats.add(evictions=evicted)

    def _trim(self, db: sqlite3.Connection, now: float) -> int:
        def total() -> int:
            return int(db.execute("SELECT value FROM meta WHERE name = 'total'").fetchone()[0])

        if total() <= self.max_bytes:
            return 0
        evicted = db.execute(
            "DELETE FROM entries WHERE expires IS NOT NULL AND expires <= ?", (now,)
        ).rowcount
        while (excess := total() - self.max_bytes) > 0:
            freed, victims = 0, []
            for key, size in db.execute("SELECT key, size FROM entries ORDER BY atime LIMIT 256"):
                victims.append(key)
                freed += size
                if freed >= excess:
                    break
            if not victims:
                break
            for chunk in _chunks(victims):
                db.execute(f"DELETE FROM entries WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            evicted += len(victims)
        return evicted

    def clear(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM entries")

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
