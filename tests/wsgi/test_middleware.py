"""The WSGI front end: plain WSGI function apps wrapped in sessionkit.wsgi.SessionMiddleware,
driven by werkzeug's test Client (a real WSGI caller, in process).
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate
from typing import Any
from wsgiref.validate import validator

import pytest
from werkzeug.test import Client

import sessionkit
from sessionkit.seal import b64decode, b64encode
from sessionkit.wsgi import SessionMiddleware, visitor_of
from support import set_cookies

SESSION = "__Host-session"
VISITOR = "__Host-visitor"
MARKER = "sessionkit-cookie-check"
SECURITY_LOGGER = "sessionkit.security"
IDLE = 30 * 60
VISITOR_MAX_AGE = 365 * 24 * 60 * 60

KitFactory = Callable[..., sessionkit.SessionKit]
StartResponse = Callable[..., Any]

CHUNKS = [b"first chunk\n", b"x" * 65536, "ünïcödé\n".encode(), b"", b"last"]


# --------------------------------------------------------------------------- the apps


def _json(start_response: StartResponse, payload: Any, *extra: tuple[str, str]) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *extra],
    )
    return [body]


def _state(environ: dict[str, Any]) -> dict[str, Any]:
    session = environ["sessionkit.session"]
    return {
        "session": dict(session),
        "id": session.id,
        "is_new": session.is_new,
        "visitor": visitor_of(environ),
    }


class ClosingBody:
    """A response body that records whether the server closed it."""

    def __init__(self, chunks: Iterable[bytes], closed: list[str]) -> None:
        self.chunks = chunks
        self.closed = closed

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.closed.append("closed")


def make_app(closed: list[str] | None = None) -> Callable[..., Iterable[bytes]]:
    """A plain WSGI function app: no framework."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        session = environ["sessionkit.session"]
        path = environ["PATH_INFO"]
        if path == "/write":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            session.update(json.loads(environ["wsgi.input"].read(length)))
        elif path == "/logout":
            session.invalidate()
        elif path == "/public":
            return _json(start_response, "public", ("Cache-Control", "public, max-age=3600"))
        elif path == "/write-public":
            session["seen"] = True
            return _json(
                start_response,
                "public",
                ("Cache-Control", "public, max-age=3600"),
                ("Set-Cookie", "theme=dark; Path=/"),
                ("Set-Cookie", "lang=en; Path=/; HttpOnly"),
            )
        elif path == "/big":
            session["blob"] = secrets.token_urlsafe(3072)
        elif path == "/stream":
            return streaming(environ, start_response)
        elif path == "/closing":
            session["closing"] = True
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return ClosingBody(CHUNKS, closed if closed is not None else [])
        elif path == "/error":
            return failing(environ, start_response)
        return _json(start_response, _state(environ))

    return app


def streaming(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    """A generator app: nothing runs, start_response included, until the server iterates."""
    environ["sessionkit.session"]["streamed"] = True
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    yield from CHUNKS


def failing(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """Start a response, fail, then replace it with an error page as PEP 3333 allows."""
    environ["sessionkit.session"]["tried"] = True
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise RuntimeError("boom in the app")
    except RuntimeError:
        start_response(
            "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
        )
        return [b"custom error page"]


# --------------------------------------------------------------------------- helpers


def security_reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.sessionkit_event.reason  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == SECURITY_LOGGER
    ]


def client_for(kit: sessionkit.SessionKit, **kwargs: Any) -> Client:
    return Client(SessionMiddleware(make_app(), kit=kit), **kwargs)


def cookie_value(client: Client, name: str) -> str:
    cookie = client.get_cookie(name)
    assert cookie is not None, f"no {name} cookie in the jar"
    return cookie.value


# --------------------------------------------------------------------------- round trip


def test_session_round_trip(make_kit: KitFactory) -> None:
    client = client_for(make_kit())
    first = client.post("/write", json={"user": "alice", "cart": [1, 2]})
    assert first.status_code == 200
    assert first.json["is_new"] is True
    second = client.get("/read")
    assert second.json["session"] == {"user": "alice", "cart": [1, 2]}
    assert second.json["is_new"] is False
    assert second.json["id"] == first.json["id"]


def test_session_cookie_attributes_and_caching_headers(make_kit: KitFactory, clock: Any) -> None:
    response = client_for(make_kit()).post("/write", json={"user": "alice"})
    value, attrs = set_cookies(response)[SESSION]
    assert attrs == {
        "max-age": str(IDLE),
        "expires": formatdate(clock() + IDLE, usegmt=True),
        "path": "/",
        "secure": None,
        "httponly": None,
        "samesite": "Lax",
    }
    assert "alice" not in value
    assert response.headers.getlist("Vary") == ["Cookie"]
    assert response.headers.getlist("Cache-Control") == ["no-store"]


def test_anonymous_request_gets_no_session_cookie(make_kit: KitFactory) -> None:
    client = client_for(make_kit())
    response = client.get("/read")
    assert response.status_code == 200
    assert response.json["session"] == {}
    assert SESSION not in set_cookies(response)
    assert client.get_cookie(SESSION) is None


def test_anonymous_request_without_visitor_cookie_is_untouched(make_kit: KitFactory) -> None:
    response = client_for(make_kit(visitor_cookie=None)).get("/public")
    assert response.headers.getlist("Set-Cookie") == []
    assert "Vary" not in response.headers
    assert response.headers.getlist("Cache-Control") == ["public, max-age=3600"]


def test_app_headers_kept_and_public_caching_replaced(make_kit: KitFactory) -> None:
    response = client_for(make_kit(visitor_cookie=None)).post("/write-public")
    headers = response.headers.getlist("Set-Cookie")
    assert headers[:2] == ["theme=dark; Path=/", "lang=en; Path=/; HttpOnly"]
    assert set(set_cookies(response)) == {"theme", "lang", SESSION}
    assert response.headers.getlist("Cache-Control") == ["no-store"]


def test_logout_expires_the_cookie(make_kit: KitFactory) -> None:
    client = client_for(make_kit())
    client.post("/write", json={"user": "alice"})
    response = client.post("/logout")
    value, attrs = set_cookies(response)[SESSION]
    assert value == ""
    assert attrs["max-age"] == "0"
    assert client.get("/read").json["session"] == {}


def test_idle_timeout(make_kit: KitFactory, clock: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=SECURITY_LOGGER)
    client = client_for(make_kit())
    client.post("/write", json={"user": "alice"})
    clock.advance(IDLE + 1)
    response = client.get("/read")
    assert response.json["session"] == {}
    assert set_cookies(response)[SESSION][1]["max-age"] == "0"
    assert security_reasons(caplog) == ["expired_idle"]


def test_cookie_under_older_key_is_reissued(key: str, make_kit: KitFactory) -> None:
    new_key = sessionkit.generate_key()
    old_client = client_for(make_kit(secret_keys=[key]))
    old_client.post("/write", json={"user": "alice"})
    old_cookie = cookie_value(old_client, SESSION)

    both = client_for(make_kit(secret_keys=[new_key, key]))
    both.set_cookie(SESSION, old_cookie)
    response = both.get("/read")
    assert response.json["session"] == {"user": "alice"}
    reissued = set_cookies(response)[SESSION][0]
    assert reissued not in ("", old_cookie)

    only_new = client_for(make_kit(secret_keys=[new_key]))
    only_new.set_cookie(SESSION, reissued)
    assert only_new.get("/read").json["session"] == {"user": "alice"}


def test_session_too_large_fails_the_request(make_kit: KitFactory) -> None:
    client = client_for(make_kit())
    with pytest.raises(sessionkit.SessionTooLarge):
        client.post("/big")


# --------------------------------------------------------------------------- bad cookies


def _bad_cookie(kind: str, good: str, make_kit: KitFactory) -> str:
    if kind == "tampered":
        raw = bytearray(b64decode(good))
        raw[30] ^= 0x01
        return f"{SESSION}={b64encode(bytes(raw))}"
    if kind == "truncated":
        return f"{SESSION}={b64encode(b64decode(good)[:-5])}"
    if kind == "other_key":
        other = client_for(make_kit(secret_keys=[sessionkit.generate_key()]))
        other.post("/write", json={"role": "admin"})
        return f"{SESSION}={cookie_value(other, SESSION)}"
    if kind == "duplicated":
        return f"{SESSION}={good}; {SESSION}={good}"
    if kind == "garbage":
        return f"{SESSION}=<script>"
    raise AssertionError(kind)


BAD_COOKIES = {
    "tampered": "tampered",
    "truncated": "tampered",
    "other_key": "unknown_key",
    "duplicated": "duplicate",
    "garbage": "malformed",
}


@pytest.mark.parametrize("kind", sorted(BAD_COOKIES))
def test_bad_session_cookie_gives_empty_session(
    kind: str, make_kit: KitFactory, caplog: pytest.LogCaptureFixture
) -> None:
    kit = make_kit()
    issuer = client_for(kit)
    issuer.post("/write", json={"role": "admin"})
    cookie = _bad_cookie(kind, cookie_value(issuer, SESSION), make_kit)
    caplog.clear()
    response = client_for(kit, use_cookies=False).get("/read", headers={"Cookie": cookie})
    assert response.status_code == 200
    assert response.json["session"] == {}
    assert response.json["is_new"] is True
    assert "admin" not in response.text
    value, attrs = set_cookies(response)[SESSION]
    assert value == ""
    assert attrs["max-age"] == "0"
    assert security_reasons(caplog) == [BAD_COOKIES[kind]]


# --------------------------------------------------------------------------- streaming


def test_streaming_generator_app(make_kit: KitFactory) -> None:
    client = client_for(make_kit())
    response = client.get("/stream", buffered=False)
    try:
        assert list(response.response) == CHUNKS
    finally:
        response.close()
    assert response.headers["Content-Type"] == "application/octet-stream"
    # The generator wrote the session before calling start_response: it is saved.
    assert SESSION in set_cookies(response)
    assert client.get("/read").json["session"] == {"streamed": True}


def test_response_iterable_is_closed(make_kit: KitFactory) -> None:
    closed: list[str] = []
    client = Client(SessionMiddleware(make_app(closed), kit=make_kit()))
    response = client.get("/closing", buffered=False)
    assert list(response.response) == CHUNKS
    assert closed == []
    response.close()
    assert closed == ["closed"]
    assert SESSION in set_cookies(response)


def test_start_response_exc_info_is_passed_through(make_kit: KitFactory) -> None:
    # werkzeug's test caller re-raises the exception given as exc_info: seeing the app's
    # own exception here shows the middleware handed exc_info on. Had it been dropped,
    # werkzeug would have returned the 500 page instead.
    client = client_for(make_kit())
    with pytest.raises(RuntimeError, match="boom in the app"):
        client.get("/error")


# --------------------------------------------------------------------------- visitor


def test_visitor_cookie_set_once_and_stable(make_kit: KitFactory) -> None:
    client = client_for(make_kit())
    first = client.get("/read")
    _, attrs = set_cookies(first)[VISITOR]
    assert attrs["max-age"] == str(VISITOR_MAX_AGE)
    assert attrs["path"] == "/"
    assert "secure" in attrs
    visitor_id = first.json["visitor"]
    assert isinstance(visitor_id, str)
    for _ in range(3):
        again = client.get("/read")
        assert VISITOR not in set_cookies(again)
        assert again.json["visitor"] == visitor_id


@pytest.mark.parametrize("header", ["Sec-GPC", "DNT"])
def test_opt_out(header: str, make_kit: KitFactory) -> None:
    kit = make_kit()
    fresh = client_for(kit).get("/read", headers={header: "1"})
    assert VISITOR not in set_cookies(fresh)
    assert fresh.json["visitor"] is None

    client = client_for(kit)
    client.get("/read")
    assert client.get_cookie(VISITOR) is not None
    opted_out = client.get("/read", headers={header: "1"})
    value, attrs = set_cookies(opted_out)[VISITOR]
    assert value == ""
    assert attrs["max-age"] == "0"
    assert opted_out.json["visitor"] is None
    assert client.get_cookie(VISITOR) is None


# --------------------------------------------------------------------------- PEP 3333


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/read", {}),
        ("POST", "/write", {}),
        ("GET", "/stream", {}),
        ("POST", "/write-public", {}),
        ("GET", "/read", {"Sec-GPC": "1"}),
        ("POST", "/logout", {}),
    ],
)
def test_conforms_to_wsgiref_validator(
    method: str, path: str, headers: dict[str, str], make_kit: KitFactory
) -> None:
    # The validator checks both sides: what the middleware gives the app (inner) and
    # what it gives the server (outer).
    app = validator(SessionMiddleware(validator(make_app()), kit=make_kit()))
    client = Client(app)
    client.post("/write", json={"user": "alice"}, buffered=True)
    response = client.open(path, method=method, headers=headers, json={"n": 1}, buffered=True)
    assert response.status_code == 200


# --------------------------------------------------------------------------- cookies-required gate


def test_gate_lets_a_client_with_cookies_in(make_kit: KitFactory) -> None:
    client = client_for(make_kit(require_cookies=["/app"]))
    response = client.get("/app/page?x=1", follow_redirects=True)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [303, 303]
    assert response.history[0].headers["Location"] == f"/app/page?x=1&{MARKER}=1"
    assert response.request.path == "/app/page"
    assert response.request.query_string == b"x=1"
    assert response.json["session"] == {}


def test_gate_blocks_a_client_without_cookies(make_kit: KitFactory) -> None:
    client = client_for(make_kit(require_cookies=["/app"]), use_cookies=False)
    first = client.get("/app/page")
    assert first.status_code == 303
    assert "__Host-cookie-check" in set_cookies(first)
    blocked = client.get(first.headers["Location"])
    assert blocked.status_code == 403
    assert "Cookies are required" in blocked.text
    posted = client.post("/app/form", headers={"Accept": "application/json"})
    assert posted.status_code == 403
    assert posted.json["error"] == "cookies_required"
    assert client.get("/read").status_code == 200
