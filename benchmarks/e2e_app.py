"""The app uvicorn serves in the end-to-end benchmark; the variant comes from the environment.

``SESSIONKIT_BENCH_VARIANT`` is ``bare``, ``sessionkit`` or ``starlette``;
``SESSIONKIT_BENCH_KEY`` is the sessionkit key and the Starlette secret. The same tiny
Starlette app in each: ``/login`` writes the session, ``/app/rw`` reads and writes it,
``/app/ro`` only reads it. Both answer 409 when the session has no user, so a request
whose cookie was not accepted never counts as a success (wrk reports non-2xx answers).
sessionkit runs with its defaults (visitor cookie on), as an app would.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from .core import SESSION_DATA

VARIANT = os.environ.get("SESSIONKIT_BENCH_VARIANT", "bare")
KEY = os.environ.get("SESSIONKIT_BENCH_KEY", "")

#: The bare app's session: a plain dict, so the endpoints run the same code.
BARE_SESSION: dict[str, Any] = dict(SESSION_DATA)


async def login(request: Request) -> PlainTextResponse:
    request.scope.get("session", BARE_SESSION).update(SESSION_DATA)
    return PlainTextResponse("ok")


async def read_write(request: Request) -> PlainTextResponse:
    session = request.scope.get("session", BARE_SESSION)
    if session.get("user") is None:
        return PlainTextResponse("no session", status_code=409)
    session["n"] = session.get("n", 0) + 1
    return PlainTextResponse("ok")


async def read_only(request: Request) -> PlainTextResponse:
    session = request.scope.get("session", BARE_SESSION)
    if session.get("user") is None:
        return PlainTextResponse("no session", status_code=409)
    return PlainTextResponse("ok")


def _middleware() -> list[Middleware]:
    if VARIANT == "sessionkit":
        import sessionkit
        from sessionkit.asgi import SessionMiddleware

        return [Middleware(SessionMiddleware, kit=sessionkit.SessionKit(secret_keys=[KEY]))]
    if VARIANT == "starlette":
        from starlette.middleware.sessions import SessionMiddleware

        return [Middleware(SessionMiddleware, secret_key=KEY)]
    if VARIANT == "bare":
        return []
    raise RuntimeError(f"unknown SESSIONKIT_BENCH_VARIANT {VARIANT!r}")


app = Starlette(
    routes=[
        Route("/login", login),
        Route("/app/rw", read_write),
        Route("/app/ro", read_only),
    ],
    middleware=_middleware(),
)
