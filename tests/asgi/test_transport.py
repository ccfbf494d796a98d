"""The framework test clients, plain http, and CORS preflights, through the real middleware."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from werkzeug.test import Client as WerkzeugClient
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response as WerkzeugResponse

import sessionkit
from sessionkit.asgi import SessionMiddleware
from sessionkit.wsgi import SessionMiddleware as WSGISessionMiddleware
from sessionkit.wsgi import session_of

MakeKit = Callable[..., sessionkit.SessionKit]


async def count(request: Request) -> JSONResponse:
    session = request.session
    session["n"] = session.get("n", 0) + 1
    return JSONResponse({"n": session["n"]})


async def preflight(request: Request) -> PlainTextResponse:
    return PlainTextResponse("", headers={"Access-Control-Allow-Origin": "https://a.example"})


def asgi_app(kit: sessionkit.SessionKit) -> Any:
    routes = [
        Route("/count", count),
        Route("/app/count", count),
        Route("/app/api", preflight, methods=["OPTIONS"]),
    ]
    return SessionMiddleware(Starlette(routes=routes), kit=kit)


def test_the_starlette_test_client_keeps_sessions_over_https(make_kit: MakeKit) -> None:
    # The documented one-liner: Secure cookies need an https base URL.
    client = TestClient(asgi_app(make_kit(require_cookies=["/app"])), base_url="https://testserver")
    assert [client.get("/app/count").json()["n"] for _ in range(3)] == [1, 2, 3]


def test_plain_http_to_a_real_host_is_diagnosed_not_blamed_on_the_browser(
    make_kit: MakeKit, caplog: pytest.LogCaptureFixture
) -> None:
    client = TestClient(asgi_app(make_kit(require_cookies=["/app"])))  # http://testserver
    with caplog.at_level(logging.WARNING, logger="sessionkit.security"):
        answer = client.get("/app/count", headers={"Accept": "text/html"})
    assert answer.status_code == 403
    assert "This site needs https" in answer.text
    assert "enable cookies" not in answer.text.lower()
    events = [r.sessionkit_event for r in caplog.records if hasattr(r, "sessionkit_event")]
    assert [e.reason for e in events] == ["insecure_transport"]
    api = client.get("/app/count", headers={"Accept": "application/json"})
    assert api.json()["error"] == "https_required"


def test_plain_http_on_loopback_gets_the_cookies_page(make_kit: MakeKit) -> None:
    # Browsers keep Secure cookies on http://localhost: a block there means cookies are off.
    client = TestClient(asgi_app(make_kit(require_cookies=["/app"])), base_url="http://localhost")
    answer = client.get("/app/count", headers={"Accept": "text/html"})
    assert answer.status_code == 403
    assert "Cookies are required" in answer.text


def test_insecure_development_over_http_is_not_diagnosed(make_kit: MakeKit) -> None:
    kit = make_kit(require_cookies=["/app"], insecure_development=True)
    client = TestClient(asgi_app(kit))
    assert [client.get("/app/count").json()["n"] for _ in range(2)] == [1, 2]


def test_a_cors_preflight_passes_the_gate(make_kit: MakeKit) -> None:
    client = TestClient(asgi_app(make_kit(require_cookies=["/app"])), base_url="https://testserver")
    headers = {"Origin": "https://a.example", "Access-Control-Request-Method": "POST"}
    answer = client.options("/app/api", headers=headers)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "https://a.example"
    plain = client.options("/app/api", headers={"Origin": "https://a.example"})
    assert plain.status_code == 403, "an OPTIONS that is no preflight is gated as before"


@WerkzeugRequest.application  # type: ignore[arg-type]
def wsgi_view(request: WerkzeugRequest) -> WerkzeugResponse:
    if request.method == "OPTIONS":
        return WerkzeugResponse("", headers={"Access-Control-Allow-Origin": "https://a.example"})
    session = session_of(request.environ)
    session["n"] = session.get("n", 0) + 1
    return WerkzeugResponse(str(session["n"]))


def test_wsgi_preflight_and_plain_http_diagnosis(make_kit: MakeKit) -> None:
    app = WSGISessionMiddleware(wsgi_view, make_kit(require_cookies=["/app"]))
    client = WerkzeugClient(app)
    headers = {"Origin": "https://a.example", "Access-Control-Request-Method": "PUT"}
    assert client.options("/app/x", headers=headers).status_code == 200
    # A browser keeps no Secure cookie over http to a real host (Werkzeug's test client
    # would, so this one keeps none at all).
    browser = WerkzeugClient(app, use_cookies=False)
    html = {"Accept": "text/html"}
    check = browser.get("/app/x", headers=html, base_url="http://shop.test")
    assert check.status_code == 303, "one test redirect"
    blocked = browser.get(check.headers["Location"], headers=html, base_url="http://shop.test")
    assert blocked.status_code == 403
    assert "This site needs https" in blocked.get_data(as_text=True)
    secure = WerkzeugClient(app)
    answers = [
        secure.get("/app/x", base_url="https://shop.test", follow_redirects=True).get_data(
            as_text=True
        )
        for _ in range(2)
    ]
    assert answers == ["1", "2"]


@WerkzeugRequest.application  # type: ignore[arg-type]
def varying_view(request: WerkzeugRequest) -> WerkzeugResponse:
    session_of(request.environ).get("n")
    return WerkzeugResponse("ok", headers={"Vary": "Accept-Encoding, Accept-Language"})


def test_wsgi_folds_cookie_into_the_apps_own_vary_line(make_kit: MakeKit) -> None:
    client = WerkzeugClient(WSGISessionMiddleware(varying_view, make_kit()))
    answer = client.get("/", base_url="https://shop.test")
    assert answer.headers.getlist("Vary") == ["Accept-Encoding, Accept-Language, Cookie"]
    plain = WerkzeugClient(WSGISessionMiddleware(wsgi_view, make_kit()))
    assert plain.get("/", base_url="https://shop.test").headers.getlist("Vary") == ["Cookie"]
