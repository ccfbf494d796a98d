"""The FastAPI dependencies over the ASGI middleware, in process through httpx.ASGITransport."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, WebSocket

import sessionkit
import sessionkit.asgi
from sessionkit.integrations.fastapi import (
    SessionDep,
    SessionMiddleware,
    VisitorDep,
    get_session,
    get_visitor,
)
from support import run_websocket

pytestmark = pytest.mark.anyio

SESSION = "__Host-session"
MARKER = "sessionkit-cookie-check"

KitFactory = Callable[..., sessionkit.SessionKit]


def make_app(kit: sessionkit.SessionKit | None) -> FastAPI:
    app = FastAPI()
    if kit is not None:
        app.add_middleware(SessionMiddleware, kit=kit)

    def state(session: sessionkit.Session, visitor: str | None) -> dict[str, Any]:
        return {
            "id": session.id,
            "user": session.user_id,
            "data": dict(session),
            "visitor": visitor,
        }

    @app.get("/")
    async def home(session: SessionDep, visitor: VisitorDep, request: Request) -> dict[str, Any]:
        return {**state(session, visitor), "same": session is request.session}

    @app.get("/sync")
    def sync(session: SessionDep, visitor: VisitorDep) -> dict[str, Any]:
        return state(session, visitor)

    @app.post("/write")
    async def write(session: SessionDep, visitor: VisitorDep, request: Request) -> dict[str, Any]:
        session.update(await request.json())
        return state(session, visitor)

    @app.post("/login/{user}")
    async def login(user: str, session: SessionDep, visitor: VisitorDep) -> dict[str, Any]:
        session.login(user)
        return state(session, visitor)

    @app.post("/logout")
    async def logout(session: SessionDep, visitor: VisitorDep) -> dict[str, Any]:
        session.invalidate()
        return state(session, visitor)

    @app.get("/app/page")
    async def private(session: SessionDep, visitor: VisitorDep) -> dict[str, Any]:
        return state(session, visitor)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, session: SessionDep, visitor: VisitorDep) -> None:
        await websocket.accept()
        await websocket.send_json(state(session, visitor))
        await websocket.close()

    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver")


async def websocket_with(app: Any, cookie: str | None, path: str = "/ws") -> list[dict[str, Any]]:
    """``run_websocket`` sending ``cookie`` (if any) in a Cookie header."""
    headers = [] if cookie is None else [(b"cookie", cookie.encode())]
    return await run_websocket(app, headers, path)


async def test_session_dependency_is_the_typed_request_session(make_kit: KitFactory) -> None:
    async with client(make_app(make_kit())) as http:
        written = (await http.post("/write", json={"cart": [1]})).json()
        assert written["data"] == {"cart": [1]}
        home = (await http.get("/")).json()
        assert home["same"] is True
        assert home["id"] == written["id"]
        assert home["data"] == {"cart": [1]}
        assert home["visitor"] == written["visitor"]
        assert (await http.get("/sync")).json() == written


async def test_login_and_logout_through_the_dependency(make_kit: KitFactory) -> None:
    async with client(make_app(make_kit())) as http:
        before = (await http.post("/write", json={"a": 1})).json()
        after = (await http.post("/login/alice")).json()
        assert after["id"] != before["id"]
        assert after["user"] == "alice"
        assert (await http.get("/")).json()["user"] == "alice"
        out = (await http.post("/logout")).json()
        assert out["user"] is None
        assert out["data"] == {}
        assert (await http.get("/")).json()["user"] is None


async def test_visitor_dependency_is_none_for_an_opted_out_visitor(make_kit: KitFactory) -> None:
    async with client(make_app(make_kit())) as http:
        response = await http.get("/", headers={"Sec-GPC": "1"})
        assert response.json()["visitor"] is None


async def test_websocket_endpoint_reads_the_session(make_kit: KitFactory) -> None:
    app = make_app(make_kit())
    async with client(app) as http:
        logged_in = (await http.post("/login/alice")).json()
        value = http.cookies[SESSION]
    sent = await websocket_with(app, f"{SESSION}={value}")
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    state = json.loads(sent[1]["text"])
    assert state["user"] == "alice"
    assert state["id"] == logged_in["id"]
    assert state["visitor"]


async def test_gate_applies_to_fastapi_routes(make_kit: KitFactory) -> None:
    app = make_app(make_kit(require_cookies=["/app"]))
    async with client(app) as http:
        first = await http.get("/app/page")
        assert first.status_code == 303
        assert first.headers["location"] == f"/app/page?{MARKER}=1"
        assert (await http.get("/app/page", follow_redirects=True)).status_code == 200
    refused = await websocket_with(app, None, path="/app/ws")
    assert refused == [{"type": "websocket.close", "code": 1008}]


async def test_without_the_middleware_the_dependency_says_what_is_missing() -> None:
    app = make_app(None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        with pytest.raises(RuntimeError, match="add_middleware"):
            await http.get("/")


def test_dependencies_stay_out_of_the_openapi_schema(make_kit: KitFactory) -> None:
    schema = make_app(make_kit()).openapi()
    assert "parameters" not in schema["paths"]["/"]["get"]
    assert [p["name"] for p in schema["paths"]["/login/{user}"]["post"]["parameters"]] == ["user"]


def test_dependency_functions_are_exported() -> None:
    assert get_session.__doc__
    assert get_visitor.__doc__
    assert SessionMiddleware is sessionkit.asgi.SessionMiddleware
