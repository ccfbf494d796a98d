"""The Starlette app the integration tests serve, in-process or as a uvicorn worker process.

``build_app(kit)`` makes the app for a given kit (the in-process tests). ``create_app()``
is the factory the worker processes run (``uvicorn --factory worker_app:create_app``):
it reads the key ring from ``SESSIONKIT_SECRET_KEYS`` and the store from
``SESSIONKIT_TEST_REDIS`` (a Redis URL) or else ``SESSIONKIT_TEST_SQLITE`` (a file), so
every worker started with the same environment shares one store.
``SESSIONKIT_TEST_ROTATE_EVERY`` and ``SESSIONKIT_TEST_ROTATION_GRACE`` (seconds) set the
rotation; each security event is written to stderr as ``security event: <reason>``, and
the store's warnings too.

Routes (every JSON answer carries the session state and the worker's pid):

- ``GET /`` and ``GET /me``: public pages;
- ``GET /app/...``: the application (under ``require_cookies``);
- ``POST /login`` with JSON ``{"user": ...}``: ``session.login(user)`` and a name;
- ``POST /note`` with JSON ``{"note": ...}``: writes the session on a public path;
- ``POST /rotate``: ``session.rotate()`` (a privilege change);
- ``GET /stream``: writes the session, then streams ``STREAM_CHUNKS`` with a pause before
  each (``?pause=`` seconds, 0.05 by default);
- ``POST /logout``: ``session.invalidate()``;
- ``POST /logout-everywhere``: ``await kit.arevoke_user(user)`` for the session's user.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

import sessionkit
from sessionkit.asgi import SessionMiddleware
from sessionkit.stores import SQLiteStore
from sessionkit.stores.base import Store

SQLITE_ENV = "SESSIONKIT_TEST_SQLITE"
REDIS_ENV = "SESSIONKIT_TEST_REDIS"
ROTATE_EVERY_ENV = "SESSIONKIT_TEST_ROTATE_EVERY"
ROTATION_GRACE_ENV = "SESSIONKIT_TEST_ROTATION_GRACE"
EVENT_LINE = "security event: "
STREAM_CHUNKS = [b"first chunk\n", b"x" * 50_000, b"\nlast chunk\n"]


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


async def rotate(request: Request) -> Response:
    request.session.rotate()
    return state(request)


async def stream(request: Request) -> Response:
    request.session["streamed"] = request.session.get("streamed", 0) + 1
    pause = float(request.query_params.get("pause", "0.05"))

    async def body() -> AsyncIterator[bytes]:
        for chunk in STREAM_CHUNKS:
            await asyncio.sleep(pause)
            yield chunk

    return StreamingResponse(body(), media_type="application/octet-stream")


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
            Route("/rotate", rotate, methods=["POST"]),
            Route("/stream", stream),
            Route("/logout", logout, methods=["POST"]),
            Route("/logout-everywhere", logout_everywhere, methods=["POST"]),
        ],
        middleware=[Middleware(SessionMiddleware, kit=kit)],
    )
    app.state.kit = kit
    return app


def create_app() -> Starlette:
    """The worker processes' app: keys, store and rotation from the environment.

    The store's warnings (``session store unavailable: ...``) go to stderr, with the events.
    """
    logging.getLogger("sessionkit.stores").addHandler(logging.StreamHandler(sys.stderr))
    store: Store
    if os.environ.get(REDIS_ENV):
        from sessionkit.stores.redis import RedisStore

        store = RedisStore(os.environ[REDIS_ENV])
    else:
        store = SQLiteStore(os.environ[SQLITE_ENV])
    rotation: dict[str, Any] = {}
    if os.environ.get(ROTATE_EVERY_ENV):
        rotation["rotate_every"] = int(os.environ[ROTATE_EVERY_ENV])
    if os.environ.get(ROTATION_GRACE_ENV):
        rotation["rotation_grace"] = int(os.environ[ROTATION_GRACE_ENV])
    kit = sessionkit.SessionKit.from_env(
        store=store,
        require_cookies=["/app"],
        insecure_development=True,
        on_security_event=lambda event: print(
            f"{EVENT_LINE}{event.reason}", file=sys.stderr, flush=True
        ),
        **rotation,
    )
    return build_app(kit)
