"""What the example apps share: the demo user, the kit, anti-forgery tokens and markup.

Each app keeps its framework's idiom in its own file; this module holds only what is the
same in all of them.
"""

from __future__ import annotations

import hmac
import html
import logging
import os
import secrets
import tempfile
from pathlib import Path

import sessionkit
from sessionkit.stores import SQLiteStore

DEMO_USER = "demo"
DEMO_PASSWORD = "correct horse"  # noqa: S105 - the published demo credential


def state_dir() -> Path:
    """Where the examples keep their SQLite files (``SESSIONKIT_DEMO_DIR`` or a temp dir)."""
    path = Path(
        os.environ.get("SESSIONKIT_DEMO_DIR") or Path(tempfile.gettempdir()) / "sessionkit-demo"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


def show_security_events() -> None:
    """Print sessionkit's security events (rejected, replayed, revoked cookies)."""
    security_log = logging.getLogger("sessionkit.security")
    security_log.setLevel(logging.INFO)
    security_log.addHandler(logging.StreamHandler())


def demo_kit(name: str) -> sessionkit.SessionKit:
    """The examples' policy: ``/app`` needs cookies, an SQLite store, plain http locally."""
    show_security_events()
    return sessionkit.SessionKit(
        secret_keys=os.environ.get("SESSIONKIT_SECRET_KEYS", sessionkit.generate_key()).split(","),
        require_cookies=["/app"],
        store=SQLiteStore(state_dir() / f"{name}-sessions.sqlite3"),
        insecure_development=True,
    )


def credentials_match(user: str, password: str) -> bool:
    """Whether the typed user and password are the demo's (compared in constant time)."""
    user_ok = hmac.compare_digest(user.encode(), DEMO_USER.encode())
    password_ok = hmac.compare_digest(password.encode(), DEMO_PASSWORD.encode())
    return user_ok & password_ok


def csrf_field(session: sessionkit.Session) -> str:
    """A hidden form field with this session's anti-forgery token (made on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return f'<input type=hidden name=csrf_token value="{token}">'


def csrf_matches(session: sessionkit.Session, sent: str) -> bool:
    """Whether a posted anti-forgery token is this session's."""
    expected = session.get("csrf")
    return isinstance(expected, str) and hmac.compare_digest(sent.encode(), expected.encode())


def page(title: str, body: str) -> str:
    """A minimal HTML page."""
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
        f"<body><h1>{title}</h1>{body}</body></html>"
    )


def session_line(session: sessionkit.Session) -> str:
    """The session id, shown so a visitor can watch it change."""
    return (
        f"<p>Session id: <code id=session-id>{html.escape(session.id)}</code> "
        "(it changes when you log in or out, and every 15 minutes).</p>"
    )


def home_body(user: object, visitor: str | None) -> str:
    """The public home page's content."""
    who = f"Logged in as <b>{html.escape(str(user))}</b>." if user else "Not logged in."
    return (
        f"<p>{who}</p><p>Visitor id: <code>{html.escape(str(visitor))}</code></p>"
        '<p><a href="/app">Private area</a> · <a href="/login">Log in</a></p>'
    )


def login_body(session: sessionkit.Session) -> str:
    """The log-in form."""
    return (
        f'<form method=post action="/login">{csrf_field(session)}'
        '<label>User <input name=username autocomplete=username value=""></label> '
        "<label>Password <input name=password type=password autocomplete=current-password>"
        "</label> <button>Log in</button></form>"
        f"<p>The demo user is <code>{DEMO_USER}</code> / <code>{DEMO_PASSWORD}</code>.</p>"
        f"{session_line(session)}"
    )


def private_body(session: sessionkit.Session) -> str:
    """The private area's content, with the two log-out forms."""
    return (
        f"<p>Hello {html.escape(str(session.user_id))}: visit {session['visits']} "
        f"in this session.</p>{session_line(session)}"
        f'<form method=post action="/logout">{csrf_field(session)}'
        "<button>Log out</button></form>"
        f'<form method=post action="/logout-everywhere">{csrf_field(session)}'
        "<button>Log out everywhere</button></form>"
    )


FORM_EXPIRED = '<p>The form expired. <a href="/login">Again</a></p>'
WRONG_CREDENTIALS = '<p>Wrong user or password. <a href="/login">Again</a></p>'
