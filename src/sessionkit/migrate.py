"""Zero-logout migration: accept a previous framework's session cookie once.

An application that moves to sessionkit from Starlette's ``SessionMiddleware``, Flask's
default cookie session or Django's ``signed_cookies`` backend would otherwise log every
user out. With ``SessionKit(migrate=Migration([...], until=...))``, a request that brings
no sessionkit session but a valid cookie of the previous framework (checked with that
framework's secret key, exactly as the framework checks it) gets a sessionkit session
holding the same data, bound to the same user when the reader knows where the user id
is, and a ``Set-Cookie`` that deletes the old cookie. The data passes the same rules as
any session write (JSON values, the privacy guard); a session that breaks them is
refused and the visitor starts anonymous.

After ``until`` the old cookies are refused (and deleted); the migration code and the
old key can then be removed. A forged old cookie is refused with a security event
(``old_cookie_forged``), never a 500.

The readers verify the old signatures with this module's own code (HMAC and base64,
as the frameworks write them): none of the old frameworks needs to be installed.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import hmac
import json
import uuid
import zlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .cookies import CookieSpec
from .errors import ConfigurationError, SessionKitError
from .events import (
    MIGRATION_ENDED,
    OLD_COOKIE_EXPIRED,
    OLD_COOKIE_FORGED,
    OLD_COOKIE_MALFORMED,
    OLD_COOKIE_REFUSED,
)
from .privacy import SensitiveDataGuard
from .session import UserId, check_value

__all__ = [
    "MAX_OLD_COOKIE_CHARS",
    "DjangoSignedCookie",
    "FlaskCookie",
    "Migrated",
    "Migration",
    "OldCookieRefused",
    "Reader",
    "Refused",
    "StarletteCookie",
]

#: Longest old cookie value read (browsers keep at most 4096 bytes per cookie).
MAX_OLD_COOKIE_CHARS = 8192
#: Starlette's default ``max_age`` (14 days).
STARLETTE_MAX_AGE = 14 * 24 * 60 * 60
#: Flask's default ``PERMANENT_SESSION_LIFETIME`` (31 days).
FLASK_MAX_AGE = 31 * 24 * 60 * 60
#: Django's default ``SESSION_COOKIE_AGE`` (2 weeks).
DJANGO_MAX_AGE = 1209600
_DJANGO_SALT = "django.contrib.sessions.backends.signed_cookies"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class OldCookieRefused(SessionKitError):
    """An old cookie could not be accepted; ``reason`` is an ``old_cookie_*`` reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@runtime_checkable
class Reader(Protocol):
    """Reads one previous framework's session cookie (see the three readers below)."""

    #: Short name of the framework, in events and metrics (``"starlette"``).
    name: str
    #: The old cookie's name.
    cookie_name: str

    def read(self, value: str, now: float) -> dict[str, Any]:
        """The session data in ``value``; raises :class:`OldCookieRefused` when refused."""
        ...

    def user_of(self, data: Mapping[str, Any]) -> UserId | None:
        """The user the old session was bound to, or None."""
        ...

    def expire(self) -> str:
        """A ``Set-Cookie`` value that deletes the old cookie."""
        ...


# -- the signing schemes -----------------------------------------------------------------


def _b64decode(text: str | bytes) -> bytes:
    """URL-safe base64 with or without padding; raises OldCookieRefused when it is not."""
    raw = text.encode("ascii") if isinstance(text, str) else text
    try:
        return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise OldCookieRefused(OLD_COOKIE_MALFORMED) from None


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _keys(secret_key: str | bytes, fallback_keys: Iterable[str | bytes]) -> tuple[bytes, ...]:
    keys = [secret_key, *fallback_keys]
    if not all(isinstance(k, str | bytes) and k for k in keys):
        raise ConfigurationError(
            "an old framework's secret_key (and each fallback key) must be a non-empty str "
            "or bytes: pass the SECRET_KEY the old application signed its cookies with"
        )
    return tuple(k.encode("utf-8") if isinstance(k, str) else k for k in keys)


def _positive_age(max_age: int | None) -> int | None:
    if max_age is not None and (type(max_age) is not int or max_age <= 0):
        raise ConfigurationError(
            f"max_age must be the old framework's session lifetime in seconds (or None), "
            f"not {max_age!r}"
        )
    return max_age


def _check_age(stamp: int, now: float, max_age: int | None) -> None:
    if max_age is None:
        return
    age = now - stamp
    if age > max_age or age < 0:
        raise OldCookieRefused(OLD_COOKIE_EXPIRED)


class _ItsdangerousTimestamp:
    """itsdangerous's ``TimestampSigner``: ``value.timestamp.signature`` with HMAC-SHA1.

    ``derivation`` is itsdangerous's key derivation: ``"django-concat"`` (its default,
    Starlette's) or ``"hmac"`` (Flask's).
    """

    def __init__(self, keys: Sequence[bytes], salt: bytes, derivation: str) -> None:
        if derivation == "hmac":
            self._keys = tuple(hmac.new(k, salt, hashlib.sha1).digest() for k in keys)
        else:
            # itsdangerous derives its key this way; SHA-1 is what the old cookies used.
            self._keys = tuple(hashlib.sha1(salt + b"signer" + k).digest() for k in keys)  # noqa: S324

    def unsign(self, signed: bytes, now: float, max_age: int | None) -> bytes:
        stamped, dot, signature = signed.rpartition(b".")
        if not dot:
            raise OldCookieRefused(OLD_COOKIE_MALFORMED)
        given = _b64decode(signature)
        if not any(
            hmac.compare_digest(given, hmac.new(k, stamped, hashlib.sha1).digest())
            for k in self._keys
        ):
            raise OldCookieRefused(OLD_COOKIE_FORGED)
        value, dot, stamp = stamped.rpartition(b".")
        if not dot:
            raise OldCookieRefused(OLD_COOKIE_MALFORMED)
        _check_age(int.from_bytes(_b64decode(stamp), "big"), now, max_age)
        return value


def _old_cookie_spec(name: str, path: str, domain: str | None) -> CookieSpec:
    # Not Secure: a deletion without the attribute is accepted over http and https alike.
    return CookieSpec(name, path=path, domain=domain, secure=False)


class _Reader:
    """What the three readers share: the cookie's name and place, the user key."""

    name = "reader"

    def __init__(
        self, cookie_name: str, path: str, domain: str | None, user_key: str | None
    ) -> None:
        self.cookie_name = cookie_name
        self.user_key = user_key
        self._spec = _old_cookie_spec(cookie_name, path, domain)

    def user_of(self, data: Mapping[str, Any]) -> UserId | None:
        """The value under ``user_key`` when it is a str or an int, else None."""
        if self.user_key is None:
            return None
        user = data.get(self.user_key)
        return user if type(user) in (str, int) else None

    def expire(self) -> str:
        """A ``Set-Cookie`` value that deletes the old cookie at its path and domain."""
        return self._spec.delete()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(cookie_name={self.cookie_name!r})"


def _json_object(raw: bytes, hook: Any = None) -> dict[str, Any]:
    try:
        data = json.loads(raw, object_hook=hook)
    except (ValueError, UnicodeDecodeError):
        raise OldCookieRefused(OLD_COOKIE_MALFORMED) from None
    if not isinstance(data, dict):
        raise OldCookieRefused(OLD_COOKIE_MALFORMED)
    return data


class StarletteCookie(_Reader):
    """Starlette's ``SessionMiddleware`` cookie: base64 JSON, itsdangerous timestamp-signed.

    Pass the ``secret_key`` the middleware had, and its ``session_cookie`` (``"session"``),
    ``max_age`` (14 days; None for none) and ``path``/``domain`` when they were changed.
    ``user_key`` names the session key holding the user id, if the app kept one: the
    migrated session is then logged in as that user (the data keeps the key too).
    """

    name = "starlette"

    def __init__(
        self,
        secret_key: str,
        *,
        cookie_name: str = "session",
        max_age: int | None = STARLETTE_MAX_AGE,
        path: str = "/",
        domain: str | None = None,
        user_key: str | None = None,
    ) -> None:
        super().__init__(cookie_name, path, domain, user_key)
        # Starlette passes str(secret_key) to itsdangerous, which encodes it as UTF-8.
        self._signer = _ItsdangerousTimestamp(
            _keys(str(secret_key), ()), b"itsdangerous.Signer", "django-concat"
        )
        self.max_age = _positive_age(max_age)

    def read(self, value: str, now: float) -> dict[str, Any]:
        """The session data of a Starlette cookie value."""
        payload = self._signer.unsign(value.encode("latin-1"), now, self.max_age)
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise OldCookieRefused(OLD_COOKIE_MALFORMED) from None
        return _json_object(raw)


def _flask_untag(value: dict[str, Any]) -> Any:
    """Undo Flask's ``TaggedJSONSerializer`` for what JSON can hold; refuse the rest."""
    if len(value) != 1:
        return value
    ((key, inner),) = value.items()
    if key == " t":
        return list(inner)
    if key == " di":
        ((tagged, item),) = inner.items()
        return {tagged[:-2]: item}
    if key == " m":
        return str(inner)
    if key == " u":
        return str(uuid.UUID(inner))
    if key in (" b", " d"):
        # bytes and datetimes have no JSON form sessionkit keeps: refuse, never convert.
        raise OldCookieRefused(OLD_COOKIE_REFUSED)
    return value


class FlaskCookie(_Reader):
    """Flask's default session cookie (``SecureCookieSessionInterface``).

    Pass the app's ``SECRET_KEY`` and its ``SECRET_KEY_FALLBACKS`` as ``fallback_keys``,
    ``max_age`` as its ``PERMANENT_SESSION_LIFETIME`` in seconds (31 days), and the
    cookie's name, path and domain when they were changed. Flask's tagged values are read
    as JSON: tuples become lists, ``Markup`` and ``UUID`` become strings; a session holding
    bytes or a datetime is refused. ``user_key`` is as for :class:`StarletteCookie`
    (``"_user_id"`` for Flask-Login).
    """

    name = "flask"

    def __init__(
        self,
        secret_key: str | bytes,
        *,
        fallback_keys: Iterable[str | bytes] = (),
        cookie_name: str = "session",
        max_age: int | None = FLASK_MAX_AGE,
        path: str = "/",
        domain: str | None = None,
        salt: str = "cookie-session",
        user_key: str | None = None,
    ) -> None:
        super().__init__(cookie_name, path, domain, user_key)
        keys = _keys(secret_key, fallback_keys)
        self._signer = _ItsdangerousTimestamp(keys, salt.encode("utf-8"), "hmac")
        self.max_age = _positive_age(max_age)

    def read(self, value: str, now: float) -> dict[str, Any]:
        """The session data of a Flask cookie value (Flask's ``_permanent`` mark dropped)."""
        payload = self._signer.unsign(value.encode("latin-1"), now, self.max_age)
        compressed = payload.startswith(b".")
        raw = _b64decode(payload[1:] if compressed else payload)
        if compressed:
            raw = _inflate(raw)
        data = _json_object(raw, _flask_untag)
        data.pop("_permanent", None)
        return data


def _inflate(raw: bytes) -> bytes:
    try:
        inflater = zlib.decompressobj()
        out = inflater.decompress(raw, MAX_OLD_COOKIE_CHARS * 8)
    except zlib.error:
        raise OldCookieRefused(OLD_COOKIE_MALFORMED) from None
    if inflater.unconsumed_tail:
        raise OldCookieRefused(OLD_COOKIE_MALFORMED)
    return out


def _b62decode(text: str) -> int:
    if not text or any(c not in _BASE62 for c in text):
        raise OldCookieRefused(OLD_COOKIE_MALFORMED)
    number = 0
    for char in text:
        number = number * 62 + _BASE62.index(char)
    return number


class DjangoSignedCookie(_Reader):
    """Django's ``signed_cookies`` session: ``django.core.signing`` with HMAC-SHA256.

    Pass the project's ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` (as ``fallback_keys``),
    ``max_age`` as its ``SESSION_COOKIE_AGE`` (2 weeks), and ``SESSION_COOKIE_NAME``,
    ``_PATH`` and ``_DOMAIN`` when they were changed. ``user_key`` defaults to
    ``"_auth_user_id"``, where ``django.contrib.auth`` keeps the user id; the auth keys
    stay in the data, so ``request.user`` goes on working. Django's ``_session_expiry``
    is dropped (sessionkit's timeouts apply).
    """

    name = "django"

    def __init__(
        self,
        secret_key: str | bytes,
        *,
        fallback_keys: Iterable[str | bytes] = (),
        cookie_name: str = "sessionid",
        max_age: int | None = DJANGO_MAX_AGE,
        path: str = "/",
        domain: str | None = None,
        salt: str = _DJANGO_SALT,
        algorithm: str = "sha256",
        user_key: str | None = "_auth_user_id",
    ) -> None:
        super().__init__(cookie_name, path, domain, user_key)
        if algorithm not in ("sha256", "sha1"):
            raise ConfigurationError(
                f"algorithm={algorithm!r}: Django signs with 'sha256' (or 'sha1' before 3.1)"
            )
        self._digest = getattr(hashlib, algorithm)
        key_salt = (salt + "signer").encode("utf-8")
        keys = _keys(secret_key, fallback_keys)
        self._keys = tuple(self._digest(key_salt + k).digest() for k in keys)
        self.max_age = _positive_age(max_age)

    def read(self, value: str, now: float) -> dict[str, Any]:
        """The session data of a Django ``signed_cookies`` value."""
        stamped, colon, signature = value.rpartition(":")
        if not colon:
            raise OldCookieRefused(OLD_COOKIE_MALFORMED)
        message = stamped.encode("latin-1")
        expected = [
            _b64encode(hmac.new(k, message, self._digest).digest()).encode() for k in self._keys
        ]
        given = signature.encode("latin-1")
        if not any(hmac.compare_digest(given, e) for e in expected):
            raise OldCookieRefused(OLD_COOKIE_FORGED)
        payload, colon, stamp = stamped.rpartition(":")
        if not colon:
            raise OldCookieRefused(OLD_COOKIE_MALFORMED)
        _check_age(_b62decode(stamp), now, self.max_age)
        compressed = payload.startswith(".")
        raw = _b64decode(payload[1:] if compressed else payload)
        if compressed:
            raw = _inflate(raw)
        data = _json_object(raw)
        data.pop("_session_expiry", None)
        return data


# -- the migration ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Migrated:
    """An old cookie accepted: its data, its user, and the header that deletes it."""

    data: dict[str, Any]
    user_id: UserId | None
    reader: str
    cookie_name: str
    expire: str


@dataclass(frozen=True, slots=True)
class Refused:
    """An old cookie refused (``reason``: an ``old_cookie_*`` reason or ``migration_ended``)."""

    reason: str
    reader: str
    cookie_name: str
    expire: str


class Migration:
    """Accept the first valid old cookie among ``readers`` until ``until``.

    ``until`` is an aware :class:`~datetime.datetime` (or a naive one in UTC): from then
    on old cookies are refused (and deleted) with ``migration_ended``, an INFO event.
    Give it to ``SessionKit(migrate=...)``; the kit calls :meth:`migrate` only for a
    request that brings no sessionkit session cookie.
    """

    def __init__(self, readers: Iterable[Reader], *, until: _dt.datetime) -> None:
        self.readers: tuple[Reader, ...] = tuple(readers)
        if not self.readers:
            raise ConfigurationError(
                "Migration needs at least one reader: StarletteCookie(old_key), "
                "FlaskCookie(old_key) or DjangoSignedCookie(old_key)"
            )
        for reader in self.readers:
            if not isinstance(reader, Reader):
                raise ConfigurationError(
                    f"{reader!r} is not a migration reader: use StarletteCookie, FlaskCookie "
                    "or DjangoSignedCookie from sessionkit.migrate"
                )
        names = [r.cookie_name for r in self.readers]
        if len(set(names)) != len(names):
            raise ConfigurationError(
                "two migration readers read the same cookie name: give each its cookie_name="
            )
        if not isinstance(until, _dt.datetime):
            raise ConfigurationError(
                "until= must be a datetime: the day after which old cookies are refused, "
                "e.g. datetime(2027, 3, 1, tzinfo=timezone.utc)"
            )
        if until.tzinfo is None:
            until = until.replace(tzinfo=_dt.timezone.utc)
        self.until = until
        self._until = until.timestamp()

    @property
    def cookie_names(self) -> set[str]:
        """The old cookies' names."""
        return {r.cookie_name for r in self.readers}

    def check_names(self, names: Collection[str]) -> None:
        """Refuse at start-up an old cookie name that is also one of sessionkit's ``names``."""
        for reader in self.readers:
            if reader.cookie_name in names:
                raise ConfigurationError(
                    f"the old {reader.name} session cookie and one of sessionkit's cookies are "
                    f"both named {reader.cookie_name!r}, so neither could be told from the "
                    "other: give sessionkit another name with "
                    "SessionKit(session_cookie='sk-session') (or keep the default "
                    "'__Host-session' by not setting insecure_development)"
                )

    def migrate(
        self, cookies: Mapping[str, Sequence[str]], now: float, guard: SensitiveDataGuard
    ) -> Migrated | Refused | None:
        """Read the first old cookie present in ``cookies`` (name to values).

        Returns None when no old cookie is there, :class:`Refused` when it is forged,
        expired, malformed, breaks the session rules or comes after ``until``, else
        :class:`Migrated`. Never raises for anything the client sent.
        """
        for reader in self.readers:
            values = cookies.get(reader.cookie_name)
            if not values:
                continue
            expire = reader.expire()
            if now >= self._until:
                return Refused(MIGRATION_ENDED, reader.name, reader.cookie_name, expire)
            try:
                if len(values) != 1 or len(values[0]) > MAX_OLD_COOKIE_CHARS:
                    raise OldCookieRefused(OLD_COOKIE_MALFORMED)
                data = _strip_quotes(values[0])
                session = reader.read(data, now)
                _check_data(session, guard)
            except OldCookieRefused as exc:
                return Refused(exc.reason, reader.name, reader.cookie_name, expire)
            except (UnicodeError, ValueError, TypeError, AttributeError, RecursionError):
                return Refused(OLD_COOKIE_MALFORMED, reader.name, reader.cookie_name, expire)
            user = reader.user_of(session)
            return Migrated(session, user, reader.name, reader.cookie_name, expire)
        return None


def _strip_quotes(value: str) -> str:
    """A cookie value as the framework's parser gives it (a quoted value unquoted)."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _check_data(data: dict[str, Any], guard: SensitiveDataGuard) -> None:
    """The JSON rules and the privacy guard, as for a session write; refused if broken."""
    for key, value in data.items():
        try:
            check_value(key, value)
            guard.check(key, value)
        except SessionKitError:
            raise OldCookieRefused(OLD_COOKIE_REFUSED) from None
