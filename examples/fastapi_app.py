"""A small FastAPI app behind sessionkit: public home, log-in form, a private area, log-out.

Run it from the repository root (``./scripts/demo`` does this in a fresh virtualenv)::

    python -m uvicorn examples.fastapi_app:app --host 127.0.0.1 --port 8000

and open http://127.0.0.1:8000. The demo user is ``demo`` with the password
``correct horse``, typed at every log-on. ``/app`` is the application part of the site:
it requires cookies (one test redirect, then a "cookies are required" page). Sessions are
recorded in an SQLite file, so log-out revokes the cookie and "log out everywhere" works.

It serves plain http on 127.0.0.1 through the explicit ``insecure_development=True``
opt-in. The key comes from ``SESSIONKIT_SECRET_KEYS`` or is generated at start (sessions
then end when the server stops); ``SESSIONKIT_DEMO_DIR`` chooses where the SQLite file
goes (a directory under the system's temporary directory by default).
"""

from __future__ import annotations

import hmac
import html
import logging
import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import sessionkit
from sessionkit.asgi import SessionMiddleware
from sessionkit.integrations.fastapi import SessionDep, VisitorDep
from sessionkit.stores import SQLiteStore

DEMO_USER = "demo"
DEMO_PASSWORD = "correct horse"  # noqa: S105 - the published demo credential

# Show sessionkit's security events (rejected, replayed or revoked cookies) in the console.
security_log = logging.getLogger("sessionkit.security")
security_log.setLevel(logging.INFO)
security_log.addHandler(logging.StreamHandler())

state_dir = Path(
    os.environ.get("SESSIONKIT_DEMO_DIR") or Path(tempfile.gettempdir()) / "sessionkit-demo"
)
state_dir.mkdir(parents=True, exist_ok=True)

kit = sessionkit.SessionKit(
    secret_keys=os.environ.get("SESSIONKIT_SECRET_KEYS", sessionkit.generate_key()).split(","),
    require_cookies=["/app"],
    store=SQLiteStore(state_dir / "fastapi-sessions.sqlite3"),
    insecure_development=True,
)

app = FastAPI(title="sessionkit demo", docs_url=None, redoc_url=None, openapi_url=None)
app.add_middleware(SessionMiddleware, kit=kit)


def page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
        f"<body><h1>{title}</h1>{body}</body></html>"
    )


def csrf_field(session: sessionkit.Session) -> str:
    """A hidden form field with this session's anti-forgery token (made on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return f'<input type=hidden name=csrf_token value="{token}">'


async def form_of(request: Request, session: sessionkit.Session) -> dict[str, str] | None:
    """The posted form, or None when its anti-forgery token is not this session's."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    form = {name: values[0] for name, values in fields.items()}
    expected = session.get("csrf")
    sent = form.get("csrf_token", "")
    if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        return None
    return form


def session_line(session: sessionkit.Session) -> str:
    return (
        f"<p>Session id: <code id=session-id>{html.escape(session.id)}</code> "
        "(it changes when you log in or out, and every 15 minutes).</p>"
    )


@app.get("/")
async def home(session: SessionDep, visitor: VisitorDep) -> Response:
    user = session.user_id
    who = f"Logged in as <b>{html.escape(str(user))}</b>." if user else "Not logged in."
    return page(
        "sessionkit demo",
        f"<p>{who}</p><p>Visitor id: <code>{html.escape(str(visitor))}</code></p>"
        '<p><a href="/app">Private area</a> · <a href="/login">Log in</a></p>',
    )


@app.get("/login")
async def login_form(session: SessionDep) -> Response:
    return page(
        "Log in",
        '<form method=post action="/login">'
        f"{csrf_field(session)}"
        '<label>User <input name=username autocomplete=username value=""></label> '
        "<label>Password <input name=password type=password autocomplete=current-password>"
        "</label> <button>Log in</button></form>"
        f"<p>The demo user is <code>{DEMO_USER}</code> / <code>{DEMO_PASSWORD}</code>.</p>"
        f"{session_line(session)}",
    )


@app.post("/login")
async def login(request: Request, session: SessionDep) -> Response:
    form = await form_of(request, session)
    if form is None:
        return page("Log in failed", '<p>The form expired. <a href="/login">Again</a></p>')
    user = form.get("username", "")
    good = hmac.compare_digest(user.encode(), DEMO_USER.encode()) & hmac.compare_digest(
        form.get("password", "").encode(), DEMO_PASSWORD.encode()
    )
    if not good:
        return page("Log in failed", '<p>Wrong user or password. <a href="/login">Again</a></p>')
    session.login(user)  # a new id and a new session family: a planted id is now worthless
    del session["csrf"]  # and a new anti-forgery token with the new privilege
    return RedirectResponse("/app", status_code=303)


@app.get("/app")
async def private(session: SessionDep) -> Response:
    if session.user_id is None:
        return RedirectResponse("/login", status_code=303)
    session["visits"] = session.get("visits", 0) + 1
    return page(
        "Private area",
        f"<p>Hello {html.escape(str(session.user_id))}: visit {session['visits']} "
        f"in this session.</p>{session_line(session)}"
        f'<form method=post action="/logout">{csrf_field(session)}'
        "<button>Log out</button></form>"
        f'<form method=post action="/logout-everywhere">{csrf_field(session)}'
        "<button>Log out everywhere</button></form>",
    )


@app.post("/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    if await form_of(request, session) is not None:
        session.invalidate()
    return RedirectResponse("/", status_code=303)


@app.post("/logout-everywhere")
async def logout_everywhere(request: Request, session: SessionDep) -> Response:
    if await form_of(request, session) is not None:
        if session.user_id is not None:
            await kit.arevoke_user(session.user_id)
        session.invalidate()
    return RedirectResponse("/", status_code=303)
