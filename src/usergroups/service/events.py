"""Durable, idempotent event stores: SQLite (WAL) by default, PostgreSQL for several instances.

Both implement :class:`EventStore`. ``append`` returns only after the events are
committed (SQLite: WAL with ``synchronous=FULL``, so a committed event survives a process
kill and a power cut; PostgreSQL: a committed transaction), and is idempotent on the
client's ``event_id``: the same event sent again is reported as a duplicate and stored
once; the same id with different content raises :class:`EventConflictError` and stores
nothing of that batch.

Every stored event gets a sequence number ``seq`` (increasing; PostgreSQL may commit them
slightly out of order across instances). A model records the last ``seq`` it was refitted
on, and a server replays only later events on top of it.

Examples
--------
>>> import tempfile, pathlib
>>> store = open_event_store(f"sqlite:///{tempfile.mkdtemp()}/events.sqlite3")
>>> [r.status for r in store.append([NewEvent("e1", "u1", "i1")])]
['stored']
>>> [r.status for r in store.append([NewEvent("e1", "u1", "i1")])]
['duplicate']
>>> store.count()
1
>>> store.close()
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import pandas as pd

from usergroups.errors import EventConflictError, EventStoreError

__all__ = [
    "AppendResult",
    "EventStore",
    "NewEvent",
    "PostgresEventStore",
    "SQLiteEventStore",
    "StoredEvent",
    "open_event_store",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewEvent:
    """An event as a client sent it (``timestamp`` in unix seconds, or None)."""

    event_id: str
    user_id: str
    item_id: str
    rating: float | None = None
    text: str | None = None
    timestamp: float | None = None

    def fingerprint(self) -> str:
        """SHA-256 of the content; equal for a retry of the same event."""
        payload = json.dumps(
            [self.user_id, self.item_id, self.rating, self.text, self.timestamp],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class StoredEvent:
    """An event as stored: with its sequence number and the time the server received it."""

    seq: int
    event_id: str
    user_id: str
    item_id: str
    rating: float | None
    text: str | None
    timestamp: float | None
    received_at: float


@dataclass(frozen=True)
class AppendResult:
    """What happened to one event of a batch."""

    event_id: str
    seq: int
    status: Literal["stored", "duplicate"]


class EventStore(Protocol):
    """The interface both stores implement."""

    url: str

    def append(self, events: Sequence[NewEvent]) -> list[AppendResult]:
        """Store a batch atomically; return one result per event, in order."""

    def events_since(self, seq: int, limit: int | None = None) -> list[StoredEvent]:
        """Events with ``seq`` greater than ``seq``, oldest first."""

    def events_upto(self, seq: int) -> list[StoredEvent]:
        """Events with ``seq`` at most ``seq``, oldest first."""

    def count(self) -> int:
        """Number of stored events."""

    def last_seq(self) -> int:
        """Highest ``seq`` (0 when empty)."""

    def close(self) -> None:
        """Release the connection."""


_COLUMNS = "seq, event_id, user_id, item_id, rating, text, event_ts, received_at"


def _row(r: Sequence[Any]) -> StoredEvent:
    return StoredEvent(
        seq=int(r[0]),
        event_id=str(r[1]),
        user_id=str(r[2]),
        item_id=str(r[3]),
        rating=None if r[4] is None else float(r[4]),
        text=r[5],
        timestamp=None if r[6] is None else float(r[6]),
        received_at=float(r[7]),
    )


class _SQLStore:
    """The logic both stores share; subclasses open the connection and name the dialect."""

    url: str
    _placeholder = "?"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: Any = None

    def _sql(self, query: str) -> str:
        return query.replace("?", self._placeholder)

    def _begin(self, cur: Any) -> None:
        """Start a write transaction."""

    def append(self, events: Sequence[NewEvent]) -> list[AppendResult]:
        now = time.time()
        insert = self._sql(
            "INSERT INTO events (event_id, user_id, item_id, rating, text, event_ts, "
            "received_at, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (event_id) DO NOTHING RETURNING seq"
        )
        select = self._sql("SELECT seq, fingerprint FROM events WHERE event_id = ?")
        results: list[AppendResult] = []
        with self._lock:
            try:
                cur = self._conn.cursor()
                self._begin(cur)
                try:
                    for ev in events:
                        fp = ev.fingerprint()
                        cur.execute(
                            insert,
                            (
                                ev.event_id,
                                ev.user_id,
                                ev.item_id,
                                ev.rating,
                                ev.text,
                                ev.timestamp,
                                now,
                                fp,
                            ),
                        )
                        row = cur.fetchone()
                        if row is not None:
                            results.append(AppendResult(ev.event_id, int(row[0]), "stored"))
                            continue
                        cur.execute(select, (ev.event_id,))
                        seq, old_fp = cur.fetchone()
                        if old_fp != fp:
                            raise EventConflictError(
                                f"event_id {ev.event_id!r} was stored before with different "
                                "content; send a new event_id for a new event (nothing of "
                                "this batch was stored)"
                            )
                        results.append(AppendResult(ev.event_id, int(seq), "duplicate"))
                except BaseException:
                    self._conn.rollback()
                    raise
                self._conn.commit()
            except EventConflictError:
                raise
            except Exception as exc:
                raise EventStoreError(
                    f"could not store events in {self._safe_url()}: {exc}"
                ) from exc
        return results

    def _query(self, query: str, params: tuple[Any, ...]) -> list[Any]:
        with self._lock:
            try:
                cur = self._conn.cursor()
                cur.execute(self._sql(query), params)
                rows = cur.fetchall()
                self._conn.commit()
                return list(rows)
            except Exception as exc:
                raise EventStoreError(f"could not read {self._safe_url()}: {exc}") from exc

    def events_since(self, seq: int, limit: int | None = None) -> list[StoredEvent]:
        q = f"SELECT {_COLUMNS} FROM events WHERE seq > ? ORDER BY seq"
        params: tuple[Any, ...] = (int(seq),)
        if limit is not None:
            q += " LIMIT ?"
            params += (int(limit),)
        return [_row(r) for r in self._query(q, params)]

    def events_upto(self, seq: int) -> list[StoredEvent]:
        q = f"SELECT {_COLUMNS} FROM events WHERE seq <= ? ORDER BY seq"
        return [_row(r) for r in self._query(q, (int(seq),))]

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM events", ())[0][0])

    def last_seq(self) -> int:
        return int(self._query("SELECT COALESCE(MAX(seq), 0) FROM events", ())[0][0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _safe_url(self) -> str:
        return _redact(self.url)


class SQLiteEventStore(_SQLStore):
    """Events in one SQLite file, WAL mode, ``synchronous=FULL``.

    Parameters
    ----------
    path : str or Path
        The database file (created with its folder).
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit off; one connection shared under the lock
            conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=30.0
            )
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk (WAL fsynced) before append returns
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS events ("
                "seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, "
                "user_id TEXT NOT NULL, item_id TEXT NOT NULL, rating REAL, text TEXT, "
                "event_ts REAL, received_at REAL NOT NULL, fingerprint TEXT NOT NULL)"
            )
            conn.execute("CREATE INDEX IF NOT EXISTS events_user ON events (user_id)")
        except sqlite3.Error as exc:
            raise EventStoreError(
                f"cannot open the SQLite event store {self.path}: {exc}; check the path and "
                "its permissions"
            ) from exc
        self._conn = _SQLiteAutocommit(conn)

    def _begin(self, cur: Any) -> None:
        # IMMEDIATE takes the write lock up front, so two writers never deadlock on upgrade
        cur.execute("BEGIN IMMEDIATE")

    commit_lag = 0
    """Seqs that may commit out of order: none (one writer at a time, seq taken inside)."""

    def data_version(self) -> int:
        """A number that changes whenever another connection (another process) commits.

        ``PRAGMA data_version``: no disk read, so a worker can ask before every answer
        whether other workers stored events meanwhile. Its own commits do not change it.
        """
        with self._lock:
            try:
                row = self._conn.cursor().execute("PRAGMA data_version").fetchone()
            except Exception as exc:
                raise EventStoreError(f"could not read {self._safe_url()}: {exc}") from exc
        return int(row[0])


class _SQLiteAutocommit:
    """sqlite3 in autocommit mode with explicit BEGIN IMMEDIATE / COMMIT / ROLLBACK."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def cursor(self) -> sqlite3.Cursor:
        return self.conn.cursor()

    def commit(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()


class PostgresEventStore(_SQLStore):
    """Events in a PostgreSQL table, shared by every instance that connects to it.

    Parameters
    ----------
    url : str
        ``postgresql://user:password@host:port/database`` (libpq URL or key=value string).
    """

    _placeholder = "%s"

    def __init__(self, url: str) -> None:
        super().__init__()
        from usergroups._deps import require

        psycopg = require("psycopg", "serve")
        self.url = url
        try:
            self._conn = psycopg.connect(url, autocommit=False, connect_timeout=10)
            with self._conn.cursor() as cur:
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS events ("
                    "seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                    "event_id TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL, "
                    "item_id TEXT NOT NULL, rating DOUBLE PRECISION, text TEXT, "
                    "event_ts DOUBLE PRECISION, received_at DOUBLE PRECISION NOT NULL, "
                    "fingerprint TEXT NOT NULL)"
                )
                cur.execute("CREATE INDEX IF NOT EXISTS events_user ON events (user_id)")
            self._conn.commit()
        except psycopg.Error as exc:
            raise EventStoreError(
                f"cannot open the PostgreSQL event store {_redact(url)}: {exc}; check the URL, "
                "that the server runs and that the user may create tables"
            ) from exc


def _redact(url: str) -> str:
    """The URL without its password."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url


def open_event_store(url: str) -> EventStore:
    """The store a URL names: ``sqlite:///path`` (or a plain path) or ``postgresql://...``.

    Raises
    ------
    EventStoreError
        If the store cannot be opened.
    """
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresEventStore(url)
    path = url
    if url.startswith("sqlite:"):
        # SQLAlchemy's convention: sqlite:///relative/path, sqlite:////absolute/path
        path = url[len("sqlite:") :]
        path = path[3:] if path.startswith("///") else path
    if "://" in path:
        raise EventStoreError(
            f"event store URL {url!r} is not sqlite:///PATH or postgresql://...; fix "
            "events.url or $USERGROUPS_EVENTS_URL"
        )
    return SQLiteEventStore(path)


def events_to_frame(events: Sequence[StoredEvent]) -> pd.DataFrame:
    """Stored events as the table :func:`usergroups.refit.merge_events` reads.

    An event without a client timestamp is dated by its arrival, so "latest wins" holds.
    """
    return pd.DataFrame(
        {
            "event_id": [e.event_id for e in events],
            "user_id": [e.user_id for e in events],
            "item_id": [e.item_id for e in events],
            "rating": [e.rating for e in events],
            "text": [e.text for e in events],
            "timestamp": [e.received_at if e.timestamp is None else e.timestamp for e in events],
        }
    )
