"""Where a user is signed in: device labels, opaque handles, the list, and fresh logins.

With a store, sessionkit knows every live session family of a user
(:meth:`~sessionkit.stores.base.Store.families_of`). This module turns them into what a
"where you're signed in" page shows (:class:`SessionInfo`) and decides, without I/O:

- the **device label** of a login (:func:`device_label`): browser family and operating
  system ("Firefox on Windows"), read from the User-Agent once, at login, and kept in the
  family's record;
- the **handle** of a session (:class:`Handles`): a MAC of the family id under the kit's
  key ring, so the list never shows a session id or anything that opens a session, and a
  handle names a family only among the candidates it is checked against (the user's own);
- the **end of one session** (:func:`revoke_steps`): a tombstone written over the
  family's record, conditionally, like every store write;
- whether a login is **fresh enough** for a sensitive action (:class:`FreshLogin`), and
  the same-origin re-authentication redirect with its ``next`` (:func:`safe_next` checks
  that value when it comes back).

Device labels come from `ua-parser <https://pypi.org/project/ua-parser/>`_ (the
``devices`` extra: ``pip install "sessionkit-secure[devices]"``), the maintained Python
port of the browserscope/uap-core rules, which are updated as browsers appear. Reading
User-Agent strings by hand goes stale within months; without the library installed,
sessions carry no label (``None``).
"""

from __future__ import annotations

import functools
import hmac
import importlib.util
import re
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from .errors import BadToken, ConfigurationError
from .families import Ended, FamilyRef, Record, stored_until
from .gate import safe_location
from .keys import KeyRing
from .lifetime import Timeouts
from .seal import b64decode, b64encode
from .session import UserId, check_timeouts

__all__ = [
    "DEFAULT_REAUTH_PATH",
    "ENDED",
    "FOREIGN",
    "FOREIGN_HANDLE",
    "GONE",
    "HANDLE_PURPOSE",
    "MAX_LABEL_CHARS",
    "MAX_USER_AGENT_CHARS",
    "REVOKED_BY_USER",
    "UNKNOWN_DEVICE",
    "DevicePolicy",
    "FreshLogin",
    "Handles",
    "NewDevice",
    "NewDeviceHook",
    "SessionInfo",
    "check_fresh_login",
    "describe",
    "device_label",
    "labels_available",
    "revoke_steps",
    "safe_next",
]

#: Only this many leading characters of a User-Agent are read (the rules need far fewer).
MAX_USER_AGENT_CHARS = 512
#: The longest label kept, browser and system together.
MAX_LABEL_CHARS = 64
#: The label of a User-Agent the rules do not recognise (or of none at all).
UNKNOWN_DEVICE = "Unknown device"
#: The security event reason for a handle that names none of the user's sessions.
FOREIGN_HANDLE = "foreign_handle"
#: The key ring purpose of session handles (its own subkey, used for nothing else).
HANDLE_PURPOSE = "session-handle"
#: Why a family ended by :func:`revoke_steps`, recorded in its tombstone.
REVOKED_BY_USER = "revoked"
#: The re-authentication page unless the kit or a helper names another.
DEFAULT_REAUTH_PATH = "/login"
#: Conditional writes tried before giving up on a record that keeps changing.
MAX_ATTEMPTS = 4

_HANDLE_BYTES = 16
_HANDLE_CHARS = 22
_PART_CHARS = 30
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")
# A same-origin relative reference in the characters safe_location() writes: one "/" (not
# followed by another), path characters, and an optional query.
_SAFE_NEXT = re.compile(
    r"/(?!/)[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*"
    r"(?:\?[A-Za-z0-9\-._~!$'()*+,;=:@%/?&]*)?"
)
_PARAM = re.compile(r"[A-Za-z0-9_.-]{1,32}")

Step = Generator[tuple[str, tuple[Any, ...]], Any, str]


# ----------------------------------------------------------------------------- labels


@functools.cache
def labels_available() -> bool:
    """Whether ``ua-parser`` is installed, so logins get a device label."""
    return importlib.util.find_spec("ua_parser") is not None


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    cleaned = _UNPRINTABLE.sub(" ", text).strip()[:_PART_CHARS].strip()
    return cleaned if cleaned and cleaned != "Other" else None


def device_label(user_agent: str | None) -> str:
    """A short human label for ``user_agent``: browser family and system, no versions.

    ``"Firefox on Windows"``, ``"Mobile Safari on iOS"``, ``"curl"``; ``"Unknown device"``
    for a string the rules do not recognise, or none. The label holds printable ASCII
    only and at most :data:`MAX_LABEL_CHARS` characters, but it still comes from what a
    client sent: escape it when you show it. Needs ``ua-parser`` (:func:`labels_available`).
    """
    if not user_agent:
        return UNKNOWN_DEVICE
    from ua_parser import Domain, parser

    result = parser(user_agent[:MAX_USER_AGENT_CHARS], Domain.USER_AGENT | Domain.OS)
    browser = _clean(result.user_agent.family if result.user_agent else None)
    system = _clean(result.os.family if result.os else None)
    if browser and system:
        return f"{browser} on {system}"[:MAX_LABEL_CHARS]
    return browser or system or UNKNOWN_DEVICE


# ---------------------------------------------------------------------------- handles


class Handles:
    """Opaque handles for session families: a MAC of the family id, nothing else.

    The handle is made under the newest key's ``session-handle`` subkey and still
    recognised under the older keys of the ring, so a list shown before a key rotation
    keeps working. It reveals nothing of the family id and cannot open a session; it is
    stable across the id rotations of its family.
    """

    __slots__ = ("_keys", "_primary")

    def __init__(self, ring: KeyRing) -> None:
        keys = ring.subkeys(HANDLE_PURPOSE)
        self._primary = keys[ring.key_ids[0]]
        self._keys = tuple(keys.values())

    @staticmethod
    def _mac(key: bytes, family: str) -> bytes:
        return hmac.digest(key, family.encode(), "sha256")[:_HANDLE_BYTES]

    def handle_for(self, family: str) -> str:
        """The handle of ``family`` (22 base64url characters)."""
        return b64encode(self._mac(self._primary, family))

    def family_for(self, handle: object, candidates: Iterable[str]) -> str | None:
        """The family among ``candidates`` that ``handle`` names, or None.

        Anything that is not a well-formed handle names no family. Every comparison is
        made with ``hmac.compare_digest``.
        """
        if not isinstance(handle, str) or len(handle) != _HANDLE_CHARS:
            return None
        try:
            raw = b64decode(handle)
        except BadToken:
            return None
        if len(raw) != _HANDLE_BYTES:
            return None
        found = None
        for family in candidates:
            for key in self._keys:
                if hmac.compare_digest(self._mac(key, family), raw):
                    found = family
        return found


# ---------------------------------------------------------------------------- listing


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One of a user's live sessions, as a "where you're signed in" page shows it.

    ``handle`` names it for :meth:`SessionKit.revoke_session` and nothing else.
    ``device`` is the label of the browser it was signed in from (None when no label was
    recorded), ``address`` the client address at login as the kit's ``client_address``
    setting allows (truncated by default; None when off). Times are whole seconds since
    the epoch; ``last_seen`` is refreshed at the kit's touch granularity and
    ``auth_time`` is the last time the user proved who they are (login or
    ``confirm_login()``). ``current`` marks the session of the request that asked.
    """

    handle: str
    device: str | None
    address: str | None
    created_at: int
    last_seen: int
    auth_time: int
    current: bool


def describe(
    families: Sequence[tuple[str, Record]],
    handles: Handles,
    timeouts: Timeouts,
    now: float,
    current_family: str | None = None,
) -> list[SessionInfo]:
    """The live sessions among ``families`` (as a store lists them), current one first.

    A record whose session has timed out (idle or absolute) but that the store has not
    forgotten yet is left out. The rest follow by ``last_seen``, most recent first.
    """
    found = [
        SessionInfo(
            handle=handles.handle_for(family),
            device=record.device,
            address=record.address,
            created_at=record.state.created_at,
            last_seen=record.state.last_seen,
            auth_time=record.state.auth_time,
            current=family == current_family,
        )
        for family, record in families
        if check_timeouts(record.state, now, timeouts) is None
    ]
    found.sort(key=lambda info: (not info.current, -info.last_seen, info.handle))
    return found


# ---------------------------------------------------------------------------- revoking

#: Outcomes of :func:`revoke_steps`.
ENDED = "ended"
FOREIGN = "foreign"
GONE = "gone"


def revoke_steps(
    user_id: UserId,
    handle: object,
    handles: Handles,
    namespaces: tuple[str, ...],
    timeouts: Timeouts,
    now: float,
) -> Step:
    """The store conversation that ends the one session of ``user_id`` named by ``handle``.

    Yields store calls ``(name, args)`` (``families_of``, ``load``, ``save``) and returns
    :data:`ENDED` when it wrote the tombstone, :data:`FOREIGN` when ``handle`` names none
    of the user's live sessions, :data:`GONE` when the session ended meanwhile.
    """
    families: list[tuple[str, Record]] = yield ("families_of", (user_id, namespaces, now))
    records = dict(families)
    family = handles.family_for(handle, records)
    if family is None:
        return FOREIGN
    ref = FamilyRef(family, user_id, namespaces)
    current: object = records[family]
    for _ in range(MAX_ATTEMPTS):
        if not isinstance(current, Record) or current.state.user_id != user_id:
            return GONE
        state = current.state
        tomb = Ended(current.version + 1, int(now), REVOKED_BY_USER)
        until = stored_until(tomb, timeouts, timeouts.end_of(state.lifetime, state.created_at))
        if (yield ("save", (ref, current.version, tomb, until, now))):
            return ENDED
        current = yield ("load", (ref, now))
    return GONE


# ----------------------------------------------------------------------- new devices


@dataclass(frozen=True, slots=True)
class NewDevice:
    """A login from a device label that none of the user's other live sessions has.

    ``known`` lists the labels of those other sessions (empty: the user had no other live
    session, as on a first login, or after every earlier session ended). sessionkit only
    knows live sessions: an app that wants a longer memory keeps the labels it has
    already told the user about.
    """

    user_id: UserId
    device: str
    address: str | None
    at: int
    known: tuple[str, ...]


NewDeviceHook = Callable[[NewDevice], None]


# --------------------------------------------------------------------- fresh logins


def _check_path(name: str, value: object) -> str:
    if not isinstance(value, str) or not _SAFE_NEXT.fullmatch(value) or "?" in value:
        raise ConfigurationError(
            f"{name}={value!r} must be a path on this site starting with one '/', "
            "without a query (e.g. '/login')"
        )
    return value


@dataclass(frozen=True, slots=True)
class FreshLogin:
    """A handler needs a login at most ``max_age`` seconds old, else a re-authentication.

    ``reauth_path`` is the app's re-authentication page (it asks for the password again,
    calls ``session.confirm_login()`` and sends the user back to :func:`safe_next` of its
    ``next_param``).
    """

    max_age: int
    reauth_path: str = DEFAULT_REAUTH_PATH
    next_param: str = "next"

    def __post_init__(self) -> None:
        if type(self.max_age) is not int or self.max_age <= 0:
            raise ConfigurationError(
                f"max_age must be a positive whole number of seconds, not {self.max_age!r}"
            )
        _check_path("reauth_path", self.reauth_path)
        if not isinstance(self.next_param, str) or not _PARAM.fullmatch(self.next_param):
            raise ConfigurationError(
                f"next_param={self.next_param!r} must be 1 to 32 letters, digits, '_', '.' or '-'"
            )

    def is_fresh(self, auth_age: float | None) -> bool:
        """Whether a login ``auth_age`` seconds old (None: no login) is fresh enough."""
        return auth_age is not None and auth_age <= self.max_age

    def decide(self, auth_age: float | None, path: str, query: str) -> str | None:
        """None when the login is fresh enough; else the re-authentication ``Location``.

        ``path`` (decoded, as the router sees it) and ``query`` (raw) are the request's:
        ``next`` is rebuilt from them by :func:`~sessionkit.gate.safe_location`, so it is
        always a relative path on this site, whatever the request target held.
        """
        if self.is_fresh(auth_age):
            return None
        back = safe_location(path, query)
        return f"{self.reauth_path}?{urlencode({self.next_param: back})}"


def check_fresh_login(max_age: int, reauth_path: str | None = None) -> None:
    """Raise :class:`ConfigurationError` for settings :class:`FreshLogin` would refuse.

    The framework helpers call it when a view is decorated, so a mistake shows at start-up.
    """
    FreshLogin(max_age, DEFAULT_REAUTH_PATH if reauth_path is None else reauth_path)


def safe_next(value: object, default: str = "/") -> str:
    """``value`` when it is a relative path on this site, else ``default``.

    For the re-authentication (or login) page, before it redirects to the ``next`` it was
    given: a value that could lead to another site (``//host``, ``/\\host``, a scheme, a
    control character, anything outside the characters :func:`FreshLogin.decide` writes)
    is refused. ``value`` is the parameter as decoded once by the framework.
    """
    if isinstance(value, str) and _SAFE_NEXT.fullmatch(value):
        return value
    return default


@dataclass(frozen=True, slots=True)
class DevicePolicy:
    """The kit's settings for the list of sessions and re-authentication.

    ``reauth_path`` is the default re-authentication page of :meth:`fresh_login`;
    ``on_new_device`` is called after a login from a device label that none of the
    user's other live sessions has (it needs ``ua-parser``). The hook runs in the
    request, after the new session was stored: keep it quick (queue the e-mail).
    """

    reauth_path: str = DEFAULT_REAUTH_PATH
    on_new_device: NewDeviceHook | None = None

    def __post_init__(self) -> None:
        _check_path("reauth_path", self.reauth_path)
        if self.on_new_device is not None:
            if not callable(self.on_new_device):
                raise ConfigurationError(
                    f"on_new_device must be a callable taking a NewDevice, not "
                    f"{self.on_new_device!r}"
                )
            if not labels_available():
                raise ConfigurationError(
                    "on_new_device needs device labels, read by ua-parser: install "
                    'sessionkit-secure[devices] (pip install "sessionkit-secure[devices]")'
                )

    def fresh_login(self, max_age: int, reauth_path: str | None = None) -> FreshLogin:
        """The :class:`FreshLogin` rule for ``max_age`` (this policy's page by default)."""
        return FreshLogin(max_age, self.reauth_path if reauth_path is None else reauth_path)
