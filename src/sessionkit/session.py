"""The session mapping and its sealed payload.

A :class:`Session` is a ``dict`` of JSON values that records every mutation, so code
written for Starlette's or Flask's session keeps working. Its lifecycle metadata
(id, creation time, last activity, last rotation, bound user) travels inside the sealed
cookie beside the data, never in the clear::

    [id, family, created_at, last_seen, rotated_at, user_id, {data} or null]

The *family* is a second random id that stays the same across rotations and changes on
login and logout; a server-side store keys its record by it. ``null`` data means the data
is kept in the store because it did not fit in the cookie.

Times are whole seconds since the epoch. Timeouts are checked here, on the server,
when a payload is opened: a client that keeps a cookie past its ``Max-Age`` gains nothing.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from .errors import BadToken, UnserializableValue
from .events import EXPIRED_ABSOLUTE, EXPIRED_IDLE, FROM_THE_FUTURE, INVALID_PAYLOAD
from .privacy import SensitiveDataGuard

__all__ = ["SESSION_ID_BYTES", "Session", "UserId", "new_session_id"]

#: Random bytes in a session id (128 bits), written as 22 base64url characters.
SESSION_ID_BYTES = 16
_SESSION_ID_CHARS = 22

UserId = str | int

_strict = json.JSONEncoder(allow_nan=False).encode
# orjson writes JSON several times faster than the standard library; these options make
# it refuse what the standard library refuses too (dates, dataclasses) instead of
# converting them to strings behind the caller's back.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_DEFAULT_GUARD = SensitiveDataGuard()
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
_MISSING: Any = object()


def new_session_id() -> str:
    """Return a fresh opaque session id with 128 bits from the OS CSPRNG."""
    return secrets.token_urlsafe(SESSION_ID_BYTES)


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _check_item(key: object, value: object) -> None:
    if not isinstance(key, str):
        raise UnserializableValue(f"session keys must be str, not {type(key).__name__} ({key!r})")
    if value is None or type(value) is bool:
        return
    if isinstance(value, str) and type(value) is str and (value.isascii() or _is_utf8(value)):
        return
    if isinstance(value, int) and type(value) is int and _INT_MIN <= value <= _INT_MAX:
        return
    if isinstance(value, float) and type(value) is float and math.isfinite(value):
        return
    try:
        _strict(value)
        orjson.dumps(value, option=_ORJSON_OPTIONS)
    except (TypeError, ValueError) as exc:
        raise UnserializableValue(
            f"session[{key!r}] cannot be stored: {exc}. Sessions hold JSON values only "
            "(str, int within 64 bits, finite float, bool, None, and lists and dicts of them)"
        ) from None


class Session(dict[str, Any]):
    """The session of one request: a ``dict`` of JSON values plus lifecycle state.

    Writes of password-like keys or card-number-like values raise
    :class:`~sessionkit.privacy.SensitiveData` (see :mod:`sessionkit.privacy`).

    Every mutation through the ``dict`` API sets :attr:`modified`. A change made
    *inside* a nested value (``session["cart"].append(x)``) cannot be seen: set
    ``session.modified = True`` after one, or assign the value again.
    """

    __slots__ = (
        "_guard",
        "_loaded_family",
        "_loaded_id",
        "_now",
        "created_at",
        "family",
        "id",
        "is_new",
        "last_seen",
        "modified",
        "rotated_at",
        "user_id",
    )

    id: str
    family: str
    is_new: bool
    created_at: int
    last_seen: int
    rotated_at: int
    user_id: UserId | None
    modified: bool

    def __init__(self, now: float, guard: SensitiveDataGuard = _DEFAULT_GUARD) -> None:
        """Start an empty new session at time ``now``, writes checked by ``guard``."""
        super().__init__()
        self._guard = guard
        stamp = int(now)
        self._now = stamp
        self.id = self._loaded_id = new_session_id()
        self.family = self._loaded_family = new_session_id()
        self.is_new = True
        self.created_at = self.last_seen = self.rotated_at = stamp
        self.user_id = None
        self.modified = False

    @classmethod
    def opened(
        cls,
        payload: bytes,
        now: float,
        idle_timeout: int,
        absolute_timeout: int,
        max_clock_skew: int,
        guard: SensitiveDataGuard = _DEFAULT_GUARD,
    ) -> tuple[Session, bool]:
        """Rebuild a session from a sealed payload's plaintext, enforcing the timeouts.

        Returns the session and whether its data is kept in the store (the payload holds
        ``null`` in its place). Raises :class:`BadToken` naming the reason when the payload
        is not acceptable.
        """
        try:
            sid, family, created, seen, rotated, user, data = orjson.loads(payload)
        except (ValueError, TypeError):
            raise BadToken(INVALID_PAYLOAD) from None
        if (
            type(sid) is not str
            or type(family) is not str
            or len(sid) != _SESSION_ID_CHARS
            or len(family) != _SESSION_ID_CHARS
            or type(created) is not int
            or type(seen) is not int
            or type(rotated) is not int
            or not created <= rotated <= seen
            or (user is not None and type(user) is not str and type(user) is not int)
            or (data is not None and type(data) is not dict)
        ):
            raise BadToken(INVALID_PAYLOAD)
        if seen > now + max_clock_skew:
            raise BadToken(FROM_THE_FUTURE)
        if now - created > absolute_timeout:
            raise BadToken(EXPIRED_ABSOLUTE)
        if now - seen > idle_timeout:
            raise BadToken(EXPIRED_IDLE)
        session = cls.__new__(cls)
        session._guard = guard
        if data:
            dict.update(session, data)
        session._now = int(now)
        session.id = session._loaded_id = sid
        session.family = session._loaded_family = family
        session.is_new = session.modified = False
        session.created_at = created
        session.last_seen = seen
        session.rotated_at = rotated
        session.user_id = user
        return session, data is None

    def payload(self, *, with_data: bool = True) -> bytes:
        """Serialise for sealing, stamping ``last_seen`` with the request time.

        ``with_data=False`` leaves the data out (``null``), for a session kept in a store.
        """
        self.last_seen = max(self._now, self.last_seen)
        try:
            return orjson.dumps(
                [
                    self.id,
                    self.family,
                    self.created_at,
                    self.last_seen,
                    self.rotated_at,
                    self.user_id,
                    self if with_data else None,
                ],
                option=_ORJSON_OPTIONS,
            )
        except TypeError as exc:
            raise UnserializableValue(
                f"the session cannot be stored: {exc}. A value changed in place holds "
                "something that is not JSON"
            ) from None

    @property
    def id_changed(self) -> bool:
        """Whether the id differs from the one the request arrived with."""
        return self.id != self._loaded_id

    @property
    def loaded_id(self) -> str:
        """The id the request arrived with (a new session's first id)."""
        return self._loaded_id

    @property
    def loaded_family(self) -> str:
        """The family the request arrived with (a new session's first family)."""
        return self._loaded_family

    def adopt(self, session_id: str, data: dict[str, Any] | None) -> None:
        """Take the id and, when given, the data a server-side store holds for this session.

        Used when a request in the grace window presents the id rotated out just before
        (it continues as the current id) and when the data lives in the store.
        """
        self.id = self._loaded_id = session_id
        if data is not None:
            dict.clear(self)
            dict.update(self, data)

    def rotate(self) -> None:
        """Give the session a new id and keep its data; call it on any privilege change."""
        self.id = new_session_id()
        self.rotated_at = self._now

    def login(self, user_id: UserId) -> None:
        """Bind the session to ``user_id`` under a new id and family (defeats fixation).

        With a store, the pre-login session's record is deleted: a copy of the old cookie
        is refused, with no grace window.
        """
        if type(user_id) not in (str, int):
            raise UnserializableValue(f"user_id must be str or int, not {type(user_id).__name__}")
        self.rotate()
        self.family = new_session_id()
        self.user_id = user_id
        self.modified = True

    def invalidate(self) -> None:
        """Log out: drop all data and the bound user, and start over under a new id.

        With a store, the old session's record is deleted, so a copy of its cookie taken
        before logout is refused.
        """
        super().clear()
        self.user_id = None
        self.rotate()
        self.family = new_session_id()
        self.created_at = self.last_seen = self._now
        self.modified = True

    @property
    def is_empty(self) -> bool:
        """Whether the session holds no data and no user, so it needs no cookie."""
        return not self and self.user_id is None

    def __setitem__(self, key: str, value: Any) -> None:
        _check_item(key, value)
        self._guard.check(key, value)
        super().__setitem__(key, value)
        self.modified = True

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.modified = True

    def __ior__(self, other: Any) -> Session:  # type: ignore[override,misc]
        self.update(other)
        return self

    def clear(self) -> None:
        """Remove all data (the id and user binding stay; see :meth:`invalidate`)."""
        if self:
            super().clear()
            self.modified = True

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value (or ``default``), as ``dict.pop``."""
        if key in self:
            self.modified = True
            return super().pop(key)
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last inserted item, as ``dict.popitem``."""
        item = super().popitem()
        self.modified = True
        return item

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Return ``session[key]``, first storing ``default`` there if it is missing."""
        if key not in self:
            self[key] = default
        return super().__getitem__(key)

    def update(  # type: ignore[override]
        self, other: Mapping[str, Any] | Iterable[tuple[str, Any]] = (), /, **kwargs: Any
    ) -> None:
        """Store every item of ``other`` and ``kwargs``, each checked as by ``session[k] = v``."""
        for key, value in dict(other, **kwargs).items():
            self[key] = value
