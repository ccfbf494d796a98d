"""End to end: real HTTP to uvicorn (ASGI) and werkzeug (WSGI) servers on 127.0.0.1.

Tests taking ``serve`` run once against each server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

import sessionkit
from sessionkit.seal import b64decode, b64encode
from support import set_cookies

KitFactory = Callable[..., sessionkit.SessionKit]
ServerFactory = Callable[[sessionkit.SessionKit], str]

SECURITY_LOGGER = "sessionkit.security"

HOSTILE_COOKIE_HEADERS = [
    b"session=",
    b"session",
    b"=session",
    b";;;=;;",
    b"session=" + b"A" * 5000,
    b"session=%00%ff",
    b'session="quoted value"',
    b"session=\xff\xfe\xfd\x80",
    b"session=AQ",
    b"session=" + b"-" * 64,
    b"session=a; session=b",
    b"visitor=garbage; session=garbage",
    b"SESSION=x; Session=y; session =z",
]


def http_client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, trust_env=False, timeout=30)


def security_reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.sessionkit_event.reason  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == SECURITY_LOGGER
    ]


def test_login_flow(serve: ServerFactory, make_kit: KitFactory) -> None:
    url = serve(make_kit(insecure_development=True))
    with http_client(url) as client:
        anonymous = client.get("/me")
        assert anonymous.status_code == 200
        assert anonymous.json()["user"] is None
        assert "session" not in set_cookies(anonymous)

        login = client.post("/login", json={"user": "alice"})
        assert login.status_code == 200
        _, attrs = set_cookies(login)["session"]
        assert "secure" not in attrs
        assert "httponly" in attrs

        me = client.get("/me")
        assert me.json()["user"] == "alice"
        assert me.json()["session"] == {"name": "Alice"}
        assert me.json()["id"] == login.json()["id"]

        logout = client.post("/logout")
        assert set_cookies(logout)["session"][1]["max-age"] == "0"
        assert "session" not in client.cookies
        after = client.get("/me")
    assert after.json()["user"] is None
    assert after.json()["session"] == {}


def test_tampered_cookie_gives_empty_session(
    serve: ServerFactory, make_kit: KitFactory, caplog: pytest.LogCaptureFixture
) -> None:
    url = serve(make_kit(insecure_development=True))
    with http_client(url) as client:
        client.post("/login", json={"user": "alice"})
        good = client.cookies["session"]
    raw = bytearray(b64decode(good))
    raw[25] ^= 0x80
    caplog.clear()
    with http_client(url) as attacker:
        response = attacker.get("/me", headers={"Cookie": f"session={b64encode(bytes(raw))}"})
    assert response.status_code == 200
    assert response.json()["user"] is None
    assert response.json()["session"] == {}
    value, attrs = set_cookies(response)["session"]
    assert value == ""
    assert attrs["max-age"] == "0"
    assert security_reasons(caplog) == ["tampered"]


def test_hostile_cookie_headers_never_cause_a_server_error(
    serve: ServerFactory, make_kit: KitFactory
) -> None:
    url = serve(make_kit(insecure_development=True))
    with http_client(url) as client:
        for header in HOSTILE_COOKIE_HEADERS:
            client.cookies.clear()
            response = client.get("/me", headers={"Cookie": header})
            assert response.status_code == 200, header
            assert response.json()["user"] is None, header
            assert response.json()["session"] == {}, header


def test_a_page_that_never_reads_the_session_stays_cacheable(
    serve: ServerFactory, make_kit: KitFactory
) -> None:
    url = serve(make_kit(insecure_development=True))
    with http_client(url) as client:
        client.post("/login", json={"user": "ann"})
        assert "session" in client.cookies
        for cookies in (True, False):
            if not cookies:
                client.cookies.clear()
            page = client.get("/public")
            assert page.text == "public"
            assert page.headers["cache-control"] == "public, max-age=3600"
            assert "set-cookie" not in page.headers
            assert "vary" not in page.headers
        # The same client on a page that reads the session gets Vary: Cookie.
        assert "cookie" in client.get("/me").headers["vary"].lower()


def test_visitor_cookie_persists(serve: ServerFactory, make_kit: KitFactory) -> None:
    url = serve(make_kit(insecure_development=True))
    with http_client(url) as client:
        first = client.get("/me")
        _, attrs = set_cookies(first)["visitor"]
        assert attrs["max-age"] == str(365 * 24 * 60 * 60)
        visitor_id = first.json()["visitor"]
        assert visitor_id
        for _ in range(3):
            again = client.get("/me")
            assert "visitor" not in set_cookies(again)
            assert again.json()["visitor"] == visitor_id
        # Logging in and out does not change who the visitor is.
        client.post("/login", json={"user": "bob"})
        client.post("/logout")
        assert client.get("/me").json()["visitor"] == visitor_id
    with http_client(url) as other:
        assert other.get("/me").json()["visitor"] != visitor_id


def test_opt_out_over_http(serve: ServerFactory, make_kit: KitFactory) -> None:
    url = serve(make_kit(insecure_development=True))
    with http_client(url) as client:
        client.get("/me")
        assert "visitor" in client.cookies
        response = client.get("/me", headers={"Sec-GPC": "1"})
        assert set_cookies(response)["visitor"][1]["max-age"] == "0"
        assert response.json()["visitor"] is None
        assert "visitor" not in client.cookies


def test_secure_defaults_over_plain_http_with_manual_cookie(
    serve: ServerFactory, make_kit: KitFactory
) -> None:
    # A cookie jar will not send a Secure cookie over http, so the test plays the
    # browser by hand: take Set-Cookie from the response, send it back in Cookie.
    url = serve(make_kit())
    with http_client(url) as client:
        login = client.post("/login", json={"user": "alice"})
    cookies = set_cookies(login)
    value, attrs = cookies["__Host-session"]
    assert attrs["path"] == "/"
    assert "secure" in attrs
    assert "domain" not in attrs
    assert "secure" in cookies["__Host-visitor"][1]
    with http_client(url) as browser:
        me = browser.get("/me", headers={"Cookie": f"__Host-session={value}"})
    assert me.status_code == 200
    assert me.json()["user"] == "alice"
    assert me.json()["session"] == {"name": "Alice"}
    # The same cookie under a name without the prefix is not this session's cookie.
    with http_client(url) as browser:
        renamed = browser.get("/me", headers={"Cookie": f"session={value}"})
    assert renamed.json()["user"] is None


def test_cookies_required_gate(serve: ServerFactory, make_kit: KitFactory) -> None:
    url = serve(make_kit(insecure_development=True, require_cookies=["/app"]))
    with http_client(url) as client:
        allowed = client.get("/app/inbox", follow_redirects=True)
    assert allowed.status_code == 200
    assert [r.status_code for r in allowed.history] == [303, 303]
    assert allowed.url.path == "/app/inbox"
    assert allowed.url.query == b""
    # A client that keeps no cookies sees one redirect, then the block page: no loop.
    with http_client(url) as client:
        statuses = []
        target = "/app/inbox"
        for _ in range(3):
            client.cookies.clear()
            response = client.get(target)
            statuses.append(response.status_code)
            if response.status_code != 303:
                break
            target = response.headers["location"]
    assert statuses == [303, 403]
    assert "Cookies are required" in response.text


def test_session_too_large_is_a_server_error(
    serve: ServerFactory, make_kit: KitFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL + 1)  # the servers log the traceback; keep it quiet
    url = serve(make_kit(insecure_development=True))
    with http_client(url) as client:
        response = client.post("/big")
    assert response.status_code == 500
    assert "session" not in set_cookies(response)


def test_lifespan_runs_under_uvicorn(serve_uvicorn: ServerFactory, make_kit: KitFactory) -> None:
    url = serve_uvicorn(make_kit(insecure_development=True))
    with http_client(url) as client:
        assert client.get("/lifespan").json() == {"events": ["startup"]}


def test_streaming_over_http(
    serve_werkzeug: ServerFactory, make_kit: KitFactory, stream_chunks: list[bytes]
) -> None:
    url = serve_werkzeug(make_kit(insecure_development=True))
    with http_client(url) as client:
        with client.stream("GET", "/stream") as response:
            assert response.status_code == 200
            body = b"".join(response.iter_bytes())
            assert "session" in set_cookies(response)
        assert body == b"".join(stream_chunks)
        assert client.get("/me").json()["session"] == {"streamed": True}


def test_error_page_through_exc_info(serve_werkzeug: ServerFactory, make_kit: KitFactory) -> None:
    # The app starts a 200, fails, and calls start_response again with exc_info. Headers
    # are not sent yet, so the server must take the new status: only possible if the
    # middleware passes exc_info on (without it werkzeug refuses the second call).
    url = serve_werkzeug(make_kit(insecure_development=True))
    with http_client(url) as client:
        response = client.get("/error")
    assert response.status_code == 503
    assert response.text == "custom error page"
    # sessionkit's headers are on the replacement response, each cookie once.
    assert set(set_cookies(response)) == {"session", "visitor"}
