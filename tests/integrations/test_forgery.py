"""Cross-site request forgery in Flask and FastAPI: real apps, their own test clients."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import flask
import httpx
import pytest
from fastapi import FastAPI, Request, WebSocket

import sessionkit
from sessionkit.asgi import SessionMiddleware
from sessionkit.forgery import ForgeryPolicy
from sessionkit.integrations import flask as flask_integration
from sessionkit.integrations.fastapi import CsrfTokenDep, SessionDep, csrf_exempt, route_exempt
from support import run_websocket

APP = "https://app.example"
EVIL = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
KitFactory = Callable[..., sessionkit.SessionKit]


@pytest.fixture
def events() -> list[sessionkit.SecurityEvent]:
    return []


# --------------------------------------------------------------------------- Flask


def flask_app(kit: sessionkit.SessionKit) -> flask.Flask:
    app = flask.Flask(__name__)

    @app.get("/form")
    def form() -> str:
        flask.session.setdefault("balance", 100)
        return flask.render_template_string(
            '<form method=post action="/transfer">'
            '<input type=hidden name=csrf_token value="{{ csrf_token() }}"></form>'
        )

    @app.post("/transfer")
    def transfer() -> dict[str, Any]:
        flask.session["balance"] = flask.session.get("balance", 100) - 10
        return {"balance": flask.session["balance"], "note": flask.request.form.get("note")}

    @app.get("/balance")
    def balance() -> dict[str, Any]:
        return {"balance": flask.session.get("balance")}

    @app.post("/upload")
    def upload() -> dict[str, Any]:
        return {"size": len(flask.request.files["file"].read()), "n": flask.request.form["n"]}

    @app.post("/hooks/<name>")
    @flask_integration.csrf_exempt
    def hook(name: str) -> dict[str, str]:
        return {"hook": name}

    flask_integration.init_app(app, kit)
    return app


def _token_in(html: bytes) -> str:
    return html.split(b'value="', 1)[1].split(b'"', 1)[0].decode()


def test_flask_refuses_a_cross_site_post(
    make_kit: KitFactory, events: list[sessionkit.SecurityEvent]
) -> None:
    client = flask_app(make_kit(on_security_event=events.append)).test_client()
    client.get("/form", base_url=APP)
    refused = client.post("/transfer", base_url=APP, headers=EVIL)
    assert refused.status_code == 403
    assert b"Request refused" in refused.data
    assert client.get("/balance", base_url=APP).json == {"balance": 100}
    same = {"Origin": APP, "Sec-Fetch-Site": "same-origin"}
    assert client.post("/transfer", base_url=APP, headers=same).json["balance"] == 90
    assert [e.reason for e in events] == ["cross_site"]


def test_flask_views_marked_exempt_are_not_checked(make_kit: KitFactory) -> None:
    client = flask_app(make_kit()).test_client()
    assert client.post("/hooks/pay", base_url=APP, headers=EVIL).json == {"hook": "pay"}
    assert client.post("/hooks/../transfer", base_url=APP, headers=EVIL).status_code == 403
    assert client.post("/nowhere", base_url=APP, headers=EVIL).status_code == 403


def test_flask_templates_get_a_session_bound_token(
    make_kit: KitFactory, events: list[sessionkit.SecurityEvent]
) -> None:
    kit = make_kit(forgery=ForgeryPolicy(token_paths=["/"]), on_security_event=events.append)
    client = flask_app(kit).test_client()
    page = client.get("/form", base_url=APP).data
    token = _token_in(page)
    assert _token_in(client.get("/form", base_url=APP).data) != token  # masked per render
    posted = client.post("/transfer", base_url=APP, data={"csrf_token": token, "note": "hi"})
    assert posted.json == {"balance": 90, "note": "hi"}
    assert client.post("/transfer", base_url=APP, data={"note": "hi"}).status_code == 403
    assert client.post("/hooks/pay", base_url=APP).status_code == 200  # exempt: no token
    assert [e.reason for e in events] == ["token_missing"]


def test_flask_gets_a_large_upload_whole_after_the_token_is_read(make_kit: KitFactory) -> None:
    client = flask_app(make_kit(forgery=ForgeryPolicy(token_paths=["/"]))).test_client()
    token = _token_in(client.get("/form", base_url=APP).data)
    big = b"\x00\xff" * 150_000
    data = {"csrf_token": token, "n": "7", "file": (io.BytesIO(big), "a.bin")}
    response = client.post("/upload", base_url=APP, data=data, content_type="multipart/form-data")
    assert response.json == {"size": len(big), "n": "7"}


def test_flask_token_helper_in_a_test_request_context(make_kit: KitFactory) -> None:
    kit = make_kit(forgery=ForgeryPolicy(token_paths=["/"]))
    app = flask_app(kit)
    with app.test_request_context("/"):
        flask.session.get("balance")  # the interface opens the session here
        token = flask_integration.current_csrf_token()
        session = flask_integration.current_session()
        assert kit.forgery.verify(token, session.family, session.state.generation, "") is None


# --------------------------------------------------------------------------- FastAPI


def fastapi_app(kit: sessionkit.SessionKit) -> FastAPI:
    app = FastAPI()

    @app.get("/form")
    async def form(session: SessionDep, token: CsrfTokenDep) -> dict[str, str]:
        session.setdefault("balance", 100)
        return {"token": token}

    @app.post("/transfer")
    async def transfer(session: SessionDep) -> dict[str, Any]:
        session["balance"] = session.get("balance", 100) - 10
        return {"balance": session["balance"]}

    @app.post("/json")
    async def json_post(request: Request, session: SessionDep) -> dict[str, Any]:
        session["balance"] = session.get("balance", 100) - 10
        return {"balance": session["balance"], "body": await request.json()}

    @app.get("/balance")
    async def balance(session: SessionDep) -> dict[str, Any]:
        return {"balance": session.get("balance")}

    @app.post("/hooks/pay")
    @csrf_exempt
    async def hook(request: Request) -> dict[str, str]:
        return {"hook": (await request.body()).decode()}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    app.add_middleware(SessionMiddleware, kit=kit, csrf_exempt=route_exempt)
    return app


@pytest.fixture
def fastapi_client(
    make_kit: KitFactory, events: list[sessionkit.SecurityEvent]
) -> Callable[..., Any]:
    def make(**settings: Any) -> httpx.AsyncClient:
        app = fastapi_app(make_kit(on_security_event=events.append, **settings))
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=APP)

    return make


@pytest.fixture
async def api(fastapi_client: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with fastapi_client(forgery=ForgeryPolicy(token_paths=["/json"])) as c:
        yield c


@pytest.mark.anyio
async def test_fastapi_refuses_a_cross_site_post_and_exempts_marked_routes(
    api: httpx.AsyncClient, events: list[sessionkit.SecurityEvent]
) -> None:
    await api.get("/form")
    assert (await api.post("/transfer", headers=EVIL)).status_code == 403
    assert (await api.get("/balance")).json() == {"balance": 100}
    assert (await api.post("/hooks/pay", content=b"ok", headers=EVIL)).json() == {"hook": "ok"}
    assert [e.reason for e in events] == ["cross_site"]


@pytest.mark.anyio
async def test_fastapi_token_dependency_and_header(
    api: httpx.AsyncClient, events: list[sessionkit.SecurityEvent]
) -> None:
    token = (await api.get("/form")).json()["token"]
    assert (await api.post("/json", json={"a": 1})).status_code == 403
    ok = await api.post("/json", json={"a": 1}, headers={"X-CSRF-Token": token})
    assert ok.json() == {"balance": 90, "body": {"a": 1}}
    assert [e.reason for e in events] == ["token_missing"]


@pytest.mark.anyio
async def test_fastapi_websocket_from_another_origin_is_refused(
    make_kit: KitFactory,
) -> None:
    app = fastapi_app(make_kit())
    refused = await run_websocket(app, [(b"origin", b"https://evil.example")])
    assert refused == [{"type": "websocket.close", "code": 1008}]
    accepted = await run_websocket(app, [(b"origin", b"https://testserver")])
    assert accepted[0]["type"] == "websocket.accept"
