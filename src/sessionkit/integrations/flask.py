"""Flask integration: ``init_app(app)`` (or ``init_app(app, kit)``), and ``flask.session``
is a sessionkit session.

:func:`init_app` does two things:

1. it wraps ``app.wsgi_app`` in :class:`sessionkit.wsgi.SessionMiddleware`, which opens
   the session, runs the cookies-required gate (the app, its ``before_request`` and
   ``after_request`` hooks included, is never called while the gate answers), loads the
   store record, and writes every cookie and header when the response starts;
2. it installs :class:`SessionKitInterface` as ``app.session_interface``, which hands
   Flask the session the middleware opened, so ``flask.session`` *is* that session:
   ``session.login(user_id)``, ``session.invalidate()``, ``session.rotate()`` and
   ``session.id`` work on it, and :func:`current_session` returns it typed.

**The kit.** Without a kit, ``init_app(app)`` builds one at the first request (or the
first ``app.test_request_context()``) from ``app.config``: the keys from
``SESSIONKIT_SECRET_KEYS`` (a list, or a comma-separated string, newest first) or else the
environment (:meth:`SessionKit.from_env`), any other keyword of :class:`SessionKit` from
the ``SESSIONKIT`` dict, and Flask's own session settings. Such a kit makes browser-session
cookies unless a session is made permanent, as Flask does (``persistent_cookie=False``;
``SESSIONKIT`` may say otherwise).

**Flask's settings** are honoured or refused, never silently dropped. A setting left at
Flask's default is no choice, and sessionkit's secure default stands (``Secure``,
``HttpOnly``, ``SameSite=Lax``, the ``__Host-session`` name). A setting that differs from
Flask's default is honoured: ``SESSION_COOKIE_NAME``, ``_DOMAIN``, ``_PATH`` (else
``APPLICATION_ROOT``), ``_SECURE``, ``_SAMESITE`` (``"Strict"``, ``"Lax"``) and
``_PARTITIONED``, and ``PERMANENT_SESSION_LIFETIME``; unless it would weaken the cookie
(``SESSION_COOKIE_HTTPONLY=False``, ``SESSION_COOKIE_SAMESITE="None"``), or it contradicts
an explicit kit: then the first request raises :class:`~sessionkit.ConfigurationError`
naming the fix (remove the setting, or say the same to the kit, explicitly). These are read
once, when the kit is built or checked. ``SESSION_REFRESH_EACH_REQUEST`` is read on every
request, as Flask does: when true (Flask's default), a permanent session's cookie is
re-issued on every request that carries it, which opens the session of every such request
even when the app never looks at it; set it to False to keep those requests free (the
cookie is then refreshed at most once per ``touch_interval``, when the app uses the
session).

Cross-site request forgery protection (:mod:`sessionkit.forgery`) runs in the middleware
too, before Flask routes the request; a view decorated with :func:`csrf_exempt` is
exempt, and templates make tokens with ``{{ csrf_token() }}``.

**Permanent sessions.** ``session.permanent = True`` gives the session
``PERMANENT_SESSION_LIFETIME`` of inactivity (:meth:`Session.set_expiry`, capped by the
kit's ``max_lifetime``: Flask's default of 31 days becomes 30), sealed in the cookie and
enforced on the server: "remember me". ``session.permanent = False`` makes the cookie end
when the browser closes, under the kit's idle and absolute timeouts.

**Values** round-trip as through Flask's own serializer: ``tuple``, ``bytes``,
``Markup`` (flashed messages included), ``UUID`` and ``datetime`` (to the second, as
Flask's tag keeps it) come back as what was stored. A session value is kept in its tagged
JSON form (``flask.json.tag.TaggedJSONSerializer``) and converted back when read; a
value that holds nothing to tag is kept as the very object stored, so changing it in place
and setting ``session.modified = True`` works as in Flask. A value the serializer cannot
represent is refused when it is assigned.

**Flask-Login.** When the app has a Flask-Login ``LoginManager``, writing ``_user_id``
(``login_user``, or a test's ``sess["_user_id"] = ...``) logs in: the session is bound to
that user under a new id (:meth:`Session.login`); removing it (``logout_user``) logs out
(:meth:`Session.invalidate`).

**Tests.** ``app.test_request_context()`` and the test client's ``session_transaction()``
open the request's cookie through the kit without the middleware, and their
``save_session`` writes the cookies onto the response, so ``flash()`` in a test request
context and ``sess["key"] = value`` in a transaction work and persist.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable, ItemsView, Mapping, ValuesView
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import flask
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SecureCookieSessionInterface, SessionInterface, SessionMixin
from werkzeug.exceptions import HTTPException

from ..access import csrf_token, fresh_login_location, visitor_of
from ..devices import check_fresh_login
from ..errors import ConfigurationError
from ..exchange import Exchange, HeaderChanges
from ..forgery import csrf_exempt, marked_exempt
from ..gate import EarlyResponse
from ..kit import SessionKit
from ..naming import NamedKits
from ..session import Session, check_value
from ..wsgi import SessionMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask.wrappers import Request, Response

__all__ = [
    "FlaskSession",
    "SessionKitInterface",
    "csrf_exempt",
    "current_csrf_token",
    "current_session",
    "current_visitor",
    "init_app",
    "report_to_app_logger",
    "require_fresh_login",
]

#: Where :class:`sessionkit.wsgi.SessionMiddleware` leaves the request's session.
_ENVIRON_SESSION = "sessionkit.session"
_ENVIRON_EXCHANGE = "sessionkit.exchange"
#: ``app.extensions`` key holding the kit.
EXTENSION = "sessionkit"
#: ``app.config`` keys read when init_app builds the kit.
CONFIG_SETTINGS = "SESSIONKIT"
CONFIG_KEYS = "SESSIONKIT_SECRET_KEYS"
#: The session key Flask-Login keeps the user id under.
FLASK_LOGIN_USER_KEY = "_user_id"

_OUTSIDE = (
    "this request's session is not a sessionkit session: call "
    "sessionkit.integrations.flask.init_app(app) before the request context is pushed"
)

_DEFAULTS = flask.Flask.default_config
_TAGS = TaggedJSONSerializer()
_PLAIN = (str, int, float, bool, type(None))
_MISSING: Any = object()


# ------------------------------------------------------------------------ value tagging


def _tagged(value: Any) -> Any:
    """The form a value is kept in: itself when nothing in it needs a tag."""
    if type(value) in _PLAIN:
        return value
    tagged = _TAGS.tag(value)
    if tagged is value:
        return value  # nothing the serializer knows: check_value decides
    try:
        same = bool(tagged == value)
    except Exception:
        same = False
    return value if same else tagged


def _untagged(value: Any) -> Any:
    """A kept value back as what was stored; the same object when nothing was tagged."""
    kind = type(value)
    if kind is dict:
        out = value
        for key, item in value.items():
            converted = _untagged(item)
            if converted is not item:
                if out is value:
                    out = dict(value)
                out[key] = converted
        return _TAGS.untag(out) if len(out) == 1 else out
    if kind is list:
        out = value
        for index, item in enumerate(value):
            converted = _untagged(item)
            if converted is not item:
                if out is value:
                    out = list(value)
                out[index] = converted
        return out
    return value


# ------------------------------------------------------------------------ the session


class FlaskSession(Session):
    """A sessionkit :class:`~sessionkit.Session` that also meets Flask's ``SessionMixin``.

    It adds ``permanent`` and ``new``, keeps the values Flask's serializer keeps, and
    turns Flask-Login's ``_user_id`` into :meth:`login` and :meth:`invalidate`. The session
    the WSGI middleware opened becomes one in place (same storage layout), so
    ``flask.session`` and ``sessionkit.wsgi.session_of(request.environ)`` are the same
    object. ``accessed`` is the sessionkit session's own: Flask sets it on every use of
    ``flask.session``, and ``Vary: Cookie`` follows it.
    """

    __slots__ = ()

    #: The interface (and so the app) this session belongs to; set on each app's subclass.
    _interface: ClassVar[SessionKitInterface | None] = None

    # -- Flask's SessionMixin --------------------------------------------------------

    @property
    def permanent(self) -> bool:
        """Whether the session has its own lifetime and a cookie that outlives the browser.

        Setting it to True gives the session ``PERMANENT_SESSION_LIFETIME`` of inactivity
        (capped by the kit's ``max_lifetime``); setting it to False makes the cookie end
        when the browser closes, under the kit's timeouts.
        """
        lifetime = self.lifetime
        return lifetime is not None and lifetime.persistent

    @permanent.setter
    def permanent(self, value: bool) -> None:
        if value:
            if not self.permanent:
                self.set_expiry(self._owner().permanent_lifetime())
        elif self.persistent:
            self.set_expiry(0)

    @property
    def new(self) -> bool:
        """Flask's name for :attr:`is_new`: no valid session cookie came with the request."""
        self.open()
        return self.is_new

    def _owner(self) -> SessionKitInterface:
        interface = self._interface
        if interface is None:
            raise RuntimeError("this session was not opened by a SessionKitInterface")
        return interface

    def _binds_logins(self) -> bool:
        interface = self._interface
        return interface is not None and interface.uses_flask_login()

    # -- writes ----------------------------------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        kept = _tagged(value)
        if key == FLASK_LOGIN_USER_KEY and self._binds_logins():
            check_value(key, kept)
            self.login(value if type(value) in (str, int) else str(value))
        Session.__setitem__(self, key, kept)

    def __delitem__(self, key: str) -> None:
        if key == FLASK_LOGIN_USER_KEY and self._binds_logins() and key in self:
            self.invalidate()
            return
        Session.__delitem__(self, key)

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value (or ``default``), as ``dict.pop``."""
        if key == FLASK_LOGIN_USER_KEY and self._binds_logins() and key in self:
            value = self[key]
            self.invalidate()
            return value
        value = Session.pop(self, key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise KeyError(key)
            return default
        return _untagged(value)

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last inserted item, as ``dict.popitem``."""
        key, value = Session.popitem(self)
        if key == FLASK_LOGIN_USER_KEY and self._binds_logins():
            self.invalidate()
        return key, _untagged(value)

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Return ``session[key]``, first storing ``default`` there if it is missing."""
        return _untagged(Session.setdefault(self, key, default))

    # -- reads -----------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return _untagged(Session.__getitem__(self, key))

    def get(self, key: str, default: Any = None) -> Any:
        """``session[key]`` if present, else ``default``."""
        value = Session.get(self, key, _MISSING)
        return default if value is _MISSING else _untagged(value)

    def values(self) -> Any:
        """The values, as stored."""
        return ValuesView(self)

    def items(self) -> Any:
        """The items, the values as stored."""
        return ItemsView(self)

    def copy(self) -> dict[str, Any]:
        """A plain ``dict`` copy of the data, the values as stored."""
        return {key: self[key] for key in Session.keys(self)}

    def __eq__(self, other: object) -> bool:
        return self.copy() == other

    def __ne__(self, other: object) -> bool:
        return self.copy() != other

    __hash__ = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.copy()!r})"

    def __or__(self, other: Any) -> dict[str, Any]:  # type: ignore[override]
        return self.copy() | other  # type: ignore[no-any-return]

    def __reduce__(self) -> Any:
        return (dict, (self.copy(),))


SessionMixin.register(FlaskSession)


# ------------------------------------------------------------------------ Flask's settings


def _setting(config: Mapping[str, Any], name: str) -> Any:
    return config.get(name, _DEFAULTS.get(name))


def _differs(config: Mapping[str, Any], name: str) -> bool:
    return bool(_setting(config, name) != _DEFAULTS.get(name))


def _flask_path(config: Mapping[str, Any]) -> str:
    """The cookie path Flask would use: ``SESSION_COOKIE_PATH``, else ``APPLICATION_ROOT``."""
    return str(_setting(config, "SESSION_COOKIE_PATH") or _setting(config, "APPLICATION_ROOT"))


def _flask_same_site(config: Mapping[str, Any]) -> str | None:
    value = _setting(config, "SESSION_COOKIE_SAMESITE")
    if value is None:
        return None
    if not isinstance(value, str) or value.lower() not in ("strict", "lax", "none"):
        raise ConfigurationError(
            f"SESSION_COOKIE_SAMESITE={value!r} is not one of 'Strict', 'Lax', 'None' or None"
        )
    return value.lower()


def _honoured(config: Mapping[str, Any]) -> dict[str, Any]:
    """The kit settings that Flask's own settings ask for (those not at Flask's default)."""
    settings: dict[str, Any] = {}
    if _differs(config, "SESSION_COOKIE_NAME"):
        settings["session_cookie"] = _setting(config, "SESSION_COOKIE_NAME")
    if _setting(config, "SESSION_COOKIE_DOMAIN"):
        settings["domain"] = _setting(config, "SESSION_COOKIE_DOMAIN")
    path = _flask_path(config)
    if path != "/":
        settings["path"] = path
    if _setting(config, "SESSION_COOKIE_SECURE"):
        settings["secure"] = True
    same_site = _flask_same_site(config)
    if same_site in ("strict", "lax"):
        settings["same_site"] = same_site
    if _setting(config, "SESSION_COOKIE_PARTITIONED"):
        settings["partitioned"] = True
    return settings


def _kit_from_config(app: flask.Flask) -> SessionKit:
    """Build the kit of an app that gave init_app none (see the module docstring)."""
    config = app.config
    extra = config.get(CONFIG_SETTINGS) or {}
    if not isinstance(extra, Mapping):
        raise ConfigurationError(
            f"app.config[{CONFIG_SETTINGS!r}] must be a dict of SessionKit settings, not "
            f"{type(extra).__name__}"
        )
    settings: dict[str, Any] = {"persistent_cookie": False, **_honoured(config), **extra}
    keys = config.get(CONFIG_KEYS)
    if isinstance(keys, str):
        keys = [key.strip() for key in keys.split(",") if key.strip()]
    if keys:
        settings["secret_keys"] = keys
    elif "secret_keys" not in settings and not os.environ.get(CONFIG_KEYS, "").strip():
        raise ConfigurationError(
            f"no keys for sessionkit: set app.config[{CONFIG_KEYS!r}] or the environment "
            f"variable {CONFIG_KEYS} to a key made by `sessionkit keygen` (several keys "
            "newest first), or pass a SessionKit to init_app(app, kit)"
        )
    try:
        if "secret_keys" in settings:
            return SessionKit(**settings)
        return SessionKit.from_env(**settings)
    except TypeError as exc:
        raise ConfigurationError(
            f"app.config[{CONFIG_SETTINGS!r}] holds a setting SessionKit does not take: {exc}"
        ) from None


def _check(app: flask.Flask, kit: SessionKit, explicit: bool) -> None:
    """Refuse Flask settings the kit does not meet, each with its fix."""
    config = app.config
    spec = kit.session_spec
    problems: list[str] = []

    def tell(setting: str, why: str, kit_setting: str, first: str = "") -> None:
        first = first or f"remove {setting}"
        if explicit:
            fix = f"{first}, or build the kit with SessionKit({kit_setting})"
        else:
            fix = f"{first}, or add {kit_setting} to app.config[{CONFIG_SETTINGS!r}]"
        problems.append(f"{why}: {fix}")

    name = _setting(config, "SESSION_COOKIE_NAME")
    if _differs(config, "SESSION_COOKIE_NAME") and name != spec.name:
        tell(
            "SESSION_COOKIE_NAME",
            f"SESSION_COOKIE_NAME={name!r}, but the kit names its session cookie {spec.name!r}",
            f"session_cookie={name!r}",
        )
    domain = _setting(config, "SESSION_COOKIE_DOMAIN")
    if domain and str(domain).lstrip(".") != (spec.domain or "").lstrip("."):
        tell(
            "SESSION_COOKIE_DOMAIN",
            f"SESSION_COOKIE_DOMAIN={domain!r}, but the kit's session cookie has "
            f"{'no Domain' if spec.domain is None else f'Domain={spec.domain}'}",
            f"domain={domain!r}",
        )
    path = _flask_path(config)
    if path != "/" and path != spec.path:
        setting = "SESSION_COOKIE_PATH" if config.get("SESSION_COOKIE_PATH") else "APPLICATION_ROOT"
        tell(
            setting,
            f"{setting} asks for the session cookie path {path!r}, but the kit's is {spec.path!r}",
            f"path={path!r}",
            f"set SESSION_COOKIE_PATH={spec.path!r}",
        )
    if not _setting(config, "SESSION_COOKIE_HTTPONLY") and spec.http_only:
        tell(
            "SESSION_COOKIE_HTTPONLY=False",
            "SESSION_COOKIE_HTTPONLY=False would let the page's scripts read the session "
            "cookie (so any cross-site scripting flaw could steal the session), and "
            "sessionkit keeps it HttpOnly",
            "http_only=False",
        )
    if _setting(config, "SESSION_COOKIE_SECURE") and not spec.secure:
        problems.append(
            "SESSION_COOKIE_SECURE=True, but the kit sends its cookies without Secure "
            "(insecure_development=True): drop insecure_development, or remove "
            "SESSION_COOKIE_SECURE on a development machine"
        )
    same_site = _flask_same_site(config)
    if same_site is not None and same_site != spec.same_site:
        why = (
            "SESSION_COOKIE_SAMESITE='None' would send the session cookie on requests that "
            f"other sites make (cross-site request forgery), and the kit sends "
            f"SameSite={spec.same_site.capitalize()}"
            if same_site == "none"
            else f"SESSION_COOKIE_SAMESITE={same_site.capitalize()!r}, but the kit sends "
            f"SameSite={spec.same_site.capitalize()}"
        )
        tell("SESSION_COOKIE_SAMESITE", why, f"same_site={same_site!r}")
    if _setting(config, "SESSION_COOKIE_PARTITIONED") and not spec.partitioned:
        tell(
            "SESSION_COOKIE_PARTITIONED",
            "SESSION_COOKIE_PARTITIONED=True, but the kit's session cookie is not Partitioned",
            "partitioned=True",
        )
    if problems:
        raise ConfigurationError("; ".join(problems))
    _permanent_seconds(app, kit, explicit)


def _permanent_seconds(app: flask.Flask, kit: SessionKit, explicit: bool) -> int:
    """``PERMANENT_SESSION_LIFETIME`` in seconds, refused when the kit cannot meet it."""
    lifetime = app.permanent_session_lifetime
    seconds = int(lifetime.total_seconds())
    if seconds <= 0:
        raise ConfigurationError(
            f"PERMANENT_SESSION_LIFETIME={lifetime!r} must be positive: it is how long a "
            "permanent session lives without a request"
        )
    if seconds > kit.max_lifetime and lifetime != _DEFAULTS["PERMANENT_SESSION_LIFETIME"]:
        where = (
            "build the kit with SessionKit(max_lifetime=...)"
            if explicit
            else f"add max_lifetime to app.config[{CONFIG_SETTINGS!r}]"
        )
        raise ConfigurationError(
            f"PERMANENT_SESSION_LIFETIME is {seconds}s, longer than the kit's max_lifetime "
            f"({kit.max_lifetime}s), the longest any session may live: lower it, or {where} "
            f"of at least {seconds}"
        )
    return seconds


def _uses_flask_login(app: flask.Flask) -> bool:
    manager = getattr(app, "login_manager", None)
    module = sys.modules.get("flask_login")
    return manager is not None and module is not None and isinstance(manager, module.LoginManager)


# ------------------------------------------------------------------------ the interface


def _open_exchange(kit: SessionKit, environ: WSGIEnvironment) -> Exchange:
    """Open a request's cookies through the kit, for a request the middleware did not see."""
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    exchange = kit.open(
        environ.get("HTTP_COOKIE"),
        client=environ.get("REMOTE_ADDR"),
        sec_gpc=environ.get("HTTP_SEC_GPC"),
        dnt=environ.get("HTTP_DNT"),
        forwarded_for=environ.get("HTTP_X_FORWARDED_FOR"),
        method=environ.get("REQUEST_METHOD", "GET"),
        path=path.encode("latin-1", "replace").decode("utf-8", "replace"),
        accept=environ.get("HTTP_ACCEPT"),
        user_agent=environ.get("HTTP_USER_AGENT"),
        request_id=environ.get(kit.events.request_id_environ or ""),
    )
    # Not a request the gate answers: there is no client to redirect. A store that does
    # not answer leaves the session empty.
    if exchange.pending is not None:
        exchange.load_record()
    environ[_ENVIRON_SESSION] = exchange.session
    environ[_ENVIRON_EXCHANGE] = exchange
    return exchange


def _apply(response: Response, changes: HeaderChanges | EarlyResponse) -> None:
    """Put an exchange's header changes (or the response that replaces it) on ``response``."""
    headers = response.headers
    if isinstance(changes, EarlyResponse):
        response.status_code = changes.status
        response.set_data(changes.body)
        headers.clear()
        for name, value in changes.headers:
            headers.add(name, value)
        return
    if changes.drop_cache_control:
        del headers["Cache-Control"]
    for name, value in changes.add:
        if name == "Vary":
            response.vary.add(value)
        else:
            headers.add(name, value)


class SessionKitInterface(SessionInterface):
    """Flask's session interface over sessionkit.

    :meth:`open_session` returns the session the middleware opened for this request, or
    opens the request's cookie through the kit when the middleware did not see it (a test
    request context, a ``session_transaction()``). :meth:`save_session` applies Flask's
    ``Vary`` rule and ``SESSION_REFRESH_EACH_REQUEST``; the middleware writes the cookies
    when the response starts, or :meth:`save_session` writes them itself for a session it
    opened. Install it with :func:`init_app`, which also adds the middleware; installed
    alone (``app.session_interface = SessionKitInterface(kit)``), it opens and saves every
    request itself, without the cookies-required gate.
    """

    def __init__(self, kit: SessionKit | None = None) -> None:
        self._kit = kit
        self._explicit = kit is not None
        self._app: flask.Flask | None = None
        self._named: NamedKits | None = None
        self._ready = False
        self._lock = threading.Lock()
        #: The session class of this interface's app.
        self.session_class = self._subclass()
        #: The session class of a request the middleware did not see (this interface
        #: opened its cookie, and its save_session writes the cookies).
        self._own_class = self._subclass()

    def _subclass(self) -> type[FlaskSession]:
        namespace = {"__slots__": (), "_interface": self}
        return cast("type[FlaskSession]", type("FlaskSession", (FlaskSession,), namespace))

    def bind(self, app: flask.Flask, kit: SessionKit | None = None) -> None:
        """Tie the interface to ``app``, whose config builds or checks the kit.

        ``kit`` is the kit to use, when the interface was made without one. An interface
        serves one app: binding it to a second raises :class:`~sessionkit.ConfigurationError`.
        """
        if self._app is not None and self._app is not app:
            raise ConfigurationError(
                f"this {type(self).__name__} already serves the app {self._app.name!r}: give "
                "each app its own instance (make it in the app factory, not once for a class)"
            )
        if kit is not None:
            if self._kit is not None and self._kit is not kit:
                raise ConfigurationError(
                    f"the app's {type(self).__name__} has a kit already: pass it one kit, "
                    "either to the interface or to init_app(app, kit)"
                )
            self._kit, self._explicit = kit, True
        self._app = app

    @property
    def kit(self) -> SessionKit:
        """The kit, built from ``app.config`` or checked against it on first use."""
        if not self._ready:
            self._prepare()
        return cast(SessionKit, self._kit)

    def _prepare(self) -> None:
        app = self._app
        if app is None:
            raise RuntimeError("SessionKitInterface is not bound to an app: use init_app(app)")
        with self._lock:
            if self._ready:
                return
            kit = self._kit if self._kit is not None else _kit_from_config(app)
            _check(app, kit, self._explicit)
            self._kit = kit
            self._named = NamedKits(kit, asker=f"{type(self).__qualname__}.get_cookie_name")
            app.extensions[EXTENSION] = kit
            report_to_app_logger(app, kit)
            self._ready = True

    def permanent_lifetime(self) -> int:
        """Seconds of inactivity a permanent session lives (``PERMANENT_SESSION_LIFETIME``)."""
        app = self._app
        if app is None:
            raise RuntimeError("SessionKitInterface is not bound to an app: use init_app(app)")
        return _permanent_seconds(app, self.kit, self._explicit)

    def uses_flask_login(self) -> bool:
        """Whether the app has a Flask-Login ``LoginManager`` (``_user_id`` logs in)."""
        return self._app is not None and _uses_flask_login(self._app)

    def open_session(self, app: flask.Flask, request: Request) -> SessionMixin | None:
        """Return the request's sessionkit session as a :class:`FlaskSession`.

        The session cookie is the one :meth:`get_cookie_name` names for this request: an
        override that names another cookie than the kit's gets the session sealed under
        that name (see :func:`sessionkit.naming.renamed`), and it is saved under the
        same name.
        """
        if self._app is None:
            self._app = app
        environ = request.environ
        session = environ.get(_ENVIRON_SESSION)
        kit = self.kit
        name = self.get_cookie_name(app)
        if name != kit.session_spec.name:
            kit = cast(NamedKits, self._named)(name)
            opened = environ.get(_ENVIRON_EXCHANGE)
            if isinstance(opened, Exchange) and opened.kit is not kit:
                # The middleware read the kit's own cookie; this request's is another.
                session = None
        if isinstance(session, Session):
            if type(session) is not self._own_class:
                session.__class__ = self.session_class
        else:
            session = _open_exchange(kit, environ).session
            session.__class__ = self._own_class
        return cast(SessionMixin, session)

    def save_session(self, app: flask.Flask, session: SessionMixin, response: Response) -> None:
        """Apply Flask's ``Vary`` and refresh rules; write the cookies of a session opened here."""
        found: object = session
        kind = type(found)
        if kind is not self.session_class and kind is not self._own_class:
            # ``flask.session`` itself (a proxy) rather than the session it stands for.
            found = flask.request.environ.get(_ENVIRON_SESSION)
            kind = type(found)
            if kind is not self.session_class and kind is not self._own_class:
                return
        own = cast(FlaskSession, found)
        if app.config.get("SESSION_REFRESH_EACH_REQUEST", True):
            self._refresh(own)
        if own.accessed and any(name.lower() == "vary" for name, _ in response.headers):
            # One Vary line, as Flask writes it; without one the exchange adds its own.
            response.vary.add("Cookie")
        if kind is self._own_class:
            exchange: Exchange = flask.request.environ[_ENVIRON_EXCHANGE]
            headers = response.headers
            changes = exchange.finish(headers.getlist("Vary"), headers.getlist("Cache-Control"))
            _apply(response, changes)

    def _refresh(self, session: Session) -> None:
        """Re-issue a permanent session's cookie, as Flask does on every request."""
        if not session.opened:
            environ = flask.request.environ
            cookies = environ.get("HTTP_COOKIE")
            opened = environ.get(_ENVIRON_EXCHANGE)
            kit = opened.kit if isinstance(opened, Exchange) else self.kit
            if not cookies or f"{kit.session_spec.name}=" not in cookies:
                return
        lifetime = session.state.lifetime
        if lifetime is not None and lifetime.persistent and not session.is_empty:
            session.modified = True

    # Flask extensions that read the cookie's attributes get the kit's, which are the
    # ones sent.

    def get_cookie_name(self, app: flask.Flask) -> str:
        """The kit's session cookie name.

        :meth:`open_session` asks it on every request, so a subclass may name another
        cookie for some requests (by ``flask.request.path``, say): that request's session
        is sealed under the name returned (see :func:`sessionkit.naming.renamed`). At most
        :data:`~sessionkit.naming.MAX_COOKIE_NAMES` names other than the kit's are
        accepted, and a name that is no valid cookie name, or breaks its prefix's rules
        under the kit's settings, raises :class:`~sessionkit.ConfigurationError`.
        """
        return self.kit.session_spec.name

    def get_cookie_domain(self, app: flask.Flask) -> str | None:
        """The kit's session cookie ``Domain`` (None: host-only)."""
        return self.kit.session_spec.domain

    def get_cookie_path(self, app: flask.Flask) -> str:
        """The kit's session cookie ``Path``."""
        return self.kit.session_spec.path

    def get_cookie_httponly(self, app: flask.Flask) -> bool:
        """Whether the kit's session cookie is ``HttpOnly``."""
        return self.kit.session_spec.http_only

    def get_cookie_secure(self, app: flask.Flask) -> bool:
        """Whether the kit's session cookie is ``Secure``."""
        return self.kit.session_spec.secure

    def get_cookie_samesite(self, app: flask.Flask) -> str | None:
        """The kit's session cookie ``SameSite`` value."""
        return self.kit.session_spec.same_site.capitalize()

    def get_cookie_partitioned(self, app: flask.Flask) -> bool:
        """Whether the kit's session cookie is ``Partitioned``."""
        return self.kit.session_spec.partitioned


class _Middleware:
    """``app.wsgi_app``: sessionkit's WSGI middleware, made at the first request."""

    def __init__(
        self,
        app: WSGIApplication,
        interface: SessionKitInterface,
        csrf_exempt: Callable[[WSGIEnvironment], bool],
    ) -> None:
        self.app = app
        self.interface = interface
        self._csrf_exempt = csrf_exempt
        self._middleware: SessionMiddleware | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        middleware = self._middleware
        if middleware is None:
            middleware = self._middleware = SessionMiddleware(
                self.app, self.interface.kit, csrf_exempt=self._csrf_exempt
            )
        return middleware(environ, start_response)


def init_app(app: flask.Flask, kit: SessionKit | None = None) -> None:
    """Give ``app`` sessionkit sessions, the cookies-required gate and the visitor cookie.

    Call it once, after any other ``app.wsgi_app`` wrapping that must see sessionkit's
    headers (sessionkit wraps what is there). ``flask.session`` is then the request's
    sessionkit session. Without ``kit``, the kit is built at the first request from
    ``app.config`` (see the module docstring); with one, Flask's settings are checked
    against it then. Either way ``app.extensions["sessionkit"]`` holds the kit from then on
    (at once when one is given). Cross-site request forgery protection comes with it:
    views marked with :func:`csrf_exempt` are not checked, and templates get
    ``csrf_token()`` (see :func:`current_csrf_token`).

    An app whose ``session_interface`` is already a :class:`SessionKitInterface` (a
    subclass set on the app's class, as Flask's idiom has it) keeps it: init_app binds it
    to the app. An app with any other session interface than Flask's default is refused
    with a :class:`~sessionkit.ConfigurationError`, rather than silently losing it.
    """
    own = app.session_interface
    if EXTENSION in app.extensions or (isinstance(own, SessionKitInterface) and own._app is app):
        raise ConfigurationError("init_app(app) was already called for this app")
    if kit is not None and not isinstance(kit, SessionKit):
        raise ConfigurationError(f"kit must be a sessionkit.SessionKit, not {type(kit).__name__}")
    if isinstance(own, SessionKitInterface):
        interface = own  # the app's own subclass, set as Flask's class-level idiom has it
    elif type(own) is SecureCookieSessionInterface:
        interface = SessionKitInterface()
    else:
        kind = type(own)
        raise ConfigurationError(
            f"app.session_interface is {kind.__module__}.{kind.__qualname__}, not Flask's "
            "default: the app already has its own session, and init_app would discard it. "
            "Remove that session interface (and any extension that installs it) so that "
            "sessionkit is the session's one owner, or make it a subclass of "
            "SessionKitInterface"
        )
    interface.bind(app, kit)
    if interface._kit is not None:
        app.extensions[EXTENSION] = interface._kit
    app.session_interface = interface
    app.add_template_global(current_csrf_token, "csrf_token")
    app.wsgi_app = _Middleware(  # type: ignore[method-assign]
        app.wsgi_app, interface, partial(_route_exempt, app)
    )


def _route_exempt(app: flask.Flask, environ: WSGIEnvironment) -> bool:
    """Whether the view this request is routed to was marked with :func:`csrf_exempt`."""
    try:
        endpoint, _ = app.url_map.bind_to_environ(environ).match()
    except HTTPException:
        return False
    return marked_exempt(app.view_functions.get(str(endpoint)))


def current_session() -> FlaskSession:
    """The current request's session, typed: ``flask.session`` as a :class:`FlaskSession`."""
    session = flask.request.environ.get(_ENVIRON_SESSION)
    if not isinstance(session, FlaskSession):
        raise RuntimeError(_OUTSIDE)
    return session


def current_visitor() -> str | None:
    """The current request's visitor id, or None when the visitor opted out."""
    environ = flask.request.environ
    if _ENVIRON_SESSION not in environ:
        raise RuntimeError(_OUTSIDE)
    return visitor_of(environ)


def current_csrf_token(action: str | None = None) -> str:
    """A fresh anti-forgery token of the current request's session.

    Templates call it as ``{{ csrf_token() }}`` (or ``{{ csrf_token("/admin/delete") }}``
    for a token bound to the token path a form posts to); see
    :func:`sessionkit.wsgi.csrf_token`.
    """
    environ = flask.request.environ
    if _ENVIRON_SESSION not in environ:
        raise RuntimeError(_OUTSIDE)
    return csrf_token(environ, action)


# --------------------------------------------------------------------------- fresh logins


_View = TypeVar("_View", bound=Callable[..., Any])


def require_fresh_login(
    max_age: int, *, reauth_path: str | None = None
) -> Callable[[_View], _View]:
    """A view decorator: run the view only for a login at most ``max_age`` seconds old.

    Any other request (a stale login, or no login) is redirected (303) to the
    re-authentication page (``reauth_path``, by default the kit's) with a same-origin
    ``next`` back to this view. That page asks for the password again, calls
    ``current_session().confirm_login()`` and redirects to
    :func:`sessionkit.devices.safe_next` of ``request.args.get("next")``::

        @app.post("/account/delete")
        @require_fresh_login(300)
        def delete_account() -> str: ...

    A ``max_age`` that is not a positive whole number of seconds raises
    :class:`~sessionkit.ConfigurationError` when the view is decorated.
    """
    check_fresh_login(max_age, reauth_path)

    def decorate(view: _View) -> _View:
        @functools.wraps(view)
        def fresh_only(*args: Any, **kwargs: Any) -> Any:
            environ = flask.request.environ
            if _ENVIRON_SESSION not in environ:
                raise RuntimeError(_OUTSIDE)
            location = fresh_login_location(environ, max_age, reauth_path=reauth_path)
            if location is not None:
                return flask.redirect(location, 303)
            return view(*args, **kwargs)

        return cast(_View, fresh_only)

    return decorate


# --------------------------------------------------------------------------- events


def report_to_app_logger(app: flask.Flask, kit: SessionKit) -> None:
    """Also log the kit's warnings (refused cookies, store outages) on ``app.logger``.

    :func:`init_app` calls it. Flask's logger shows them on stderr under ``flask run``
    even when the application configured no logging; they stay on the ``sessionkit``
    loggers too, for a logging configuration that routes those.
    """
    kit.reporter.also_log_to(app.logger, replaces_last_resort=True)
