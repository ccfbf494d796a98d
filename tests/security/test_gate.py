"""The cookies-required gate, attacked: open redirects, loops, reflected input.

The gate is the only part of sessionkit that redirects. Every ``Location`` it sends is
checked the way a browser would follow it (tabs and newlines dropped, backslashes read
as slashes) and must stay on the site; a client that drops cookies must see at most one
redirect, a client that keeps them at most two, and neither a loop.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sksec import CoreBrowser, Response, browser_resolve, call_asgi, same_origin

import sessionkit.asgi
from sessionkit import SessionKit
from sessionkit.gate import CHECK_MARKER

pytestmark = pytest.mark.security

MakeKit = Callable[..., SessionKit]
KEY = sessionkit.generate_key()
CHECK = f"{CHECK_MARKER}=1"

HOSTILE_PATHS = [
    "//evil.example",
    "//evil.example/app",
    "///evil.example/../app",
    "/\\evil.example/../app",
    "/\\/evil.example",
    "/app/..//evil.example/app",
    "/app/../\\evil.example",
    "/\t/evil.example/../app",
    "/app/\r\nLocation: https://evil.example/",
    "/app/%2F%2Fevil.example",
    "/app/\x00\x1b[31m",
    "/app/https://evil.example",
    "/app/javascript:alert(1)",
    "/app/\u2215\u2215evil.example",
    "/app/\uff0f\uff0fevil.example",
    "/app/?#@evil.example",
    "/app/ @evil.example",
    "/app/" + "a/" * 2000,
]
HOSTILE_QUERIES = [
    "",
    "next=//evil.example",
    "next=https://evil.example/&a=1",
    "a=\r\nSet-Cookie: x=1",
    "a=%0d%0aLocation:%20//evil",
    "#frag",
    f"{CHECK_MARKER}=//evil.example",
    "@evil.example",
]


def _kits(make_kit: MakeKit) -> list[SessionKit]:
    """The application under /app, and a whole site that needs cookies."""
    return [make_kit(require_cookies=["/app"]), make_kit(require_cookies=["/"])]


def assert_safe_location(location: str) -> None:
    assert location.startswith("/"), location
    assert not location.startswith(("//", "/\\")), location
    assert all(0x21 <= ord(c) <= 0x7E for c in location), location
    parts = urlsplit(location)
    assert parts.scheme == "", location
    assert parts.netloc == "", location
    assert same_origin(location), (location, browser_resolve(location))


@pytest.mark.asvs("3.7.2", "1.2.2", "1.2.1")
@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_no_request_target_redirects_off_site(make_kit: MakeKit, path: str) -> None:
    for kit in _kits(make_kit):
        for query in HOSTILE_QUERIES:
            for jar in ({}, {"__Host-cookie-check": "1"}):  # first and second gate redirect
                marked = f"{query}&{CHECK}" if jar else query
                response = CoreBrowser(kit, dict(jar)).request(path=path, query=marked)
                if response.status == 303:
                    assert_safe_location(response.get("Location") or "")


@pytest.mark.asvs("3.7.2", "1.2.2")
@pytest.mark.parametrize("path", HOSTILE_PATHS[:12])
def test_no_raw_request_target_redirects_off_site_through_asgi(
    make_kit: MakeKit, path: str
) -> None:
    kit = make_kit(require_cookies=["/"])

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app is never called while the gate answers")

    middleware = sessionkit.asgi.SessionMiddleware(app, kit=kit)
    raw = path.encode("utf-8", "surrogateescape")
    for query in (b"", b"next=//evil.example"):
        status, headers, _ = call_asgi(middleware, path=path, raw_path=raw, query=query)
        assert status == 303
        location = dict(headers)[b"location"].decode("latin-1")
        assert_safe_location(location)


class GateClient:
    """A browser that follows the gate's redirects; ``keeps_cookies`` or drops them all."""

    def __init__(self, kit: SessionKit, keeps_cookies: bool) -> None:
        self.browser = CoreBrowser(kit)
        self.keeps = keeps_cookies
        self.app_calls = 0
        self.last_path = ""

    def get(self, path: str, query: str = "", method: str = "GET") -> tuple[Response, int]:
        locations: list[str] = []
        while True:
            if not self.keeps:
                self.browser.jar.clear()

            def app(session: Any) -> None:
                self.app_calls += 1

            self.last_path = path
            response = self.browser.request(app, path=path, query=query, method=method)
            if response.status != 303:
                return response, len(locations)
            location = response.get("Location") or ""
            assert_safe_location(location)
            assert location not in locations, f"a redirect loop: {[*locations, location]}"
            locations.append(location)
            assert len(locations) <= 2, locations
            target = urlsplit(browser_resolve(location))
            path, query = unquote(target.path), target.query  # a server decodes the path


@pytest.mark.asvs("SK-GATE-LOOP")
@pytest.mark.parametrize("query", ["", "a=1", CHECK, f"a=1&{CHECK}&b=2"])
def test_a_cookieless_client_gets_at_most_one_redirect_then_the_page(
    make_kit: MakeKit, query: str
) -> None:
    kit = make_kit(require_cookies=["/app"])
    client = GateClient(kit, keeps_cookies=False)
    response, redirects = client.get("/app/inbox", query)
    assert response.status == 403
    assert redirects <= 1
    assert client.app_calls == 0, "the app is never called while blocked"
    assert response.get("Cache-Control") == "no-store"


@pytest.mark.asvs("SK-GATE-LOOP")
@pytest.mark.parametrize("query", ["", "a=1", "a=1&b=2"])
def test_a_client_with_cookies_reaches_the_clean_url(make_kit: MakeKit, query: str) -> None:
    kit = make_kit(require_cookies=["/app"])
    client = GateClient(kit, keeps_cookies=True)
    # a link that already carries the marker proves nothing: blocked, never a loop
    marked, redirects = client.get("/app/inbox", f"{query}&{CHECK}" if query else CHECK)
    assert (marked.status, redirects) == (403, 0)
    response, redirects = client.get("/app/inbox", query)
    assert response.status == 200
    assert redirects <= 2
    assert client.app_calls == 1
    # from now on, no redirect at all
    again, redirects = client.get("/app/other")
    assert (again.status, redirects) == (200, 0)


@pytest.mark.asvs("SK-GATE-LOOP", "16.5.1")
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD"])
def test_other_methods_are_blocked_at_once(make_kit: MakeKit, method: str) -> None:
    kit = make_kit(require_cookies=["/app"])
    client = GateClient(kit, keeps_cookies=False)
    response, redirects = client.get("/app/inbox", method=method)
    assert response.status == 403
    assert redirects == (1 if method == "HEAD" else 0), "HEAD is safe: one test redirect"
    assert client.app_calls == 0
    if method == "HEAD":
        assert response.body == b""


@pytest.mark.asvs("16.5.1", "1.2.1")
def test_the_block_page_reflects_nothing_of_the_request(make_kit: MakeKit) -> None:
    kit = make_kit(require_cookies=["/app"])
    needle = "<script>alert(1)</script>"
    for accept in ("text/html", "application/json"):
        response = CoreBrowser(kit).request(
            path="/app/" + needle, query=f"{CHECK}&q={needle}", accept=accept
        )
        assert response.status == 403
        assert b"<script>" not in response.body
        assert b"alert" not in response.body


PATHS = st.text(max_size=60).map(lambda t: "/app/" + t) | st.text(max_size=60).map(
    lambda t: "/" + t
)


@pytest.mark.asvs("3.7.2", "1.2.2", "SK-GATE-LOOP", "SK-HOSTILE-INPUT")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=PATHS, query=st.text(max_size=40), keeps=st.booleans(), whole_site=st.booleans())
def test_any_path_and_query_terminate_on_site(
    path: str, query: str, keeps: bool, whole_site: bool
) -> None:
    kit = SessionKit(secret_keys=[KEY], require_cookies=["/"] if whole_site else ["/app"])
    client = GateClient(kit, keeps_cookies=keeps)
    response, redirects = client.get(path, query)
    if keeps:
        assert response.status == 200
        assert client.app_calls == 1
    elif response.status == 200:
        # a client without cookies reaches the app only on a public path (a browser
        # resolves "/app/.." to "/" before it asks)
        assert not kit.gate.protects(client.last_path), client.last_path
    else:
        assert response.status == 403
        assert client.app_calls == 0
    if not kit.gate.protects(path):
        assert (response.status, redirects) == (200, 0)


@pytest.mark.asvs("SK-GATE-LOOP")
@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from(["", "/", "//", "/./", "/x/../", "/.//"]),
    rest=st.text("/.ab", max_size=12),
)
def test_dot_and_slash_spellings_cannot_skip_the_gate(prefix: str, rest: str) -> None:
    """A path that a router would normalise into /app is gated like /app itself."""
    kit = SessionKit(secret_keys=[KEY], require_cookies=["/app"])
    path = prefix + "app" + rest
    normal = posixpath.normpath("/" + path.lstrip("/"))
    if normal == "/app" or normal.startswith("/app/"):
        assert kit.gate.protects(path), path


@pytest.mark.asvs("SK-HOSTILE-INPUT", "16.5.3")
def test_a_path_holding_lone_surrogates_gets_the_gate_not_an_exception(
    make_kit: MakeKit,
) -> None:
    """Found by this suite (the fuzz target): the gate used to raise UnicodeEncodeError.

    uvicorn and h11 never hand such a path, but an ASGI server that decodes raw bytes
    with surrogateescape would.
    """
    kit = make_kit(require_cookies=["/app"])
    for path in ("/app/\udcff", "/app/\ud800x"):
        response = kit.open(None, path=path, query="a=\udcff").early
        assert response is not None
        assert response.status == 303
        assert_safe_location(dict(response.headers)["Location"])
