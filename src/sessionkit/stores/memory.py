"""An in-process store: one dict behind a lock, for tests and single-process servers."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..families import FamilyRef, Record, Stored
from ..session import UserId
from ._util import parse, parse_record, user_key, user_of_key

__all__ = ["MemoryStore"]

#: A full sweep of expired entries runs after at least this many saves (and at least as
#: many saves as there are entries, so sweeping costs O(1) per save on average).
_SWEEP_EVERY = 256


@dataclass(slots=True)
class _Entry:
    namespace: str
    user: str | None
    version: int
    live: bool
    until: float
    text: bytes


class MemoryStore:
    """Keep session families in this process's memory.

    Good for tests and for a single-process server; the families vanish when the process
    ends and other workers do not see them (use :class:`~sessionkit.stores.SQLiteStore`
    for several workers on one machine, :class:`~sessionkit.stores.RedisStore` for many
    machines).

    Entries are kept as the same text the other stores keep, so what is read back is a
    fresh copy that behaves exactly as it would with a real store. Every operation runs
    under one lock, so each is atomic. Expired entries are never returned; they are
    dropped when met and swept now and then on save.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        #: user index key -> families bound to that user
        self._users: dict[str, set[str]] = {}
        self._saves_since_sweep = 0

    def __len__(self) -> int:
        """Number of entries held (records and tombstones), expired ones not yet swept."""
        with self._lock:
            return len(self._entries)

    # -- blocking forms --------------------------------------------------------------

    def load(self, ref: FamilyRef, now: float) -> Stored | None:
        """Return the stored state of ``ref``'s family, or None."""
        with self._lock:
            entry = self._live(ref, now)
        return None if entry is None else parse(entry.text, ref.family, user_of_key(entry.user))

    def save(
        self, ref: FamilyRef, expected: int | None, stored: Stored, until: float, now: float
    ) -> bool:
        """Write ``stored`` if the family's version is ``expected`` (None: nothing live)."""
        text = stored.dumps()
        user = None if ref.user_id is None else user_key(ref.user_id)
        with self._lock:
            entry = self._live(ref, now)
            if (entry is None) != (expected is None):
                return False
            if entry is not None and entry.version != expected:
                return False
            self._forget(ref.family)
            if until > now:
                live = isinstance(stored, Record)
                self._entries[ref.family] = _Entry(
                    ref.namespaces[0], user, stored.version, live, until, text
                )
                if user is not None:
                    self._users.setdefault(user, set()).add(ref.family)
            self._saves_since_sweep += 1
            if self._saves_since_sweep >= max(_SWEEP_EVERY, len(self._entries)):
                self._sweep(now)
        return True

    def revoke_user(self, user_id: UserId, namespaces: tuple[str, ...], now: float) -> int:
        """End every family bound to ``user_id``; return how many were live."""
        with self._lock:
            ended = 0
            for family in list(self._users.get(user_key(user_id), ())):
                entry = self._entries[family]
                if entry.namespace in namespaces:
                    ended += entry.live and entry.until > now
                    self._forget(family)
            return ended

    def families_of(
        self, user_id: UserId, namespaces: tuple[str, ...], now: float
    ) -> list[tuple[str, Record]]:
        """The live families bound to ``user_id``, with their records."""
        with self._lock:
            texts = [
                (family, entry.text)
                for family in self._users.get(user_key(user_id), ())
                if (entry := self._entries[family]).live
                and entry.until > now
                and entry.namespace in namespaces
            ]
        found = [(family, parse_record(text, family, user_id)) for family, text in texts]
        return [(family, record) for family, record in found if record is not None]

    # -- coroutine forms (no I/O: they call the blocking forms) ----------------------

    async def aload(self, ref: FamilyRef, now: float) -> Stored | None:
        """Coroutine form of :meth:`load`."""
        return self.load(ref, now)

    async def asave(
        self, ref: FamilyRef, expected: int | None, stored: Stored, until: float, now: float
    ) -> bool:
        """Coroutine form of :meth:`save`."""
        return self.save(ref, expected, stored, until, now)

    async def arevoke_user(self, user_id: UserId, namespaces: tuple[str, ...], now: float) -> int:
        """Coroutine form of :meth:`revoke_user`."""
        return self.revoke_user(user_id, namespaces, now)

    async def afamilies_of(
        self, user_id: UserId, namespaces: tuple[str, ...], now: float
    ) -> list[tuple[str, Record]]:
        """Coroutine form of :meth:`families_of`."""
        return self.families_of(user_id, namespaces, now)

    # -- internals (the caller holds the lock) ---------------------------------------

    def _live(self, ref: FamilyRef, now: float) -> _Entry | None:
        entry = self._entries.get(ref.family)
        if entry is None or entry.namespace not in ref.namespaces:
            return None
        if entry.until <= now:
            self._forget(ref.family)
            return None
        return entry

    def _forget(self, family: str) -> None:
        entry = self._entries.pop(family, None)
        if entry is None or entry.user is None:
            return
        families = self._users.get(entry.user)
        if families is not None:
            families.discard(family)
            if not families:
                del self._users[entry.user]

    def _sweep(self, now: float) -> None:
        self._saves_since_sweep = 0
        for family in [f for f, entry in self._entries.items() if entry.until <= now]:
            self._forget(family)
