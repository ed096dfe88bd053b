"""Persisted connector state: what each source has already sent, where it stopped, how it fares.

One SQLite file (WAL, so ``newsflow connectors status`` can read while the runner writes) holds,
per source: JSON values a source keeps between polls (ETag, Last-Modified, cursors), the keys of
items already published with when they were first seen and last listed, a resume checkpoint,
and the latest health snapshot.

Nothing a poll does is durable until its items are acknowledged by Kafka: a source's ``put``
calls are buffered in its per-poll view and written by the poll's final ``commit``, together
with the seen keys and the checkpoint, in one transaction. A crash or a failed publish therefore
leaves the state as it was before the poll, and the next poll sends the same items again
(at-least-once), never fewer.

Seen keys are pruned once a source has not listed them for the retention period, so the table
stays bounded; an item still in a feed after months is kept because listing it refreshes it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from newsflow.errors import NewsflowError

DEFAULT_SEEN_RETENTION_DAYS = 90.0
#: File name of the state database inside the state directory (``<stack.state_dir>/connectors``).
STATE_FILE = Path("connectors") / "state.sqlite"
#: A listed key's "last listed" time is refreshed at most this often: one write a day per item
#: instead of one per poll, plenty of precision for a retention counted in days.
_REFRESH_AFTER_SECONDS = 24 * 3600.0
#: Keys per ``IN (...)`` query; well under SQLite's limit on bound parameters.
_QUERY_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS value (
    source TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (source, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen (
    source TEXT NOT NULL, key TEXT NOT NULL, first_seen REAL NOT NULL, last_listed REAL NOT NULL,
    PRIMARY KEY (source, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_by_last_listed ON seen (last_listed);
CREATE TABLE IF NOT EXISTS checkpoint (
    source TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS health (
    source TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at REAL NOT NULL);
"""


class StateError(NewsflowError):
    """The state database cannot be opened or read; the message names the file."""


def _chunks(keys: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(keys), _QUERY_CHUNK):
        yield keys[start : start + _QUERY_CHUNK]


class StateStore:
    """The state database; thread-safe (one connection, one lock: SQLite serializes writes)."""

    def __init__(
        self,
        path: Path | str,
        *,
        seen_retention_days: float = DEFAULT_SEEN_RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
        create: bool = True,
    ) -> None:
        self.path = Path(path)
        self._retention = seen_retention_days * 24 * 3600.0
        self._clock = clock
        self._lock = threading.Lock()
        in_memory = str(path) == ":memory:"
        if not in_memory:
            if not create and not self.path.exists():
                raise StateError(f"no connector state at {self.path}; has `connectors run` run?")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=30
            )
            if not in_memory:
                self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a crash of the process loses nothing; a power cut may lose the last
            # commits, which only means items are sent again.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open connector state {self.path}: {exc}") from exc

    @classmethod
    def in_memory(cls) -> StateStore:
        """A throwaway store: probes (``connectors check``) poll without touching real state."""
        return cls(":memory:")

    def source(self, name: str) -> SourceStateView:
        """A view for one poll of one source; its ``put`` calls are written by its commit."""
        return SourceStateView(self, name)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    # -- what a source reads -------------------------------------------------------------------

    def value(self, source: str, key: str, default: Any = None) -> Any:
        rows = self._query("SELECT value FROM value WHERE source = ? AND key = ?", (source, key))
        return json.loads(rows[0][0]) if rows else default

    def unseen(self, source: str, keys: Iterable[str]) -> set[str]:
        """Keys not published yet; the others count as listed now (they escape pruning)."""
        wanted = list(dict.fromkeys(keys))
        seen: set[str] = set()
        now = self._clock()
        with self._transaction() as db:
            for chunk in _chunks(wanted):
                marks = ",".join("?" * len(chunk))
                seen.update(
                    row[0]
                    for row in db.execute(
                        f"SELECT key FROM seen WHERE source = ? AND key IN ({marks})",
                        (source, *chunk),
                    )
                )
                db.execute(
                    f"UPDATE seen SET last_listed = ? WHERE source = ? AND key IN ({marks}) "
                    "AND last_listed < ?",
                    (now, source, *chunk, now - _REFRESH_AFTER_SECONDS),
                )
        return set(wanted) - seen

    def checkpoint(self, source: str) -> dict[str, Any] | None:
        rows = self._query("SELECT value FROM checkpoint WHERE source = ?", (source,))
        return json.loads(rows[0][0]) if rows else None

    # -- what the runner writes after an acknowledgement ---------------------------------------

    def commit(
        self,
        source: str,
        seen_keys: Iterable[str],
        checkpoint: Mapping[str, Any] | None,
        values: Mapping[str, str] | None = None,
    ) -> None:
        """Mark keys seen, store the checkpoint and JSON-encoded values, all or nothing."""
        now = self._clock()
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO seen (source, key, first_seen, last_listed) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (source, key) DO UPDATE SET last_listed = excluded.last_listed",
                ((source, key, now, now) for key in seen_keys),
            )
            if checkpoint is not None:
                db.execute(
                    "INSERT OR REPLACE INTO checkpoint VALUES (?, ?, ?)",
                    (source, json.dumps(dict(checkpoint)), now),
                )
            db.executemany(
                "INSERT OR REPLACE INTO value VALUES (?, ?, ?)",
                ((source, key, encoded) for key, encoded in (values or {}).items()),
            )

    def prune(self) -> int:
        """Forget seen keys no poll has listed for the retention period; returns how many."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM seen WHERE last_listed < ?", (self._clock() - self._retention,)
            )
            return cursor.rowcount

    def seen_count(self, source: str) -> int:
        return int(self._query("SELECT count(*) FROM seen WHERE source = ?", (source,))[0][0])

    # -- health, for `connectors status` in another process -------------------------------------

    def write_health(self, snapshots: Mapping[str, Mapping[str, Any]]) -> None:
        now = self._clock()
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO health VALUES (?, ?, ?)",
                ((name, json.dumps(dict(snap)), now) for name, snap in snapshots.items()),
            )

    def read_health(self) -> dict[str, dict[str, Any]]:
        rows = self._query("SELECT source, value FROM health ORDER BY source")
        return {name: json.loads(value) for name, value in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SourceStateView:
    """``connectors.source.SourceState`` for one poll of one source."""

    def __init__(self, store: StateStore, source: str) -> None:
        self._store = store
        self._source = source
        self._pending: dict[str, str] = {}

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._pending:
            return json.loads(self._pending[key])
        return self._store.value(self._source, key, default)

    def put(self, key: str, value: Any) -> None:
        try:
            self._pending[key] = json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"state value {key!r} of {self._source} is not JSON: {exc}") from None

    def unseen(self, keys: Iterable[str]) -> set[str]:
        return self._store.unseen(self._source, keys)

    def checkpoint(self) -> Mapping[str, Any] | None:
        return self._store.checkpoint(self._source)

    def commit(
        self,
        seen_keys: Iterable[str],
        checkpoint: Mapping[str, Any] | None,
        *,
        poll_complete: bool = True,
    ) -> None:
        """Record acknowledged items; the values put during the poll only once it completed.

        A value such as an ETag describes a whole fetch: storing it after a partial poll would
        make the next conditional GET skip the items that were never sent.
        """
        values = self._pending if poll_complete else None
        self._store.commit(self._source, seen_keys, checkpoint, values)
        if poll_complete:
            self._pending = {}
