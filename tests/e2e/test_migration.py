"""Zero-logout migration through real servers: a cookie a real Starlette, Flask or Django
app set under the old framework signs the user in under sessionkit without a new login.

Each old app runs under its usual server (uvicorn, werkzeug; Django's in its own process,
since Django's settings are per process), signs a user in and hands over its cookie; the
same app moved to sessionkit then accepts that cookie once, deletes it, and goes on with
its own session cookie.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import flask
import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessions
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import sessionkit
import sessionkit.asgi
from sessionkit.events import LifecycleEvent, SecurityEvent
from sessionkit.integrations.flask import current_session, init_app
from sessionkit.migrate import FlaskCookie, Migration, StarletteCookie
from support import free_port, running_uvicorn, running_werkzeug, stop_process, wait_for_port

OLD_KEY = "the-secret-key-of-the-application-before-it-moved"
UNTIL = datetime(2040, 1, 1, tzinfo=timezone.utc)
NEW_COOKIE = "sk-session"
APPS = Path(__file__).with_name("ops_apps.py")


class Events:
    """The kit's hooks: every event it reports, in order."""

    def __init__(self) -> None:
        self.seen: list[SecurityEvent | LifecycleEvent] = []

    def __call__(self, event: SecurityEvent | LifecycleEvent) -> None:
        self.seen.append(event)

    def names(self) -> list[str]:
        return [e.name if isinstance(e, LifecycleEvent) else e.reason for e in self.seen]


def new_kit(reader: Any, events: Events) -> sessionkit.SessionKit:
    return sessionkit.SessionKit(
        secret_keys=[sessionkit.generate_key()],
        insecure_development=True,
        session_cookie=NEW_COOKIE,
        migrate=Migration([reader], until=UNTIL),
        on_security_event=events,
        on_lifecycle_event=events,
    )


def check_migration(base: str, old_name: str, old_value: str, events: Events) -> None:
    """The old cookie signs alice in once, is deleted, and the new cookie carries on."""
    with httpx.Client(base_url=base) as client:
        client.cookies.set(old_name, old_value, domain="127.0.0.1")
        first = client.get("/me")
        assert first.status_code == 200
        assert first.json()["user"] == "alice"
        assert first.json()["session"]["cart"] == [1, 2]
        set_cookies = first.headers.get_list("set-cookie")
        assert any(c.startswith(f"{old_name}=; Max-Age=0") for c in set_cookies)
        assert any(c.startswith(f"{NEW_COOKIE}=") for c in set_cookies)
        assert old_name not in client.cookies, "the client dropped the old cookie"
        second = client.get("/me")
        assert second.json()["user"] == "alice"
        assert second.json()["session"]["cart"] == [1, 2]
        assert not any(c.startswith(f"{old_name}=") for c in second.headers.get_list("set-cookie"))
    assert "migrated" in events.names()
    with httpx.Client(base_url=base) as client:
        client.cookies.set(old_name, old_value[:-3] + ("AAA" if old_value[-3:] != "AAA" else "BBB"))
        forged = client.get("/me")
        assert forged.status_code == 200
        assert forged.json()["user"] is None
    assert events.names()[-1] == "old_cookie_forged"


# --------------------------------------------------------------------------- Starlette


async def _starlette_login(request: Request) -> JSONResponse:
    request.session["user"] = "alice"
    request.session["cart"] = [1, 2]
    return JSONResponse({"ok": True})


async def _starlette_me(request: Request) -> JSONResponse:
    session = request.session
    return JSONResponse({"user": session.user_id, "session": dict(session)})


def test_a_starlette_session_moves_to_sessionkit() -> None:
    old_app = Starlette(
        routes=[Route("/login", _starlette_login)],
        middleware=[Middleware(StarletteSessions, secret_key=OLD_KEY)],
    )
    with running_uvicorn(old_app) as base:
        old_cookie = httpx.get(f"{base}/login").cookies["session"]
    events = Events()
    kit = new_kit(StarletteCookie(OLD_KEY, user_key="user"), events)
    new_app = Starlette(
        routes=[Route("/me", _starlette_me)],
        middleware=[Middleware(sessionkit.asgi.SessionMiddleware, kit=kit)],
    )
    with running_uvicorn(new_app) as base:
        check_migration(base, "session", old_cookie, events)


# --------------------------------------------------------------------------- Flask


def test_a_flask_session_moves_to_sessionkit() -> None:
    old_app = flask.Flask("old_flask")
    old_app.secret_key = OLD_KEY

    @old_app.route("/login")
    def login() -> Any:
        flask.session["user_id"] = "alice"
        flask.session["cart"] = [1, 2]
        return {"ok": True}

    with running_werkzeug(old_app) as base:
        old_cookie = httpx.get(f"{base}/login").cookies["session"]
    events = Events()
    new_app = flask.Flask("new_flask")

    @new_app.route("/me")
    def me() -> Any:
        return {"user": current_session().user_id, "session": dict(flask.session)}

    init_app(new_app, new_kit(FlaskCookie(OLD_KEY, user_key="user_id"), events))
    with running_werkzeug(new_app) as base:
        check_migration(base, "session", old_cookie, events)


# --------------------------------------------------------------------------- Django


@contextlib.contextmanager
def django_server(
    mode: str, tmp_path: Path, *extra: str
) -> Iterator[tuple[str, Callable[[], str]]]:
    """Serve the ``mode`` Django app of ops_apps.py; yield its URL and a reader of its stderr."""
    port = free_port()
    log = tmp_path / f"{mode}.log"
    env = {**os.environ, "SESSIONKIT_SECRET_KEYS": sessionkit.generate_key()}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(APPS), mode, str(port), *extra],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    try:
        assert wait_for_port(port, process, 30.0), log.read_text()
        yield f"http://127.0.0.1:{port}", log.read_text
    finally:
        stop_process(process)


def test_a_django_signed_cookie_session_moves_to_sessionkit(tmp_path: Path) -> None:
    with django_server("django-old", tmp_path) as (base, _):
        old_cookie = httpx.get(f"{base}/login").cookies["sessionid"]
    metrics_port = free_port()
    with django_server("django-new", tmp_path, str(metrics_port)) as (base, stderr):
        with httpx.Client(base_url=base) as client:
            client.cookies.set("sessionid", old_cookie)
            first = client.get("/me")
            assert first.status_code == 200, stderr()
            assert first.json() == {"user": "alice", "session": {"user": "alice", "cart": [1, 2]}}
            assert any(
                c.startswith("sessionid=; Max-Age=0") for c in first.headers.get_list("set-cookie")
            )
            second = client.get("/me")
            assert second.json()["user"] == "alice"
        with httpx.Client(base_url=base) as client:
            client.cookies.set("sessionid", old_cookie[:-3] + "AAA")
            assert client.get("/me").json()["user"] is None
        bad = httpx.get(
            f"{base}/me",
            headers={
                "Cookie": "sk-session=tampered",
                "X-Request-ID": "lb-91",
                "User-Agent": "curl/8",
            },
        )
        assert bad.json()["user"] is None
        logged = [json.loads(line) for line in stderr().splitlines() if line.startswith("{")]
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    assert _sample(scraped, "sessionkit_sessions_migrated_total", 'reader="django"') == 1
    assert _sample(scraped, "sessionkit_rejections_total", 'reason="old_cookie_forged"') == 1
    assert _sample(scraped, "sessionkit_rejections_total", 'reason="malformed"') == 1
    assert _sample(scraped, "sessionkit_sessions_opened_total", "") == 1
    ours = [r for r in logged if r["logger"] == "django.security.SuspiciousSession"]
    assert [r["reason"] for r in ours] == ["old_cookie_forged", "malformed"]
    assert all(r["level"] == "WARNING" for r in ours)
    assert (ours[1]["cookie"], ours[1]["path"], ours[1]["method"]) == ("sk-session", "/me", "GET")
    assert ours[1]["client"] == "127.0.0.0"
    assert (ours[1]["request_id"], ours[1]["user_agent"]) == ("lb-91", "curl")
    assert ours[1]["message"].startswith("Session data corrupted: rejected cookie sk-session")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


def _sample(exposition: str, name: str, label: str) -> float:
    """The value of the one sample of ``name`` whose labels include ``label``."""
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith(name + "{") and label in line
    ]
    assert len(values) == 1, (name, label, exposition)
    return values[0]
