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

``request.session`` is the same object. Everything else (the gate, the store, the
cookies) is the middleware's: these dependencies only read what it put in the scope.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from ..access import session_of, visitor_of
from ..asgi import SessionMiddleware
from ..session import Session

__all__ = ["SessionDep", "SessionMiddleware", "VisitorDep", "get_session", "get_visitor"]

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


#: ``session: SessionDep`` in a path operation gives the typed sessionkit session.
SessionDep = Annotated[Session, Depends(get_session)]
#: ``visitor: VisitorDep`` gives the visitor id (None when the visitor opted out).
VisitorDep = Annotated[str | None, Depends(get_visitor)]
