"""FastAPI integration: typed dependencies over the ASGI middleware.

Add the middleware as for any ASGI app, then ask for the session or the visitor id in
any path operation, HTTP or WebSocket::

    from sessionkit.asgi import SessionMiddleware
    from sessionkit.integrations.fastapi import SessionDep, VisitorDep

    app = FastAPI()
    app.add_middleware(SessionMiddleware, kit=kit)

    @app.post("/login")
    async def login(session: SessionDep) -> dict[str, str]:
        session.login(user_id)          # new id, bound to the user
        return {"ok": "yes"}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, session: SessionDep) -> None:
        ...                             # read it; a WebSocket cannot save changes

Cross-site request forgery protection is the middleware's too: pass
``csrf_exempt=route_exempt`` to it to honour ``@csrf_exempt`` on endpoints, and ask for
``token: CsrfTokenDep`` to put a token in a form.

``request.session`` is the same object. Everything else (the gate, the store, the
cookies) is the middleware's: these dependencies only read what it put in the scope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from starlette.requests import HTTPConnection

from ..access import csrf_token, fresh_login_location, session_of, visitor_of
from ..asgi import SessionMiddleware
from ..devices import check_fresh_login
from ..forgery import csrf_exempt
from ..session import Session
from .starlette import route_exempt

__all__ = [
    "CsrfTokenDep",
    "SessionDep",
    "SessionMiddleware",
    "VisitorDep",
    "csrf_exempt",
    "get_csrf_token",
    "get_session",
    "get_visitor",
    "require_fresh_login",
    "route_exempt",
]

_MISSING = (
    "no sessionkit session on this request: add the middleware with "
    "app.add_middleware(sessionkit.asgi.SessionMiddleware, kit=kit)"
)


def _require(connection: HTTPConnection) -> None:
    if "sessionkit.exchange" not in connection.scope:
        raise RuntimeError(_MISSING)


def get_session(connection: HTTPConnection) -> Session:
    """The request's (or WebSocket's) sessionkit session, for ``Depends(get_session)``."""
    _require(connection)
    return session_of(connection.scope)


def get_visitor(connection: HTTPConnection) -> str | None:
    """The visitor id, or None when the visitor opted out, for ``Depends(get_visitor)``."""
    _require(connection)
    return visitor_of(connection.scope)


def get_csrf_token(connection: HTTPConnection) -> str:
    """A fresh site-wide anti-forgery token, for ``Depends(get_csrf_token)``.

    Put it in the form's hidden ``csrf_token`` field or send it in ``X-CSRF-Token``;
    :func:`sessionkit.asgi.csrf_token` makes one bound to a token path.
    """
    _require(connection)
    return csrf_token(connection.scope)


#: ``session: SessionDep`` in a path operation gives the typed sessionkit session.
SessionDep = Annotated[Session, Depends(get_session)]
#: ``visitor: VisitorDep`` gives the visitor id (None when the visitor opted out).
VisitorDep = Annotated[str | None, Depends(get_visitor)]
#: ``token: CsrfTokenDep`` gives a fresh anti-forgery token for this request's session.
CsrfTokenDep = Annotated[str, Depends(get_csrf_token)]


# --------------------------------------------------------------------------- fresh logins


def require_fresh_login(
    max_age: int, *, reauth_path: str | None = None
) -> Callable[[HTTPConnection], None]:
    """A dependency: the path operation runs only for a login at most ``max_age`` seconds old.

    Any other request (a stale login, or no login) is answered with a 303 to the
    re-authentication page (``reauth_path``, by default the kit's) with a same-origin
    ``next`` back to this path. That page asks for the password again, calls
    ``session.confirm_login()`` and redirects to :func:`sessionkit.devices.safe_next`
    of its ``next`` query parameter::

        @app.post("/account/delete", dependencies=[Depends(require_fresh_login(300))])
        async def delete_account(session: SessionDep) -> dict[str, str]: ...

    A ``max_age`` that is not a positive whole number of seconds raises
    :class:`~sessionkit.ConfigurationError` when the dependency is made.
    """
    check_fresh_login(max_age, reauth_path)

    def fresh_login(connection: HTTPConnection) -> None:
        _require(connection)
        location = fresh_login_location(connection.scope, max_age, reauth_path=reauth_path)
        if location is not None:
            raise HTTPException(status_code=303, headers={"Location": location})

    return fresh_login
