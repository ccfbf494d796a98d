"""An in-process store: one dict behind a lock, for tests and single-process servers."""

from __future__ import annotations

import threading

from ._util import parse_record, user_key
from .base import SessionRecord

__all__ = ["MemoryStore"]

#: A full sweep of expired records runs after at least this many saves (and at least as
#: many saves as there are records, so sweeping costs O(1) per save on average).
_SWEEP_EVERY = 256


class MemoryStore:
    """Keep session records in this process's memory.

    Good for tests and for a single-process server; the records vanish when the process
    ends and other workers do not see them (use :class:`~sessionkit.stores.SQLiteStore`
    for several workers on one machine, :class:`~sessionkit.stores.RedisStore` for many
    machines).

    Records are kept as the same JSON text the other stores keep, so a record read back
    is a fresh copy that behaves exactly as it would with a real store (mutating the
    ``data`` of a saved record does not change what is stored). Expired records are
    never returned; they are dropped when read and swept now and then on save.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: family -> (record text, expires_at, user index key or None)
        self._records: dict[str, tuple[str, float, str | None]] = {}
        #: user index key -> families bound to that user
        self._users: dict[str, set[str]] = {}
        self._saves_since_sweep = 0

    def __len__(self) -> int:
        """Number of records held, including expired ones not yet swept."""
        with self._lock:
            return len(self._records)

    # -- blocking forms --------------------------------------------------------------

    def load(self, family: str, now: float) -> SessionRecord | None:
        """Return the live record of ``family``, or None."""
        with self._lock:
            entry = self._records.get(family)
            if entry is None:
                return None
            text, expires_at, _ = entry
            if expires_at <= now:
                self._forget(family)
                return None
        record = parse_record(text, family)
        if record is None or record.expires_at <= now:
            return None
        return record

    def save(self, family: str, record: SessionRecord, now: float) -> None:
        """Create or replace the record of ``family``; an already expired one is dropped."""
        text = record.dumps()
        key = None if record.user_id is None else user_key(record.user_id)
        with self._lock:
            self._forget(family)
            if record.expires_at > now:
                self._records[family] = (text, record.expires_at, key)
                if key is not None:
                    self._users.setdefault(key, set()).add(family)
            self._saves_since_sweep += 1
            if self._saves_since_sweep >= max(_SWEEP_EVERY, len(self._records)):
                self._sweep(now)

    def delete(self, family: str) -> None:
        """Forget ``family``; a missing family is not an error."""
        with self._lock:
            self._forget(family)

    def delete_user(self, user_id: str | int) -> int:
        """Forget every family bound to ``user_id``; return how many there were."""
        with self._lock:
            families = self._users.pop(user_key(user_id), set())
            for family in families:
                del self._records[family]
            return len(families)

    # -- coroutine forms (no I/O: they call the blocking forms) ----------------------

    async def aload(self, family: str, now: float) -> SessionRecord | None:
        """Coroutine form of :meth:`load`."""
        return self.load(family, now)

    async def asave(self, family: str, record: SessionRecord, now: float) -> None:
        """Coroutine form of :meth:`save`."""
        self.save(family, record, now)

    async def adelete(self, family: str) -> None:
        """Coroutine form of :meth:`delete`."""
        self.delete(family)

    async def adelete_user(self, user_id: str | int) -> int:
        """Coroutine form of :meth:`delete_user`."""
        return self.delete_user(user_id)

    # -- internals (the caller holds the lock) ---------------------------------------

    def _forget(self, family: str) -> None:
        entry = self._records.pop(family, None)
        if entry is None or entry[2] is None:
            return
        families = self._users.get(entry[2])
        if families is not None:
            families.discard(family)
            if not families:
                del self._users[entry[2]]

    def _sweep(self, now: float) -> None:
        self._saves_since_sweep = 0
        expired = [f for f, (_, expires_at, _) in self._records.items() if expires_at <= now]
        for family in expired:
            self._forget(family)
