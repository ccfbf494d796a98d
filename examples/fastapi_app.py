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

from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import sessionkit
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
from sessionkit.asgi import SessionMiddleware
from sessionkit.integrations.fastapi import SessionDep, VisitorDep

kit = demo_kit("fastapi")

app = FastAPI(title="sessionkit demo", docs_url=None, redoc_url=None, openapi_url=None)
app.add_middleware(SessionMiddleware, kit=kit)


async def form_of(request: Request, session: sessionkit.Session) -> dict[str, str] | None:
    """The posted form, or None when its anti-forgery token is not this session's."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    form = {name: values[0] for name, values in fields.items()}
    return form if csrf_matches(session, form.get("csrf_token", "")) else None


@app.get("/")
async def home(session: SessionDep, visitor: VisitorDep) -> Response:
    return HTMLResponse(page("sessionkit demo", home_body(session.user_id, visitor)))


@app.get("/login")
async def login_form(session: SessionDep) -> Response:
    return HTMLResponse(page("Log in", login_body(session)))


@app.post("/login")
async def login(request: Request, session: SessionDep) -> Response:
    form = await form_of(request, session)
    if form is None:
        return HTMLResponse(page("Log in failed", FORM_EXPIRED))
    user = form.get("username", "")
    if not credentials_match(user, form.get("password", "")):
        return HTMLResponse(page("Log in failed", WRONG_CREDENTIALS))
    session.login(user)  # a new id and a new session family: a planted id is now worthless
    del session["csrf"]  # and a new anti-forgery token with the new privilege
    return RedirectResponse("/app", status_code=303)


@app.get("/app")
async def private(session: SessionDep) -> Response:
    if session.user_id is None:
        return RedirectResponse("/login", status_code=303)
    session["visits"] = session.get("visits", 0) + 1
    return HTMLResponse(page("Private area", private_body(session)))


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


# -- Where you're signed in: the user's sessions, and the password again to end one ------
# (imports here so this part stays apart from the ones above)

import html  # noqa: E402

from fastapi import Depends  # noqa: E402

from examples.common import csrf_field  # noqa: E402
from sessionkit.devices import SessionInfo, safe_next  # noqa: E402
from sessionkit.integrations.fastapi import require_fresh_login  # noqa: E402

#: Ending a session needs a password typed at most this many seconds ago.
FRESH_FOR = 300
REAUTH = "/app/reauth"
SESSIONS = "/app/sessions"


def sessions_body(session: sessionkit.Session, listed: list[SessionInfo]) -> str:
    """The list of the user's sessions, each other one with a "Sign out" button."""
    rows = []
    for info in listed:
        what = html.escape(info.device or "Unknown device")
        where = html.escape(info.address or "an unknown address")
        if info.current:
            action = " <b>(this browser)</b>"
        else:
            action = (
                f'<form method=post action="{SESSIONS}/end" style="display:inline">'
                f'{csrf_field(session)}<input type=hidden name=handle value="{info.handle}">'
                "<button>Sign out</button></form>"
            )
        rows.append(f"<li>{what}, from {where}{action}</li>")
    return (
        f"<ul id=sessions>{''.join(rows)}</ul>"
        f'<form method=post action="/logout-everywhere">{csrf_field(session)}'
        '<button>Log out everywhere</button></form><p><a href="/app">Back</a></p>'
    )


def reauth_body(session: sessionkit.Session, back: str) -> str:
    """The "type your password again" form."""
    action = html.escape(f"{REAUTH}?next={back}")
    return (
        f"<p>Please type your password again, {html.escape(str(session.user_id))}.</p>"
        f'<form method=post action="{action}">{csrf_field(session)}'
        "<label>Password <input name=password type=password autocomplete=current-password>"
        "</label> <button>Continue</button></form>"
    )


@app.get(SESSIONS, dependencies=[Depends(require_fresh_login(FRESH_FOR, reauth_path=REAUTH))])
async def sessions(session: SessionDep) -> Response:
    user = session.user_id
    listed = [] if user is None else await kit.asessions_of(user, current=session)
    return HTMLResponse(page("Where you're signed in", sessions_body(session, listed)))


@app.post(SESSIONS + "/end")
async def end_session(request: Request, session: SessionDep) -> Response:
    form = await form_of(request, session)
    user = session.user_id
    stale = kit.fresh_login(FRESH_FOR, REAUTH).decide(session.auth_age, SESSIONS, "")
    if stale is not None or user is None or form is None:
        return RedirectResponse(stale or SESSIONS, status_code=303)
    client = request.client.host if request.client else None
    await kit.arevoke_session(user, form.get("handle", ""), client=client)
    return RedirectResponse(SESSIONS, status_code=303)


@app.get(REAUTH)
async def reauth_form(request: Request, session: SessionDep) -> Response:
    if session.user_id is None:
        return RedirectResponse("/login", status_code=303)
    back = safe_next(request.query_params.get("next"), "/app")
    return HTMLResponse(page("Confirm it is you", reauth_body(session, back)))


@app.post(REAUTH)
async def reauth(request: Request, session: SessionDep) -> Response:
    form = await form_of(request, session)
    user = session.user_id
    if form is None or user is None:
        return RedirectResponse("/login", status_code=303)
    if not credentials_match(str(user), form.get("password", "")):
        return HTMLResponse(page("Confirm it is you", WRONG_CREDENTIALS))
    session.confirm_login()  # the login is fresh again, under a new session id
    return RedirectResponse(safe_next(request.query_params.get("next"), "/app"), status_code=303)
