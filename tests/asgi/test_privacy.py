"""Visitor opt-out, opt-in and proxy addresses through the ASGI front end."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import sessionkit
from sessionkit.asgi import SessionMiddleware, opt_in, opt_out, visitor_of

pytestmark = pytest.mark.anyio


async def show(request: Request) -> Response:
    return JSONResponse({"visitor": visitor_of(request.scope), "user": request.session.user_id})


async def do_opt_out(request: Request) -> Response:
    opt_out(request.scope)
    return JSONResponse({"visitor": visitor_of(request.scope)})


async def do_opt_in(request: Request) -> Response:
    opt_in(request.scope)
    return JSONResponse({"visitor": visitor_of(request.scope)})


def app(kit: sessionkit.SessionKit) -> SessionMiddleware:
    routes = [
        Route("/", show),
        Route("/opt-out", do_opt_out, methods=["POST"]),
        Route("/opt-in", do_opt_in, methods=["POST"]),
    ]
    return SessionMiddleware(Starlette(routes=routes), kit=kit)


def client(kit: sessionkit.SessionKit) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app(kit)), base_url="https://testserver"
    )


async def test_opt_out_and_back_in(make_kit: Callable[..., sessionkit.SessionKit]) -> None:
    async with client(make_kit()) as browser:
        first = (await browser.get("/")).json()["visitor"]
        assert first is not None
        out = await browser.post("/opt-out")
        assert out.json()["visitor"] is None
        assert browser.cookies.get("__Host-opt-out") == "1"
        assert "__Host-visitor" not in browser.cookies
        again = await browser.get("/")
        assert again.json()["visitor"] is None
        assert "set-cookie" not in again.headers
        back = await browser.post("/opt-in")
        assert back.json()["visitor"] not in (None, first)
        assert "__Host-opt-out" not in browser.cookies
        assert (await browser.get("/")).json()["visitor"] == back.json()["visitor"]


async def test_forwarded_for_reaches_events_only_through_trusted_hops(
    make_kit: Callable[..., sessionkit.SessionKit], caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"x-forwarded-for": "203.0.113.9, 198.51.100.23", "cookie": "__Host-session=x"}
    with caplog.at_level(logging.WARNING, logger="sessionkit.security"):
        async with client(make_kit(trusted_proxy_hops=1)) as browser:
            await browser.get("/", headers=headers)
        async with client(make_kit()) as browser:
            await browser.get("/", headers=headers)
    clients = [r.sessionkit_event.client for r in caplog.records]  # type: ignore[attr-defined]
    assert clients == ["198.51.100.0", "127.0.0.0"]
