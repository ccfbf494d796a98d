"""Where you're signed in, in real headless Chromium: several browser contexts, one user.

Each context is a separate device (its own cookie jar and User-Agent). The same small app
runs on FastAPI under uvicorn and Flask under werkzeug (in threads), and Django under
uvicorn (in a subprocess: Django is configured once per process), all on 127.0.0.1 with
a store:

- ``GET /login?user=...`` signs in (a test shortcut for the password form);
- ``GET /me`` shows who the request is served as;
- ``GET /sessions`` lists the user's sessions, each with a "Sign out" form posting its
  handle to ``POST /sessions/end``, which answers the list again.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import flask
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

import sessionkit
from sessionkit.asgi import SessionMiddleware
from sessionkit.integrations import flask as flask_integration
from sessionkit.integrations.fastapi import SessionDep
from sessionkit.stores import MemoryStore
from support import (
    CHROME_ANDROID,
    FIREFOX_WINDOWS,
    SAFARI_IPHONE,
    free_port,
    load_module,
    running_uvicorn,
    running_werkzeug,
    start_uvicorn_process,
    stop_process,
    wait_for_port,
)

SERVER_TIMEOUT = 30.0


PAGES = load_module("devices_app", Path(__file__).with_name("devices_app.py"))
sessions_page = PAGES.sessions_page
me_page = PAGES.me_page
SECURITY_LINE = re.compile(r"security event: rejected cookie \S+: (\w+)")


def fastapi_app(kit: sessionkit.SessionKit) -> Any:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, kit=kit)

    @app.get("/login")
    async def login(user: str, session: SessionDep) -> HTMLResponse:
        session.login(user)
        return HTMLResponse(me_page(user))

    @app.get("/me")
    async def me(session: SessionDep) -> HTMLResponse:
        return HTMLResponse(me_page(session.user_id))

    @app.get("/sessions")
    async def sessions(session: SessionDep) -> HTMLResponse:
        user = session.user_id
        listed = [] if user is None else await kit.asessions_of(user, current=session)
        return HTMLResponse(sessions_page(user, listed))

    @app.post("/sessions/end")
    async def end(session: SessionDep, request: Request) -> HTMLResponse:
        [handle] = parse_qs((await request.body()).decode())["handle"]
        user = session.user_id
        if user is None:
            return HTMLResponse(sessions_page(None, []))
        ended = await kit.arevoke_session(user, handle)
        listed = await kit.asessions_of(user, current=session)
        return HTMLResponse(sessions_page(user, listed, "ended" if ended else "refused"))

    return app


def flask_app(kit: sessionkit.SessionKit) -> Any:
    app = flask.Flask(__name__)
    flask_integration.init_app(app, kit)
    current = flask_integration.current_session

    @app.get("/login")
    def login() -> str:
        current().login(flask.request.args["user"])
        return me_page(flask.request.args["user"])

    @app.get("/me")
    def me() -> str:
        return me_page(current().user_id)

    @app.get("/sessions")
    def sessions() -> str:
        session = current()
        user = session.user_id
        listed = [] if user is None else kit.sessions_of(user, current=session)
        return sessions_page(user, listed)

    @app.post("/sessions/end")
    def end() -> str:
        session = current()
        user = session.user_id
        if user is None:
            return sessions_page(None, [])
        ended = kit.revoke_session(user, flask.request.form["handle"])
        listed = kit.sessions_of(user, current=session)
        return sessions_page(user, listed, "ended" if ended else "refused")

    return app


@contextlib.contextmanager
def serving(framework: str, tmp_path: Path) -> Iterator[tuple[str, Callable[[], list[str]]]]:
    """The app on ``framework``: its base URL, and the reasons of its security events."""
    if framework == "django":
        log = tmp_path / "django.log"
        port = free_port()
        env = {**os.environ, "SESSIONKIT_SECRET_KEYS": sessionkit.generate_key()}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        process = start_uvicorn_process(
            "devices_app:create_django_app", Path(__file__).parent, port, log, env
        )
        try:
            assert wait_for_port(port, process, SERVER_TIMEOUT), log.read_text()[-3000:]
            yield f"http://127.0.0.1:{port}", lambda: SECURITY_LINE.findall(log.read_text())
        finally:
            stop_process(process, sig=signal.SIGINT)
        return
    events: list[sessionkit.SecurityEvent] = []
    kit = sessionkit.SessionKit(
        secret_keys=[sessionkit.generate_key()],
        store=MemoryStore(),
        insecure_development=True,
        on_security_event=events.append,
    )
    app = fastapi_app(kit) if framework == "fastapi" else flask_app(kit)
    server = running_uvicorn if framework == "fastapi" else running_werkzeug
    with server(app) as url:
        yield url, lambda: [e.reason for e in events]


def _listed(page: Any) -> list[tuple[str, bool]]:
    """The list on ``page``: (device label, whether it is this browser), in order."""
    items = page.locator("li")
    return [
        (
            items.nth(n).locator(".device").inner_text(),
            items.nth(n).get_attribute("data-current") == "true",
        )
        for n in range(items.count())
    ]


def _user(page: Any, base: str) -> str:
    page.goto(base + "/me")
    return str(page.locator("#user").inner_text())


@pytest.mark.parametrize("framework", ["fastapi", "flask", "django"])
def test_one_device_signs_out_another(framework: str, chromium: Any, tmp_path: Path) -> None:

    def device(user_agent: str) -> Any:
        context = chromium.new_context(user_agent=user_agent)
        stack.callback(context.close)
        return context.new_page()

    with serving(framework, tmp_path) as (base, reasons), contextlib.ExitStack() as stack:
        laptop, phone, tablet = (
            device(FIREFOX_WINDOWS),
            device(SAFARI_IPHONE),
            device(CHROME_ANDROID),
        )
        intruder = device(FIREFOX_WINDOWS)
        for page in (laptop, phone, tablet):
            page.goto(base + "/login?user=alice")
        intruder.goto(base + "/login?user=mallory")

        # Each device lists all three, itself first and marked as this browser.
        laptop.goto(base + "/sessions")
        listed = _listed(laptop)
        assert listed[0] == ("Firefox on Windows", True)
        assert sorted(listed[1:]) == [
            ("Chrome Mobile on Android", False),
            ("Mobile Safari on iOS", False),
        ]
        phone.goto(base + "/sessions")
        assert _listed(phone)[0] == ("Mobile Safari on iOS", True)
        assert len(_listed(phone)) == 3

        # The laptop signs the phone out: exactly the phone is logged out.
        laptop.locator("li", has_text="Mobile Safari on iOS").get_by_role(
            "button", name="Sign out"
        ).click()
        laptop.wait_for_load_state()
        assert laptop.locator("#note").inner_text() == "ended"
        assert _listed(laptop) == [
            ("Firefox on Windows", True),
            ("Chrome Mobile on Android", False),
        ]
        assert _user(phone, base) == "None"
        assert reasons() == ["revoked"]
        assert _user(tablet, base) == "alice"
        assert _user(laptop, base) == "alice"

        # A handle from another user's list, posted through the laptop's own form, does
        # nothing and is reported.
        intruder.goto(base + "/sessions")
        foreign = intruder.locator("li").first.get_attribute("data-handle")
        laptop.goto(base + "/sessions")
        row = laptop.locator("li", has_text="Chrome Mobile on Android")
        row.locator("input[name=handle]").evaluate("(input, v) => { input.value = v; }", foreign)
        row.get_by_role("button", name="Sign out").click()
        laptop.wait_for_load_state()
        assert laptop.locator("#note").inner_text() == "refused"
        assert reasons() == ["revoked", "foreign_handle"]
        assert _user(intruder, base) == "mallory"
        assert _user(tablet, base) == "alice"
        assert len(_listed(laptop)) == 2
