"""Cross-site request forgery through the ASGI front end: a real Starlette app over httpx.

The header sets are those real browsers send (see docs/forgery.md for the table):
current ones send ``Sec-Fetch-Site``; Safari before 16.4 sends only ``Origin``; old
Firefox sent no ``Origin`` on form posts, only ``Referer``; a sandboxed or redirected
form sends ``Origin: null``; servers and command-line clients send neither.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

import sessionkit
from sessionkit.asgi import SessionMiddleware, csrf_token
from sessionkit.forgery import ForgeryPolicy
from sessionkit.integrations.starlette import csrf_exempt, route_exempt
from support import run_websocket

pytestmark = pytest.mark.anyio

APP = "https://app.example"
EVIL = "https://evil.example"
KitFactory = Callable[..., sessionkit.SessionKit]


async def form_page(request: Request) -> JSONResponse:
    request.session.setdefault("balance", 100)
    action = request.query_params.get("action")
    return JSONResponse({"token": csrf_token(request.scope, action)})


async def transfer(request: Request) -> JSONResponse:
    body = await request.body()
    request.session["balance"] = request.session.get("balance", 100) - 10
    form = request.headers.get("content-type", "").startswith("application/x-www-form")
    fields = dict(parse_qsl(body.decode())) if form else {}
    return JSONResponse(
        {"balance": request.session["balance"], "fields": fields, "length": len(body)}
    )


async def balance(request: Request) -> JSONResponse:
    return JSONResponse({"balance": request.session.get("balance")})


@csrf_exempt
async def webhook(request: Request) -> JSONResponse:
    return JSONResponse({"hook": (await request.body()).decode()})


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


ROUTES = [
    Route("/form", form_page),
    Route("/app/form", form_page),
    Route("/transfer", transfer, methods=["POST"]),
    Route("/app/transfer", transfer, methods=["POST"]),
    Route("/balance", balance),
    Route("/hooks/pay", webhook, methods=["POST"]),
    Mount("/api", routes=[Route("/hook", webhook, methods=["POST"])]),
    WebSocketRoute("/ws", socket),
]


@pytest.fixture
def events() -> list[sessionkit.SecurityEvent]:
    return []


@pytest.fixture
def build(make_kit: KitFactory, events: list[sessionkit.SecurityEvent]) -> Callable[..., Starlette]:
    def make(**settings: Any) -> Starlette:
        app = Starlette(routes=ROUTES)
        kit = make_kit(on_security_event=events.append, **settings)
        app.add_middleware(SessionMiddleware, kit=kit, csrf_exempt=route_exempt)
        return app

    return make


@pytest.fixture
async def client(build: Callable[..., Starlette]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build())
    async with httpx.AsyncClient(transport=transport, base_url=APP) as c:
        yield c


# (browser, headers of its form POST, reason or None when accepted)
BROWSERS = [
    ("current browser, same-origin form", {"Sec-Fetch-Site": "same-origin", "Origin": APP}, None),
    ("current browser, typed address", {"Sec-Fetch-Site": "none"}, None),
    ("current browser, other site", {"Sec-Fetch-Site": "cross-site", "Origin": EVIL}, "cross_site"),
    (
        "current browser, subdomain",
        {"Sec-Fetch-Site": "same-site", "Origin": "https://blog.app.example"},
        "cross_site",
    ),
    ("old Safari, same origin", {"Origin": APP}, None),
    ("old Safari, other site", {"Origin": EVIL}, "origin_mismatch"),
    ("old Firefox, same origin", {"Referer": f"{APP}/form"}, None),
    ("old Firefox, other site", {"Referer": f"{EVIL}/win"}, "origin_mismatch"),
    ("sandboxed or redirected form", {"Origin": "null"}, "origin_mismatch"),
    ("plain http page of the same host", {"Origin": "http://app.example"}, "origin_mismatch"),
    ("server, webhook, curl", {}, None),
]


@pytest.mark.parametrize(("browser", "headers", "reason"), BROWSERS, ids=[b[0] for b in BROWSERS])
async def test_browser_header_sets_get_the_documented_answer(
    client: httpx.AsyncClient,
    events: list[sessionkit.SecurityEvent],
    browser: str,
    headers: dict[str, str],
    reason: str | None,
) -> None:
    await client.get("/form")
    response = await client.post("/transfer", data={"amount": "10"}, headers=headers)
    after = (await client.get("/balance")).json()["balance"]
    if reason is None:
        assert response.status_code == 200
        assert response.json()["fields"] == {"amount": "10"}
        assert after == 90
        assert events == []
    else:
        assert response.status_code == 403
        assert "Request refused" in response.text
        assert response.headers["content-type"].startswith("text/html")
        assert after == 100  # the session is unchanged
        assert [e.reason for e in events] == [reason]


async def test_a_refusal_is_json_for_clients_that_do_not_take_html(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/transfer", headers={"Origin": EVIL, "Accept": "application/json"}
    )
    assert response.status_code == 403
    assert response.json()["reason"] == "origin_mismatch"
    assert "set-cookie" not in response.headers


async def test_trusted_origins_may_post(build: Callable[..., Starlette]) -> None:
    app = build(trusted_origins=["https://admin.example"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=APP) as c:
        headers = {"Sec-Fetch-Site": "same-site", "Origin": "https://admin.example"}
        assert (await c.post("/transfer", headers=headers)).status_code == 200
        headers["Origin"] = "https://blog.app.example"
        assert (await c.post("/transfer", headers=headers)).status_code == 403


async def test_exempt_paths_and_marked_routes_are_not_checked(
    build: Callable[..., Starlette], events: list[sessionkit.SecurityEvent]
) -> None:
    app = build(csrf_exempt=["/transfer"])
    headers = {"Sec-Fetch-Site": "cross-site", "Origin": EVIL}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=APP) as c:
        assert (await c.post("/transfer", headers=headers)).status_code == 200
        hook = await c.post("/hooks/pay", content=b"paid", headers=headers)
        assert hook.json() == {"hook": "paid"}
        assert (await c.post("/api/hook", content=b"x", headers=headers)).status_code == 200
        assert (await c.post("/app/transfer", headers=headers)).status_code == 403
        assert (await c.post("/nowhere", headers=headers)).status_code == 403
    assert [e.reason for e in events] == ["cross_site", "cross_site"]


async def test_the_own_origin_behind_a_trusted_proxy(build: Callable[..., Starlette]) -> None:
    app = build(trusted_proxy_hops=1)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.5:8000") as c:
        headers = {
            "Origin": APP,
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "app.example",
        }
        assert (await c.post("/transfer", headers=headers)).status_code == 200
        headers["X-Forwarded-Host"] = "evil.example"
        assert (await c.post("/transfer", headers=headers)).status_code == 403


# --------------------------------------------------------------------------- tokens

BOUNDARY = "b0undary"


def multipart(*fields: tuple[str, bytes]) -> bytes:
    """A multipart/form-data body with ``fields`` in this order."""
    out = b""
    for name, value in fields:
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


@pytest.fixture
async def token_client(build: Callable[..., Starlette]) -> AsyncIterator[httpx.AsyncClient]:
    app = build(forgery=ForgeryPolicy(token_paths=["/app"]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=APP) as c:
        yield c


async def test_a_token_path_needs_the_session_token(
    token_client: httpx.AsyncClient, events: list[sessionkit.SecurityEvent]
) -> None:
    c = token_client
    token = (await c.get("/app/form")).json()["token"]
    same = {"Sec-Fetch-Site": "same-origin", "Origin": APP}
    missing = await c.post("/app/transfer", data={"amount": "1"}, headers=same)
    assert missing.status_code == 403
    wrong = await c.post("/app/transfer", data={"csrf_token": "A" * 86}, headers=same)
    assert wrong.status_code == 403
    posted = await c.post("/app/transfer", data={"csrf_token": token, "amount": "1"})
    assert posted.status_code == 200
    assert posted.json()["fields"] == {"csrf_token": token, "amount": "1"}
    by_header = await c.post("/app/transfer", json={}, headers={"X-CSRF-Token": token})
    assert by_header.status_code == 200
    assert (await c.post("/transfer", headers=same)).status_code == 200  # not a token path
    assert [e.reason for e in events] == ["token_missing", "token_invalid"]


async def test_another_sessions_token_is_refused(
    build: Callable[..., Starlette],
) -> None:
    app = build(forgery=ForgeryPolicy(token_paths=["/"]))
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url=APP) as alice,
        httpx.AsyncClient(transport=transport, base_url=APP) as mallory,
    ):
        await alice.get("/form")
        stolen_shape = (await mallory.get("/form")).json()["token"]
        response = await alice.post("/transfer", data={"csrf_token": stolen_shape})
        assert response.status_code == 403
        assert (await alice.get("/balance")).json()["balance"] == 100


async def test_a_token_field_is_found_in_a_large_multipart_body(
    token_client: httpx.AsyncClient,
) -> None:
    c = token_client
    token = (await c.get("/app/form")).json()["token"]
    big = b"z" * 200_000
    kind = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    first = multipart(("csrf_token", token.encode()), ("file", big))
    ok = await c.post("/app/transfer", content=first, headers=kind)
    assert ok.status_code == 200
    assert ok.json()["length"] == len(first)  # the app gets the whole body
    late = multipart(("file", big), ("csrf_token", token.encode()))
    refused = await c.post("/app/transfer", content=late, headers=kind)
    assert refused.status_code == 403  # put the hidden field first


async def test_a_token_for_another_token_path_is_refused(build: Callable[..., Starlette]) -> None:
    app = build(forgery=ForgeryPolicy(token_paths=["/app", "/transfer"]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=APP) as c:
        for_app = (await c.get("/app/form?action=/app/transfer")).json()["token"]
        for_transfer = (await c.get("/app/form?action=/transfer")).json()["token"]
        site_wide = (await c.get("/app/form")).json()["token"]
        assert (await c.post("/transfer", data={"csrf_token": for_app})).status_code == 403
        assert (await c.post("/transfer", data={"csrf_token": for_transfer})).status_code == 200
        assert (await c.post("/app/transfer", data={"csrf_token": for_app})).status_code == 200
        assert (await c.post("/app/transfer", data={"csrf_token": for_transfer})).status_code == 403
        assert (await c.post("/transfer", data={"csrf_token": site_wide})).status_code == 200


# --------------------------------------------------------------------------- WebSockets


async def test_a_websocket_from_another_origin_is_refused(
    build: Callable[..., Starlette], events: list[sessionkit.SecurityEvent]
) -> None:
    app = build()
    refused = await run_websocket(app, [(b"origin", EVIL.encode())])
    assert refused == [{"type": "websocket.close", "code": 1008}]
    accepted = await run_websocket(app, [(b"origin", b"https://testserver")])
    assert [m["type"] for m in accepted] == [
        "websocket.accept",
        "websocket.send",
        "websocket.close",
    ]
    assert json.dumps(accepted[1]).count("hello") == 1
    assert (await run_websocket(app, []))[0]["type"] == "websocket.accept"
    assert [e.reason for e in events] == ["origin_mismatch"]


async def test_a_body_in_many_messages_is_read_for_the_token_and_replayed(
    build: Callable[..., Starlette],
) -> None:
    app = build(forgery=ForgeryPolicy(token_paths=["/app"]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=APP) as c:
        page = await c.get("/app/form")
        token = page.json()["token"]
        cookie = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
    body = f"csrf_token={token}&pad=".encode() + b"p" * 100_000
    chunks = [body[i : i + 7000] for i in range(0, len(body), 7000)]
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        if messages:
            return messages.pop(0)
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/app/transfer",
        "raw_path": b"/app/transfer",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"app.example"),
            (b"cookie", cookie.encode()),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("app.example", 443),
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"])["length"] == len(body)
    assert pulled == len(chunks)
