"""A small Starlette app behind sessionkit: public home, log-in form, a private area, log-out.

Run it with ``./scripts/demo`` and open http://127.0.0.1:8000. It uses the explicit
``insecure_development=True`` opt-in because it serves plain http on 127.0.0.1; the key
comes from ``SESSIONKIT_SECRET_KEYS`` or is generated at start (sessions then end when
the server stops). Sessions are recorded in an SQLite file in the temporary directory,
so logout revokes and "log out everywhere" works; ``/app`` requires cookies. The demo
user is ``demo`` with the password ``correct horse``.
"""

from __future__ import annotations

import hmac
import html
import logging
import os
import tempfile
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

import sessionkit
from sessionkit.asgi import SessionMiddleware, session_of, visitor_of
from sessionkit.stores import SQLiteStore

DEMO_USER = "demo"
DEMO_PASSWORD = "correct horse"  # noqa: S105 - the published demo credential

# Show sessionkit's security events (rejected, replayed or revoked cookies) in the console.
security_log = logging.getLogger("sessionkit.security")
security_log.setLevel(logging.INFO)
security_log.addHandler(logging.StreamHandler())

kit = sessionkit.SessionKit(
    secret_keys=os.environ.get("SESSIONKIT_SECRET_KEYS", sessionkit.generate_key()).split(","),
    require_cookies=["/app"],
    store=SQLiteStore(Path(tempfile.gettempdir()) / "sessionkit-demo.sqlite3"),
    insecure_development=True,
)


def page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
        f"<body><h1>{title}</h1>{body}</body></html>"
    )


async def home(request: Request) -> Response:
    user = session_of(request.scope).user_id
    visitor = visitor_of(request.scope)
    who = f"Logged in as <b>{html.escape(str(user))}</b>." if user else "Not logged in."
    return page(
        "sessionkit demo",
        f"<p>{who}</p><p>Visitor id: <code>{html.escape(str(visitor))}</code></p>"
        '<p><a href="/app">Private area</a> · <a href="/login">Log in</a></p>',
    )


async def login_form(request: Request) -> Response:
    return page(
        "Log in",
        '<form method=post action="/login">'
        '<label>User <input name=user autocomplete=username value=""></label> '
        "<label>Password <input name=password type=password autocomplete=current-password>"
        "</label> <button>Log in</button></form>"
        f"<p>The demo user is <code>{DEMO_USER}</code> / <code>{DEMO_PASSWORD}</code>.</p>",
    )


async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    user = form.get("user", [""])[0]
    password = form.get("password", [""])[0]
    good = hmac.compare_digest(user.encode(), DEMO_USER.encode()) & hmac.compare_digest(
        password.encode(), DEMO_PASSWORD.encode()
    )
    if not good:
        return page("Log in failed", '<p>Wrong user or password. <a href="/login">Again</a></p>')
    session_of(request.scope).login(user)
    return RedirectResponse("/app", status_code=303)


async def private(request: Request) -> Response:
    session = session_of(request.scope)
    if session.user_id is None:
        return RedirectResponse("/login", status_code=303)
    session["visits"] = session.get("visits", 0) + 1
    return page(
        "Private area",
        f"<p>Hello {html.escape(str(session.user_id))}: visit {session['visits']} "
        f"in this session.</p>"
        '<form method=post action="/logout"><button>Log out</button></form>'
        '<form method=post action="/logout-everywhere"><button>Log out everywhere</button>'
        "</form>",
    )


async def logout(request: Request) -> Response:
    session_of(request.scope).invalidate()
    return RedirectResponse("/", status_code=303)


async def logout_everywhere(request: Request) -> Response:
    session = session_of(request.scope)
    if session.user_id is not None:
        await kit.arevoke_user(session.user_id)
    session.invalidate()
    return RedirectResponse("/", status_code=303)


app = Starlette(
    routes=[
        Route("/", home),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/app", private),
        Route("/logout", logout, methods=["POST"]),
        Route("/logout-everywhere", logout_everywhere, methods=["POST"]),
    ],
    middleware=[Middleware(SessionMiddleware, kit=kit)],
)
