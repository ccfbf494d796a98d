"""A small FastAPI app behind sessionkit: the demo that shows what the kit does.

Run it from the repository root (``./scripts/demo`` does this in a fresh virtualenv)::

    python -m uvicorn examples.fastapi_app:app --host 127.0.0.1 --port 8000

and open http://127.0.0.1:8000. The demo user is ``demo`` with the password
``correct horse``, typed at every log-on ("remember me" lets the session idle for a
week, never the password). ``/app`` is the application part of the site: it requires
cookies (one test redirect, then a "cookies are required" page) and shows the session as
the kit sees it: its id changing, the idle and absolute time left, the login's age, the
visitor id and the Global Privacy Control signal. ``/events`` lists the security events
of this server as they happen (refused, replayed, revoked cookies), collected with the
kit's ``on_security_event`` hook. Sessions are recorded in an SQLite file, so log-out
revokes the cookie, "log out everywhere" works and ``/app/sessions`` lists where you are
signed in (ending one asks for the password again when the login is over five minutes old).

It serves plain http on 127.0.0.1 through the explicit ``insecure_development=True``
opt-in. The key comes from ``SESSIONKIT_SECRET_KEYS`` or is generated at start (sessions
then end when the server stops); ``SESSIONKIT_DEMO_DIR`` chooses where the SQLite file
goes (a directory under the system's temporary directory by default).
"""

from __future__ import annotations

import html
import time
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import sessionkit
from examples.common import (
    COOKIES_NEEDED,
    COOKIES_NEEDED_TITLE,
    EVENTS,
    REMEMBER_FOR,
    WRONG_CREDENTIALS,
    credentials_match,
    csrf_field,
    demo_kit,
    duration,
    events_body,
    home_body,
    login_body,
    opt_out_signal,
    page,
    private_body,
    session_facts,
)
from sessionkit.asgi import SessionMiddleware, csrf_token
from sessionkit.devices import SessionInfo, safe_next
from sessionkit.integrations.fastapi import SessionDep, VisitorDep, require_fresh_login

kit = demo_kit("fastapi")

app = FastAPI(title="sessionkit demo", docs_url=None, redoc_url=None, openapi_url=None)
app.add_middleware(SessionMiddleware, kit=kit)

#: Ending a session needs a password typed at most this many seconds ago.
FRESH_FOR = 300
REAUTH = "/app/reauth"
SESSIONS = "/app/sessions"


async def form_of(request: Request) -> dict[str, str]:
    """The posted form (sessionkit already refused it if it was forged)."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    return {name: values[0] for name, values in fields.items()}


def token_field(request: Request) -> str:
    """The hidden field with a fresh anti-forgery token of this request's session."""
    return csrf_field(csrf_token(request.scope))


def signal_of(request: Request) -> str | None:
    """The privacy signal the request sends (``Sec-GPC: 1``, ``DNT: 1``), or None."""
    return opt_out_signal(request.headers.get("sec-gpc"), request.headers.get("dnt"))


def facts(request: Request, session: sessionkit.Session, visitor: str | None) -> str:
    return session_facts(session, kit.timeouts, visitor=visitor, signal=signal_of(request))


def show(title: str, body: str, current: str = "", status: int = 200) -> Response:
    return HTMLResponse(page(title, body, current=current), status_code=status)


@app.get("/")
async def home(request: Request, session: SessionDep, visitor: VisitorDep) -> Response:
    return show(
        "sessionkit demo",
        home_body(session.user_id, visitor, signal_of(request), kit.timeouts),
        "/",
    )


@app.get("/login")
async def login_form(request: Request, session: SessionDep, visitor: VisitorDep) -> Response:
    # The token sets the session cookie, so the form comes back with it when cookies work.
    return show(
        "Log in", login_body(token_field(request), facts(request, session, visitor)), "/login"
    )


@app.post("/login")
async def login(request: Request, session: SessionDep) -> Response:
    if "cookie" not in request.headers:  # cookies are off: a login could never stick
        return show(COOKIES_NEEDED_TITLE, COOKIES_NEEDED, status=403)
    form = await form_of(request)
    user = form.get("username", "")
    if not credentials_match(user, form.get("password", "")):
        return show("Log in failed", WRONG_CREDENTIALS)
    session.login(user)  # a new id and family: a planted id and older form tokens are void
    if form.get("remember") == "1":
        session.set_expiry(REMEMBER_FOR)  # may idle for a week; sealed, enforced server-side
    return RedirectResponse("/app", status_code=303)


@app.get("/app")
async def private(request: Request, session: SessionDep, visitor: VisitorDep) -> Response:
    if session.user_id is None:
        return RedirectResponse("/login", status_code=303)
    session["visits"] = session.get("visits", 0) + 1
    body = private_body(
        session.user_id,
        session["visits"],
        token_field(request),
        facts(request, session, visitor),
        EVENTS.latest(3),
        sessions_path=SESSIONS,
    )
    return show("Private area", body, "/app")


@app.get("/events")
async def security_events() -> Response:
    return show("Security events", events_body(EVENTS.latest()), "/events")


@app.post("/logout")
async def logout(session: SessionDep) -> Response:
    session.invalidate()
    return RedirectResponse("/", status_code=303)


@app.post("/logout-everywhere")
async def logout_everywhere(session: SessionDep) -> Response:
    if session.user_id is not None:
        await kit.arevoke_user(session.user_id)
    session.invalidate()
    return RedirectResponse("/", status_code=303)


# -- Where you're signed in: the user's sessions, and the password again to end one ------


def sessions_body(csrf: str, listed: list[SessionInfo]) -> str:
    """The list of the user's sessions, each other one with a "Sign out" button."""
    now = time.time()
    rows = []
    for info in listed:
        what = html.escape(info.device or "Unknown device")
        where = html.escape(info.address or "an unknown address")
        if info.current:
            action = "<span class='badge ok'>this browser</span>"
        else:
            action = (
                f'<form method=post action="{SESSIONS}/end">{csrf}'
                f'<input type=hidden name=handle value="{info.handle}">'
                f'<button class=quiet aria-label="Sign out {what}">Sign out</button></form>'
            )
        rows.append(
            f"<li><span><b class=device>{what}</b>, from {where}<br><span class=hint>"
            f"signed in {duration(now - info.created_at)} ago, last seen "
            f"{duration(now - info.last_seen)} ago</span></span>{action}</li>"
        )
    return (
        "<p class=lead>Every browser signed in as you. Signing one out ends its session "
        "on the server at once.</p>"
        f"<section class=card><ul id=sessions class=plain>{''.join(rows)}</ul>"
        f'<div class=actions><form method=post action="/logout-everywhere">{csrf}'
        '<button class=danger>Log out everywhere</button></form><a href="/app">Back</a>'
        "</div></section>"
    )


def reauth_body(session: sessionkit.Session, csrf: str, back: str) -> str:
    """The "type your password again" form."""
    action = html.escape(f"{REAUTH}?next={back}")
    return (
        f"<section class=card><p>Please type your password again, "
        f"{html.escape(str(session.user_id))}.</p>"
        f'<form method=post action="{action}">{csrf}'
        "<label for=password>Password</label>"
        "<input id=password name=password type=password autocomplete=current-password required>"
        "<p class=actions><button>Continue</button></p></form></section>"
    )


@app.get(SESSIONS, dependencies=[Depends(require_fresh_login(FRESH_FOR, reauth_path=REAUTH))])
async def sessions(request: Request, session: SessionDep) -> Response:
    user = session.user_id
    listed = [] if user is None else await kit.asessions_of(user, current=session)
    return show("Where you're signed in", sessions_body(token_field(request), listed), "/app")


@app.post(SESSIONS + "/end")
async def end_session(request: Request, session: SessionDep) -> Response:
    form = await form_of(request)
    user = session.user_id
    stale = kit.fresh_login(FRESH_FOR, REAUTH).decide(session.auth_age, SESSIONS, "")
    if stale is not None or user is None:
        return RedirectResponse(stale or SESSIONS, status_code=303)
    client = request.client.host if request.client else None
    await kit.arevoke_session(user, form.get("handle", ""), client=client)
    return RedirectResponse(SESSIONS, status_code=303)


@app.get(REAUTH)
async def reauth_form(request: Request, session: SessionDep) -> Response:
    if session.user_id is None:
        return RedirectResponse("/login", status_code=303)
    back = safe_next(request.query_params.get("next"), "/app")
    return show("Confirm it is you", reauth_body(session, token_field(request), back))


@app.post(REAUTH)
async def reauth(request: Request, session: SessionDep) -> Response:
    form = await form_of(request)
    user = session.user_id
    if user is None:
        return RedirectResponse("/login", status_code=303)
    if not credentials_match(str(user), form.get("password", "")):
        return show("Confirm it is you", WRONG_CREDENTIALS)
    session.confirm_login()  # the login is fresh again, under a new session id
    return RedirectResponse(safe_next(request.query_params.get("next"), "/app"), status_code=303)
