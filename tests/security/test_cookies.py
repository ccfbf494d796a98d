"""ASVS V3.3 cookie setup, V14 data protection and caching, V1.2.1 header injection.

What every ``Set-Cookie`` sessionkit sends looks like, what is (not) inside the values,
what happens at the size limit, and the ``Vary`` / ``Cache-Control`` headers that keep a
shared cache from handing one visitor's cookie or page to another (Flask's
CVE-2023-30861 and CVE-2026-27205 were both a missing ``Vary: Cookie``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sksec import COOKIE_OCTETS, TOKEN, CoreBrowser, call_asgi

import sessionkit.asgi
import sessionkit.wsgi
from sessionkit import ConfigurationError, SessionKit, SessionTooLarge
from sessionkit.cookies import MAX_COOKIE_BYTES
from sessionkit.errors import BadToken
from sessionkit.seal import Sealer, b64decode
from sessionkit.session import encode_payload
from sessionkit.stores import MemoryStore
from support import parse_set_cookie

pytestmark = pytest.mark.security

MakeKit = Callable[..., SessionKit]
SESSION = "__Host-session"
VISITOR = "__Host-visitor"
KEY = sessionkit.generate_key()


def _sealed_size(kit: SessionKit, session: Any) -> int:
    """Bytes of name and value the session's whole cookie would take."""
    sealer = Sealer(kit.keys, "session", kit.session_spec.name, max_age=43200, max_skew=60)
    value = sealer.seal(encode_payload(session.state, dict(session)), kit.clock())
    return len(kit.session_spec.name) + 1 + len(value)


def every_cookie_sessionkit_sends(kit: SessionKit) -> dict[str, dict[str, str]]:
    """Drive the flows that set each of sessionkit's cookies; name -> attributes."""
    seen: dict[str, dict[str, str]] = {}
    browser = CoreBrowser(kit)
    for response in (
        browser.request(path="/app/inbox"),  # the gate's test cookie
        browser.request(lambda s: s.login("alice")),  # session + visitor
        browser.request(lambda s: s.invalidate()),  # the session cookie expired
    ):
        for name, (_, attrs) in response.cookies.items():
            seen.setdefault(name, attrs)
    ex = kit.open(None)
    ex.opt_out()
    for name, value in ex.finish([], []).add:  # type: ignore[union-attr]
        if name == "Set-Cookie":
            cookie, _, attrs = parse_set_cookie(value)
            seen.setdefault(cookie, attrs)
    return seen


# ---------------------------------------------------------------- attributes and prefixes


@pytest.mark.asvs("3.3.1", "3.3.2", "3.3.3", "3.3.4")
def test_every_cookie_is_host_prefixed_secure_httponly_and_lax(make_kit: MakeKit) -> None:
    kit = make_kit(require_cookies=["/app"])
    cookies = every_cookie_sessionkit_sends(kit)
    assert {SESSION, VISITOR, "__Host-cookie-check", "__Host-opt-out"} <= set(cookies)
    for name, attrs in cookies.items():
        assert name.startswith("__Host-"), name
        assert "secure" in attrs, name
        assert "httponly" in attrs, name
        assert attrs["path"] == "/", name
        assert "domain" not in attrs, name
        assert attrs["samesite"] == "Lax", name


@pytest.mark.asvs("3.3.2")
def test_samesite_follows_the_setting_and_none_needs_secure(make_kit: MakeKit) -> None:
    strict = every_cookie_sessionkit_sends(make_kit(same_site="strict"))
    assert strict[SESSION]["samesite"] == "Strict"
    assert strict[VISITOR]["samesite"] == "Lax", "the visitor cookie is not an authenticator"
    assert every_cookie_sessionkit_sends(make_kit(same_site="none"))[SESSION]["samesite"] == "None"
    with pytest.raises(ConfigurationError, match="Secure"):
        make_kit(same_site="none", insecure_development=True)


@pytest.mark.asvs("3.3.1", "3.3.3")
@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"domain": "site.example", "session_cookie": "__Host-session"}, "Domain"),
        ({"path": "/app", "session_cookie": "__Host-session"}, "Path=/"),
        ({"secure": False}, "insecure_development"),
        ({"session_cookie": "__Secure-session", "insecure_development": True}, "Secure"),
        ({"session_cookie": "bad name"}, "cookie name"),
        ({"session_cookie": "a\r\nSet-Cookie: x"}, "cookie name"),
    ],
)
def test_prefix_rules_are_enforced_at_start_up(
    make_kit: MakeKit, settings: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        make_kit(**settings)


@pytest.mark.asvs("3.3.1")
def test_an_explicit_secure_prefix_works_for_a_scoped_cookie(make_kit: MakeKit) -> None:
    kit = make_kit(path="/app", session_cookie="__Secure-session")
    response = CoreBrowser(kit).request(lambda s: s.login("alice"), path="/app")
    value, attrs = response.cookies["__Secure-session"]
    assert value
    assert "secure" in attrs
    assert attrs["path"] == "/app"


@pytest.mark.asvs("3.3.1")
@pytest.mark.parametrize("scope", [{"path": "/app"}, {"domain": "site.example"}])
def test_a_scoped_secure_cookie_defaults_to_the_secure_prefix(
    make_kit: MakeKit, scope: dict[str, str]
) -> None:
    """ASVS 3.3.1: without __Host-, a Secure cookie's name must carry __Secure-.

    Found by this suite: the default used to drop to a bare ``session``.
    """
    kit = make_kit(**scope)
    assert kit.session_spec.secure
    assert kit.session_spec.name == "__Secure-session"
    response = CoreBrowser(kit).request(lambda s: s.login("alice"), path="/app/x")
    value, attrs = response.cookies["__Secure-session"]
    assert value
    assert "secure" in attrs


@pytest.mark.asvs("3.3.4", "14.2.1")
def test_the_token_travels_only_in_set_cookie(make_kit: MakeKit) -> None:
    kit = make_kit(require_cookies=["/app"])
    browser = CoreBrowser(kit)
    responses = [browser.request(lambda s: s.login("alice"))]
    token = browser.jar[SESSION]
    responses += [
        browser.request(path="/app/inbox", query="sessionkit-cookie-check=1"),  # redirect
        browser.request(path="/app/inbox"),
        browser.request(lambda s: s.rotate()),
    ]
    tokens = {token, browser.jar[SESSION]}
    for response in responses:
        for name, value in response.headers:
            if name.lower() != "set-cookie":
                assert not any(t in value for t in tokens), (name, value)
        assert not any(t.encode() in response.body for t in tokens)
    location = responses[1].get("Location")
    assert location == "/app/inbox", "the clean URL, with nothing of the cookie in it"


# ---------------------------------------------------------------- what is inside


PERSONAL = {
    "user": "alice.liddell@example.com",
    "name": "Alice Liddell",
    "street": "7 Looking-Glass Lane",
    "phone": "+44 20 7946 0958",
}


def _spellings(text: str) -> set[bytes]:
    """``text`` as raw bytes and as the base64 (any alignment, either alphabet) of them."""
    raw = text.encode()
    out = {raw, raw.lower()}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)[4 if shift else 0 :]
        out.add(encoded[:-4])
        out.add(encoded[:-4].replace(b"+", b"-").replace(b"/", b"_"))
    return {s for s in out if len(s) >= 8}


@pytest.mark.asvs("14.3.3", "11.3.3")
@pytest.mark.parametrize("with_store", [False, True])
def test_no_personal_data_in_any_cookie(make_kit: MakeKit, with_store: bool) -> None:
    kit = make_kit(store=MemoryStore() if with_store else None, require_cookies=["/app"])
    browser = CoreBrowser(kit)
    values: list[str] = []
    visitor_before = None
    for app, path in [
        (None, "/app/inbox"),
        (None, "/"),
        (lambda s: (s.login(PERSONAL["user"]), s.update(PERSONAL)), "/"),
        (lambda s: s.update(basket=["a book by " + PERSONAL["name"]]), "/app/inbox"),
        (lambda s: s.rotate(), "/"),
    ]:
        response = browser.request(app, path=path)
        values += [value for value, _ in response.cookies.values()]
        if visitor_before is None and VISITOR in browser.jar:
            visitor_before = browser.jar[VISITOR]
    assert browser.jar[VISITOR] == visitor_before, "logging in does not touch the visitor id"
    needles = set().union(*(_spellings(v) for v in PERSONAL.values()))
    for value in values:
        try:
            decoded = b64decode(value)
        except BadToken:
            decoded = b""  # "1", the test and opt-out cookies' whole value
        for needle in needles:
            assert needle not in value.encode(), (value, needle)
            assert needle not in decoded, (value, needle)
    # the visitor cookie is version, key id, 16 random bytes and a 16-byte MAC: nothing else
    assert len(b64decode(browser.jar[VISITOR])) == 1 + 4 + 16 + 16
    # and it never logs anyone in
    alone = CoreBrowser(kit, {VISITOR: browser.jar[VISITOR]}).request()
    assert alone.session is not None
    assert alone.session.user_id is None


# ---------------------------------------------------------------- size


@pytest.mark.asvs("3.3.5")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(0, 4200), user=st.text(max_size=40))
def test_no_cookie_over_4096_bytes_is_ever_sent(size: int, user: str) -> None:
    """A session that would not fit is refused (or spilled to the store), never sent."""
    for store in (None, MemoryStore()):
        kit = SessionKit(secret_keys=[KEY], store=store)
        ex = kit.open(None)
        ex.session.login(user or "u")
        ex.session["blob"] = base64.b64encode(bytes(range(256)) * 17)[:size].decode()
        if store is None and _sealed_size(kit, ex.session) > MAX_COOKIE_BYTES:
            with pytest.raises(SessionTooLarge):
                ex.finish([], [])
            continue
        changes = ex.finish([], [])
        for name, value in changes.add:  # type: ignore[union-attr]
            if name == "Set-Cookie":
                cookie, val, _ = parse_set_cookie(value)
                assert len(cookie.encode()) + 1 + len(val.encode()) <= MAX_COOKIE_BYTES


@pytest.mark.asvs("3.3.5", "15.2.2")
def test_an_oversized_incoming_cookie_is_refused_unread(
    make_kit: MakeKit, events: list[Any]
) -> None:
    kit = make_kit(on_security_event=events.append)
    for value in ("A" * 4097, "A" * 100_000, "%" * 5000):
        events.clear()
        response = CoreBrowser(kit, {SESSION: value}).request()
        assert response.session is not None
        assert response.session.is_new
        assert response.cookies[SESSION][1]["max-age"] == "0"
        assert [e.reason for e in events] == ["oversized"]


# ---------------------------------------------------------------- header injection


INJECTIONS = [
    "x\r\nSet-Cookie: admin=1",
    "x\nLocation: https://evil.example/",
    "x; Domain=evil.example",
    'x"; Path=/; HttpOnly',
    "\x00\x7f\u2028\u0085",
]


@pytest.mark.asvs("1.2.1")
@pytest.mark.parametrize("text", INJECTIONS)
def test_no_value_can_inject_a_header_or_an_attribute(make_kit: MakeKit, text: str) -> None:
    kit = make_kit(require_cookies=["/app"])
    browser = CoreBrowser(kit)
    responses = [
        browser.request(lambda s: (s.login(text), s.update({text: text})), path="/" + text),
        browser.request(path="/app/" + text, query=text, cookie=""),  # the gate's redirect
        browser.request(path="/app/" + text, query="sessionkit-cookie-check=1&" + text),
    ]
    for response in responses:
        for name, value in response.headers:
            assert TOKEN.fullmatch(name), name
            assert not re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value), (name, value)
            if name == "Set-Cookie":
                cookie, val, attrs = parse_set_cookie(value)
                assert TOKEN.fullmatch(cookie)
                assert COOKIE_OCTETS.fullmatch(val), value
                assert set(attrs) <= {
                    "max-age",
                    "expires",
                    "path",
                    "secure",
                    "httponly",
                    "samesite",
                }
                assert "domain" not in attrs
            if name == "Location":
                assert re.fullmatch(r"/[\x21-\x7e]*", value), value


# ---------------------------------------------------------------- caches


def _cache_headers(headers: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    vary = [v.strip().lower() for n, vs in headers if n.lower() == "vary" for v in vs.split(",")]
    cache = [v for n, v in headers if n.lower() == "cache-control"]
    return vary, cache


@pytest.mark.asvs("14.2.2", "14.3.2")
def test_a_refresh_alone_is_never_cacheable_cve_2023_30861(make_kit: MakeKit, clock: Any) -> None:
    """Flask CVE-2023-30861: a refreshed cookie went out on a cacheable response."""
    kit = make_kit(visitor_cookie=None)
    browser = CoreBrowser(kit)
    browser.request(lambda s: s.login("alice"))
    clock.advance(kit.touch_interval)
    response = browser.request(app_headers=[("Cache-Control", "public, max-age=600")])
    assert SESSION in response.cookies, "the touch re-issued the cookie"
    vary, cache = _cache_headers(response.headers)
    assert "cookie" in vary
    assert cache == ["no-store"], "the app's public directive is replaced"


ACCESSES: dict[str, Callable[[Any], Any]] = {
    "not at all": lambda s: None,
    "in": lambda s: "cart" in s,
    "get": lambda s: s.get("cart"),
    "len": len,
    "bool": bool,
    "iter": list,
    "keys": lambda s: s.keys(),
    "items": lambda s: list(s.items()),
    "json": json.dumps,
    "user_id": lambda s: s.user_id,
    "id": lambda s: s.id,
    "repr": repr,
    "==": lambda s: s == {},
}


@pytest.mark.asvs("14.2.2")
@pytest.mark.parametrize("access", list(ACCESSES))
def test_any_access_to_a_session_varies_on_cookie_cve_2026_27205(
    make_kit: MakeKit, access: str
) -> None:
    """Flask CVE-2026-27205: some ways of reading the session did not add Vary: Cookie."""
    kit = make_kit(visitor_cookie=None)
    browser = CoreBrowser(kit)
    browser.request(lambda s: s.login("alice"))
    response = browser.request(
        ACCESSES[access], app_headers=[("Cache-Control", "public, max-age=600")]
    )
    vary, _ = _cache_headers(response.headers)
    assert "cookie" in vary


@pytest.mark.asvs("14.2.2", "14.3.2")
@pytest.mark.parametrize(
    "app_headers",
    [
        [],
        [("Cache-Control", "public, max-age=3600")],
        [("Cache-Control", "private"), ("Cache-Control", "max-age=60")],
        [("Vary", "Accept-Encoding")],
        [("cache-control", "s-maxage=600"), ("vary", "Accept")],
    ],
)
def test_every_response_that_sets_a_cookie_is_no_store_and_varies(
    make_kit: MakeKit, app_headers: list[tuple[str, str]]
) -> None:
    kit = make_kit()
    browser = CoreBrowser(kit)
    flows: list[Any] = [
        lambda: browser.request(app_headers=app_headers),  # a new visitor id
        lambda: browser.request(lambda s: s.login("alice"), app_headers=app_headers),
        lambda: browser.request(lambda s: s.rotate(), app_headers=app_headers),
        lambda: CoreBrowser(kit, {SESSION: "garbage"}).request(app_headers=app_headers),
        lambda: browser.request(lambda s: s.invalidate(), app_headers=app_headers),
    ]
    for flow in flows:
        response = flow()
        assert response.cookies
        vary, cache = _cache_headers(response.headers)
        assert cache == ["no-store"], response.headers
        if SESSION in response.cookies:
            assert "cookie" in vary


@pytest.mark.asvs("14.2.2", "14.3.2")
def test_the_gate_and_the_store_outage_answers_are_no_store(make_kit: MakeKit) -> None:
    kit = make_kit(require_cookies=["/app"])
    redirect = CoreBrowser(kit).request(path="/app/x")
    blocked = CoreBrowser(kit).request(path="/app/x", query="sessionkit-cookie-check=1")
    assert redirect.status == 303
    assert blocked.status == 403
    for response in (redirect, blocked):
        assert response.get_all("Cache-Control") == ["no-store"]


def _wsgi_call(middleware: Any, cookie: str | None) -> tuple[str, list[tuple[str, str]]]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "REMOTE_ADDR": "203.0.113.7",
        "wsgi.url_scheme": "https",
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    got: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        got.append((status, headers))
        return lambda data: None

    body = middleware(environ, start_response)
    b"".join(body)
    getattr(body, "close", lambda: None)()
    return got[-1]  # type: ignore[no-any-return]


@pytest.mark.asvs("14.2.2", "14.3.2")
@pytest.mark.parametrize("front", ["asgi", "wsgi"])
def test_front_ends_replace_a_public_directive_and_add_vary(
    make_kit: MakeKit, clock: Any, front: str
) -> None:
    """The same rules through both front ends, with the app's own caching headers."""
    kit = make_kit(visitor_cookie=None)
    writes = {"on": True}

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        scope["session"].get("n")
        if writes["on"]:
            scope["session"]["n"] = 1
        headers = [(b"cache-control", b"public, max-age=600"), (b"vary", b"Accept-Encoding")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"page"})

    def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
        environ["sessionkit.session"].get("n")
        if writes["on"]:
            environ["sessionkit.session"]["n"] = 1
        start_response(
            "200 OK", [("Cache-Control", "public, max-age=600"), ("Vary", "Accept-Encoding")]
        )
        return [b"page"]

    def request(cookie: str | None) -> list[tuple[str, str]]:
        if front == "asgi":
            headers = [(b"cookie", cookie.encode())] if cookie else []
            mw = sessionkit.asgi.SessionMiddleware(asgi_app, kit=kit)
            _, raw, _ = call_asgi(mw, headers=headers)
            return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]
        return _wsgi_call(sessionkit.wsgi.SessionMiddleware(wsgi_app, kit=kit), cookie)[1]

    first = request(None)
    cookie = next(v for n, v in first if n.lower() == "set-cookie").split(";", 1)[0]
    writes["on"] = False
    clock.advance(kit.touch_interval)
    second = request(cookie)  # the app only reads: only the touch sets a cookie
    for headers in (first, second):
        vary, cache = _cache_headers(headers)
        assert cache == ["no-store"], headers
        assert "cookie" in vary, headers
        assert "accept-encoding" in vary, headers
    cookie = next(v for n, v in second if n.lower() == "set-cookie").split(";", 1)[0]
    clock.advance(1)
    read_only = request(cookie)  # reads the cookie, sets nothing: the app's caching stays
    vary, cache = _cache_headers(read_only)
    assert "cookie" in vary
    assert cache == ["public, max-age=600"]
