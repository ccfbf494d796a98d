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
