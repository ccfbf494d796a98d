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

import flask
from werkzeug.wrappers import Response

from examples.common import (
    FORM_EXPIRED,
    WRONG_CREDENTIALS,
    credentials_match,
    csrf_matches,
    demo_kit,
    home_body,
    login_body,
    page,
    private_body,
)
from sessionkit.integrations.flask import current_session, current_visitor, init_app

kit = demo_kit("flask")

app = flask.Flask(__name__)
init_app(app, kit)


def form_is_genuine() -> bool:
    """Whether the posted form carries this session's anti-forgery token."""
    return csrf_matches(current_session(), flask.request.form.get("csrf_token", ""))


@app.get("/")
def home() -> str:
    return page("sessionkit demo", home_body(current_session().user_id, current_visitor()))


@app.get("/login")
def login_form() -> str:
    return page("Log in", login_body(current_session()))


@app.post("/login")
def login() -> str | Response:
    if not form_is_genuine():
        return page("Log in failed", FORM_EXPIRED)
    user = flask.request.form.get("username", "")
    if not credentials_match(user, flask.request.form.get("password", "")):
        return page("Log in failed", WRONG_CREDENTIALS)
    current_session().login(user)  # a new id and family: a planted id is now worthless
    del flask.session["csrf"]  # and a new anti-forgery token with the new privilege
    return flask.redirect("/app", code=303)


@app.get("/app")
def private() -> str | Response:
    session = current_session()
    if session.user_id is None:
        return flask.redirect("/login", code=303)
    session["visits"] = session.get("visits", 0) + 1
    return page("Private area", private_body(session))


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
