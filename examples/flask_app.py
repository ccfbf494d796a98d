"""A small Flask app behind sessionkit: public home, log-in form, a private area, log-out.

Run it from the repository root, with ``pip install -e ".[flask]"`` done::

    python -m flask --app examples.flask_app run --host 127.0.0.1 --port 5000

and open http://127.0.0.1:5000. The demo user is ``demo`` with the password
``correct horse``, typed at every log-on. ``flask.session`` is the sessionkit session;
``/app`` requires cookies (one test redirect, then a "cookies are required" page).
Sessions are recorded in an SQLite file, so log-out revokes the cookie and "log out
everywhere" works.

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

import flask
from werkzeug.wrappers import Response

import sessionkit
from sessionkit.integrations.flask import current_session, current_visitor, init_app
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
    store=SQLiteStore(state_dir / "flask-sessions.sqlite3"),
    insecure_development=True,
)

app = flask.Flask(__name__)
init_app(app, kit)


def page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
        f"<body><h1>{title}</h1>{body}</body></html>"
    )


def csrf_field() -> str:
    """A hidden form field with this session's anti-forgery token (made on first use)."""
    token = flask.session.get("csrf")
    if not isinstance(token, str):
        token = flask.session["csrf"] = secrets.token_urlsafe(32)
    return f'<input type=hidden name=csrf_token value="{token}">'


def form_is_genuine() -> bool:
    """Whether the posted form carries this session's anti-forgery token."""
    expected = flask.session.get("csrf")
    sent = flask.request.form.get("csrf_token", "")
    return isinstance(expected, str) and hmac.compare_digest(sent.encode(), expected.encode())


def session_line() -> str:
    return (
        f"<p>Session id: <code id=session-id>{html.escape(current_session().id)}</code> "
        "(it changes when you log in or out, and every 15 minutes).</p>"
    )


@app.get("/")
def home() -> str:
    user = current_session().user_id
    who = f"Logged in as <b>{html.escape(str(user))}</b>." if user else "Not logged in."
    return page(
        "sessionkit demo",
        f"<p>{who}</p><p>Visitor id: <code>{html.escape(str(current_visitor()))}</code></p>"
        '<p><a href="/app">Private area</a> · <a href="/login">Log in</a></p>',
    )


@app.get("/login")
def login_form() -> str:
    return page(
        "Log in",
        '<form method=post action="/login">'
        f"{csrf_field()}"
        '<label>User <input name=username autocomplete=username value=""></label> '
        "<label>Password <input name=password type=password autocomplete=current-password>"
        "</label> <button>Log in</button></form>"
        f"<p>The demo user is <code>{DEMO_USER}</code> / <code>{DEMO_PASSWORD}</code>.</p>"
        f"{session_line()}",
    )


@app.post("/login")
def login() -> str | Response:
    if not form_is_genuine():
        return page("Log in failed", '<p>The form expired. <a href="/login">Again</a></p>')
    user = flask.request.form.get("username", "")
    good = hmac.compare_digest(user.encode(), DEMO_USER.encode()) & hmac.compare_digest(
        flask.request.form.get("password", "").encode(), DEMO_PASSWORD.encode()
    )
    if not good:
        return page("Log in failed", '<p>Wrong user or password. <a href="/login">Again</a></p>')
    current_session().login(user)  # a new id and family: a planted id is now worthless
    del flask.session["csrf"]  # and a new anti-forgery token with the new privilege
    return flask.redirect("/app", code=303)


@app.get("/app")
def private() -> str | Response:
    session = current_session()
    if session.user_id is None:
        return flask.redirect("/login", code=303)
    session["visits"] = session.get("visits", 0) + 1
    return page(
        "Private area",
        f"<p>Hello {html.escape(str(session.user_id))}: visit {session['visits']} "
        f"in this session.</p>{session_line()}"
        f'<form method=post action="/logout">{csrf_field()}'
        "<button>Log out</button></form>"
        f'<form method=post action="/logout-everywhere">{csrf_field()}'
        "<button>Log out everywhere</button></form>",
    )


@app.post("/logout")
def logout() -> Response:
    if form_is_genuine():
        current_session().invalidate()
    return flask.redirect("/", code=303)


@app.post("/logout-everywhere")
def logout_everywhere() -> Response:
    session = current_session()
    if form_is_genuine():
        if session.user_id is not None:
            kit.revoke_user(session.user_id)
        session.invalidate()
    return flask.redirect("/", code=303)
