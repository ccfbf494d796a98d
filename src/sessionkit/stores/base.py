"""The store protocol: what a server-side store keeps, and the calls sessionkit makes.

A store keeps one :class:`SessionRecord` per session *family*. A family is one logged-in
(or anonymous) session across all its id rotations; its random 128-bit family id is
sealed in the cookie beside the current session id. The record says which session id is
current, which one was rotated out last and until when it may still be presented (the
grace window for requests already in flight), the bound user, and the session data when
it does not fit in the cookie.

Each call has a blocking form for WSGI and an ``a``-prefixed coroutine for ASGI, so ASGI
code never blocks the event loop. A store raises :class:`StoreUnavailable` when it cannot
answer; sessionkit then fails closed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..errors import SessionKitError

__all__ = ["SessionRecord", "Store", "StoreUnavailable"]


class StoreUnavailable(SessionKitError):
    """The store did not answer; requests that need it are refused (503), never guessed."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """The server-side state of one session family."""

    #: The session id a cookie must carry now.
    session_id: str
    #: The id rotated out last, still accepted until ``previous_until``; else None.
    previous_id: str | None
    #: End of the grace window for ``previous_id`` (seconds since the epoch).
    previous_until: float
    #: The user the session is bound to, or None.
    user_id: str | int | None
    #: Session data kept on the server because it does not fit in the cookie, or None.
    data: dict[str, Any] | None
    #: When the record may be dropped: the session's idle or absolute end, whichever is first.
    expires_at: float

    def dumps(self) -> str:
        """Serialise as compact JSON (stores keep text)."""
        return json.dumps(
            [
                self.session_id,
                self.previous_id,
                self.previous_until,
                self.user_id,
                self.data,
                self.expires_at,
            ],
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, text: str | bytes) -> SessionRecord:
        """Parse what :meth:`dumps` wrote."""
        sid, prev, until, user, data, expires = json.loads(text)
        return cls(sid, prev, until, user, data, expires)


@runtime_checkable
class Store(Protocol):
    """What sessionkit needs from a server-side store.

    ``family`` ids are opaque random strings. ``save`` replaces the record and keeps it
    until ``record.expires_at``; it also indexes the family under ``record.user_id`` so
    that ``delete_user`` finds it. Records past ``expires_at`` must never be returned.
    """

    def load(self, family: str, now: float) -> SessionRecord | None:
        """Return the live record of ``family``, or None."""

    def save(self, family: str, record: SessionRecord, now: float) -> None:
        """Create or replace the record of ``family``."""

    def delete(self, family: str) -> None:
        """Forget ``family`` (logout, theft); a missing family is not an error."""

    def delete_user(self, user_id: str | int) -> int:
        """Forget every family bound to ``user_id``; return how many there were."""

    async def aload(self, family: str, now: float) -> SessionRecord | None:
        """Coroutine form of :meth:`load`."""

    async def asave(self, family: str, record: SessionRecord, now: float) -> None:
        """Coroutine form of :meth:`save`."""

    async def adelete(self, family: str) -> None:
        """Coroutine form of :meth:`delete`."""

    async def adelete_user(self, user_id: str | int) -> int:
        """Coroutine form of :meth:`delete_user`."""
