"""Real servers on 127.0.0.1: uvicorn serving a Starlette app, werkzeug serving a WSGI app.

Both apps offer the same routes, so a test can run against either server:

- ``POST /login`` (JSON ``{"user": ...}``) binds the session to a user and stores a name;
- ``GET /me`` returns the session state; ``POST /logout`` invalidates the session;
- ``POST /big`` stores more than fits in a cookie;
- ``GET /app/...`` returns the session state too (for the cookies-required gate);
- ``GET /lifespan`` (Starlette only) tells whether the lifespan startup ran;
- ``GET /stream`` and ``GET /error`` (WSGI only): a streamed body, and an app that
  replaces its response with an error page through ``start_response(..., exc_info)``.

Servers are started per test (each with its own kit) on a free port and shut down cleanly.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import sessionkit
import sessionkit.asgi
import sessionkit.wsgi
from support import running_uvicorn, running_werkzeug

STREAM_CHUNKS = [b"alpha\n", b"b" * 100_000, b"\n", "gamma \u00e9\n".encode(), b"omega"]

ServerFactory = Callable[[sessionkit.SessionKit], str]


# --------------------------------------------------------------------------- ASGI app


def _asgi_state(request: Request) -> dict[str, Any]:
    session = request.session
    return {
        "user": session.user_id,
        "session": dict(session),
        "id": session.id,
        "visitor": sessionkit.asgi.visitor_of(request.scope),
    }


async def _asgi_login(request: Request) -> Response:
    body = await request.json()
    request.session.login(body["user"])
    request.session["name"] = body["user"].title()
    return JSONResponse(_asgi_state(request))


async def _asgi_me(request: Request) -> Response:
    return JSONResponse(_asgi_state(request))


async def _asgi_logout(request: Request) -> Response:
    request.session.invalidate()
    return JSONResponse(_asgi_state(request))


async def _asgi_big(request: Request) -> Response:
    request.session["blob"] = secrets.token_urlsafe(3072)
    return PlainTextResponse("stored")


async def _asgi_public(request: Request) -> Response:
    # Never looks at the session or the visitor id: a page a CDN may cache.
    return PlainTextResponse("public", headers={"Cache-Control": "public, max-age=3600"})


async def _asgi_lifespan(request: Request) -> Response:
    return JSONResponse({"events": request.app.state.lifespan_events})


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.lifespan_events.append("startup")
    yield
    app.state.lifespan_events.append("shutdown")


def make_asgi_app(kit: sessionkit.SessionKit) -> Starlette:
    app = Starlette(
        routes=[
            Route("/login", _asgi_login, methods=["POST"]),
            Route("/me", _asgi_me),
            Route("/logout", _asgi_logout, methods=["POST"]),
            Route("/big", _asgi_big, methods=["POST"]),
            Route("/lifespan", _asgi_lifespan),
            Route("/public", _asgi_public),
            Route("/app/{rest:path}", _asgi_me),
        ],
        middleware=[Middleware(sessionkit.asgi.SessionMiddleware, kit=kit)],
        lifespan=_lifespan,
    )
    app.state.lifespan_events = []
    return app


# --------------------------------------------------------------------------- WSGI app


def _wsgi_json(start_response: Callable[..., Any], payload: Any) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _wsgi_stream(start_response: Callable[..., Any]) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    yield from STREAM_CHUNKS


def _wsgi_error(start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise RuntimeError("boom in the app")
    except RuntimeError:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"custom error page"]


def make_wsgi_app(kit: sessionkit.SessionKit) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        session = environ["sessionkit.session"]
        path = environ["PATH_INFO"]
        if path == "/public":
            headers = [("Content-Type", "text/plain"), ("Cache-Control", "public, max-age=3600")]
            start_response("200 OK", headers)
            return [b"public"]
        if path == "/login":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            user = json.loads(environ["wsgi.input"].read(length))["user"]
            session.login(user)
            session["name"] = user.title()
        elif path == "/logout":
            session.invalidate()
        elif path == "/big":
            session["blob"] = secrets.token_urlsafe(3072)
        elif path == "/stream":
            session["streamed"] = True
            return _wsgi_stream(start_response)
        elif path == "/error":
            session["tried"] = True
            sessionkit.wsgi.visitor_of(environ)  # so both cookies are due
            return _wsgi_error(start_response)
        return _wsgi_json(
            start_response,
            {
                "user": session.user_id,
                "session": dict(session),
                "id": session.id,
                "visitor": sessionkit.wsgi.visitor_of(environ),
            },
        )

    return sessionkit.wsgi.SessionMiddleware(app, kit=kit)


# --------------------------------------------------------------------------- servers


def _serve(kind: str, kit: sessionkit.SessionKit) -> contextlib.AbstractContextManager[str]:
    if kind == "uvicorn":
        return running_uvicorn(make_asgi_app(kit), lifespan="on")
    return running_werkzeug(make_wsgi_app(kit))


@pytest.fixture(params=["uvicorn", "werkzeug"])
def server_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def serve(server_kind: str) -> Iterator[ServerFactory]:
    """``serve(kit)`` starts the parametrized server kind for ``kit``; returns its URL."""
    with contextlib.ExitStack() as stack:
        yield lambda kit: stack.enter_context(_serve(server_kind, kit))


@pytest.fixture
def serve_uvicorn() -> Iterator[ServerFactory]:
    """``serve_uvicorn(kit)``: the Starlette app under uvicorn; returns its URL."""
    with contextlib.ExitStack() as stack:
        yield lambda kit: stack.enter_context(_serve("uvicorn", kit))


@pytest.fixture
def serve_werkzeug() -> Iterator[ServerFactory]:
    """``serve_werkzeug(kit)``: the WSGI app under werkzeug; returns its URL."""
    with contextlib.ExitStack() as stack:
        yield lambda kit: stack.enter_context(_serve("werkzeug", kit))


@pytest.fixture
def stream_chunks() -> list[bytes]:
    """What ``GET /stream`` on the WSGI app sends, chunk by chunk."""
    return list(STREAM_CHUNKS)
