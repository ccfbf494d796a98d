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
``Cache-Control`` to the response. Django's ``CsrfViewMiddleware`` stays in charge of
cross-site request forgery: sessionkit's checks (:mod:`sessionkit.forgery`) are off under
Django unless the kit is given forgery settings (``forgery``, ``trusted_origins`` or
``csrf_exempt``). Django itself never
sets the session cookie, so the session cookie, the visitor cookie and their attributes
are the kit's alone: of Django's session settings only ``SESSION_ENGINE``,
``SESSION_COOKIE_NAME`` and ``SESSION_EXPIRE_AT_BROWSER_CLOSE`` are read, and checked
against the kit at start-up; the other ``SESSION_COOKIE_*`` settings,
``SESSION_COOKIE_AGE`` and ``SESSION_SAVE_EVERY_REQUEST`` are replaced by the kit's
settings.

``request.session`` keeps Django's API. ``cycle_key()`` rotates the id (``session.rotate()``);
writing ``_auth_user_id`` (what ``django.contrib.auth.login()`` does after ``cycle_key()``)
binds the session to that user (``session.login(user_id)``: a new id and family, so a
planted id is worthless, and ``kit.revoke_user`` finds it); ``flush()`` (what ``logout()``
calls) invalidates it. Timeouts are the kit's for every session: ``get_expiry_age()`` and
``get_expiry_date()`` report them, and ``set_expiry()`` accepts only what they already
say, raising ``NotImplementedError`` otherwise. ``clear_expired()`` has nothing to do:
cookies expire by themselves and store records with their session.

A :class:`SessionStore` built outside a request (``SessionStore()``, ``SessionStore(key)``,
as Django's test client does for ``client.login()`` and ``client.session``) opens the
sealed cookie value ``key`` itself, and its ``save()`` seals: ``session_key`` is then the
new cookie value, as with Django's ``signed_cookies`` engine.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Container, Mapping
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from http.cookies import Morsel
from typing import Any, cast

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.http.response import HttpResponseBase, HttpResponseRedirectBase
from django.utils import timezone

from ..access import csrf_token as _csrf_token
from ..access import opt_in as _opt_in
from ..access import opt_out as _opt_out
from ..access import session_of as _session_of
from ..access import visitor_of as _visitor_of
from ..errors import ConfigurationError
from ..forgery import Provenance
from ..gate import EarlyResponse
from ..kit import Exchange, HeaderChanges, SessionKit
from ..session import Session, UserId
from ..stores.base import StoreUnavailable

__all__ = [
    "ENGINE",
    "SessionKitMiddleware",
    "SessionStore",
    "arevoke_user",
    "csrf_token",
    "get_kit",
    "opt_in",
    "opt_out",
    "revoke_user",
    "session_of",
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
    try:
        if "secret_keys" in config:
            return SessionKit(**config)
        return SessionKit.from_env(**config)
    except (ConfigurationError, TypeError) as exc:
        raise ImproperlyConfigured(f"settings.SESSIONKIT: {exc}") from exc


def _forget_kit(*, setting: str, **kwargs: Any) -> None:
    global _kit
    if setting == "SESSIONKIT":
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
    if kit.persistent_cookie == settings.SESSION_EXPIRE_AT_BROWSER_CLOSE:
        raise ImproperlyConfigured(
            f"SESSION_EXPIRE_AT_BROWSER_CLOSE is {settings.SESSION_EXPIRE_AT_BROWSER_CLOSE} but "
            f"the kit has persistent_cookie={kit.persistent_cookie}: put "
            f"persistent_cookie={not settings.SESSION_EXPIRE_AT_BROWSER_CLOSE} in "
            "settings.SESSIONKIT (sessionkit decides the cookie's lifetime)"
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
            provenance=provenance,
        )


def _bind(request: HttpRequest, exchange: Exchange) -> None:
    # Only the exchange goes in META (its repr is opaque): Django's error reports print
    # META, and neither the session's data nor the visitor id belongs there.
    request.META[_EXCHANGE] = exchange
    request.session = SessionStore(exchange=exchange)


# --------------------------------------------------------------------------- engine


def _unsupported(what: str) -> NotImplementedError:
    kit = get_kit()
    return NotImplementedError(
        f"{what}: sessionkit applies one policy to every session. The idle timeout "
        f"(idle_timeout={kit.idle_timeout}), the absolute timeout "
        f"(absolute_timeout={kit.absolute_timeout}) and whether the cookie outlives the "
        f"browser (persistent_cookie={kit.persistent_cookie}) are SessionKit settings: "
        "change them in settings.SESSIONKIT"
    )


class SessionStore(SessionBase):  # type: ignore[misc]
    """Django's ``request.session`` API over a sessionkit session.

    In a request, :class:`SessionKitMiddleware` builds it over the request's session and
    saves it when the response starts: ``save()`` only makes sure the cookie is re-issued.
    Built by hand (``SessionStore(cookie_value)``), it opens that cookie value, and
    ``save()`` seals the session into ``session_key``.
    """

    def __init__(self, session_key: str | None = None, *, exchange: Exchange | None = None) -> None:
        self.accessed = False
        self._exchange = exchange
        self._bound = exchange is not None
        self._cookie_value = session_key or None
        if exchange is not None:
            self._session_cache: Session = exchange.session
        else:
            _check_middleware()

    # -- where the session comes from

    def _open(self, exchange: Exchange, early: EarlyResponse | None) -> Session:
        if early is not None:
            raise StoreUnavailable("the session store did not answer; the session is unknown")
        self._exchange = exchange
        self._session_cache = exchange.session
        return exchange.session

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

    @property
    def session_key(self) -> str | None:
        """In a request, the session's current opaque id; built by hand, the cookie value.

        By hand it is the value given, then after :meth:`save` the sealed cookie value
        (``""`` when the session is empty and needs no cookie).
        """
        if self._bound:
            return self._get_session().id
        return self._cookie_value

    @property
    def _session_key(self) -> str | None:
        return self.session_key

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
        session[key] = value
        if key == AUTH_USER_KEY:
            session.login(cast(UserId, value))

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
        """Remove all data; the id and the user binding stay (use :meth:`flush` to log out)."""
        self._get_session().clear()

    # -- lifecycle

    def cycle_key(self) -> None:
        """Give the session a new id and keep its data (``session.rotate()``)."""
        self._get_session().rotate()

    async def acycle_key(self) -> None:
        """Coroutine form of :meth:`cycle_key`."""
        (await self._aget_session()).rotate()

    def flush(self) -> None:
        """Log out: drop data and user, new id, old id revoked with a store."""
        self._get_session().invalidate()

    async def aflush(self) -> None:
        """Coroutine form of :meth:`flush`."""
        (await self._aget_session()).invalidate()

    def create(self) -> None:
        """Start over under a new id, keeping the data, and save."""
        self.cycle_key()
        self.save()

    async def acreate(self) -> None:
        """Coroutine form of :meth:`create`."""
        await self.acycle_key()
        await self.asave()

    def exists(self, session_key: str) -> bool:
        """Always False: sessions live in their cookies and cannot be looked up by key."""
        return False

    async def aexists(self, session_key: str) -> bool:
        """Coroutine form of :meth:`exists`."""
        return False

    def delete(self, session_key: str | None = None) -> None:
        """Delete this session (as :meth:`flush`); another session cannot be named by key."""
        if session_key is not None and session_key != self.session_key:
            raise NotImplementedError(
                "sessionkit cannot delete another session by key: sessions live in their "
                "cookies. End all of a user's sessions with revoke_user(user) (needs a store)"
            )
        self.flush()

    async def adelete(self, session_key: str | None = None) -> None:
        """Coroutine form of :meth:`delete`."""
        self.delete(session_key)

    def save(self, must_create: bool = False) -> None:
        """Make sure the session is saved: re-issued by the middleware, or sealed by hand."""
        self._get_session().modified = True
        if not self._bound:
            self._saved(cast(Exchange, self._exchange).finish([], []))

    async def asave(self, must_create: bool = False) -> None:
        """Coroutine form of :meth:`save`."""
        (await self._aget_session()).modified = True
        if not self._bound:
            self._saved(await cast(Exchange, self._exchange).afinish([], []))

    def _saved(self, changes: HeaderChanges | EarlyResponse) -> None:
        if isinstance(changes, EarlyResponse):
            raise StoreUnavailable("the session store did not answer; the session is not saved")
        prefix = f"{get_kit().session_spec.name}="
        value = ""
        for name, header in changes.add:
            if name == "Set-Cookie" and header.startswith(prefix):
                value = header[len(prefix) :].partition(";")[0]
        self._cookie_value = value
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

    # -- expiry: the kit's policy, the same for every session

    def get_session_cookie_age(self) -> int:
        """The idle timeout: the longest a session cookie is kept."""
        return get_kit().idle_timeout

    def get_expiry_age(self, *, modification: datetime | None = None, expiry: object = None) -> int:
        """Seconds from ``modification`` (now) until the session ends if left idle.

        That is the idle timeout, or less when the absolute timeout comes first.
        """
        if expiry is not None:
            raise _unsupported("get_expiry_age(expiry=...)")
        kit = get_kit()
        now = kit.clock() if modification is None else modification.timestamp()
        return kit.seconds_left(self._get_session(), now)

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
        """Whether the session cookie ends with the browser (``persistent_cookie=False``)."""
        return not get_kit().persistent_cookie

    async def aget_expire_at_browser_close(self) -> bool:
        """Coroutine form of :meth:`get_expire_at_browser_close`."""
        return self.get_expire_at_browser_close()

    def set_expiry(self, value: int | float | datetime | timedelta | None) -> None:
        """Accept what the kit's policy already says; raise ``NotImplementedError`` otherwise.

        ``None`` (the global policy) always passes; ``0`` passes when the session cookie
        ends with the browser; a number of seconds passes when it is the idle timeout.
        A date, or any other value, is refused: the policy is the same for every session.
        """
        kit = get_kit()
        if value is None:
            return
        if not isinstance(value, datetime | timedelta | bool):
            if value == 0 and not kit.persistent_cookie:
                return
            if value == kit.idle_timeout:
                return
        raise _unsupported(f"set_expiry({value!r})")

    async def aset_expiry(self, value: int | float | datetime | timedelta | None) -> None:
        """Coroutine form of :meth:`set_expiry`."""
        self.set_expiry(value)
