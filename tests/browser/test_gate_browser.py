"""The cookies-required gate in a real headless Chromium against a real uvicorn server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

import sessionkit
from sessionkit.asgi import SessionMiddleware, session_of


def make_app() -> Any:
    async def home(request: Request) -> HTMLResponse:
        return HTMLResponse("<title>Home</title><h1>Public home</h1>")

    async def private(request: Request) -> HTMLResponse:
        session = session_of(request.scope)
        session["visits"] = session.get("visits", 0) + 1
        return HTMLResponse(
            f"<title>App</title><h1>Application</h1><p id=visits>{session['visits']}</p>"
            f"<p id=sid>{session.id}</p>"
        )

    app = Starlette(routes=[Route("/", home), Route("/app", private), Route("/app/{x}", private)])
    kit = sessionkit.SessionKit(
        secret_keys=[sessionkit.generate_key()],
        require_cookies=["/app"],
        insecure_development=True,
    )
    return SessionMiddleware(app, kit=kit)


def test_cookies_blocked_public_renders_app_refused_after_one_redirect(
    serve: Callable[[Any], Any], browser_context: Callable[..., Any]
) -> None:
    server = serve(make_app())
    context = browser_context(cookies=False)
    page = context.new_page()
    statuses: list[tuple[int, str]] = []
    page.on("response", lambda r: statuses.append((r.status, r.url)))

    page.goto(server.url + "/")
    assert page.locator("h1").inner_text() == "Public home"

    statuses.clear()
    response = page.goto(server.url + "/app/inbox?tab=new")
    assert response.status == 403
    assert page.locator("h1").inner_text() == "Cookies are required"
    assert page.get_by_role("link", name="go to the home page").get_attribute("href") == "/"
    redirects = [s for s in statuses if s[0] == 303]
    assert len(redirects) == 1, statuses
    assert [s for s, _ in statuses] == [303, 403]
    assert context.cookies() == []


def test_cookies_allowed_app_reached_and_session_persists(
    serve: Callable[[Any], Any], browser_context: Callable[..., Any]
) -> None:
    server = serve(make_app())
    context = browser_context(cookies=True)
    page = context.new_page()

    page.goto(server.url + "/app?tab=new")
    assert page.locator("h1").inner_text() == "Application"
    assert page.url == server.url + "/app?tab=new"
    assert page.locator("#visits").inner_text() == "1"
    sid = page.locator("#sid").inner_text()

    page.goto(server.url + "/")
    page.goto(server.url + "/app/other")
    assert page.locator("#visits").inner_text() == "2"
    assert page.locator("#sid").inner_text() == sid
    names = {c["name"] for c in context.cookies()}
    assert "session" in names
    assert "visitor" not in names, "the app never asked for the visitor id, so none was minted"
