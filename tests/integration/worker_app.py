"""The Starlette app the integration tests serve, in-process or as a uvicorn worker process.

``build_app(kit)`` makes the app for a given kit (the in-process tests). ``create_app()``
is the factory the worker processes run (``uvicorn --factory worker_app:create_app``):
it reads the key ring from ``SESSIONKIT_SECRET_KEYS`` and the SQLite file from
``SESSIONKIT_TEST_SQLITE``, so every worker started with the same environment shares one
store.

Routes (every JSON answer carries the session state and the worker's pid):

- ``GET /`` and ``GET /me``: public pages;
- ``GET /app/...``: the application (under ``require_cookies``);
- ``POST /login`` with JSON ``{"user": ...}``: ``session.login(user)`` and a name;
- ``POST /note`` with JSON ``{"note": ...}``: writes the session on a public path;
- ``POST /logout``: ``session.invalidate()``;
- ``POST /logout-everywhere``: ``await kit.arevoke_user(user)`` for the session's user.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import sessionkit
from sessionkit.asgi import SessionMiddleware
from sessionkit.stores import SQLiteStore

SQLITE_ENV = "SESSIONKIT_TEST_SQLITE"


def state(request: Request, **extra: Any) -> JSONResponse:
    session = request.session
    return JSONResponse(
        {
            "user": session.user_id,
            "session": dict(session),
            "id": session.id,
            "pid": os.getpid(),
            **extra,
        }
    )


async def show(request: Request) -> Response:
    return state(request)


async def login(request: Request) -> Response:
    user = (await request.json())["user"]
    request.session.login(user)
    request.session["name"] = user.title()
    return state(request)


async def note(request: Request) -> Response:
    request.session["note"] = (await request.json())["note"]
    return state(request)


async def logout(request: Request) -> Response:
    request.session.invalidate()
    return state(request)


async def logout_everywhere(request: Request) -> Response:
    kit: sessionkit.SessionKit = request.app.state.kit
    user = request.session.user_id
    ended = 0 if user is None else await kit.arevoke_user(user)
    return state(request, ended=ended)


def build_app(kit: sessionkit.SessionKit) -> Starlette:
    app = Starlette(
        routes=[
            Route("/", show),
            Route("/me", show),
            Route("/app/{rest:path}", show),
            Route("/login", login, methods=["POST"]),
            Route("/note", note, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/logout-everywhere", logout_everywhere, methods=["POST"]),
        ],
        middleware=[Middleware(SessionMiddleware, kit=kit)],
    )
    app.state.kit = kit
    return app


def create_app() -> Starlette:
    """The worker processes' app: keys and the shared SQLite file from the environment."""
    kit = sessionkit.SessionKit.from_env(
        store=SQLiteStore(os.environ[SQLITE_ENV]),
        require_cookies=["/app"],
        insecure_development=True,
    )
    return build_app(kit)
