"""Cross-site request forgery in a real headless Chromium, against real servers.

The app runs on ``http://127.0.0.1:<port>``; the attacker's pages run on a second server,
reached as ``http://127.0.0.1:<other port>`` (same site, another origin: the case
``SameSite=Lax`` cookies do not stop) and as ``http://localhost:<other port>`` (another
site). The attacker's page auto-submits a form to the app, and posts to it with
``fetch(..., {mode: "no-cors", credentials: "include"})``: both are refused and the
session is unchanged. The app's own form and ``fetch``, carrying the session-bound
token, are accepted. A WebSocket from the attacker's origin is refused; the app's own
connects. The same app runs as raw ASGI (Starlette), FastAPI, Flask and raw WSGI, and
Django (with sessionkit's checks turned on) in a process of its own.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import flask
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

import sessionkit
import sessionkit.asgi
import sessionkit.wsgi
from sessionkit.forgery import ForgeryPolicy
from sessionkit.integrations import flask as flask_integration
from support import (
    free_port,
    running_uvicorn,
    running_werkzeug,
    start_uvicorn_process,
    stop_process,
    wait_for_port,
)

SERVER_TIMEOUT = 10.0
WAIT_MS = 10_000


def form_page(token: str) -> str:
    """The app's own page: a form and a script that post back, both with the token."""
    return (
        "<!doctype html><title>Form</title>"
        '<form id=own method=post action="/transfer">'
        f'<input type=hidden name=csrf_token value="{html.escape(token)}">'
        "<input name=amount value=10><button>Send</button></form>"
        f"<script>const TOKEN = {json.dumps(token)};"
        "async function ownFetch() {"
        ' const r = await fetch("/transfer", {method: "POST", body: "amount=5",'
        ' headers: {"X-CSRF-Token": TOKEN,'
        ' "Content-Type": "application/x-www-form-urlencoded"}});'
        " return r.status; }"
        "function ownSocket() { return new Promise((done) => {"
        ' const ws = new WebSocket("ws://" + location.host + "/ws");'
        ' ws.onmessage = (e) => done(e.data); ws.onclose = (e) => done("closed:" + e.code);'
        " }); }</script>"
    )


def done_page(balance: int) -> str:
    return f"<!doctype html><title>Done</title><p id=balance>{balance}</p>"


# --------------------------------------------------------------------------- the apps


def policy() -> ForgeryPolicy:
    return ForgeryPolicy(token_paths=["/"])


def starlette_routes() -> list[Any]:
    async def form(request: Request) -> Response:
        session = request.session
        session.setdefault("balance", 100)
        return HTMLResponse(form_page(sessionkit.asgi.csrf_token(request.scope)))

    async def transfer(request: Request) -> Response:
        fields = dict(parse_qsl((await request.body()).decode()))
        session = request.session
        session["balance"] = session.get("balance", 100) - int(fields.get("amount", "0"))
        return HTMLResponse(done_page(session["balance"]))

    async def balance(request: Request) -> Response:
        return JSONResponse({"balance": request.session.get("balance")})

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("welcome")
        await websocket.close()

    return [
        Route("/form", form),
        Route("/transfer", transfer, methods=["POST"]),
        Route("/balance", balance),
        WebSocketRoute("/ws", socket),
    ]


def asgi_app(kit: sessionkit.SessionKit) -> Any:
    return sessionkit.asgi.SessionMiddleware(Starlette(routes=starlette_routes()), kit=kit)


def fastapi_app(kit: sessionkit.SessionKit) -> Any:
    app = FastAPI()
    app.router.routes.extend(starlette_routes())
    app.add_middleware(sessionkit.asgi.SessionMiddleware, kit=kit)
    return app


def flask_app(kit: sessionkit.SessionKit) -> Any:
    app = flask.Flask(__name__)

    @app.get("/form")
    def form() -> str:
        flask.session.setdefault("balance", 100)
        return form_page(flask_integration.current_csrf_token())

    @app.post("/transfer")
    def transfer() -> str:
        amount = int(flask.request.form.get("amount", "0"))
        flask.session["balance"] = flask.session.get("balance", 100) - amount
        return done_page(flask.session["balance"])

    @app.get("/balance")
    def balance() -> dict[str, Any]:
        return {"balance": flask.session.get("balance")}

    flask_integration.init_app(app, kit)
    return app


def wsgi_app(kit: sessionkit.SessionKit) -> Any:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        session = sessionkit.wsgi.session_of(environ)
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        kind = "text/html; charset=utf-8"
        if path == "/form":
            session.setdefault("balance", 100)
            body = form_page(sessionkit.wsgi.csrf_token(environ))
        elif path == "/transfer" and method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            fields = dict(parse_qsl(environ["wsgi.input"].read(length).decode()))
            session["balance"] = session.get("balance", 100) - int(fields.get("amount", "0"))
            body = done_page(session["balance"])
        else:
            body, kind = json.dumps({"balance": session.get("balance")}), "application/json"
        start_response("200 OK", [("Content-Type", kind)])
        return [body.encode()]

    return sessionkit.wsgi.SessionMiddleware(app, kit)


APPS: dict[str, tuple[Callable[[sessionkit.SessionKit], Any], bool]] = {
    # name: (factory, served by uvicorn with WebSockets; else by werkzeug)
    "asgi": (asgi_app, True),
    "fastapi": (fastapi_app, True),
    "flask": (flask_app, False),
    "wsgi": (wsgi_app, False),
}


# --------------------------------------------------------------------------- the attacker


async def attacker(request: Request) -> Response:
    """The attacker's pages: ``/form``, ``/fetch`` and ``/ws`` against ``?target=``."""
    target = json.dumps(request.query_params.get("target", ""))
    kind = request.path_params["kind"]
    if kind == "form":
        script = "document.getElementById('f').submit();"
        body = (
            "<form id=f method=post><input name=amount value=1000></form>"
            f"<script>document.getElementById('f').action = {target} + '/transfer';"
            f"{script}</script>"
        )
    elif kind == "fetch":
        body = (
            f"<script>fetch({target} + '/transfer', {{method: 'POST', mode: 'no-cors',"
            " credentials: 'include', body: 'amount=1000',"
            " headers: {'Content-Type': 'application/x-www-form-urlencoded'}})"
            ".then(() => { document.title = 'sent'; },"
            " () => { document.title = 'failed'; });</script>"
        )
    else:
        body = (
            f"<script>const ws = new WebSocket({target}.replace('http', 'ws') + '/ws');"
            " ws.onmessage = (e) => { document.title = 'message:' + e.data; };"
            " ws.onclose = (e) => { if (!document.title.startsWith('message'))"
            " document.title = 'closed:' + e.code; };</script>"
        )
    return HTMLResponse(f"<!doctype html><title>Attacker</title>{body}")


@pytest.fixture(scope="module")
def attacker_port() -> Iterator[int]:
    app = Starlette(routes=[Route("/{kind}", attacker)])
    with running_uvicorn(app, timeout=SERVER_TIMEOUT) as url:
        yield int(url.rsplit(":", 1)[1])


@contextlib.contextmanager
def serving(name: str, kit: sessionkit.SessionKit) -> Iterator[str]:
    factory, asgi = APPS[name]
    app = factory(kit)
    if asgi:
        with running_uvicorn(app, ws="websockets-sansio", timeout=SERVER_TIMEOUT) as url:
            yield url
    else:
        with running_werkzeug(app, timeout=SERVER_TIMEOUT) as url:
            yield url


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("name", sorted(APPS))
def test_cross_origin_requests_are_refused_and_the_apps_own_are_accepted(
    name: str, attacker_port: int, browser_context: Callable[..., Any]
) -> None:
    events: list[sessionkit.SecurityEvent] = []
    kit = sessionkit.SessionKit(
        secret_keys=[sessionkit.generate_key()],
        insecure_development=True,
        forgery=policy(),
        on_security_event=events.append,
    )
    with serving(name, kit) as app:
        context = browser_context()
        page = context.new_page()

        def balance() -> int:
            response = page.request.get(app + "/balance")
            value: int = response.json()["balance"]
            return value

        page.goto(app + "/form")
        assert balance() == 100

        attackers = {
            "same-site": f"http://127.0.0.1:{attacker_port}",
            "cross-site": f"http://localhost:{attacker_port}",
        }
        for site, origin in attackers.items():
            with page.expect_response(lambda r: r.url == app + "/transfer") as answer:
                page.goto(f"{origin}/form?target={app}")
            assert answer.value.status == 403, site
            page.wait_for_load_state()
            assert page.locator("h1").inner_text() == "Request refused"

            page.goto(f"{origin}/fetch?target={app}")
            page.wait_for_function("document.title === 'sent'", timeout=WAIT_MS)
            assert balance() == 100, site

        # Both attacks from both attacker origins were refused by Sec-Fetch-Site.
        assert [e.reason for e in events] == ["cross_site"] * 4

        page.goto(app + "/form")
        assert page.evaluate("ownFetch()") == 200
        assert balance() == 95
        with page.expect_navigation():
            page.click("button")
        assert page.locator("#balance").inner_text() == "85"
        assert balance() == 85
        assert len(events) == 4

        if APPS[name][1]:
            page.goto(f"http://localhost:{attacker_port}/ws?target={app}")
            page.wait_for_function("document.title.startsWith('closed')", timeout=WAIT_MS)
            assert page.title() == "closed:1006"  # refused before the handshake completed
            assert events[4:] == [events[4]]
            assert events[4].reason == "origin_mismatch"
            page.goto(app + "/form")
            assert page.evaluate("ownSocket()") == "welcome"
            assert len(events) == 5


def test_django_with_sessionkits_checks_refuses_cross_origin_posts(
    attacker_port: int, browser_context: Callable[..., Any], tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "django.log"
    env = {**os.environ, "SESSIONKIT_SECRET_KEYS": sessionkit.generate_key()}
    here = Path(__file__).parent
    process = start_uvicorn_process("forgery_django_app:create", here, port, log, env)
    try:
        assert wait_for_port(port, process, SERVER_TIMEOUT), log.read_text()
        app = f"http://127.0.0.1:{port}"
        page = browser_context().new_page()

        def balance() -> int:
            value: int = page.request.get(app + "/balance").json()["balance"]
            return value

        page.goto(app + "/form")
        for origin in (f"http://127.0.0.1:{attacker_port}", f"http://localhost:{attacker_port}"):
            with page.expect_response(lambda r: r.url == app + "/transfer") as answer:
                page.goto(f"{origin}/form?target={app}")
            assert answer.value.status == 403
            page.goto(f"{origin}/fetch?target={app}")
            page.wait_for_function("document.title === 'sent'", timeout=WAIT_MS)
        assert balance() == 100
        page.goto(app + "/form")
        assert page.evaluate("ownFetch()") == 200
        with page.expect_navigation():
            page.click("button")
        assert page.locator("#balance").inner_text() == "85"
    finally:
        stop_process(process)
    assert log.read_text().count("refused request as forged: cross_site method=POST") == 4
