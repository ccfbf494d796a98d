"""Flask integration: ``init_app(app, kit)``, and ``flask.session`` is a sessionkit session.

:func:`init_app` does two things:

1. it wraps ``app.wsgi_app`` in :class:`sessionkit.wsgi.SessionMiddleware`, which opens
   the session, runs the cookies-required gate (the app, its ``before_request`` and
   ``after_request`` hooks included, is never called while the gate answers), loads the
   store record, and writes every cookie and header when the response starts;
2. it installs :class:`SessionKitInterface` as ``app.session_interface``, which hands
   Flask the session the middleware opened, so ``flask.session`` *is* that session:
   ``session.login(user_id)``, ``session.invalidate()``, ``session.rotate()`` and
   ``session.id`` work on it, and :func:`current_session` returns it typed.

So Flask itself never builds a ``Set-Cookie``: every decision stays in sessionkit's core,
and this module only translates. Flask's ``SESSION_COOKIE_*`` settings and
``PERMANENT_SESSION_LIFETIME`` are not consulted; the kit's settings rule.

Cross-site request forgery protection (:mod:`sessionkit.forgery`) runs in the middleware
too, before Flask routes the request; a view decorated with :func:`csrf_exempt` is
exempt, and templates make tokens with ``{{ csrf_token() }}``.

``session.permanent`` reports the kit's ``persistent_cookie`` (whether the session cookie
carries a ``Max-Age``): the core decides that for every session alike, so setting it to
the other value raises :class:`~sessionkit.ConfigurationError` naming the fix instead of
being silently ignored.

Outside a request that came through the middleware (``app.test_request_context()``, the
test client's ``session_transaction()``), ``flask.session`` is a read-only empty session
whose writes raise an error that says so.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, ClassVar, NoReturn, cast

import flask
from flask.sessions import NullSession, SessionInterface, SessionMixin
from werkzeug.exceptions import HTTPException

from ..access import csrf_token, visitor_of
from ..errors import ConfigurationError
from ..forgery import csrf_exempt, marked_exempt
from ..kit import SessionKit
from ..session import Session
from ..wsgi import SessionMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from flask.wrappers import Request, Response

__all__ = [
    "FlaskSession",
    "SessionKitInterface",
    "csrf_exempt",
    "current_csrf_token",
    "current_session",
    "current_visitor",
    "init_app",
]

#: Where :class:`sessionkit.wsgi.SessionMiddleware` leaves the request's session.
_ENVIRON_SESSION = "sessionkit.session"
#: ``app.extensions`` key holding the kit.
EXTENSION = "sessionkit"

_OUTSIDE = (
    "sessionkit opens the session in the WSGI middleware that init_app(app, kit) puts "
    "around app.wsgi_app, and this request context did not come through it "
    "(app.test_request_context() or the test client's session_transaction()): make a "
    "real request through app.test_client() instead"
)


class FlaskSession(Session):
    """A sessionkit :class:`~sessionkit.Session` that also meets Flask's ``SessionMixin``.

    It adds ``permanent``, ``new`` and ``accessed`` on top of the sessionkit session and
    keeps its storage layout, so the session the WSGI middleware opened becomes one in
    place: ``flask.session`` and ``sessionkit.wsgi.session_of(request.environ)`` are the
    same object.
    """

    __slots__ = ()

    #: Whether the kit issues persistent session cookies (set on the two subclasses).
    _persistent: ClassVar[bool] = True

    @property
    def permanent(self) -> bool:
        """Whether the session cookie outlives the browser (the kit's ``persistent_cookie``).

        It carries ``Max-Age`` up to the idle timeout when True; it is a browser-session
        cookie when False. Either way the idle and absolute timeouts apply on the server.
        """
        return self._persistent

    @permanent.setter
    def permanent(self, value: bool) -> None:
        if bool(value) == self._persistent:
            return
        raise ConfigurationError(
            f"session.permanent = {bool(value)}: this SessionKit makes every session cookie "
            f"{'persistent' if self._persistent else 'a browser-session cookie'}, and "
            "sessionkit does not vary that per session. Build the kit with "
            f"SessionKit(persistent_cookie={bool(value)}) to change it for all sessions"
        )

    @property
    def new(self) -> bool:
        """Flask's name for :attr:`is_new`: no valid session cookie came with the request."""
        return self.is_new

    @property
    def accessed(self) -> bool:
        """Always False: sessionkit adds ``Vary: Cookie`` itself whenever it is due."""
        return False

    @accessed.setter
    def accessed(self, value: bool) -> None:
        # Flask marks the session accessed on every use of ``flask.session``; sessionkit's
        # core decides ``Vary`` from the cookies it read and set, so the mark is not kept.
        pass


class _PersistentSession(FlaskSession):
    __slots__ = ()
    _persistent = True


class _BrowserSession(FlaskSession):
    __slots__ = ()
    _persistent = False


SessionMixin.register(FlaskSession)


def _refuse(*args: object, **kwargs: object) -> NoReturn:
    raise RuntimeError(_OUTSIDE)


class _OutsideSession(NullSession):
    """The read-only empty session of a request context that bypassed the middleware."""

    __setitem__ = __delitem__ = clear = pop = popitem = update = setdefault = _refuse
    login = rotate = invalidate = _refuse


class SessionKitInterface(SessionInterface):
    """Flask's session interface over :class:`sessionkit.wsgi.SessionMiddleware`.

    :meth:`open_session` returns the session the middleware opened for this request;
    :meth:`save_session` does nothing, because the middleware writes the cookies when the
    response starts. Install it with :func:`init_app`, which also adds the middleware.
    """

    null_session_class = _OutsideSession

    def __init__(self, kit: SessionKit) -> None:
        self.kit = kit
        self._session_class = _PersistentSession if kit.persistent_cookie else _BrowserSession

    def open_session(self, app: flask.Flask, request: Request) -> SessionMixin | None:
        """Return the request's sessionkit session as a :class:`FlaskSession`."""
        session = request.environ.get(_ENVIRON_SESSION)
        if not isinstance(session, Session):
            return self.make_null_session(app)
        session.__class__ = self._session_class
        return cast(SessionMixin, session)

    def save_session(self, app: flask.Flask, session: SessionMixin, response: Response) -> None:
        """Nothing to do: the middleware adds the cookies when the response starts."""

    # Flask extensions that read the cookie's attributes get the kit's, which are the
    # ones sent.

    def get_cookie_name(self, app: flask.Flask) -> str:
        """The kit's session cookie name."""
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


def init_app(app: flask.Flask, kit: SessionKit) -> None:
    """Give ``app`` sessionkit sessions, the cookies-required gate and the visitor cookie.

    Cross-site request forgery protection comes with it: views marked with
    :func:`csrf_exempt` are not checked, and templates get ``csrf_token()`` (see
    :func:`current_csrf_token`). Call it once, after any other ``app.wsgi_app``
    wrapping that must see sessionkit's headers (sessionkit wraps what is there).
    ``flask.session`` is then the request's sessionkit session and
    ``app.extensions["sessionkit"]`` the kit.
    """
    if EXTENSION in app.extensions:
        raise ConfigurationError("init_app(app, kit) was already called for this app")
    if not isinstance(kit, SessionKit):
        raise ConfigurationError(f"kit must be a sessionkit.SessionKit, not {type(kit).__name__}")
    app.extensions[EXTENSION] = kit
    app.session_interface = SessionKitInterface(kit)
    app.add_template_global(current_csrf_token, "csrf_token")
    app.wsgi_app = SessionMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, kit, csrf_exempt=partial(_route_exempt, app)
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
