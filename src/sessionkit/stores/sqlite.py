"""A store in one SQLite file: several worker processes on one machine share it.

One row per session family: its namespace, the user it is bound to, its version, whether
it is live or a tombstone, when it may be forgotten, and the stored text. Every write is
one conditional statement (``UPDATE ... WHERE version = ?``, or an ``INSERT`` that only
replaces an expired row), so it is atomic and nothing in flight can overwrite a newer
state. The file is in WAL mode, so readers never wait for the writer, and is created
readable by its owner only (0600).

Each thread gets its own connection (SQLite connections must not be shared between
threads). The coroutine forms first run the statement on the event loop's thread with
no busy wait, which costs tens of microseconds; only when another process holds the
write lock does the call move to a worker thread that waits for it (a thread hop costs
about a hundred microseconds, so it is paid only when waiting is needed anyway).
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
from ..families import FamilyRef, Record, Stored
from ..session import UserId
from ._util import parse, parse_record, user_key, user_of_key
from .base import StoreUnavailable

__all__ = ["SQLiteStore"]

_T = TypeVar("_T")

#: Expired rows are purged after this many saves by one store object.
_PURGE_EVERY = 256
#: Rows deleted per statement by :meth:`SQLiteStore.revoke_user`, so no statement holds
#: the write lock for long.
_REVOKE_CHUNK = 1000
#: Seconds between two attempts to set up a database another process is setting up.
_INIT_RETRY_PAUSE = 0.02
#: Permissions of a database file sessionkit creates: owner read and write only.
FILE_MODE = 0o600

_TABLE = "sessionkit_families"
_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {_TABLE} ("
    " family TEXT PRIMARY KEY NOT NULL,"
    " namespace TEXT NOT NULL,"
    " user_key TEXT,"
    " version INTEGER NOT NULL,"
    " live INTEGER NOT NULL,"
    " until REAL NOT NULL,"
    " stored BLOB NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS {_TABLE}_user ON {_TABLE} (user_key, namespace)",
    f"CREATE INDEX IF NOT EXISTS {_TABLE}_until ON {_TABLE} (until)",
)
_PURGE = f"DELETE FROM {_TABLE} WHERE until <= ?"  # noqa: S608


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    message = str(exc).lower()
    return "locked" in message or "busy" in message


def _marks(count: int) -> str:
    return ", ".join("?" * count)


class _Statements:
    """The statements for one number of namespaces (the key ring's length)."""

    __slots__ = ("create", "families", "load", "revoke", "revoke_count", "update")

    def __init__(self, count: int) -> None:
        ns = _marks(count)
        t = _TABLE
        self.load = (
            f"SELECT stored, user_key FROM {t}"  # noqa: S608
            f" WHERE family = ? AND namespace IN ({ns}) AND until > ?"
        )
        self.update = (
            f"UPDATE {t} SET namespace = ?, user_key = ?, version = ?, live = ?, until = ?,"  # noqa: S608
            f" stored = ? WHERE family = ? AND namespace IN ({ns}) AND version = ? AND until > ?"
        )
        self.create = (
            f"INSERT INTO {t} (family, namespace, user_key, version, live, until, stored)"  # noqa: S608
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (family) DO UPDATE SET"
            " namespace = excluded.namespace, user_key = excluded.user_key,"
            " version = excluded.version, live = excluded.live, until = excluded.until,"
            f" stored = excluded.stored WHERE {t}.until <= ?"
        )
        self.families = (
            f"SELECT family, stored FROM {t} WHERE user_key = ? AND namespace IN ({ns})"  # noqa: S608
            " AND live = 1 AND until > ?"
        )
        self.revoke_count = (
            f"SELECT count(*) FROM {t} WHERE user_key = ? AND namespace IN ({ns})"  # noqa: S608
            " AND live = 1 AND until > ?"
        )
        self.revoke = (
            f"DELETE FROM {t} WHERE rowid IN (SELECT rowid FROM {t} WHERE user_key = ?"  # noqa: S608
            f" AND namespace IN ({ns}) LIMIT {_REVOKE_CHUNK})"
        )


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
    """Keep session families in the SQLite database at ``path``.

    ``path`` must be in an existing directory; a new file is created with mode 0600, and
    the table (``sessionkit_families``) and its indexes are created if missing.
    ``timeout`` is how long (seconds) a call waits for another process's write lock
    before giving up with :class:`StoreUnavailable`.

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
        if not timeout > 0:
            raise ConfigurationError(
                f"SQLiteStore timeout must be a positive number of seconds, not {timeout!r}"
            )
        self._timeout = timeout
        self._local = threading.local()
        self._statements: dict[int, _Statements] = {}
        self._purge_lock = threading.Lock()
        self._saves_since_purge = 0
        self._create_private(text)
        # Worker processes often start together: switching to WAL and creating the schema
        # can meet another process's lock without SQLite's busy handler waiting for it,
        # so a busy database is retried until the timeout.
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn = self._connection(wait=True)
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

    @staticmethod
    def _create_private(text: str) -> None:
        """Create the file with mode 0600 if it does not exist (SQLite gives its WAL and
        shared-memory files the same mode)."""
        try:
            fd = os.open(text, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
        except FileExistsError:
            return
        except OSError as exc:
            raise ConfigurationError(
                f"SQLiteStore cannot create {text!r}: {exc.strerror}; check that this process "
                "may write to its directory"
            ) from exc
        os.close(fd)

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
        """Close the calling thread's connections (another call opens new ones)."""
        for name in ("waiting", "eager"):
            holder: _Connection | None = getattr(self._local, name, None)
            if holder is not None:
                delattr(self._local, name)
                holder.conn.close()

    # -- the operations, on a given connection ---------------------------------------

    def _sql(self, count: int) -> _Statements:
        statements = self._statements.get(count)
        if statements is None:
            statements = self._statements[count] = _Statements(count)
        return statements

    def _load(self, conn: sqlite3.Connection, ref: FamilyRef, now: float) -> Stored | None:
        sql = self._sql(len(ref.namespaces)).load
        # fetchall, not fetchone: it runs the statement to its end, so no read
        # transaction stays open on this connection.
        rows = conn.execute(sql, (ref.family, *ref.namespaces, now)).fetchall()
        return parse(rows[0][0], ref.family, user_of_key(rows[0][1])) if rows else None

    def _save(
        self,
        conn: sqlite3.Connection,
        ref: FamilyRef,
        expected: int | None,
        stored: Stored,
        until: float,
        now: float,
    ) -> bool:
        sql = self._sql(len(ref.namespaces))
        user = None if ref.user_id is None else user_key(ref.user_id)
        live = int(isinstance(stored, Record))
        text = stored.dumps()
        if expected is None:
            values = (ref.family, ref.namespaces[0], user, stored.version, live, until, text, now)
            return conn.execute(sql.create, values).rowcount == 1
        args = (ref.namespaces[0], user, stored.version, live, until, text, ref.family)
        where = (*ref.namespaces, expected, now)
        return conn.execute(sql.update, args + where).rowcount == 1

    def _revoke(
        self, conn: sqlite3.Connection, user_id: UserId, namespaces: tuple[str, ...], now: float
    ) -> int:
        sql = self._sql(len(namespaces))
        key = user_key(user_id)
        (live,) = conn.execute(sql.revoke_count, (key, *namespaces, now)).fetchone()
        while conn.execute(sql.revoke, (key, *namespaces)).rowcount:
            pass
        return int(live)

    def _families(
        self, conn: sqlite3.Connection, user_id: UserId, namespaces: tuple[str, ...], now: float
    ) -> list[tuple[str, Record]]:
        sql = self._sql(len(namespaces)).families
        rows = conn.execute(sql, (user_key(user_id), *namespaces, now)).fetchall()
        found = [(family, parse_record(text, family, user_id)) for family, text in rows]
        return [(family, record) for family, record in found if record is not None]

    # -- blocking forms --------------------------------------------------------------

    def load(self, ref: FamilyRef, now: float) -> Stored | None:
        """Return the stored state of ``ref``'s family, or None."""
        return self._run(lambda conn: self._load(conn, ref, now))

    def save(
        self, ref: FamilyRef, expected: int | None, stored: Stored, until: float, now: float
    ) -> bool:
        """Write ``stored`` if the family's version is ``expected`` (None: nothing live)."""
        saved = self._run(lambda conn: self._save(conn, ref, expected, stored, until, now))
        self._maybe_purge(now)
        return saved

    def revoke_user(self, user_id: UserId, namespaces: tuple[str, ...], now: float) -> int:
        """End every family bound to ``user_id``; return how many were live."""
        return self._run(lambda conn: self._revoke(conn, user_id, namespaces, now))

    def families_of(
        self, user_id: UserId, namespaces: tuple[str, ...], now: float
    ) -> list[tuple[str, Record]]:
        """The live families bound to ``user_id``, with their records."""
        return self._run(lambda conn: self._families(conn, user_id, namespaces, now))

    def purge(self, now: float) -> int:
        """Delete the rows expired at ``now``; return how many. Runs now and then on save."""
        return self._run(lambda conn: conn.execute(_PURGE, (now,)).rowcount)

    # -- coroutine forms -------------------------------------------------------------

    async def aload(self, ref: FamilyRef, now: float) -> Stored | None:
        """Coroutine form of :meth:`load`."""
        return await self._arun(lambda conn: self._load(conn, ref, now))

    async def asave(
        self, ref: FamilyRef, expected: int | None, stored: Stored, until: float, now: float
    ) -> bool:
        """Coroutine form of :meth:`save`."""
        saved = await self._arun(lambda conn: self._save(conn, ref, expected, stored, until, now))
        if self._purge_due():
            await asyncio.to_thread(self.purge, now)
        return saved

    async def arevoke_user(self, user_id: UserId, namespaces: tuple[str, ...], now: float) -> int:
        """Coroutine form of :meth:`revoke_user` (in a worker thread: it may take a while)."""
        return await asyncio.to_thread(self.revoke_user, user_id, namespaces, now)

    async def afamilies_of(
        self, user_id: UserId, namespaces: tuple[str, ...], now: float
    ) -> list[tuple[str, Record]]:
        """Coroutine form of :meth:`families_of`."""
        return await self._arun(lambda conn: self._families(conn, user_id, namespaces, now))

    # -- internals -------------------------------------------------------------------

    def _purge_due(self) -> bool:
        with self._purge_lock:
            self._saves_since_purge += 1
            if self._saves_since_purge < _PURGE_EVERY:
                return False
            self._saves_since_purge = 0
            return True

    def _maybe_purge(self, now: float) -> None:
        if self._purge_due():
            self.purge(now)

    def _connection(self, *, wait: bool) -> sqlite3.Connection:
        """This thread's connection that waits for locks (``wait``) or never waits."""
        name = "waiting" if wait else "eager"
        holder: _Connection | None = getattr(self._local, name, None)
        if holder is None:
            # Autocommit (isolation_level=None): every statement is its own transaction.
            conn = sqlite3.connect(
                self._path, timeout=self._timeout if wait else 0, isolation_level=None
            )
            try:
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error:
                conn.close()
                raise
            holder = _Connection(conn)
            setattr(self._local, name, holder)
        return holder.conn

    def _run(self, op: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return op(self._connection(wait=True))
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailable(f"SQLite store {str(self._path)!r}: {exc}") from exc

    async def _arun(self, op: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return op(self._connection(wait=False))
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise StoreUnavailable(f"SQLite store {str(self._path)!r}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailable(f"SQLite store {str(self._path)!r}: {exc}") from exc
        return await asyncio.to_thread(self._run, op)
