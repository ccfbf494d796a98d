"""The app the load and fault tests serve: ``uvicorn --factory load_app:create_app``.

Configured from the environment (set by ``test_load.py``):

- ``SK_LOAD_KEYS``: the key ring, comma-separated, newest first;
- ``SK_LOAD_REDIS`` and ``SK_LOAD_PREFIX``: the Redis store;
- ``SK_LOAD_ADMIN``: the token of the admin hook below.

Routes (every JSON answer is the session as the app sees it, and the visitor id):

- ``POST /login`` ``{"user", "secret"}``: ``session.login(user)``, stores the secret, n = 0;
- ``GET /app/me``: the application (cookies required, needs the store);
- ``POST /app/bump`` ``{"n"}``: writes n on the application;
- ``GET /me``: a public page; ``POST /note`` ``{"note"}``: writes on a public page;
- ``POST /_admin/keys`` ``{"token", "keys"}``: replaces the kit with one using the new key
  ring (same store and settings) between two requests, atomically: a request runs
  entirely under the kit it started with.
"""

from __future__ import annotations

import json
import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import sessionkit
from sessionkit import Session
from sessionkit.asgi import SessionMiddleware, visitor_of
from sessionkit.stores.redis import RedisStore

ROTATE_EVERY = 2
ROTATION_GRACE = 2


def session_of(request: Request) -> Session:
    session: Session = request.scope["session"]
    return session


def state(request: Request) -> JSONResponse:
    session = session_of(request)
    return JSONResponse(
        {
            "user": session.user_id,
            "secret": session.get("mark"),
            "n": session.get("n"),
            "note": session.get("note"),
            "id": session.id,
            "visitor": visitor_of(request.scope),
        }
    )


async def login(request: Request) -> Response:
    body = await request.json()
    session = session_of(request)
    session.login(body["user"])
    session["mark"] = body["secret"]  # a per-client random mark
    session["n"] = 0
    return state(request)


async def show(request: Request) -> Response:
    return state(request)


async def bump(request: Request) -> Response:
    session_of(request)["n"] = (await request.json())["n"]
    return state(request)


async def note(request: Request) -> Response:
    session_of(request)["note"] = (await request.json())["note"]
    return state(request)


class SwappableKit:
    """The ASGI app: sessionkit's middleware around the routes, with a key-ring hook."""

    def __init__(self, routes: Starlette, store: RedisStore, keys: list[str], admin: str):
        self.routes = routes
        self.store = store
        self.admin = admin
        self.current = self._middleware(keys)

    def _middleware(self, keys: list[str]) -> SessionMiddleware:
        kit = sessionkit.SessionKit(
            secret_keys=keys,
            store=self.store,
            require_cookies=["/app"],
            insecure_development=True,
            rotate_every=ROTATE_EVERY,
            rotation_grace=ROTATION_GRACE,
        )
        return SessionMiddleware(self.routes, kit=kit)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/_admin/keys":
            await self._swap(receive, send)
            return
        await self.current(scope, receive, send)

    async def _swap(self, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body)
        status = 403
        if request.get("token") == self.admin:
            self.current = self._middleware(request["keys"])
            status = 204
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def create_app() -> SwappableKit:
    routes = Starlette(
        routes=[
            Route("/login", login, methods=["POST"]),
            Route("/me", show),
            Route("/note", note, methods=["POST"]),
            Route("/app/me", show),
            Route("/app/bump", bump, methods=["POST"]),
        ]
    )
    store = RedisStore(
        os.environ["SK_LOAD_REDIS"], prefix=os.environ["SK_LOAD_PREFIX"], socket_timeout=1.0
    )
    keys = [k for k in os.environ["SK_LOAD_KEYS"].split(",") if k]
    return SwappableKit(routes, store, keys, os.environ["SK_LOAD_ADMIN"])
