"""A store in one SQLite file: several worker processes on one machine share it.

Each thread gets its own connection (SQLite connections must not be shared between
threads); the file is in WAL mode, so readers never wait for the writer and writers wait
for each other up to the busy timeout. Every operation is one SQL statement in
autocommit mode, so each is atomic on its own. The coroutine forms run the blocking ones
in a worker thread, so the event loop never waits on the disk or a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

from ..errors import ConfigurationError
from ._util import parse_record, user_key
from .base import SessionRecord, StoreUnavailable

__all__ = ["SQLiteStore"]

_T = TypeVar("_T")

#: Expired rows are purged after this many saves by one store object.
_PURGE_EVERY = 256
#: Seconds between two attempts to set up a database another process is setting up.
_INIT_RETRY_PAUSE = 0.02


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    message = str(exc).lower()
    return "locked" in message or "busy" in message


_TABLE = "sessionkit_sessions"

_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {_TABLE} ("
    " family TEXT PRIMARY KEY NOT NULL,"
    " record TEXT NOT NULL,"
    " user_key TEXT,"
    " expires_at REAL NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS {_TABLE}_user_key ON {_TABLE} (user_key)",
    f"CREATE INDEX IF NOT EXISTS {_TABLE}_expires_at ON {_TABLE} (expires_at)",
)
_LOAD = f"SELECT record FROM {_TABLE} WHERE family = ? AND expires_at > ?"  # noqa: S608
_SAVE = (
    f"INSERT OR REPLACE INTO {_TABLE} (family, record, user_key, expires_at)"  # noqa: S608
    " VALUES (?, ?, ?, ?)"
)
_DELETE = f"DELETE FROM {_TABLE} WHERE family = ?"  # noqa: S608
_DELETE_USER = f"DELETE FROM {_TABLE} WHERE user_key = ?"  # noqa: S608
_PURGE = f"DELETE FROM {_TABLE} WHERE expires_at <= ?"  # noqa: S608


class _Connection:
    """One thread's connection; closed when that thread ends (its thread-local dies)."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __del__(self) -> None:
        # Runs in the owning thread when it exits, which is the only thread allowed to
        # close this connection; anywhere else there is nothing better to do.
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()


class SQLiteStore:
    """Keep session records in the SQLite database at ``path``.

    ``path`` must be in an existing directory; the table (``sessionkit_sessions``) and
    its indexes are created if missing. ``timeout`` is how long (seconds) a call waits
    for another process's write lock before giving up with :class:`StoreUnavailable`.

    Call :meth:`close` from a thread to close that thread's connection early; other
    threads' connections close when those threads end.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        text = os.fspath(path)
        if text in ("", ":memory:"):
            raise ConfigurationError(
                f"SQLiteStore needs a file path, not {text!r}: every thread opens its own "
                "connection, so a private or in-memory database would not be shared; use "
                "sessionkit.stores.MemoryStore() for a store in this process"
            )
        self._path = Path(text)
        directory = self._path.parent
        if not directory.is_dir():
            raise ConfigurationError(
                f"SQLiteStore path {text!r}: the directory {str(directory)!r} does not exist; "
                "create it first (mkdir -p) or choose a path in an existing directory"
            )
        self._timeout = timeout
        self._local = threading.local()
        self._purge_lock = threading.Lock()
        self._saves_since_purge = 0
        # Worker processes often start together: switching to WAL and creating the schema
        # can meet another process's lock without SQLite's busy handler waiting for it,
        # so a busy database is retried until the timeout.
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn = self._connection()
                conn.execute("PRAGMA journal_mode=WAL")
                for statement in _SCHEMA:
                    conn.execute(statement)
            except sqlite3.OperationalError as exc:
                if _is_busy(exc) and time.monotonic() < deadline:
                    time.sleep(_INIT_RETRY_PAUSE)
                    continue
                self._refuse(text, exc)
            except sqlite3.Error as exc:
                self._refuse(text, exc)
            return

    def _refuse(self, text: str, exc: sqlite3.Error) -> NoReturn:
        self.close()
        raise ConfigurationError(
            f"SQLiteStore cannot use {text!r}: {exc}; check that the file is a SQLite "
            "database and that this process may read and write it and its directory"
        ) from exc

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def close(self) -> None:
        """Close the calling thread's connection (another call opens a new one)."""
        holder: _Connection | None = getattr(self._local, "holder", None)
        if holder is not None:
            del self._local.holder
            holder.conn.close()

    # -- blocking forms --------------------------------------------------------------

    def load(self, family: str, now: float) -> SessionRecord | None:
        """Return the live record of ``family``, or None."""
        # fetchall, not fetchone: it runs the statement to its end, so no read
        # transaction stays open on this connection.
        rows = self._run(lambda conn: conn.execute(_LOAD, (family, now)).fetchall())
        if not rows:
            return None
        record = parse_record(rows[0][0], family)
        if record is None or record.expires_at <= now:
            return None
        return record

    def save(self, family: str, record: SessionRecord, now: float) -> None:
        """Create or replace the record of ``family``; an already expired one is dropped."""
        if record.expires_at <= now:
            self._run(lambda conn: conn.execute(_DELETE, (family,)))
        else:
            key = None if record.user_id is None else user_key(record.user_id)
            values = (family, record.dumps(), key, record.expires_at)
            self._run(lambda conn: conn.execute(_SAVE, values))
        with self._purge_lock:
            self._saves_since_purge += 1
            purge = self._saves_since_purge >= _PURGE_EVERY
            if purge:
                self._saves_since_purge = 0
        if purge:
            self.purge(now)

    def delete(self, family: str) -> None:
        """Forget ``family``; a missing family is not an error."""
        self._run(lambda conn: conn.execute(_DELETE, (family,)))

    def delete_user(self, user_id: str | int) -> int:
        """Forget every family bound to ``user_id``; return how many there were."""
        key = user_key(user_id)
        return self._run(lambda conn: conn.execute(_DELETE_USER, (key,)).rowcount)

    def purge(self, now: float) -> int:
        """Delete the rows expired at ``now``; return how many. Runs now and then on save."""
        return self._run(lambda conn: conn.execute(_PURGE, (now,)).rowcount)

    # -- coroutine forms (a worker thread runs the blocking ones) --------------------

    async def aload(self, family: str, now: float) -> SessionRecord | None:
        """Coroutine form of :meth:`load`."""
        return await asyncio.to_thread(self.load, family, now)

    async def asave(self, family: str, record: SessionRecord, now: float) -> None:
        """Coroutine form of :meth:`save`."""
        await asyncio.to_thread(self.save, family, record, now)

    async def adelete(self, family: str) -> None:
        """Coroutine form of :meth:`delete`."""
        await asyncio.to_thread(self.delete, family)

    async def adelete_user(self, user_id: str | int) -> int:
        """Coroutine form of :meth:`delete_user`."""
        return await asyncio.to_thread(self.delete_user, user_id)

    # -- internals -------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        holder: _Connection | None = getattr(self._local, "holder", None)
        if holder is None:
            # Autocommit (isolation_level=None): every statement is its own transaction.
            conn = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None)
            try:
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error:
                conn.close()
                raise
            holder = _Connection(conn)
            self._local.holder = holder
        return holder.conn

    def _run(self, op: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return op(self._connection())
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailable(f"SQLite store {str(self._path)!r}: {exc}") from exc
