"""The store protocol: atomic reads and compare-and-set writes of session families.

A store keeps, per session *family*, what :mod:`sessionkit.families` defines: a live
:class:`~sessionkit.families.Record` or the tombstone of an ended family
(:class:`~sessionkit.families.Ended`). It makes no decision of its own; it offers:

- :meth:`Store.load`: the family's stored state, or None when there is none (never
  created, expired, evicted, revoked);
- :meth:`Store.save`: write a new state *only if* the family's version is still
  ``expected`` (``None``: only if nothing live is stored), atomically, keeping it until
  ``until``; False means another request wrote first;
- :meth:`Store.revoke_user` and :meth:`Store.families_of`, over the families bound to a
  user.

Each call takes the :class:`~sessionkit.families.FamilyRef` (or the user and the
namespaces): records of applications sharing one store stay apart by namespace, and a
store looks in every namespace of the kit's key ring and writes in the newest, so key
rotation moves records along as they are written.

Each call has a blocking form for WSGI and an ``a``-prefixed coroutine for ASGI, so ASGI
code never blocks the event loop. A store raises :class:`StoreUnavailable` when it cannot
answer; sessionkit then fails closed.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..errors import SessionKitError
from ..families import FamilyRef, Record, Stored
from ..session import UserId

__all__ = ["Store", "StoreUnavailable"]


class StoreUnavailable(SessionKitError):
    """The store did not answer; requests that need it are refused (503), never guessed."""


@runtime_checkable
class Store(Protocol):
    """What sessionkit needs from a server-side store.

    Times are seconds since the epoch on the caller's clock; a store never returns a
    state whose ``until`` has passed.
    """

    def load(self, ref: FamilyRef, now: float) -> Stored | None:
        """Return the stored state of ``ref``'s family, or None."""

    def save(
        self, ref: FamilyRef, expected: int | None, stored: Stored, until: float, now: float
    ) -> bool:
        """Write ``stored`` if the family's version is ``expected`` (None: nothing live)."""

    def revoke_user(self, user_id: UserId, namespaces: tuple[str, ...], now: float) -> int:
        """End every family bound to ``user_id``; return how many were live."""

    def families_of(
        self, user_id: UserId, namespaces: tuple[str, ...], now: float
    ) -> list[tuple[str, Record]]:
        """The live families bound to ``user_id``, with their records."""

    async def aload(self, ref: FamilyRef, now: float) -> Stored | None:
        """Coroutine form of :meth:`load`."""

    async def asave(
        self, ref: FamilyRef, expected: int | None, stored: Stored, until: float, now: float
    ) -> bool:
        """Coroutine form of :meth:`save`."""

    async def arevoke_user(self, user_id: UserId, namespaces: tuple[str, ...], now: float) -> int:
        """Coroutine form of :meth:`revoke_user`."""

    async def afamilies_of(
        self, user_id: UserId, namespaces: tuple[str, ...], now: float
    ) -> list[tuple[str, Record]]:
        """Coroutine form of :meth:`families_of`."""
