"""The session mapping: a ``dict`` of JSON values with its lifecycle, opened on first use.

A :class:`Session` is a ``dict`` subclass, so code written for Starlette's, Flask's or
Django's session keeps working, and every mutation is tracked. Beside the data it holds
the session's lifecycle state (:class:`State`): its opaque id, its *family* (one random id
from login to logout, across all rotations; a store keys its record by it), the bound
user, when it was created, last seen, last rotated and last authenticated, and its own
lifetime when :meth:`Session.set_expiry` gave it one.

**Lazy opening.** The session of a request is opened (its cookie decrypted) on the first
use of any of its methods or attributes, so a request whose app never looks at the
session costs no decryption and gets no ``Set-Cookie`` or ``Vary: Cookie``. Starlette's
``request.session`` counts as a use (it calls :meth:`Session.mark_accessed`). Code written
in C that reads a ``dict``'s storage directly, without calling a method (``json.dumps``
and ``orjson.dumps`` of a session nobody used yet), sees an empty ``dict`` until then.

**Lifecycle.** :meth:`Session.login`, :meth:`Session.rotate`, :meth:`Session.invalidate`
(and :meth:`Session.clear`, the Flask and Starlette logout idiom), :meth:`Session.set_expiry`
and :meth:`Session.confirm_login` take effect on the session at once; the request's
exchange then makes the cookie, and the store when there is one, agree with them.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import orjson

from .errors import BadToken, UnserializableValue
from .events import EXPIRED_ABSOLUTE, EXPIRED_IDLE, FROM_THE_FUTURE, INVALID_PAYLOAD
from .lifetime import Expiry, Lifetime, Timeouts
from .privacy import SensitiveDataGuard

__all__ = ["SESSION_ID_BYTES", "Session", "State", "UserId", "new_session_id"]

#: Random bytes in a session id (128 bits), written as 22 base64url characters.
SESSION_ID_BYTES = 16
_SESSION_ID_CHARS = 22
#: First element of a version-2 payload (a version-1 payload starts with the id, a str).
_PAYLOAD_V2 = 2

UserId = str | int

_strict = json.JSONEncoder(allow_nan=False).encode
# orjson writes JSON several times faster than the standard library; these options make
# it refuse what the standard library refuses too (dates, dataclasses) instead of
# converting them to strings behind the caller's back.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_DEFAULT_GUARD = SensitiveDataGuard()
_DEFAULT_TIMEOUTS = Timeouts()
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
_MISSING: Any = object()
_new_tuple = tuple.__new__


def new_session_id() -> str:
    """Return a fresh opaque session id with 128 bits from the OS CSPRNG."""
    return secrets.token_urlsafe(SESSION_ID_BYTES)


class State(NamedTuple):
    """A session's lifecycle state, as sealed in its cookie and kept in a store record.

    Times are whole seconds since the epoch. ``auth_time`` is 0 for a session bound to no
    user. ``generation`` counts the session's privilege changes (login, explicit
    rotation, re-authentication) but not its timed rotations: anti-forgery tokens are
    bound to it, so a form left open across a timed rotation still submits.
    """

    id: str
    family: str
    user_id: UserId | None
    created_at: int
    last_seen: int
    rotated_at: int
    auth_time: int
    generation: int
    lifetime: Lifetime | None

    @classmethod
    def fresh(cls, now: float) -> State:
        """The state of a brand-new anonymous session at ``now``."""
        stamp = int(now)
        return cls(new_session_id(), new_session_id(), None, stamp, stamp, stamp, 0, 0, None)


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_value(key: object, value: object) -> None:
    """Raise :class:`UnserializableValue` unless ``key``/``value`` can be stored as JSON."""
    if not isinstance(key, str):
        raise UnserializableValue(f"session keys must be str, not {type(key).__name__} ({key!r})")
    if value is None or type(value) is bool:
        return
    if type(value) is str and (value.isascii() or _is_utf8(value)):
        return
    if type(value) is int and _INT_MIN <= value <= _INT_MAX:
        return
    if type(value) is float and math.isfinite(value):
        return
    try:
        _strict(value)
        orjson.dumps(value, option=_ORJSON_OPTIONS)
    except (TypeError, ValueError) as exc:
        raise UnserializableValue(
            f"session[{key!r}] cannot be stored: {exc}. Sessions hold JSON values only "
            "(str, int within 64 bits, finite float, bool, None, and lists and dicts of them)"
        ) from None


# ------------------------------------------------------------------------------ payload


def encode_payload(state: State, data: Mapping[str, Any] | None) -> bytes:
    """Serialise a session for sealing; ``data=None`` leaves the data out (kept in a store).

    Layout (version 2)::

        [2, id, family, user_id, created_at, last_seen, rotated_at, auth_time,
         generation, lifetime or null, data or null]

    where ``lifetime`` is ``[idle, end, persistent]``.
    """
    lifetime = state.lifetime
    try:
        return orjson.dumps(
            [
                _PAYLOAD_V2,
                state.id,
                state.family,
                state.user_id,
                state.created_at,
                state.last_seen,
                state.rotated_at,
                state.auth_time,
                state.generation,
                None if lifetime is None else [lifetime.idle, lifetime.end, lifetime.persistent],
                data,
            ],
            option=_ORJSON_OPTIONS,
        )
    except TypeError as exc:
        raise UnserializableValue(
            f"the session cannot be stored: {exc}. A value changed in place holds "
            "something that is not JSON"
        ) from None


def _is_stamp(value: object) -> bool:
    return type(value) is int and value >= 0


def decode_payload(payload: bytes) -> tuple[State, dict[str, Any] | None]:
    """Parse and shape-check a sealed payload's plaintext (version 2, or version 1).

    Raises :class:`BadToken` (``invalid_payload``) for anything but the exact shape
    :func:`encode_payload` writes; timeouts are checked by :func:`check_timeouts`.
    """
    try:
        fields = orjson.loads(payload)
    except (ValueError, TypeError):
        raise BadToken(INVALID_PAYLOAD) from None
    if type(fields) is not list:
        raise BadToken(INVALID_PAYLOAD)
    if len(fields) == 11 and fields[0] == _PAYLOAD_V2 and type(fields[0]) is int:
        _, sid, family, user, created, seen, rotated, auth, generation, life, data = fields
    elif len(fields) == 7 and type(fields[0]) is str:
        # Version 1 (sessionkit 0.1): [id, family, created, seen, rotated, user, data].
        sid, family, created, seen, rotated, user, data = fields
        auth, generation, life = (created if user is not None else 0), 0, None
    else:
        raise BadToken(INVALID_PAYLOAD)
    # The shape checks written out, without a call per field (this runs on every opened
    # cookie): an id is 22 characters; created <= rotated <= seen with created >= 0 makes
    # all three whole-second stamps.
    if (
        type(sid) is not str
        or len(sid) != _SESSION_ID_CHARS
        or type(family) is not str
        or len(family) != _SESSION_ID_CHARS
        or type(created) is not int
        or type(seen) is not int
        or type(rotated) is not int
        or not 0 <= created <= rotated <= seen
        or type(auth) is not int
        or auth < 0
        or (auth and not created <= auth <= seen)
        or type(generation) is not int
        or generation < 0
        or (user is not None and type(user) is not str and type(user) is not int)
        or (user is None and auth)
        or (data is not None and type(data) is not dict)
    ):
        raise BadToken(INVALID_PAYLOAD)
    lifetime = None
    if life is not None:
        if (
            type(life) is not list
            or len(life) != 3
            or not _is_stamp(life[0])
            or not _is_stamp(life[1])
            or type(life[2]) is not bool
        ):
            raise BadToken(INVALID_PAYLOAD)
        lifetime = Lifetime(life[0], life[1], life[2])
    # State(...) without the generated __new__'s keyword handling.
    state = _new_tuple(
        State, (sid, family, user, created, seen, rotated, auth, generation, lifetime)
    )
    return state, data


def check_timeouts(state: State, now: float, timeouts: Timeouts) -> str | None:
    """The reason ``state`` may not be used at ``now`` (an event reason), or None.

    A session is over once ``now`` is past its end, or when more than its idle bound
    passed since it was last seen (at exactly either bound it is still valid); timestamps
    further in the future than the allowed clock skew are refused.
    """
    _, _, _, created, seen, _, _, _, lifetime = state
    if seen > now + timeouts.max_skew:
        return FROM_THE_FUTURE
    if lifetime is None:
        # The kit's bounds (absolute_timeout is at most max_lifetime, checked at start-up).
        if now > created + timeouts.absolute:
            return EXPIRED_ABSOLUTE
        if now - seen > timeouts.idle:
            return EXPIRED_IDLE
        return None
    if now > timeouts.end_of(lifetime, created):
        return EXPIRED_ABSOLUTE
    if now - seen > timeouts.idle_of(lifetime):
        return EXPIRED_IDLE
    return None


# ------------------------------------------------------------------------------ session

Opener = Callable[["Session"], None]


class Session(dict[str, Any]):
    """The session of one request: a ``dict`` of JSON values plus lifecycle state.

    ``Session(mapping)`` builds a standalone session holding ``mapping`` (as Starlette's
    ``Session`` does); a request's session comes from the middleware, opened on first use.

    Writes of password-like keys or card-number-like values raise
    :class:`~sessionkit.SensitiveData`; values that are not JSON raise
    :class:`~sessionkit.UnserializableValue`.

    Every mutation through the ``dict`` API sets :attr:`modified`. A change made *inside*
    a nested value (``session["cart"].append(x)``) cannot be seen: assign the value
    again, or set ``session.modified = True``.
    """

    # What every request sets is a slot; the lifecycle flags start as these class
    # attributes, and a session holds its own (in its __dict__) only once its request
    # changes them, which most requests never do.
    __slots__ = ("__dict__", "_guard", "_now", "_opener", "_state", "_timeouts")

    _opener: Opener | None
    _state: State
    #: The state the request arrived with (None for a session that had no cookie).
    _loaded: State | None = None
    _reads_count = True
    _is_new = True
    #: Whether the app used the session (read or wrote it).
    accessed = False
    #: Whether anything changed: data, id, user, lifetime.
    modified = False
    #: Whether :meth:`keep` asked for a cookie even while the session is empty.
    kept = False
    #: The family this request ended (logout or login), or None.
    ended: str | None = None
    #: Whether :meth:`rotate` (or :meth:`confirm_login`) was called in this request.
    explicit_rotation = False

    def __init__(
        self,
        data: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
        /,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self._now = time.time()
        self._guard = _DEFAULT_GUARD
        self._timeouts = _DEFAULT_TIMEOUTS
        self._opener = None
        # As Starlette's Session: reads of a standalone session do not count as access.
        self._reads_count = False
        self._state = State.fresh(self._now)
        for key, value in dict(data, **kwargs).items():
            check_value(key, value)
            dict.__setitem__(self, key, value)

    # -- construction by the exchange -----------------------------------------------

    @classmethod
    def lazy(
        cls, opener: Opener, now: float, guard: SensitiveDataGuard, timeouts: Timeouts
    ) -> Session:
        """A session that ``opener`` fills (with :meth:`fill` or :meth:`reset`) on first use."""
        session = cls.__new__(cls)
        session._now = now
        session._guard = guard
        session._timeouts = timeouts
        session._opener = opener
        return session

    def fill(self, state: State, data: Mapping[str, Any] | None) -> None:
        """Set the state and data the request arrived with (called by the exchange)."""
        self._opener = None
        self._state = self._loaded = state
        self._is_new = False
        dict.clear(self)
        if data:
            dict.update(self, data)

    def reset(self) -> None:
        """Start over as a brand-new empty session (the cookie was refused)."""
        self._state = State.fresh(self._now)
        self._loaded = None
        self._is_new = True
        dict.clear(self)

    @property
    def opened(self) -> bool:
        """Whether the session's cookie has been opened (always True once it is used)."""
        return self._opener is None

    def open(self) -> None:
        """Open the cookie now if it was not yet, without counting as a use by the app."""
        opener = self._opener
        if opener is not None:
            self._opener = None
            opener(self)

    def _use(self) -> None:
        if self._opener is not None:
            self.open()
        if self._reads_count:
            self.accessed = True

    def _mutated(self) -> None:
        self.accessed = self.modified = True

    def mark_accessed(self) -> None:
        """Count as used by the app (Starlette's ``request.session`` calls this)."""
        self.open()
        self.accessed = True

    # -- state read by the exchange (not a use by the app) --------------------------

    @property
    def state(self) -> State:
        """The current lifecycle state (opens the session, not counting as a use)."""
        if self._opener is not None:
            self.open()
        return self._state

    @property
    def loaded(self) -> State | None:
        """The state the request arrived with, or None for a new session."""
        self.open()
        return self._loaded

    def adopt(self, state: State, data: Mapping[str, Any] | None) -> None:
        """Take the state, and the data when given, that the store holds now.

        Used after losing a race with a parallel request: the winner's id, user and
        lifetime stand, with this request's own changes applied on top of its data.
        """
        self._state = self._loaded = state
        if data is not None:
            dict.clear(self)
            dict.update(self, data)

    # -- lifecycle state, for the app ------------------------------------------------

    @property
    def id(self) -> str:
        """The current opaque session id (128 random bits)."""
        self._use()
        return self._state.id

    @property
    def family(self) -> str:
        """The family id: the same from login to logout, across rotations."""
        self._use()
        return self._state.family

    @property
    def user_id(self) -> UserId | None:
        """The user this session is bound to by :meth:`login`, or None."""
        self._use()
        return self._state.user_id

    @property
    def created_at(self) -> int:
        """When the session started: its login, or its creation for an anonymous one."""
        self._use()
        return self._state.created_at

    @property
    def last_seen(self) -> int:
        """When a request of this session was last seen (refreshed at most once a minute)."""
        self._use()
        return self._state.last_seen

    @property
    def auth_time(self) -> int | None:
        """When the user last proved who they are (login or re-authentication), or None."""
        self._use()
        return self._state.auth_time or None

    @property
    def auth_age(self) -> float | None:
        """Seconds since :attr:`auth_time`, or None for a session bound to no user."""
        self._use()
        auth = self._state.auth_time
        return None if not auth else max(0.0, self._now - auth)

    @property
    def lifetime(self) -> Lifetime | None:
        """The session's own lifetime set by :meth:`set_expiry`, or None (the kit's)."""
        self._use()
        return self._state.lifetime

    @property
    def expires_in(self) -> int:
        """Seconds until this session ends if no other request comes."""
        self._use()
        s = self._state
        return self._timeouts.seconds_left(s.lifetime, s.created_at, s.last_seen, self._now)

    @property
    def persistent(self) -> bool:
        """Whether the session cookie outlives the browser (``Max-Age``)."""
        self._use()
        return self._timeouts.persistent_of(self._state.lifetime)

    @property
    def is_new(self) -> bool:
        """Whether the request arrived without a usable session (no cookie, or refused)."""
        if self._opener is not None:
            self.open()
        return self._is_new

    @property
    def id_changed(self) -> bool:
        """Whether the id differs from the one the request arrived with."""
        self.open()
        loaded = self._loaded
        return loaded is None or loaded.id != self._state.id

    @property
    def is_empty(self) -> bool:
        """Whether the session holds no data and no user, so it needs no cookie."""
        if self._opener is not None:
            self.open()
        return not dict.__len__(self) and self._state.user_id is None

    # -- lifecycle changes -----------------------------------------------------------

    def _changed_state(self, **fields: Any) -> None:
        self._state = self._state._replace(**fields)
        self._mutated()

    def rotate(self) -> None:
        """Give the session a new id and keep its data; call it on any privilege change.

        Anti-forgery tokens issued before it stop working. With a store, the previous id
        keeps working until the browser has shown it received the new one.
        """
        self._use()
        self.explicit_rotation = True
        s = self._state
        self._changed_state(
            id=new_session_id(), rotated_at=int(self._now), generation=s.generation + 1
        )

    def login(self, user_id: UserId) -> None:
        """Bind the session to ``user_id`` under a new id and family (defeats fixation).

        The data is kept when the session was anonymous or bound to the same user, and
        dropped when it was bound to another user (a shared browser). The absolute
        timeout counts from now. With a store, the pre-login session ends at once: a
        copy of its cookie is refused.
        """
        if type(user_id) not in (str, int):
            raise UnserializableValue(f"user_id must be str or int, not {type(user_id).__name__}")
        self._use()
        previous = self._state.user_id
        if previous is not None and previous != user_id:
            self._drop_data()
        self._end_family()
        stamp = int(self._now)
        self._changed_state(
            id=new_session_id(),
            family=new_session_id(),
            user_id=user_id,
            created_at=stamp,
            last_seen=stamp,
            rotated_at=stamp,
            auth_time=stamp,
            generation=self._state.generation + 1,
        )

    def confirm_login(self) -> None:
        """Record that the user just proved who they are again, and rotate the id.

        Refreshes :attr:`auth_time` (so :attr:`auth_age` starts again from 0); call it
        after the user re-entered their password for a sensitive action.
        """
        self._use()
        if self._state.user_id is None:
            raise RuntimeError("confirm_login() needs a session bound to a user by login()")
        self.rotate()
        self._changed_state(auth_time=int(self._now))

    def invalidate(self) -> None:
        """Log out: drop all data and the bound user, and start over under a new id.

        With a store, the old session ends at once: a copy of its cookie taken before
        logout is refused.
        """
        self._use()
        self._drop_data()
        self._end_family()
        self.kept = False
        stamp = int(self._now)
        self._changed_state(
            id=new_session_id(),
            family=new_session_id(),
            user_id=None,
            created_at=stamp,
            last_seen=stamp,
            rotated_at=stamp,
            auth_time=0,
            generation=self._state.generation + 1,
            lifetime=None,
        )

    def clear(self) -> None:
        """Log out, as :meth:`invalidate`: the Flask and Starlette logout idiom.

        Like Django's ``flush()``, it also ends the login binding and rotates the id.
        """
        self.invalidate()

    def set_expiry(self, value: Expiry) -> None:
        """Give this session its own lifetime, with Django's meanings.

        Seconds (or a ``timedelta``) of inactivity after which it ends (a "remember me"
        session), a ``datetime`` at which it ends, ``0`` for a cookie that ends when the
        browser closes, or ``None`` for the kit's defaults. Bounded by the kit's
        ``max_lifetime``; sealed, so enforced on the server.
        """
        self._use()
        s = self._state
        lifetime = self._timeouts.lifetime_for(value, s.created_at, self._now)
        if lifetime != s.lifetime:
            self._changed_state(lifetime=lifetime)

    def keep(self) -> None:
        """Persist this session even while it holds no data (Django's ``create()``).

        An empty session normally needs no cookie; a kept one gets its cookie (and, with a
        store, its record), so its id stays the same on the next request.
        """
        self._use()
        self.kept = True
        self._mutated()

    def _end_family(self) -> None:
        if self.ended is None and self._loaded is not None:
            self.ended = self._loaded.family

    def _drop_data(self) -> None:
        dict.clear(self)

    # -- the dict API: reads ---------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        self._use()
        return dict.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        self._use()
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        self._use()
        return dict.__iter__(self)

    def __reversed__(self) -> Iterator[str]:
        self._use()
        return dict.__reversed__(self)

    def __len__(self) -> int:
        self._use()
        return dict.__len__(self)

    def __eq__(self, other: object) -> bool:
        self._use()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        self._use()
        return dict.__ne__(self, other)

    __hash__ = None

    def __repr__(self) -> str:
        self._use()
        return f"{type(self).__name__}({dict.__repr__(self)})"

    def __or__(self, other: Any) -> dict[str, Any]:  # type: ignore[override]
        self._use()
        return dict(dict.items(self)) | other  # type: ignore[no-any-return]

    def get(self, key: str, default: Any = None) -> Any:
        """``session[key]`` if present, else ``default``."""
        self._use()
        return dict.get(self, key, default)

    def keys(self) -> Any:
        """The keys, as ``dict.keys``."""
        self._use()
        return dict.keys(self)

    def values(self) -> Any:
        """The values, as ``dict.values``."""
        self._use()
        return dict.values(self)

    def items(self) -> Any:
        """The items, as ``dict.items``."""
        self._use()
        return dict.items(self)

    def copy(self) -> dict[str, Any]:
        """A plain ``dict`` copy of the data."""
        self._use()
        return dict(dict.items(self))

    # -- the dict API: writes --------------------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        check_value(key, value)
        self._guard.check(key, value)
        self._use()
        dict.__setitem__(self, key, value)
        self._mutated()

    def put_trusted(self, key: str, value: Any) -> None:
        """Store a framework's own internal key, past the privacy guard (JSON still checked).

        For integrations only, by exact key name: Django's password-reset view keeps its
        reset token under ``_password_reset_token``, which the guard would refuse.
        """
        check_value(key, value)
        self._use()
        dict.__setitem__(self, key, value)
        self._mutated()

    def __delitem__(self, key: str) -> None:
        self._use()
        dict.__delitem__(self, key)
        self._mutated()

    def __ior__(self, other: Any) -> Session:  # type: ignore[override]
        self.update(other)
        return self

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value (or ``default``), as ``dict.pop``."""
        self._use()
        if dict.__contains__(self, key):
            value = dict.pop(self, key)
            self._mutated()
            return value
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last inserted item, as ``dict.popitem``."""
        self._use()
        item = dict.popitem(self)
        self._mutated()
        return item

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Return ``session[key]``, first storing ``default`` there if it is missing."""
        self._use()
        if not dict.__contains__(self, key):
            self[key] = default
        return dict.__getitem__(self, key)

    def update(  # type: ignore[override]
        self, other: Mapping[str, Any] | Iterable[tuple[str, Any]] = (), /, **kwargs: Any
    ) -> None:
        """Store every item of ``other`` and ``kwargs``, each checked as by ``session[k] = v``."""
        for key, value in dict(other, **kwargs).items():
            self[key] = value

    def __reduce__(self) -> Any:
        self._use()
        return (dict, (dict(dict.items(self)),))
