"""A small Flask app behind sessionkit: public home, log-in form, a private area, log-out.

Run it from the repository root, with ``pip install -e ".[flask]"`` done::

    python -m flask --app examples.flask_app run --host 127.0.0.1 --port 5000

and open http://127.0.0.1:5000. The demo user is ``demo`` with the password
``correct horse``, typed at every log-on. ``flask.session`` is the sessionkit session;
``/app`` requires cookies (one test redirect, then a "cookies are required" page) and
shows the session as the kit sees it; ``/events`` lists the security events of this
server. Sessions are recorded in an SQLite file, so log-out revokes the cookie and "log
out everywhere" works.

It serves plain http on 127.0.0.1 through the explicit ``insecure_development=True``
opt-in. The key comes from ``SESSIONKIT_SECRET_KEYS`` or is generated at start (sessions
then end when the server stops); ``SESSIONKIT_DEMO_DIR`` chooses where the SQLite file
goes (a directory under the system's temporary directory by default).
"""

from __future__ import annotations

import flask
from werkzeug.wrappers import Response

from examples.common import (
    COOKIES_NEEDED,
    COOKIES_NEEDED_TITLE,
    EVENTS,
    REMEMBER_FOR,
    WRONG_CREDENTIALS,
    credentials_match,
    csrf_field,
    demo_kit,
    events_body,
    home_body,
    login_body,
    opt_out_signal,
    page,
    private_body,
    session_facts,
)
from sessionkit.integrations.flask import (
    current_csrf_token,
    current_session,
    current_visitor,
    init_app,
)

kit = demo_kit("flask")

app = flask.Flask(__name__)
init_app(app, kit)


def token_field() -> str:
    """The hidden field with a fresh anti-forgery token of this request's session."""
    return csrf_field(current_csrf_token())


def signal() -> str | None:
    """The privacy signal the request sends (``Sec-GPC: 1``, ``DNT: 1``), or None."""
    headers = flask.request.headers
    return opt_out_signal(headers.get("Sec-GPC"), headers.get("DNT"))


def facts() -> str:
    return session_facts(
        current_session(), kit.timeouts, visitor=current_visitor(), signal=signal()
    )


@app.get("/")
def home() -> str:
    body = home_body(current_session().user_id, current_visitor(), signal(), kit.timeouts)
    return page("sessionkit demo", body, current="/")


@app.get("/login")
def login_form() -> str:
    # The token sets the session cookie, so the form comes back with it when cookies work.
    return page("Log in", login_body(token_field(), facts()), current="/login")


@app.post("/login")
def login() -> str | Response | tuple[str, int]:
    if "Cookie" not in flask.request.headers:  # cookies are off: a login could never stick
        return page(COOKIES_NEEDED_TITLE, COOKIES_NEEDED), 403
    user = flask.request.form.get("username", "")
    if not credentials_match(user, flask.request.form.get("password", "")):
        return page("Log in failed", WRONG_CREDENTIALS)
    session = current_session()
    session.login(user)  # a new id and family: a planted id and older form tokens are void
    if flask.request.form.get("remember") == "1":
        session.set_expiry(REMEMBER_FOR)  # may idle for a week; sealed, enforced server-side
    return flask.redirect("/app", code=303)


@app.get("/app")
def private() -> str | Response:
    session = current_session()
    if session.user_id is None:
        return flask.redirect("/login", code=303)
    session["visits"] = session.get("visits", 0) + 1
    body = private_body(
        session.user_id, session["visits"], token_field(), facts(), EVENTS.latest(3)
    )
    return page("Private area", body, current="/app")


@app.get("/events")
def security_events() -> str:
    return page("Security events", events_body(EVENTS.latest()), current="/events")


@app.post("/logout")
def logout() -> Response:
    current_session().invalidate()
    return flask.redirect("/", code=303)


@app.post("/logout-everywhere")
def logout_everywhere() -> Response:
    session = current_session()
    if session.user_id is not None:
        kit.revoke_user(session.user_id)
    session.invalidate()
    return flask.redirect("/", code=303)
