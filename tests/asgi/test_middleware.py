"""The ASGI front end, in process: a real Starlette app driven through httpx.ASGITransport.

Most tests use :class:`Browser`, a tiny client that keeps cookies by name and sends them
back by hand, honouring ``Max-Age=0`` but not the clock: tests move sessionkit's clock
(the ``clock`` fixture) far ahead, which a real cookie jar would not know about. A few
tests use httpx's own cookie jar to show the ordinary flow works as a browser sees it.

WebSocket and lifespan scopes are driven with plain ASGI messages, as a server sends them.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from email.utils import formatdate
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

import sessionkit
from sessionkit.asgi import SessionMiddleware, visitor_of
from sessionkit.seal import b64decode, b64encode
from support import run_websocket, set_cookies

pytestmark = pytest.mark.anyio

SESSION = "__Host-session"
VISITOR = "__Host-visitor"
CHECK = "__Host-cookie-check"
MARKER = "sessionkit-cookie-check"
SECURITY_LOGGER = "sessionkit.security"
IDLE = 30 * 60
ABSOLUTE = 12 * 60 * 60
TOUCH = 60
VISITOR_MAX_AGE = 365 * 24 * 60 * 60

KitFactory = Callable[..., sessionkit.SessionKit]


# --------------------------------------------------------------------------- the app


def _state(conn: Request | WebSocket) -> dict[str, Any]:
    session = conn.session
    return {
        "session": dict(session),
        "id": session.id,
        "is_new": session.is_new,
        "user": session.user_id,
        "visitor": visitor_of(conn.scope),
    }


async def read(request: Request) -> Response:
    return JSONResponse(_state(request))


async def write(request: Request) -> Response:
    request.session.update(await request.json())
    return JSONResponse(_state(request))


async def login(request: Request) -> Response:
    body = await request.json()
    request.session.login(body["user"])
    return JSONResponse(_state(request))


async def rotate(request: Request) -> Response:
    before = request.session.id
    request.session.rotate()
    return JSONResponse({"before": before, "after": request.session.id})


async def logout(request: Request) -> Response:
    request.session.invalidate()
    return JSONResponse(_state(request))


def public_response() -> Response:
    return PlainTextResponse(
        "public page",
        headers={"Cache-Control": "public, max-age=3600", "Vary": "Accept-Encoding"},
    )


async def public(request: Request) -> Response:
    return public_response()


async def write_public(request: Request) -> Response:
    request.session["seen"] = True
    return public_response()


def app_cookie_response() -> Response:
    response = PlainTextResponse("cookies")
    response.set_cookie("theme", "dark", max_age=100)
    response.set_cookie("lang", "en", httponly=True, secure=True)
    return response


async def app_cookies(request: Request) -> Response:
    request.session["seen"] = True
    return app_cookie_response()


BAD_VALUES: dict[str, Any] = {
    "set": {1, 2},
    "datetime": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    "bytes": b"raw",
    "nan": float("nan"),
    "nested_set": {"a": [1, {2}]},
}


async def bad_value(request: Request) -> Response:
    value = BAD_VALUES[request.path_params["kind"]]
    try:
        request.session["bad"] = value
    except sessionkit.UnserializableValue as exc:
        return JSONResponse(
            {
                "raised": type(exc).__name__,
                "is_type_error": isinstance(exc, TypeError),
                "stored": "bad" in request.session,
                "modified": request.session.modified,
            }
        )
    return JSONResponse({"raised": None})


async def big(request: Request) -> Response:
    request.session["blob"] = secrets.token_urlsafe(3072)  # 4096 characters
    return PlainTextResponse("stored")


async def ws_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(_state(websocket))
    await websocket.close()


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.lifespan_events.append("startup")
    yield
    app.state.lifespan_events.append("shutdown")


def build_app(kit: sessionkit.SessionKit | None = None, **starlette_names: Any) -> Starlette:
    """A Starlette app with sessionkit added the documented way."""
    options = starlette_names if kit is None else {"kit": kit}
    app = Starlette(
        routes=[
            Route("/read", read),
            Route("/write", write, methods=["POST"]),
            Route("/login", login, methods=["POST"]),
            Route("/rotate", rotate, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/public", public),
            Route("/write-public", write_public, methods=["POST"]),
            Route("/app-cookies", app_cookies, methods=["POST"]),
            Route("/bad-value/{kind}", bad_value, methods=["POST"]),
            Route("/big", big, methods=["POST"]),
            Route("/app/{rest:path}", read, methods=["GET", "HEAD", "POST"]),
            WebSocketRoute("/ws", ws_endpoint),
            WebSocketRoute("/app/ws", ws_endpoint),
        ],
        middleware=[Middleware(SessionMiddleware, **options)],
        lifespan=lifespan,
    )
    app.state.lifespan_events = []
    return app


# --------------------------------------------------------------------------- helpers


def is_deletion(attrs: dict[str, str | None]) -> bool:
    return attrs.get("max-age") == "0"


def security_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == SECURITY_LOGGER]


class Browser:
    """Keeps cookies by name from Set-Cookie and sends them back in a Cookie header."""

    def __init__(
        self,
        app: Any,
        *,
        base_url: str = "https://testserver",
        raise_app_exceptions: bool = True,
    ) -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        self.client = httpx.AsyncClient(transport=transport, base_url=base_url)
        self.cookies: dict[str, str] = {}

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    async def request(
        self, method: str, url: str, *, headers: dict[str, Any] | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(headers or {})
        if self.cookies and not any(name.lower() == "cookie" for name in headers):
            headers["Cookie"] = self.cookie_header()
        self.client.cookies.clear()
        response = await self.client.request(method, url, headers=headers, **kwargs)
        self.client.cookies.clear()
        for name, (value, attrs) in set_cookies(response).items():
            if is_deletion(attrs):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)


def jar_client(app: Any, base_url: str = "https://testserver") -> httpx.AsyncClient:
    """An httpx client with its ordinary cookie jar."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


async def issue_session(kit: sessionkit.SessionKit, data: dict[str, Any]) -> str:
    """Have ``kit`` issue a session cookie holding ``data`` through the app; return its value."""
    async with Browser(build_app(kit)) as browser:
        response = await browser.post("/write", json=data)
        assert response.status_code == 200
        return browser.cookies[kit.session_spec.name]


# --------------------------------------------------------------------------- round trip


async def test_request_session_round_trip_with_cookie_jar(make_kit: KitFactory) -> None:
    app = build_app(make_kit())
    async with jar_client(app) as client:
        first = await client.post("/write", json={"cart": [1, 2], "name": "Zoë"})
        assert first.status_code == 200
        assert first.json()["is_new"] is True
        second = await client.get("/read")
        third = await client.get("/read")
    assert second.json()["session"] == {"cart": [1, 2], "name": "Zoë"}
    assert second.json()["is_new"] is False
    assert second.json()["id"] == first.json()["id"] == third.json()["id"]
    assert third.json()["session"] == {"cart": [1, 2], "name": "Zoë"}


async def test_session_cookie_attributes(make_kit: KitFactory, clock: Any) -> None:
    async with Browser(build_app(make_kit())) as browser:
        response = await browser.post("/write", json={"user": "alice"})
    value, attrs = set_cookies(response)[SESSION]
    assert attrs == {
        "max-age": str(IDLE),
        "expires": formatdate(clock() + IDLE, usegmt=True),
        "path": "/",
        "secure": None,
        "httponly": None,
        "samesite": "Lax",
    }
    assert "domain" not in attrs
    # The payload is encrypted: nothing of it shows in the cookie.
    assert "alice" not in value
    assert b"alice" not in b64decode(value)


async def test_anonymous_get_sets_no_session_cookie(make_kit: KitFactory) -> None:
    async with Browser(build_app(make_kit())) as browser:
        response = await browser.get("/read")
    assert response.status_code == 200
    assert response.json()["session"] == {}
    assert SESSION not in set_cookies(response)
    assert SESSION not in browser.cookies


async def test_anonymous_get_without_visitor_cookie_is_untouched(make_kit: KitFactory) -> None:
    async with Browser(build_app(make_kit(visitor_cookie=None))) as browser:
        response = await browser.get("/public")
    assert response.headers.get_list("set-cookie") == []
    assert response.headers.get_list("vary") == ["Accept-Encoding"]
    assert response.headers.get_list("cache-control") == ["public, max-age=3600"]


async def test_insecure_development_drops_secure_and_prefix(make_kit: KitFactory) -> None:
    app = build_app(make_kit(insecure_development=True))
    async with jar_client(app, base_url="http://testserver") as client:
        first = await client.post("/write", json={"n": 1})
        second = await client.get("/read")
    cookies = set_cookies(first)
    assert set(cookies) == {"session", "visitor"}
    for _, attrs in cookies.values():
        assert "secure" not in attrs
        assert "httponly" in attrs
        assert attrs["samesite"] == "Lax"
        assert attrs["path"] == "/"
    # Over plain http a cookie jar sends the cookie back, since it is not Secure.
    assert second.json()["session"] == {"n": 1}


async def test_cookies_split_over_several_cookie_headers(
    make_kit: KitFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # HTTP/2 and HTTP/3 clients may send each cookie in its own Cookie header.
    app = build_app(make_kit())
    async with Browser(app) as browser:
        written = await browser.post("/write", json={"user": "alice"})
        session, visitor = browser.cookies[SESSION], browser.cookies[VISITOR]
    async with jar_client(app) as client:
        split = [("cookie", f"{VISITOR}={visitor}"), ("cookie", f"other=1; {SESSION}={session}")]
        response = await client.get("/read", headers=split)
        assert response.json()["session"] == {"user": "alice"}
        assert response.json()["visitor"] == written.json()["visitor"]
        assert set_cookies(response) == {}
        client.cookies.clear()
        twice = [("cookie", f"{SESSION}={session}"), ("cookie", f"{SESSION}={session}")]
        duplicated = await client.get("/read", headers=twice)
    assert duplicated.json()["session"] == {}
    assert [r.sessionkit_event.reason for r in security_records(caplog)] == ["duplicate"]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- caching headers


async def test_vary_cookie_exactly_when_the_session_was_used(make_kit: KitFactory) -> None:
    async with Browser(build_app(make_kit())) as browser:
        written = await browser.post("/write", json={"a": 1})
        read_back = await browser.get("/read")
        public = await browser.get("/public")
    assert "Cookie" in written.headers.get_list("vary")
    # A response that only read the session sets nothing but varies on the cookie.
    assert SESSION not in set_cookies(read_back)
    assert "Cookie" in read_back.headers.get_list("vary")
    # A page whose app never looked at the session is left exactly as the app made it,
    # so a shared cache can keep serving it.
    assert set_cookies(public) == {}
    assert public.headers.get_list("vary") == ["Accept-Encoding"]
    assert public.headers.get_list("cache-control") == ["public, max-age=3600"]


async def test_no_store_replaces_public_caching_when_a_cookie_is_set(
    make_kit: KitFactory,
) -> None:
    async with Browser(build_app(make_kit(visitor_cookie=None))) as browser:
        response = await browser.post("/write-public")
    assert SESSION in set_cookies(response)
    assert response.headers.get_list("cache-control") == ["no-store"]
    assert "Cookie" in response.headers.get_list("vary")


async def test_app_set_cookie_headers_are_preserved(make_kit: KitFactory) -> None:
    expected = [v.decode() for k, v in app_cookie_response().raw_headers if k == b"set-cookie"]
    assert len(expected) == 2
    async with Browser(build_app(make_kit())) as browser:
        response = await browser.post("/app-cookies")
    headers = response.headers.get_list("set-cookie")
    assert [h for h in headers if h.startswith(("theme=", "lang="))] == expected
    assert set(set_cookies(response)) == {"theme", "lang", SESSION}


# --------------------------------------------------------------------------- bad cookies


def _flip_byte(value: str, index: int) -> str:
    raw = bytearray(b64decode(value))
    raw[index] ^= 0x01
    return b64encode(bytes(raw))


async def _bad_cookie_header(kind: str, kit: sessionkit.SessionKit, make_kit: KitFactory) -> bytes:
    good = await issue_session(kit, {"role": "admin"})
    if kind == "tampered":
        return f"{SESSION}={_flip_byte(good, 30)}".encode()
    if kind == "truncated":
        return f"{SESSION}={b64encode(b64decode(good)[:-5])}".encode()
    if kind == "truncated_text":
        return f"{SESSION}={good[:-7]}".encode()
    if kind == "other_key":
        other = make_kit(secret_keys=[sessionkit.generate_key()])
        return f"{SESSION}={await issue_session(other, {'role': 'admin'})}".encode()
    if kind == "duplicated":
        second = await issue_session(kit, {"role": "user"})
        return f"{SESSION}={good}; {SESSION}={second}".encode()
    if kind == "other_cookie_name":
        # Sealed by the same keys for a cookie of another name: the name is bound in.
        renamed = make_kit(session_cookie="__Host-other")
        return f"{SESSION}={await issue_session(renamed, {'role': 'admin'})}".encode()
    if kind == "garbage":
        return f"{SESSION}=not a token!".encode()
    if kind == "non_ascii":
        return SESSION.encode() + b"=\xff\xfe\x00\x80"
    if kind == "oversized":
        return f"{SESSION}={'A' * 5000}".encode()
    raise AssertionError(kind)


BAD_COOKIES = {
    "tampered": {"tampered"},
    "truncated": {"tampered"},
    "truncated_text": {"tampered", "malformed"},
    "other_key": {"unknown_key"},
    "duplicated": {"duplicate"},
    "other_cookie_name": {"tampered"},
    "garbage": {"malformed"},
    "non_ascii": {"malformed"},
    "oversized": {"oversized"},
}


@pytest.mark.parametrize("kind", sorted(BAD_COOKIES))
async def test_bad_session_cookie_gives_empty_session(
    kind: str, make_kit: KitFactory, caplog: pytest.LogCaptureFixture
) -> None:
    kit = make_kit()
    cookie = await _bad_cookie_header(kind, kit, make_kit)
    caplog.clear()
    caplog.set_level(logging.INFO, logger=SECURITY_LOGGER)
    async with Browser(build_app(kit)) as browser:
        response = await browser.get("/read", headers={"Cookie": cookie})
    assert response.status_code == 200
    body = response.json()
    assert body["session"] == {}
    assert body["is_new"] is True
    assert "admin" not in response.text
    value, attrs = set_cookies(response)[SESSION]
    assert value == ""
    assert is_deletion(attrs)
    assert attrs["path"] == "/"
    assert "secure" in attrs
    records = security_records(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    event = records[0].sessionkit_event  # type: ignore[attr-defined]
    assert event.reason in BAD_COOKIES[kind]
    assert event.cookie == SESSION
    assert records[0].levelno == logging.WARNING
    assert event.reason in records[0].getMessage()
    # The event never carries the cookie's value.
    rejected = cookie.decode("latin-1").split(";")[0].partition("=")[2]
    if len(rejected) > 8:
        assert rejected not in records[0].getMessage()


async def test_new_session_after_a_rejected_cookie_is_fresh(
    make_kit: KitFactory, caplog: pytest.LogCaptureFixture
) -> None:
    kit = make_kit()
    good = await issue_session(kit, {"role": "admin"})
    async with Browser(build_app(kit)) as browser:
        browser.cookies[SESSION] = _flip_byte(good, 30)
        response = await browser.post("/write", json={"role": "guest"})
        value, attrs = set_cookies(response)[SESSION]
        assert not is_deletion(attrs)
        assert value != good
        again = await browser.get("/read")
    assert again.json()["session"] == {"role": "guest"}
    assert [r.sessionkit_event.reason for r in security_records(caplog)] == ["tampered"]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- key rotation


async def test_cookie_under_older_key_is_reissued_under_newest(
    key: str, make_kit: KitFactory, caplog: pytest.LogCaptureFixture
) -> None:
    new_key = sessionkit.generate_key()
    old_kit = make_kit(secret_keys=[key])
    both_kit = make_kit(secret_keys=[new_key, key])
    new_kit = make_kit(secret_keys=[new_key])

    async with Browser(build_app(old_kit)) as browser:
        await browser.post("/write", json={"user": "alice"})
        old_session, old_visitor = browser.cookies[SESSION], browser.cookies[VISITOR]
        visitor_id = (await browser.get("/read")).json()["visitor"]

    async with Browser(build_app(both_kit)) as browser:
        browser.cookies = {SESSION: old_session, VISITOR: old_visitor}
        response = await browser.get("/read")
        assert response.json()["session"] == {"user": "alice"}
        assert response.json()["visitor"] == visitor_id
        reissued = set_cookies(response)
        assert reissued[SESSION][0] not in ("", old_session)
        assert reissued[VISITOR][0] not in ("", old_visitor)
        # Once re-issued, the cookie is current: no further re-issue.
        again = await browser.get("/read")
        assert set_cookies(again) == {}
        new_session, new_visitor = browser.cookies[SESSION], browser.cookies[VISITOR]

    async with Browser(build_app(new_kit)) as browser:
        browser.cookies = {SESSION: new_session, VISITOR: new_visitor}
        response = await browser.get("/read")
    assert response.json()["session"] == {"user": "alice"}
    assert response.json()["visitor"] == visitor_id
    assert set_cookies(response) == {}
    assert security_records(caplog) == []


async def test_cookie_under_removed_key_is_rejected(
    key: str, make_kit: KitFactory, caplog: pytest.LogCaptureFixture
) -> None:
    old_cookie = await issue_session(make_kit(secret_keys=[key]), {"user": "alice"})
    new_kit = make_kit(secret_keys=[sessionkit.generate_key()])
    async with Browser(build_app(new_kit)) as browser:
        response = await browser.get("/read", headers={"Cookie": f"{SESSION}={old_cookie}"})
    assert response.status_code == 200
    assert response.json()["session"] == {}
    assert is_deletion(set_cookies(response)[SESSION][1])
    reasons = [r.sessionkit_event.reason for r in security_records(caplog)]  # type: ignore[attr-defined]
    assert reasons == ["unknown_key"]


# --------------------------------------------------------------------------- lifecycle


async def test_rotate_changes_id_and_reissues(make_kit: KitFactory) -> None:
    async with Browser(build_app(make_kit())) as browser:
        first = await browser.post("/write", json={"cart": [3]})
        before_cookie = browser.cookies[SESSION]
        rotated = await browser.post("/rotate")
        ids = rotated.json()
        assert ids["before"] == first.json()["id"]
        assert ids["after"] != ids["before"]
        value, attrs = set_cookies(rotated)[SESSION]
        assert value != before_cookie
        assert not is_deletion(attrs)
        after = await browser.get("/read")
    assert after.json()["id"] == ids["after"]
    assert after.json()["session"] == {"cart": [3]}


async def test_login_rotates_and_binds_user(make_kit: KitFactory) -> None:
    async with Browser(build_app(make_kit())) as browser:
        anonymous = await browser.post("/write", json={"theme": "dark"})
        logged_in = await browser.post("/login", json={"user": "alice"})
        assert logged_in.json()["id"] != anonymous.json()["id"]
        after = await browser.get("/read")
    assert after.json()["user"] == "alice"
    assert after.json()["session"] == {"theme": "dark"}


async def test_timed_rotation_reissues_with_new_id(make_kit: KitFactory, clock: Any) -> None:
    async with Browser(build_app(make_kit())) as browser:
        first = await browser.post("/write", json={"a": 1})
        clock.advance(16 * 60)
        later = await browser.get("/read")
        assert SESSION in set_cookies(later)
        final = await browser.get("/read")
        again = await browser.get("/read")
    # The handler of the rotating request still sees the old id; its response carries
    # the new one, which every later request has.
    assert later.json()["id"] == first.json()["id"]
    assert final.json()["id"] != first.json()["id"]
    assert again.json()["id"] == final.json()["id"]
    assert final.json()["session"] == {"a": 1}


async def test_invalidate_expires_the_cookie(make_kit: KitFactory) -> None:
    async with Browser(build_app(make_kit())) as browser:
        await browser.post("/login", json={"user": "alice"})
        before = await browser.post("/write", json={"note": "x"})
        response = await browser.post("/logout")
        assert response.json()["id"] != before.json()["id"]
        value, attrs = set_cookies(response)[SESSION]
        assert value == ""
        assert is_deletion(attrs)
        assert response.json()["session"] == {}
        assert response.json()["user"] is None
        assert SESSION not in browser.cookies
        after = await browser.get("/read")
    assert after.json()["session"] == {}
    assert after.json()["user"] is None


# --------------------------------------------------------------------------- timeouts


async def test_idle_timeout_ends_the_session(
    make_kit: KitFactory, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SECURITY_LOGGER)
    async with Browser(build_app(make_kit())) as browser:
        await browser.post("/write", json={"user": "alice"})
        clock.advance(IDLE - 60)
        still = await browser.get("/read")
        assert still.json()["session"] == {"user": "alice"}
        assert security_records(caplog) == []
        clock.advance(IDLE + 1)
        expired = await browser.get("/read")
    assert expired.status_code == 200
    assert expired.json()["session"] == {}
    assert expired.json()["is_new"] is True
    assert is_deletion(set_cookies(expired)[SESSION][1])
    records = security_records(caplog)
    assert [r.sessionkit_event.reason for r in records] == ["expired_idle"]  # type: ignore[attr-defined]
    assert records[0].levelno == logging.INFO


async def test_absolute_timeout_ends_an_active_session(
    make_kit: KitFactory, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SECURITY_LOGGER)
    start = clock.now
    async with Browser(build_app(make_kit())) as browser:
        await browser.post("/write", json={"user": "alice"})
        while clock.now + 600 - start <= ABSOLUTE:
            clock.advance(600)
            response = await browser.get("/read")
            assert response.json()["session"] == {"user": "alice"}, clock.now - start
            # Every touch re-issues, never for longer than the session has left.
            _, attrs = set_cookies(response)[SESSION]
            max_age = int(attrs["max-age"] or "")
            assert 1 <= max_age <= IDLE
            assert max_age <= max(1, start + ABSOLUTE - clock.now)
        assert security_records(caplog) == []
        clock.advance(600)
        expired = await browser.get("/read")
    assert clock.now - start > ABSOLUTE
    assert expired.json()["session"] == {}
    assert is_deletion(set_cookies(expired)[SESSION][1])
    records = security_records(caplog)
    assert [r.sessionkit_event.reason for r in records] == ["expired_absolute"]  # type: ignore[attr-defined]


async def test_unchanged_session_is_touched_at_most_once_per_interval(
    make_kit: KitFactory, clock: Any
) -> None:
    async with Browser(build_app(make_kit())) as browser:
        await browser.post("/write", json={"user": "alice"})
        for _ in range(5):
            clock.advance(10)
            response = await browser.get("/read")
            assert set_cookies(response) == {}, "re-issued within the touch interval"
        clock.advance(TOUCH - 50)  # exactly TOUCH seconds since the cookie was issued
        touched = await browser.get("/read")
        assert SESSION in set_cookies(touched)
        for _ in range(5):
            clock.advance(11)
            response = await browser.get("/read")
            assert set_cookies(response) == {}, "re-issued twice in one touch interval"
        clock.advance(TOUCH - 55)
        touched_again = await browser.get("/read")
        assert SESSION in set_cookies(touched_again)
    assert touched_again.json()["session"] == {"user": "alice"}


# --------------------------------------------------------------------------- visitor cookie


async def test_visitor_cookie_is_set_once_and_stable(make_kit: KitFactory, clock: Any) -> None:
    async with Browser(build_app(make_kit())) as browser:
        first = await browser.get("/read")
        value, attrs = set_cookies(first)[VISITOR]
        assert attrs == {
            "max-age": str(VISITOR_MAX_AGE),
            "expires": formatdate(clock() + VISITOR_MAX_AGE, usegmt=True),
            "path": "/",
            "secure": None,
            "httponly": None,
            "samesite": "Lax",
        }
        visitor_id = first.json()["visitor"]
        assert isinstance(visitor_id, str)
        assert len(visitor_id) >= 22
        responses = [await browser.get("/read") for _ in range(3)]
        responses.append(await browser.post("/write", json={"a": 1}))
    for response in responses:
        assert VISITOR not in set_cookies(response)
        assert response.json()["visitor"] == visitor_id
    assert browser.cookies[VISITOR] == value


async def test_visitor_cookie_with_cookie_jar(make_kit: KitFactory) -> None:
    async with jar_client(build_app(make_kit())) as client:
        first = await client.get("/read")
        second = await client.get("/read")
    assert VISITOR in set_cookies(first)
    assert set_cookies(second) == {}
    assert first.json()["visitor"] == second.json()["visitor"]


async def test_two_visitors_get_different_ids(make_kit: KitFactory) -> None:
    app = build_app(make_kit())
    async with Browser(app) as one, Browser(app) as two:
        a = (await one.get("/read")).json()["visitor"]
        b = (await two.get("/read")).json()["visitor"]
    assert a != b


@pytest.mark.parametrize("header", ["Sec-GPC", "DNT"])
async def test_opt_out_sets_no_visitor_cookie(header: str, make_kit: KitFactory) -> None:
    async with Browser(build_app(make_kit())) as browser:
        response = await browser.get("/read", headers={header: "1"})
        written = await browser.post("/write", json={"a": 1}, headers={header: "1"})
    assert VISITOR not in set_cookies(response)
    assert response.json()["visitor"] is None
    # Opting out of the visitor cookie does not stop the session from working.
    assert set(set_cookies(written)) == {SESSION}
    assert written.json()["visitor"] is None


@pytest.mark.parametrize("header", ["Sec-GPC", "DNT"])
async def test_opt_out_expires_an_existing_visitor_cookie(
    header: str, make_kit: KitFactory
) -> None:
    async with Browser(build_app(make_kit())) as browser:
        await browser.get("/read")
        assert VISITOR in browser.cookies
        response = await browser.get("/read", headers={header: "1"})
    value, attrs = set_cookies(response)[VISITOR]
    assert value == ""
    assert is_deletion(attrs)
    assert response.json()["visitor"] is None


async def test_sec_gpc_zero_is_not_an_opt_out(make_kit: KitFactory) -> None:
    async with Browser(build_app(make_kit())) as browser:
        response = await browser.get("/read", headers={"Sec-GPC": "0"})
    assert VISITOR in set_cookies(response)
    assert response.json()["visitor"] is not None


# --------------------------------------------------------------------------- other scopes


async def test_websocket_can_read_the_session(make_kit: KitFactory) -> None:
    app = build_app(make_kit())
    async with Browser(app) as browser:
        written = await browser.post("/write", json={"user": "alice"})
        cookie = browser.cookie_header().encode()
    sent = await run_websocket(app, [(b"cookie", cookie)])
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    state = httpx.Response(200, text=sent[1]["text"]).json()
    assert state["session"] == {"user": "alice"}
    assert state["id"] == written.json()["id"]
    assert state["visitor"] == written.json()["visitor"]


async def test_websocket_with_bad_cookie_gets_empty_session(
    make_kit: KitFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = build_app(make_kit())
    sent = await run_websocket(app, [(b"cookie", f"{SESSION}=forged".encode())])
    assert sent[0]["type"] == "websocket.accept"
    state = httpx.Response(200, text=sent[1]["text"]).json()
    assert state["session"] == {}
    assert [r.sessionkit_event.reason for r in security_records(caplog)] == ["malformed"]  # type: ignore[attr-defined]


async def test_lifespan_scope_passes_through(make_kit: KitFactory) -> None:
    app = build_app(make_kit())
    scope: dict[str, Any] = {
        "type": "lifespan",
        "asgi": {"version": "3.0", "spec_version": "2.0"},
        "state": {},
    }
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    await app(scope, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert app.state.lifespan_events == ["startup", "shutdown"]
    assert "session" not in scope
    assert "sessionkit.visitor" not in scope


# --------------------------------------------------------------------------- cookies-required gate


async def test_gate_lets_a_client_with_cookies_in_after_one_round_trip(
    make_kit: KitFactory,
) -> None:
    app = build_app(make_kit(require_cookies=["/app"]))
    async with jar_client(app) as client:
        response = await client.get("/app/page?x=1", follow_redirects=True)
        again = await client.get("/app/other")
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [303, 303]
    assert response.history[0].headers["location"] == f"/app/page?x=1&{MARKER}=1"
    assert response.history[1].headers["location"] == "/app/page?x=1"
    _, attrs = set_cookies(response.history[0])[CHECK]
    assert attrs["max-age"] == "300"
    assert "secure" in attrs
    assert str(response.url) == "https://testserver/app/page?x=1"
    assert response.json()["session"] == {}
    # Once the app has set its own cookies, no more detours.
    assert again.status_code == 200
    assert again.history == []


async def test_gate_blocks_a_client_without_cookies_after_one_redirect(
    make_kit: KitFactory,
) -> None:
    app = build_app(make_kit(require_cookies=["/app"]))
    async with Browser(app) as browser:
        first = await browser.get("/app/page")
        assert first.status_code == 303
        location = first.headers["location"]
        assert location == f"/app/page?{MARKER}=1"
        browser.cookies.clear()  # the client drops every cookie
        blocked = await browser.get(location)
        browser.cookies.clear()
        as_json = await browser.get(location, headers={"Accept": "application/json"})
        public = await browser.get("/read")
    assert blocked.status_code == 403
    assert blocked.headers["content-type"].startswith("text/html")
    assert "Cookies are required" in blocked.text
    assert '"session"' not in blocked.text  # the app was not called
    # Only the test cookie again, so a reload once cookies are enabled gets in.
    assert set(set_cookies(blocked)) == {"__Host-cookie-check"}
    assert as_json.status_code == 403
    assert as_json.json()["error"] == "cookies_required"
    # Public paths are not gated.
    assert public.status_code == 200
    assert public.json()["session"] == {}


async def test_gate_blocks_unsafe_methods_without_a_redirect(make_kit: KitFactory) -> None:
    app = build_app(make_kit(require_cookies=["/app"]))
    async with Browser(app) as browser:
        response = await browser.post("/app/form", headers={"Accept": "text/html"})
        browser.cookies.clear()  # the client drops every cookie, the block's test cookie too
        head = await browser.request("HEAD", f"/app/page?{MARKER}=1")
    assert response.status_code == 403
    assert "Cookies are required" in response.text
    assert head.status_code == 403
    assert head.content == b""


async def test_gate_closes_a_websocket_without_cookies(make_kit: KitFactory) -> None:
    app = build_app(make_kit(require_cookies=["/app"]))
    refused = await run_websocket(app, [], path="/app/ws")
    assert refused == [{"type": "websocket.close", "code": 1008}]
    async with Browser(app) as browser:
        await browser.post("/write", json={"user": "alice"})
        cookie = browser.cookie_header().encode()
    accepted = await run_websocket(app, [(b"cookie", cookie)], path="/app/ws")
    assert accepted[0]["type"] == "websocket.accept"
    assert httpx.Response(200, text=accepted[1]["text"]).json()["session"] == {"user": "alice"}


# --------------------------------------------------------------------------- configuration


async def test_starlette_keyword_names(key: str) -> None:
    app = build_app(
        secret_key=key,
        session_cookie="s",
        max_age=600,
        path="/",
        same_site="strict",
        https_only=True,
    )
    async with Browser(app) as browser:
        written = await browser.post("/write", json={"user": "alice"})
        read_back = await browser.get("/read")
    value, attrs = set_cookies(written)["s"]
    assert value
    assert attrs == {
        "max-age": "600",
        "path": "/",
        "secure": None,
        "httponly": None,
        "samesite": "strict",
    }
    assert read_back.json()["session"] == {"user": "alice"}


async def test_starlette_keyword_names_spell_the_attributes_as_starlette(key: str) -> None:
    # Starlette's SessionMiddleware writes "path=/; Max-Age=...; httponly; samesite=lax",
    # and applications' tests compare that text; attribute names are case-insensitive
    # (RFC 6265 section 5.2), so browsers read it as the standard spelling.
    app = build_app(secret_key=key, session_cookie="s", domain="example.com", partitioned=True)
    async with Browser(app) as browser:
        written = await browser.post("/write", json={"user": "alice"})
        ended = await browser.post("/logout")
    [sent] = [v for v in written.headers.get_list("set-cookie") if v.startswith("s=")]
    value = sent.split(";", 1)[0].removeprefix("s=")
    assert sent == (
        f"s={value}; path=/; Max-Age=1800; httponly; samesite=lax; secure; "
        "domain=example.com; partitioned"
    )
    assert set_cookies(written)[VISITOR][1] == {
        "max-age": str(365 * 24 * 3600),
        "path": "/",
        "httponly": None,
        "samesite": "lax",
        "secure": None,
    }
    [deleted] = [v for v in ended.headers.get_list("set-cookie") if v.startswith("s=;")]
    assert deleted == (
        "s=; path=/; Max-Age=0; expires=Thu, 01 Jan 1970 00:00:00 GMT; httponly; "
        "samesite=lax; secure; domain=example.com; partitioned"
    )


async def test_a_kit_keeps_the_standard_spelling(make_kit: KitFactory, clock: Any) -> None:
    async with Browser(build_app(make_kit())) as browser:
        written = await browser.post("/write", json={"user": "alice"})
    [sent] = [v for v in written.headers.get_list("set-cookie") if v.startswith(f"{SESSION}=")]
    expires = formatdate(clock() + 1800, usegmt=True)
    assert sent.split("; ", 1)[1] == (
        f"Max-Age=1800; Expires={expires}; Path=/; Secure; HttpOnly; SameSite=Lax"
    )


def test_starlette_max_age_is_the_idle_timeout(key: str) -> None:
    middleware = SessionMiddleware(PlainTextResponse("ok"), secret_key=key, max_age=600)
    assert middleware.kit.idle_timeout == 600
    assert middleware.kit.absolute_timeout >= 600
    assert middleware.kit.session_spec.name == SESSION


async def test_starlette_max_age_none_gives_a_browser_session_cookie(key: str) -> None:
    async with Browser(build_app(secret_key=key, max_age=None)) as browser:
        written = await browser.post("/write", json={"a": 1})
    _, attrs = set_cookies(written)[SESSION]
    assert "max-age" not in attrs
    assert "expires" not in attrs


async def test_starlette_path_applies_to_the_session_cookie_only(key: str) -> None:
    async with Browser(build_app(secret_key=key, path="/app")) as browser:
        written = await browser.post("/write", json={"a": 1})
    cookies = set_cookies(written)
    # __Host- needs Path=/, so the session cookie takes __Secure-; the visitor cookie keeps
    # __Host- and Path=/.
    assert set(cookies) == {"__Secure-session", VISITOR}
    assert cookies["__Secure-session"][1]["path"] == "/app"
    assert "secure" in cookies["__Secure-session"][1]
    assert cookies[VISITOR][1]["path"] == "/"


def test_kit_and_secret_key_together_raise(key: str, make_kit: KitFactory) -> None:
    with pytest.raises(sessionkit.ConfigurationError):
        SessionMiddleware(PlainTextResponse("ok"), kit=make_kit(), secret_key=key)
    with pytest.raises(sessionkit.ConfigurationError):
        SessionMiddleware(PlainTextResponse("ok"), kit=make_kit(), session_cookie="s")


def test_starlette_https_only_false_is_refused(key: str) -> None:
    # Starlette's default is https_only=False; sessionkit refuses plain-http cookies unless
    # a kit says insecure_development=True.
    with pytest.raises(sessionkit.ConfigurationError, match="insecure_development"):
        SessionMiddleware(PlainTextResponse("ok"), secret_key=key, https_only=False)


def test_neither_kit_nor_secret_key_raises() -> None:
    with pytest.raises(sessionkit.ConfigurationError, match="python -m sessionkit keygen"):
        SessionMiddleware(PlainTextResponse("ok"))


@pytest.mark.parametrize("weak", ["secret", "", "a" * 64, "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"])
def test_weak_secret_key_raises_naming_keygen(weak: str) -> None:
    with pytest.raises(sessionkit.ConfigurationError) as info:
        SessionMiddleware(PlainTextResponse("ok"), secret_key=weak)
    assert "python -m sessionkit keygen" in str(info.value)
    assert isinstance(info.value, ValueError)


async def test_secret_key_passed_positionally_as_starlette_allows(key: str) -> None:
    inner = Starlette(routes=[Route("/write", write, methods=["POST"]), Route("/read", read)])
    async with Browser(SessionMiddleware(inner, key)) as browser:
        assert (await browser.post("/write", json={"a": 1})).status_code == 200
        assert (await browser.get("/read")).json()["session"] == {"a": 1}
    with pytest.raises(sessionkit.ConfigurationError, match="given twice"):
        SessionMiddleware(PlainTextResponse("ok"), key, secret_key=key)
    with pytest.raises(sessionkit.ConfigurationError, match=r"must be a sessionkit\.SessionKit"):
        SessionMiddleware(PlainTextResponse("ok"), 42)  # type: ignore[arg-type]


def test_starlette_https_only_false_with_insecure_development(key: str) -> None:
    middleware = SessionMiddleware(
        PlainTextResponse("ok"), secret_key=key, https_only=False, insecure_development=True
    )
    assert middleware.kit.session_spec.secure is False
    assert middleware.kit.session_spec.name == "session"


@pytest.mark.parametrize("max_age", [2, 60, 119])
def test_starlette_small_max_age_is_accepted(key: str, max_age: int) -> None:
    middleware = SessionMiddleware(PlainTextResponse("ok"), secret_key=key, max_age=max_age)
    assert middleware.kit.idle_timeout == max_age
    assert middleware.kit.touch_interval * 2 <= max_age


# --------------------------------------------------------------------------- app errors


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
async def test_unserializable_value_raises_at_assignment(kind: str, make_kit: KitFactory) -> None:
    async with Browser(build_app(make_kit())) as browser:
        response = await browser.post(f"/bad-value/{kind}")
    assert response.json() == {
        "raised": "UnserializableValue",
        "is_type_error": True,
        "stored": False,
        "modified": False,
    }
    assert SESSION not in set_cookies(response)


async def test_session_too_large_fails_the_request(make_kit: KitFactory) -> None:
    async with Browser(build_app(make_kit())) as browser:
        with pytest.raises(sessionkit.SessionTooLarge) as info:
            await browser.post("/big")
    assert info.value.size > info.value.limit == 4096
    assert isinstance(info.value, sessionkit.SessionKitError)


async def test_session_too_large_is_a_server_error_not_a_dropped_cookie(
    make_kit: KitFactory,
) -> None:
    async with Browser(build_app(make_kit()), raise_app_exceptions=False) as browser:
        response = await browser.post("/big")
    assert response.status_code == 500
    assert SESSION not in set_cookies(response)
