"""Django integration: a session engine and the middleware that owns sessionkit's cookies.

Settings::

    SESSION_ENGINE = "sessionkit.integrations.django"
    SESSION_COOKIE_NAME = "__Host-session"      # the kit's session cookie name
    SESSIONKIT = {"require_cookies": ["/app"]}  # SessionKit keyword arguments; the keys
                                                # come from SESSIONKIT_SECRET_KEYS unless
                                                # "secret_keys" is given here
    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "sessionkit.integrations.django.SessionKitMiddleware",  # where Django's
        ...                                                     # SessionMiddleware was
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]

:class:`SessionKitMiddleware` takes the place of Django's ``SessionMiddleware`` (it is a
subclass, so Django's checks and ``AuthenticationMiddleware`` accept it). It is a front
end like :mod:`sessionkit.wsgi`: it hands the request to :meth:`SessionKit.open`, answers
with the cookies-required gate's response (nothing further down runs), loads the store
record, puts a :class:`SessionStore` over the request's sessionkit session in
``request.session``, and applies the exchange's ``Set-Cookie``, ``Vary`` and
``Cache-Control`` to the response. Django itself never sets the session cookie, so the
session cookie, the visitor cookie and their attributes are the kit's. Django's session
settings are honoured when the project sets them (``SESSION_COOKIE_NAME``, ``_PATH``,
``_DOMAIN``, ``_SECURE``, ``_HTTPONLY``, ``_SAMESITE``, ``SESSION_COOKIE_AGE`` as the idle
timeout, ``SESSION_EXPIRE_AT_BROWSER_CLOSE``, ``SESSION_SAVE_EVERY_REQUEST``), or refused at
start-up with the fix when they would weaken the kit (``SESSION_COOKIE_SECURE = False``
outside development, ``SESSION_COOKIE_SAMESITE = False``); one left at Django's default
leaves sessionkit's stricter default in place. As with Django, a response with a 5xx
status saves none of the session's changes. Refused cookies are also reported on
``django.security.SuspiciousSession``. Django's ``CsrfViewMiddleware`` stays in charge
of cross-site request forgery: sessionkit's checks (:mod:`sessionkit.forgery`) are off
under Django unless the kit is given forgery settings (``forgery``, ``trusted_origins`` or
``csrf_exempt``).

``request.session`` keeps Django's API. ``cycle_key()`` rotates the id (``session.rotate()``);
writing ``_auth_user_id`` (what ``django.contrib.auth.login()`` does after ``cycle_key()``)
binds the session to that user (``session.login(user_id)``: a new id and family, so a
planted id is worthless, and ``kit.revoke_user`` finds it); ``flush()`` (what ``logout()``
calls) logs out. ``set_expiry()`` gives the session its own lifetime with Django's
meanings (sealed and enforced on the server, capped by the kit's ``max_lifetime``), and
``get_expiry_age()``, ``get_expiry_date()`` and ``get_expire_at_browser_close()`` report
it. ``session_key`` is stable from login to logout (a keyed hash of the family, never an
id), and None for a session that was never saved.

A :class:`SessionStore` built outside a request (``SessionStore()``, ``SessionStore(key)``,
as Django's test client does for ``client.login()`` and ``client.session``) opens the
sealed cookie value ``key`` itself, and its ``save()`` seals: ``session_key`` is then the
new cookie value, as with Django's ``signed_cookies`` engine.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Container, Mapping
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from http.cookies import Morsel
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.multipartparser import MultiPartParserError
from django.http.response import HttpResponseBase, HttpResponseRedirectBase
from django.utils import timezone

from ..access import csrf_token as _csrf_token
from ..access import fresh_login_location
from ..access import opt_in as _opt_in
from ..access import opt_out as _opt_out
from ..access import session_of as _session_of
from ..access import visitor_of as _visitor_of
from ..devices import SessionInfo, check_fresh_login
from ..errors import ConfigurationError
from ..forgery import Provenance
from ..gate import EarlyResponse
from ..kit import Exchange, HeaderChanges, SessionKit
from ..lifetime import DEFAULT_ABSOLUTE_TIMEOUT, DEFAULT_MAX_LIFETIME, DEFAULT_TOUCH_INTERVAL
from ..session import Session, UserId
from ..stores.base import StoreUnavailable

__all__ = [
    "ENGINE",
    "SessionKitMiddleware",
    "SessionStore",
    "arevoke_session",
    "arevoke_user",
    "asessions_of",
    "csrf_token",
    "get_kit",
    "opt_in",
    "opt_out",
    "report_to_django",
    "require_fresh_login",
    "revoke_session",
    "revoke_user",
    "session_of",
    "sessions_of",
    "visitor_of",
]

#: The value of ``SESSION_ENGINE`` that selects this engine.
ENGINE = __name__
_MIDDLEWARE = f"{__name__}.SessionKitMiddleware"
_DJANGO_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
#: ``django.contrib.auth.SESSION_KEY``: where ``login()`` writes the user's id.
AUTH_USER_KEY = "_auth_user_id"
#: Where the request's exchange is kept (``request.META``), as the WSGI front end does.
_EXCHANGE = "sessionkit.exchange"

#: Where Django reports a session it cannot decode; sessionkit's refusals go there too.
_SUSPICIOUS = logging.getLogger("django.security.SuspiciousSession")
#: The keys Django's own views keep in the session, which the privacy guard lets through
#: by exact name (the password-reset view keeps the reset token there).
DJANGO_INTERNAL_KEYS = ("_password_reset_token",)
#: Purpose of the subkey that turns a family into Django's ``session_key``.
_KEY_PURPOSE = "django.session_key"

_kit: SessionKit | None = None
_kit_lock = threading.Lock()


# --------------------------------------------------------------------------- the kit


def get_kit() -> SessionKit:
    """The project's :class:`SessionKit`, built once from ``settings.SESSIONKIT``.

    ``SESSIONKIT`` is a dict of :class:`SessionKit` keyword arguments (without
    ``secret_keys``, the keys come from ``SESSIONKIT_SECRET_KEYS``), or a ``SessionKit``.
    Without ``SESSIONKIT``, everything comes from the environment. Built again when a test
    overrides the setting.
    """
    global _kit
    kit = _kit
    if kit is None:
        with _kit_lock:
            if _kit is None:
                _kit = _build_kit()
                report_to_django(_kit)
            kit = _kit
    return kit


def _build_kit() -> SessionKit:
    config = getattr(settings, "SESSIONKIT", None)
    if isinstance(config, SessionKit):
        return config
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise ImproperlyConfigured(
            "settings.SESSIONKIT must be a dict of SessionKit keyword arguments "
            f"(or a SessionKit), not {type(config).__name__}"
        )
    options = dict(config)
    for name, option, value in _from_django_settings():
        if option in options and options[option] != value:
            raise ImproperlyConfigured(
                f"{name} = {getattr(settings, name)!r} says {option}={value!r} but "
                f"settings.SESSIONKIT says {option}={options[option]!r}: keep one of them"
            )
        options[option] = value
    try:
        if "secret_keys" in options:
            return SessionKit(**options)
        return SessionKit.from_env(**options)
    except (ConfigurationError, TypeError) as exc:
        hint = ""
        if options.get("secure") is False:
            hint = (
                " (SESSION_COOKIE_SECURE = False sends the session cookie over plain http: "
                'add "insecure_development": True to settings.SESSIONKIT on a development '
                "machine, or remove the setting)"
            )
        raise ImproperlyConfigured(f"settings.SESSIONKIT: {exc}{hint}") from exc


#: Django's ``SameSite`` spellings, as sessionkit's.
_SAME_SITE = {"Lax": "lax", "Strict": "strict", "None": "none"}


def _from_django_settings() -> list[tuple[str, str, Any]]:
    """The kit options that Django's session settings set explicitly ask for.

    A setting left at Django's default leaves sessionkit's (stricter) default in place; a
    setting the project wrote is honoured, or refused with the fix.
    """
    given = settings.is_overridden
    out: list[tuple[str, str, Any]] = []
    if given("SESSION_COOKIE_NAME"):
        out.append(("SESSION_COOKIE_NAME", "session_cookie", settings.SESSION_COOKIE_NAME))
    if given("SESSION_COOKIE_PATH"):
        out.append(("SESSION_COOKIE_PATH", "path", settings.SESSION_COOKIE_PATH))
    if given("SESSION_COOKIE_DOMAIN") and settings.SESSION_COOKIE_DOMAIN:
        out.append(("SESSION_COOKIE_DOMAIN", "domain", settings.SESSION_COOKIE_DOMAIN))
    if given("SESSION_COOKIE_SECURE"):
        out.append(("SESSION_COOKIE_SECURE", "secure", bool(settings.SESSION_COOKIE_SECURE)))
    if given("SESSION_COOKIE_HTTPONLY"):
        out.append(("SESSION_COOKIE_HTTPONLY", "http_only", bool(settings.SESSION_COOKIE_HTTPONLY)))
    if given("SESSION_COOKIE_SAMESITE"):
        same_site = _SAME_SITE.get(settings.SESSION_COOKIE_SAMESITE)
        if same_site is None:
            raise ImproperlyConfigured(
                f"SESSION_COOKIE_SAMESITE = {settings.SESSION_COOKIE_SAMESITE!r}: sessionkit "
                "always sends SameSite; use 'Lax' (the default), 'Strict' or 'None'"
            )
        out.append(("SESSION_COOKIE_SAMESITE", "same_site", same_site))
    if given("SESSION_EXPIRE_AT_BROWSER_CLOSE"):
        persistent = not settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
        out.append(("SESSION_EXPIRE_AT_BROWSER_CLOSE", "persistent_cookie", persistent))
    if given("SESSION_COOKIE_AGE"):
        age = settings.SESSION_COOKIE_AGE
        if type(age) is not int or age <= 0:
            raise ImproperlyConfigured(
                f"SESSION_COOKIE_AGE = {age!r}: give a positive whole number of seconds"
            )
        out.append(("SESSION_COOKIE_AGE", "idle_timeout", age))
        out.append(("SESSION_COOKIE_AGE", "absolute_timeout", max(age, DEFAULT_ABSOLUTE_TIMEOUT)))
        out.append(("SESSION_COOKIE_AGE", "max_lifetime", max(age, DEFAULT_MAX_LIFETIME)))
        if not settings.SESSION_SAVE_EVERY_REQUEST:
            touch = min(DEFAULT_TOUCH_INTERVAL, age // 2)
            out.append(("SESSION_COOKIE_AGE", "touch_interval", touch))
    if given("SESSION_SAVE_EVERY_REQUEST") and settings.SESSION_SAVE_EVERY_REQUEST:
        out.append(("SESSION_SAVE_EVERY_REQUEST", "touch_interval", 0))
    return out


#: How to read, off a built kit, what each Django setting asks of it (the options a
#: setting only derives, such as the absolute timeout from SESSION_COOKIE_AGE, are not
#: compared).
_KIT_OPTIONS: dict[tuple[str, str], Callable[[SessionKit], Any]] = {
    ("SESSION_COOKIE_PATH", "path"): lambda kit: kit.session_spec.path,
    ("SESSION_COOKIE_DOMAIN", "domain"): lambda kit: kit.session_spec.domain,
    ("SESSION_COOKIE_SECURE", "secure"): lambda kit: kit.session_spec.secure,
    ("SESSION_COOKIE_HTTPONLY", "http_only"): lambda kit: kit.session_spec.http_only,
    ("SESSION_COOKIE_SAMESITE", "same_site"): lambda kit: kit.session_spec.same_site,
    ("SESSION_EXPIRE_AT_BROWSER_CLOSE", "persistent_cookie"): lambda kit: kit.timeouts.persistent,
    ("SESSION_COOKIE_AGE", "idle_timeout"): lambda kit: kit.timeouts.idle,
    ("SESSION_SAVE_EVERY_REQUEST", "touch_interval"): lambda kit: kit.timeouts.touch,
}


def _forget_kit(*, setting: str, **kwargs: Any) -> None:
    global _kit
    if setting == "SESSIONKIT" or setting.startswith("SESSION_"):
        with _kit_lock:
            _kit = None


setting_changed.connect(_forget_kit, dispatch_uid="sessionkit.integrations.django")


def _check_settings(kit: SessionKit) -> None:
    if settings.SESSION_ENGINE != ENGINE:
        raise ImproperlyConfigured(
            f"SessionKitMiddleware needs SESSION_ENGINE = {ENGINE!r} (it is "
            f"{settings.SESSION_ENGINE!r}), so that every SessionStore Django builds is "
            "sessionkit's"
        )
    if _DJANGO_MIDDLEWARE in settings.MIDDLEWARE:
        raise ImproperlyConfigured(
            f"SessionKitMiddleware takes the place of {_DJANGO_MIDDLEWARE}: remove that one "
            "from MIDDLEWARE, or it sets a second session cookie of its own"
        )
    for name, option, value in _from_django_settings():
        read = _KIT_OPTIONS.get((name, option))
        if read is not None and read(kit) != value:
            raise ImproperlyConfigured(
                f"{name} = {getattr(settings, name)!r} asks for {option}={value!r} but the "
                f"kit in settings.SESSIONKIT has {option}={read(kit)!r}: build the kit with "
                f"{option}={value!r}, or remove {name}"
            )
    if kit.session_spec.name != settings.SESSION_COOKIE_NAME:
        raise ImproperlyConfigured(
            f"SESSION_COOKIE_NAME is {settings.SESSION_COOKIE_NAME!r} but sessionkit's session "
            f"cookie is {kit.session_spec.name!r}: set SESSION_COOKIE_NAME = "
            f"{kit.session_spec.name!r}, the name Django's own tools (the test client's "
            "login() and session) read and write"
        )


def _check_middleware() -> None:
    if _MIDDLEWARE not in settings.MIDDLEWARE:
        raise ImproperlyConfigured(
            f"SESSION_ENGINE = {ENGINE!r} works with {_MIDDLEWARE!r}, which owns the session "
            f"cookie: put it in MIDDLEWARE in place of {_DJANGO_MIDDLEWARE!r}"
        )


# --------------------------------------------------------------------------- helpers


def session_of(request: HttpRequest) -> Session:
    """The request's sessionkit :class:`~sessionkit.Session` (``request.session`` wraps it)."""
    return _session_of(_state(request))


def visitor_of(request: HttpRequest) -> str | None:
    """The request's visitor id, or None when the visitor opted out."""
    return _visitor_of(_state(request))


def opt_out(request: HttpRequest) -> None:
    """Record this visitor's opt-out (see :func:`sessionkit.access.opt_out`)."""
    _opt_out(_state(request))


def opt_in(request: HttpRequest) -> None:
    """Undo :func:`opt_out` for this visitor (see :func:`sessionkit.access.opt_in`)."""
    _opt_in(_state(request))


def csrf_token(request: HttpRequest, action: str | None = None) -> str:
    """A fresh sessionkit anti-forgery token, for a kit given forgery settings."""
    return _csrf_token(_state(request), action)


def _state(request: HttpRequest) -> dict[str, Any]:
    meta = cast("dict[str, Any]", request.META)
    if _EXCHANGE not in meta:
        raise RuntimeError(
            f"no sessionkit session on this request: add {_MIDDLEWARE!r} to MIDDLEWARE"
        )
    return meta


def _user_key(user: Any) -> str:
    # The id exactly as django.contrib.auth.login() writes it under _auth_user_id.
    return cast(str, user._meta.pk.value_to_string(user))


def revoke_user(user: Any) -> int:
    """End every session of a Django ``user`` ("log out everywhere"); return how many.

    Sessions are bound to ``user`` by ``django.contrib.auth.login()``. Needs a store in
    the kit, like :meth:`SessionKit.revoke_user`.
    """
    return get_kit().revoke_user(_user_key(user))


async def arevoke_user(user: Any) -> int:
    """Coroutine form of :func:`revoke_user`, for async views."""
    return await get_kit().arevoke_user(_user_key(user))


# --------------------------------------------------------------------------- responses


class _SetCookie(Morsel[str]):
    """A cookie whose ``Set-Cookie`` line is sessionkit's own, written out verbatim.

    Django sends cookies from ``response.cookies``; this morsel carries the exchange's
    header text and also its attributes, so a copy (or a cached response) still says
    the same thing.
    """

    def __init__(self, header: str) -> None:
        super().__init__()
        pair, *attributes = header.split("; ")
        name, _, value = pair.partition("=")
        self.set(name, value, value)
        for attribute in attributes:
            key, eq, text = attribute.partition("=")
            if self.isReservedKey(key):
                self[key.lower()] = text if eq else True
        self._header = header

    def OutputString(self, attrs: Container[str] | None = None) -> str:
        """The header's text as sessionkit wrote it."""
        header: str | None = self.__dict__.get("_header")
        return header if header is not None else super().OutputString(attrs)


def _add_header(response: HttpResponseBase, name: str, value: str) -> None:
    if name.lower() == "set-cookie":
        morsel = _SetCookie(value)
        response.cookies[morsel.key] = morsel
    elif response.has_header(name):
        # One field line per name in Django: fold as RFC 9110 section 5.3 allows.
        response.headers[name] = f"{response.headers[name]}, {value}"
    else:
        response.headers[name] = value


def _early(early: EarlyResponse) -> HttpResponse:
    location = next((v for n, v in early.headers if n.lower() == "location"), None)
    response = (
        HttpResponse(early.body, status=early.status)
        if location is None
        # A redirect class, so Django's test client can follow it and assertRedirects works.
        else HttpResponseRedirectBase(location, early.body, status=early.status)
    )
    del response.headers["Content-Type"]
    for name, value in early.headers:
        if name.lower() == "set-cookie":
            _add_header(response, name, value)
        else:
            response.headers[name] = value
    return response


def _read(response: HttpResponseBase) -> tuple[list[str], list[str]]:
    vary = [response.headers["Vary"]] if response.has_header("Vary") else []
    cache = [response.headers["Cache-Control"]] if response.has_header("Cache-Control") else []
    return vary, cache


def _apply(response: HttpResponseBase, changes: HeaderChanges | EarlyResponse) -> HttpResponseBase:
    if isinstance(changes, EarlyResponse):
        response.close()
        return _early(changes)
    if changes.drop_cache_control:
        del response.headers["Cache-Control"]
    for name, value in changes.add:
        _add_header(response, name, value)
    return response


# --------------------------------------------------------------------------- middleware


class SessionKitMiddleware(DjangoSessionMiddleware):  # type: ignore[misc]
    """Sessions, the cookies-required gate and the visitor cookie for Django.

    Put it where ``django.contrib.sessions.middleware.SessionMiddleware`` would be. It
    works in both of Django's modes; under ASGI the store is awaited, never blocking the
    event loop. Start-up fails with ``ImproperlyConfigured`` naming the fix when the
    settings disagree with it.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        self.kit = get_kit()
        _check_settings(self.kit)
        self.SessionStore = SessionStore
        header = self.kit.forgery.policy.token_header.upper().replace("-", "_")
        self._token_key = "HTTP_" + header
        # Django's CsrfViewMiddleware does this work unless the kit was asked to.
        self._forgery = self.kit.forgery.configured and bool(self.kit.forgery)

    def __call__(self, request: HttpRequest) -> Any:
        """Handle one request (a coroutine when Django runs the chain asynchronously)."""
        if iscoroutinefunction(self):
            return self._acall(request)
        exchange = self._open(request)
        early = exchange.early
        if early is None and exchange.pending is not None:
            early = exchange.load_record()
        if early is None and exchange.token_check is not None:
            early = exchange.check_token(self._form_token(request, exchange))
        if early is not None:
            return _early(early)
        _bind(request, exchange)
        response = self.get_response(request)
        _discard_on_error(exchange, response)
        return _apply(response, exchange.finish(*_read(response)))

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        exchange = self._open(request)
        early = exchange.early
        if early is None and exchange.pending is not None:
            early = await exchange.aload_record()
        if early is None and exchange.token_check is not None:
            early = exchange.check_token(self._form_token(request, exchange))
        if early is not None:
            return _early(early)
        _bind(request, exchange)
        response = await cast("Callable[[HttpRequest], Awaitable[Any]]", self.get_response)(request)
        _discard_on_error(exchange, response)
        vary, cache_control = _read(response)
        changes = (
            exchange.finish(vary, cache_control)
            if self.kit.store is None
            else await exchange.afinish(vary, cache_control)
        )
        return _apply(response, changes)

    def _form_token(self, request: HttpRequest, exchange: Exchange) -> str | None:
        check = exchange.token_check
        if check is None or check.header is not None or not check.form:
            return None
        try:
            value = request.POST.get(self.kit.forgery.policy.token_field)
        except (OSError, MultiPartParserError):
            return None
        return value if isinstance(value, str) else None

    def _open(self, request: HttpRequest) -> Exchange:
        meta = request.META
        provenance = (
            Provenance(
                meta.get("HTTP_ORIGIN"),
                meta.get("HTTP_REFERER"),
                meta.get("HTTP_SEC_FETCH_SITE"),
                meta.get("HTTP_HOST"),
                request.scheme or "http",
                meta.get("HTTP_X_FORWARDED_HOST"),
                meta.get("HTTP_X_FORWARDED_PROTO"),
                meta.get(self._token_key),
                meta.get("CONTENT_TYPE"),
            )
            if self._forgery and self.kit.forgery.checks(request.method or "GET")
            else None
        )
        return self.kit.open(
            meta.get("HTTP_COOKIE"),
            client=meta.get("REMOTE_ADDR"),
            sec_gpc=meta.get("HTTP_SEC_GPC"),
            dnt=meta.get("HTTP_DNT"),
            forwarded_for=meta.get("HTTP_X_FORWARDED_FOR"),
            method=request.method or "GET",
            path=request.path,
            query=meta.get("QUERY_STRING", ""),
            accept=meta.get("HTTP_ACCEPT"),
            user_agent=meta.get("HTTP_USER_AGENT"),
            request_id=meta.get(self.kit.events.request_id_environ or ""),
            scheme=request.scheme,
            host=meta.get("HTTP_HOST"),
            access_control_request_method=meta.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"),
            provenance=provenance,
        )


def _discard_on_error(exchange: Exchange, response: HttpResponseBase) -> None:
    # As Django's SessionMiddleware: a server error's session changes are not saved.
    if response.status_code >= 500:
        exchange.discard()


def _bind(request: HttpRequest, exchange: Exchange) -> None:
    # Only the exchange goes in META (its repr is opaque): Django's error reports print
    # META, and neither the session's data nor the visitor id belongs there.
    request.META[_EXCHANGE] = exchange
    request.session = SessionStore(exchange=exchange)


# --------------------------------------------------------------------------- engine


def _valid_key(value: str | None) -> str | None:
    # As Django's SessionBase: a falsy or short key is no key.
    return value if value and len(value) >= 8 else None


class SessionStore(SessionBase):  # type: ignore[misc]
    """Django's ``request.session`` API over a sessionkit session.

    In a request, :class:`SessionKitMiddleware` builds it over the request's session and
    saves it when the response starts: ``save()`` only makes sure the cookie is issued.
    Built by hand (``SessionStore(cookie_value)``, as Django's test client does), it opens
    that cookie value, and ``save()`` seals the session into ``session_key``, as with
    Django's ``signed_cookies`` engine.
    """

    def __init__(self, session_key: str | None = None, *, exchange: Exchange | None = None) -> None:
        self.accessed = False
        self._exchange = exchange
        self._bound = exchange is not None
        self._cookie_value = _valid_key(session_key)
        if exchange is not None:
            self._session_cache: Session = exchange.session
        else:
            _check_middleware()

    # -- where the session comes from

    def _open(self, exchange: Exchange, early: EarlyResponse | None) -> Session:
        if early is not None:
            raise StoreUnavailable("the session store did not answer; the session is unknown")
        self._exchange = exchange
        session = self._session_cache = exchange.session
        if session.is_new:
            # An unknown or refused key is never reused (Django: no record on load).
            self._cookie_value = None
        return session

    def _new_exchange(self) -> Exchange:
        kit = get_kit()
        value = self._cookie_value
        return kit.open(None if value is None else f"{kit.session_spec.name}={value}")

    def _get_session(self, no_load: bool = False) -> Session:
        self.accessed = True
        session: Session | None = self.__dict__.get("_session_cache")
        if session is not None:
            return session
        exchange = self._new_exchange()
        return self._open(exchange, exchange.load_record())

    async def _aget_session(self, no_load: bool = False) -> Session:
        self.accessed = True
        session: Session | None = self.__dict__.get("_session_cache")
        if session is not None:
            return session
        exchange = self._new_exchange()
        return self._open(exchange, await exchange.aload_record())

    _session = property(_get_session)

    def load(self) -> Session:
        """The session (a ``dict``), opened from the cookie value when built by hand."""
        return self._get_session()

    async def aload(self) -> Session:
        """Coroutine form of :meth:`load`."""
        return await self._aget_session()

    # -- the key

    @property
    def session_key(self) -> str | None:
        """The session's key: stable from login to logout, None for a session not saved.

        In a request it is derived (one-way, keyed) from the session's family and its
        number of explicit rotations, so it changes with ``cycle_key()``, login and logout
        but not with sessionkit's timed id rotation, and reveals neither id. Built by
        hand it is the cookie value given, then after :meth:`save` the sealed cookie value.
        """
        if not self._bound:
            return self._cookie_value
        session = self._get_session()
        state = session.state  # opens the session
        if session.is_new and not session.modified:
            return None
        key = get_kit().keys.subkeys(_KEY_PURPOSE)
        subkey = next(iter(key.values()))
        message = f"{state.family}.{state.generation}".encode("ascii")
        return hashlib.blake2b(message, key=subkey, digest_size=16).hexdigest()

    def _get_session_key(self) -> str | None:
        return self.session_key

    def _set_session_key(self, value: str | None) -> None:
        if self._bound:
            raise AttributeError(
                "the key of a request's session is sessionkit's: use cycle_key() for a new one"
            )
        self._cookie_value = _valid_key(value)
        self._exchange = None
        self.__dict__.pop("_session_cache", None)

    _session_key = property(_get_session_key, _set_session_key)

    @property
    def modified(self) -> bool:
        """Whether the session changed (set it to True after changing a nested value)."""
        session: Session | None = self.__dict__.get("_session_cache")
        return session is not None and session.modified

    @modified.setter
    def modified(self, value: bool) -> None:
        self._get_session().modified = value

    def is_empty(self) -> bool:
        """Whether the session holds no data and no user, and so needs no cookie."""
        return self._get_session().is_empty

    # -- writes: _auth_user_id binds the session to the user

    def _write(self, session: Session, key: str, value: Any) -> None:
        if key in DJANGO_INTERNAL_KEYS:
            session.put_trusted(key, value)
            return
        session[key] = value
        if key == AUTH_USER_KEY:
            session.login(cast(UserId, value))
            # login() keeps the data of an anonymous session; the key is written again
            # under the new id, as django.contrib.auth.login() expects.
            dict.__setitem__(session, key, value)

    def __setitem__(self, key: str, value: Any) -> None:
        self._write(self._get_session(), key, value)

    async def aset(self, key: str, value: Any) -> None:
        """Coroutine form of ``session[key] = value``."""
        self._write(await self._aget_session(), key, value)

    def update(self, dict_: Mapping[str, Any]) -> None:
        """Store every item of ``dict_``."""
        session = self._get_session()
        for key, value in dict_.items():
            self._write(session, key, value)

    async def aupdate(self, dict_: Mapping[str, Any]) -> None:
        """Coroutine form of :meth:`update`."""
        session = await self._aget_session()
        for key, value in dict_.items():
            self._write(session, key, value)

    def clear(self) -> None:
        """Remove all data, as Django's ``clear()``; the id stays.

        Removing ``_auth_user_id`` ends the login, so a session bound to a user is
        logged out instead (as :meth:`flush`).
        """
        session = self._get_session()
        if session.user_id is not None:
            session.invalidate()
            return
        for key in list(dict.keys(session)):
            del session[key]

    def __delitem__(self, key: str) -> None:
        session = self._get_session()
        if key == AUTH_USER_KEY and session.user_id is not None:
            session.invalidate()
            return
        del session[key]

    # -- lifecycle

    def cycle_key(self) -> None:
        """Give the session a new key and keep its data (``session.rotate()``)."""
        self._get_session().rotate()
        if not self._bound:
            self.save()

    async def acycle_key(self) -> None:
        """Coroutine form of :meth:`cycle_key`."""
        (await self._aget_session()).rotate()
        if not self._bound:
            await self.asave()

    def flush(self) -> None:
        """Log out: drop data and user, new id, old id revoked with a store."""
        self._get_session().invalidate()
        if not self._bound:
            self._forget()

    async def aflush(self) -> None:
        """Coroutine form of :meth:`flush`."""
        (await self._aget_session()).invalidate()
        if not self._bound:
            await self._aforget()

    def _forget(self) -> None:
        self._saved(cast(Exchange, self._exchange).finish([], []))
        self._start_over()

    async def _aforget(self) -> None:
        self._saved(await cast(Exchange, self._exchange).afinish([], []))
        self._start_over()

    def _start_over(self) -> None:
        # After a logout by hand: no key, and a new empty session that counts as changed.
        self._cookie_value = None
        exchange = self._exchange = get_kit().open(None)
        self._session_cache = exchange.session
        exchange.session.modified = True

    def create(self) -> None:
        """Start a new session, kept even while empty, and save it."""
        session = self._get_session()
        if not session.is_new:
            session.rotate()
        session.keep()
        self.save()

    async def acreate(self) -> None:
        """Coroutine form of :meth:`create`."""
        session = await self._aget_session()
        if not session.is_new:
            session.rotate()
        session.keep()
        await self.asave()

    def exists(self, session_key: str) -> bool:
        """Always False: keys are not looked up (a key is never reused for a new session)."""
        return False

    async def aexists(self, session_key: str) -> bool:
        """Coroutine form of :meth:`exists`."""
        return False

    def delete(self, session_key: str | None = None) -> None:
        """Delete this session (as :meth:`flush`); another key names nothing to delete.

        As with Django's ``signed_cookies`` engine, a session lives in its cookie; end
        all of a user's sessions with :func:`revoke_user` (needs a store).
        """
        if session_key is None or session_key == self.session_key:
            self.flush()

    async def adelete(self, session_key: str | None = None) -> None:
        """Coroutine form of :meth:`delete`."""
        if session_key is None or session_key == self.session_key:
            await self.aflush()

    def save(self, must_create: bool = False) -> None:
        """Make sure the session is saved: issued by the middleware, or sealed by hand."""
        session = self._get_session()
        session.keep()
        if not self._bound:
            self._saved(cast(Exchange, self._exchange).finish([], []))

    async def asave(self, must_create: bool = False) -> None:
        """Coroutine form of :meth:`save`."""
        (await self._aget_session()).keep()
        if not self._bound:
            self._saved(await cast(Exchange, self._exchange).afinish([], []))

    def _saved(self, changes: HeaderChanges | EarlyResponse) -> None:
        if isinstance(changes, EarlyResponse):
            raise StoreUnavailable("the session store did not answer; the session is not saved")
        prefix = f"{get_kit().session_spec.name}="
        for name, header in changes.add:
            if name == "Set-Cookie" and header.startswith(prefix):
                self._cookie_value = _valid_key(header[len(prefix) :].partition(";")[0])
        # The next use opens the saved value afresh, as the next request would.
        self._exchange = None
        del self._session_cache

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing to do: cookies end by themselves and store records with their session.

        An SQLite store's expired rows are purged now.
        """
        purge = getattr(get_kit().store, "purge", None)
        if callable(purge):
            purge(get_kit().clock())

    # -- encode / decode: a sealed cookie value

    def encode(self, session_dict: Mapping[str, Any]) -> str:
        """Seal ``session_dict`` into a cookie value of a new anonymous session."""
        exchange = get_kit().open(None)
        exchange.session.update(session_dict)
        exchange.session.keep()
        changes = exchange.finish([], [])
        prefix = f"{get_kit().session_spec.name}="
        if isinstance(changes, HeaderChanges):
            for name, header in changes.add:
                if name == "Set-Cookie" and header.startswith(prefix):
                    return header[len(prefix) :].partition(";")[0]
        raise StoreUnavailable("the session store did not answer; nothing was encoded")

    def decode(self, session_data: str) -> dict[str, Any]:
        """The data of a sealed cookie value; ``{}`` (and a logged refusal) if it does not open."""
        kit = get_kit()
        exchange = kit.open(f"{kit.session_spec.name}={session_data}")
        early = exchange.load_record() if exchange.pending is not None else None
        if early is not None:
            raise StoreUnavailable("the session store did not answer; the session is unknown")
        session = exchange.session
        return {} if session.is_new else dict(dict.items(session))

    # -- expiry: the core's per-session lifetime, with Django's meanings

    def get_session_cookie_age(self) -> int:
        """The kit's idle timeout (``SESSION_COOKIE_AGE`` when that is set)."""
        return get_kit().timeouts.idle

    def get_expiry_age(self, *, modification: datetime | None = None, expiry: object = None) -> int:
        """Seconds from ``modification`` (now) until the session ends if left idle."""
        kit = get_kit()
        now = kit.clock() if modification is None else modification.timestamp()
        if expiry is not None:
            if isinstance(expiry, datetime):
                return max(0, math.ceil(expiry.timestamp() - now))
            return int(cast(int, expiry))
        state = self._get_session().state
        timeouts = kit.timeouts
        lifetime = state.lifetime
        idle = timeouts.idle_of(lifetime)
        end = timeouts.end_of(lifetime, state.created_at)
        return max(0, min(idle, math.ceil(end - now)))

    async def aget_expiry_age(
        self, *, modification: datetime | None = None, expiry: object = None
    ) -> int:
        """Coroutine form of :meth:`get_expiry_age`."""
        await self._aget_session()
        return self.get_expiry_age(modification=modification, expiry=expiry)

    def get_expiry_date(
        self, *, modification: datetime | None = None, expiry: object = None
    ) -> datetime:
        """When the session ends if left idle from ``modification`` (now)."""
        if modification is None:
            modification = datetime.fromtimestamp(get_kit().clock(), tz=dt_timezone.utc)
            if not settings.USE_TZ:
                modification = timezone.make_naive(modification)
        age = self.get_expiry_age(modification=modification, expiry=expiry)
        return modification + timedelta(seconds=age)

    async def aget_expiry_date(
        self, *, modification: datetime | None = None, expiry: object = None
    ) -> datetime:
        """Coroutine form of :meth:`get_expiry_date`."""
        await self._aget_session()
        return self.get_expiry_date(modification=modification, expiry=expiry)

    def get_expire_at_browser_close(self) -> bool:
        """Whether the session cookie ends with the browser.

        ``set_expiry(0)`` says yes, another ``set_expiry`` no; otherwise the kit's
        ``persistent_cookie`` (``SESSION_EXPIRE_AT_BROWSER_CLOSE``) decides.
        """
        lifetime = self._get_session().lifetime
        if lifetime is None:
            return not get_kit().timeouts.persistent
        return not lifetime.persistent

    async def aget_expire_at_browser_close(self) -> bool:
        """Coroutine form of :meth:`get_expire_at_browser_close`."""
        await self._aget_session()
        return self.get_expire_at_browser_close()

    def set_expiry(self, value: int | float | datetime | timedelta | None) -> None:
        """Give this session its own lifetime (:meth:`sessionkit.Session.set_expiry`).

        Seconds or a ``timedelta`` of inactivity, a ``datetime`` at which it ends, ``0``
        for a cookie that ends with the browser, ``None`` for the defaults; capped by the
        kit's ``max_lifetime``, sealed, and enforced on the server. A naive ``datetime``
        is local time when ``USE_TZ`` is off, as in Django.
        """
        if isinstance(value, datetime) and value.tzinfo is None and not settings.USE_TZ:
            value = timezone.make_aware(value)
        self._get_session().set_expiry(value)

    async def aset_expiry(self, value: int | float | datetime | timedelta | None) -> None:
        """Coroutine form of :meth:`set_expiry`."""
        await self._aget_session()
        self.set_expiry(value)


# --------------------------------------------------------------------------- devices


_View = TypeVar("_View", bound=Callable[..., Any])


class _SeeOther(HttpResponseRedirect):  # type: ignore[misc]
    status_code = 303


def require_fresh_login(
    max_age: int, *, reauth_path: str | None = None
) -> Callable[[_View], _View]:
    """A view decorator: run the view only for a login at most ``max_age`` seconds old.

    Any other request (a stale login, or no login) is redirected (303) to the
    re-authentication page (``reauth_path``, by default the kit's ``reauth_path``) with
    a same-origin ``next`` back to this view. That page asks for the password again,
    calls ``session_of(request).confirm_login()`` and redirects to
    :func:`sessionkit.devices.safe_next` of ``request.GET.get("next")``. Works on sync
    and async function views::

        @require_POST
        @require_fresh_login(300)
        def delete_account(request): ...

    A ``max_age`` that is not a positive whole number of seconds raises
    :class:`~sessionkit.ConfigurationError` when the view is decorated.
    """
    check_fresh_login(max_age, reauth_path)

    def decorate(view: _View) -> _View:
        def stale(request: HttpRequest) -> HttpResponse | None:
            location = fresh_login_location(_state(request), max_age, reauth_path=reauth_path)
            return None if location is None else _SeeOther(location)

        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def afresh_only(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                redirect = stale(request)
                if redirect is not None:
                    return redirect
                return await view(request, *args, **kwargs)

            return cast(_View, afresh_only)

        @functools.wraps(view)
        def fresh_only(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            redirect = stale(request)
            if redirect is not None:
                return redirect
            return view(request, *args, **kwargs)

        return cast(_View, fresh_only)

    return decorate


def sessions_of(request: HttpRequest) -> list[SessionInfo]:
    """The live sessions of the request's signed-in user, this request's marked ``current``.

    Empty for a request without a signed-in user (``request.user`` anonymous). Needs a
    store in the kit, like :meth:`SessionKit.sessions_of`.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    return get_kit().sessions_of(_user_key(user), current=session_of(request))


async def asessions_of(request: HttpRequest) -> list[SessionInfo]:
    """Coroutine form of :func:`sessions_of`, for async views (``request.auser()``)."""
    user = await request.auser()
    if not user.is_authenticated:
        return []
    return await get_kit().asessions_of(_user_key(user), current=session_of(request))


def revoke_session(request: HttpRequest, handle: str) -> bool:
    """End the session of the request's user that ``handle`` names (see :func:`sessions_of`).

    A handle that is not one of that user's ends nothing, returns False and is reported
    as a security event (see :meth:`SessionKit.revoke_session`).
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    client = request.META.get("REMOTE_ADDR")
    return get_kit().revoke_session(_user_key(user), handle, client=client)


async def arevoke_session(request: HttpRequest, handle: str) -> bool:
    """Coroutine form of :func:`revoke_session`, for async views."""
    user = await request.auser()
    if not user.is_authenticated:
        return False
    client = request.META.get("REMOTE_ADDR")
    return await get_kit().arevoke_session(_user_key(user), handle, client=client)


# --------------------------------------------------------------------------- events


def report_to_django(kit: SessionKit) -> None:
    """Also log the kit's refused cookies on ``django.security.SuspiciousSession``.

    That is where Django reports a session it cannot decode (``Session data
    corrupted``), under the ``django`` logger that Django's default ``LOGGING`` (and most
    projects' own) sends to the console and the admins, so existing alerting on it sees
    sessionkit's refusals too: rate limited like the ``sessionkit.security`` log, each
    record carrying the event (``record.sessionkit_event``, the fields of
    :class:`sessionkit.events.JSONFormatter`). Expiry is routine and not reported there.
    :func:`get_kit` calls it once per kit.
    """
    kit.reporter.also_log_to(_SUSPICIOUS, security_only=True, prefix="Session data corrupted: ")
