"""The cookies-required gate, decided in the core."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionkit import ConfigurationError, SessionKit
from sessionkit.gate import (
    CHECK_MARKER,
    EarlyResponse,
    is_loopback_host,
    is_same_origin_path,
    safe_location,
    unavailable,
)
from support import HOSTILE_TARGETS

MakeKit = Callable[..., SessionKit]
CHECK = f"{CHECK_MARKER}=1"
TEST_COOKIE = "__Host-cookie-check=1"


@pytest.fixture
def kit(make_kit: MakeKit) -> SessionKit:
    return make_kit(require_cookies=["/app", "/account/"])


def early(kit: SessionKit, cookie: str | None = None, **request: Any) -> Any:
    return kit.open(cookie, **request).early


@pytest.mark.parametrize(
    "path", ["/", "/about", "/apple", "/ap", "/static/app", "/APP", "/accounts", "/Xapp"]
)
def test_public_paths_pass_untouched(kit: SessionKit, path: str) -> None:
    ex = kit.open(None, path=path, method="POST")
    assert ex.early is None


@pytest.mark.parametrize(
    "path",
    ["/app", "/app/", "/app/x/y", "//app", "/./app", "/x/../app/", "/account", "/account/a"],
)
def test_protected_paths_redirect_once_with_a_test_cookie(kit: SessionKit, path: str) -> None:
    response = early(kit, path=path, query="a=1&b=%20")
    assert response.status == 303
    headers = dict(response.headers)
    location = headers["Location"]
    assert location.startswith("/")
    assert not location.startswith("//")
    assert location.endswith(f"?a=1&b=%20&{CHECK}")
    assert headers["Set-Cookie"].startswith(TEST_COOKIE + "; Max-Age=300; Path=/; Secure")
    assert headers["Cache-Control"] == "no-store"


def test_check_with_test_cookie_returns_to_the_clean_url(kit: SessionKit) -> None:
    response = early(kit, TEST_COOKIE, path="/app/page", query=f"a=1&{CHECK}&b=2")
    assert response.status == 303
    assert dict(response.headers)["Location"] == "/app/page?a=1&b=2"
    assert "Set-Cookie" not in dict(response.headers)


def test_check_without_test_cookie_blocks_never_loops(kit: SessionKit) -> None:
    response = early(kit, path="/app", query=CHECK, accept="text/html")
    assert response.status == 403
    headers = dict(response.headers)
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    page = response.body.decode()
    assert "<h1>Cookies are required</h1>" in page
    assert '<html lang="en">' in page
    assert '<a href="/">' in page
    assert int(headers["Content-Length"]) == len(response.body)


@pytest.mark.parametrize("privacy", [{}, {"sec_gpc": "1"}, {"dnt": "1"}])
def test_a_reload_after_enabling_cookies_is_let_in(
    kit: SessionKit, privacy: dict[str, str]
) -> None:
    # The page says "then reload this page": the 403 sets the test cookie again, so the
    # reload, now carrying it, passes (with Global Privacy Control or DNT too).
    blocked = early(kit, path="/app", query=CHECK, accept="text/html")
    assert blocked.status == 403
    cookie = dict(blocked.headers)["Set-Cookie"].split(";", 1)[0]
    assert cookie == TEST_COOKIE
    reload = kit.open(cookie, path="/app", query=CHECK, **privacy)
    assert reload.early is not None
    assert reload.early.status == 303
    assert dict(reload.early.headers)["Location"] == "/app"
    assert kit.open(cookie, path="/app", **privacy).early is None


@pytest.mark.parametrize("home", ["/", "/welcome", "/a/b?c=d", "/%5Cx"])
def test_same_origin_homes_are_accepted(make_kit: MakeKit, home: str) -> None:
    assert make_kit(require_cookies=["/app"], public_home=home).gate.home == home


def test_marker_alone_is_no_proof(kit: SessionKit) -> None:
    for query in (CHECK, f"{CHECK_MARKER}=0", f"x=1&{CHECK}", f"{CHECK}&{CHECK}"):
        assert early(kit, path="/app", query=query).status == 403


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_unsafe_methods_are_blocked_directly(kit: SessionKit, method: str) -> None:
    assert early(kit, method=method, path="/app").status == 403


def test_head_gets_the_block_without_a_body(kit: SessionKit) -> None:
    response = early(kit, method="HEAD", path="/app", query=CHECK)
    assert response.status == 403
    assert response.body == b""


def test_any_of_our_cookies_lets_the_request_in(kit: SessionKit) -> None:
    ex = kit.open(None)
    ex.session["a"] = 1
    cookies = [v.split(";")[0] for n, v in ex.response_headers([]) if n == "Set-Cookie"]
    for cookie in [*cookies, TEST_COOKIE, "__Host-session=stale-garbage"]:
        assert early(kit, cookie, path="/app") is None
        assert early(kit, cookie, method="POST", path="/app") is None


def test_stale_cookie_is_expired_not_redirected(kit: SessionKit) -> None:
    ex = kit.open("__Host-session=stale-garbage", path="/app")
    assert ex.early is None
    assert any("Max-Age=0" in v for _, v in ex.response_headers([]))


def test_json_for_clients_that_do_not_accept_html(kit: SessionKit) -> None:
    response = early(kit, method="POST", path="/app", accept="application/json")
    assert dict(response.headers)["Content-Type"] == "application/json"
    assert json.loads(response.body)["error"] == "cookies_required"
    for accept in (None, "", "*/*", "text/html,application/xhtml+xml;q=0.9", "TEXT/HTML"):
        response = early(kit, method="POST", path="/app", accept=accept)
        assert response.body.startswith(b"<!doctype html>"), accept


def test_block_responses_are_customisable(make_kit: MakeKit) -> None:
    kit = make_kit(
        require_cookies=["/app"],
        public_home="/welcome",
        cookies_required_page="<p>No cookies, no app. <a href='$home'>Home</a></p>",
        cookies_required_json=lambda path: {"needs": "cookies", "path": path},
    )
    page = early(kit, method="POST", path="/app/x").body.decode()
    assert page == "<p>No cookies, no app. <a href='/welcome'>Home</a></p>"
    doc = json.loads(early(kit, method="POST", path="/app/x", accept="application/json").body)
    assert doc == {"needs": "cookies", "path": "/app/x"}
    kit = make_kit(require_cookies=["/app"], cookies_required_page=lambda path: f"<p>{len(path)}")
    assert early(kit, method="POST", path="/app").body == b"<p>4"


def test_root_prefix_protects_everything(make_kit: MakeKit) -> None:
    assert early(make_kit(require_cookies=["/"]), path="/anything").status == 303


def test_no_prefixes_means_no_gate(make_kit: MakeKit) -> None:
    assert early(make_kit(), method="POST", path="/app") is None


@pytest.mark.parametrize(
    ("settings", "fix"),
    [
        ({"require_cookies": "/app"}, "list of path prefixes"),
        ({"require_cookies": ["app"]}, "starting with '/'"),
        ({"require_cookies": ["/app"], "public_home": "//evil.example"}, "path on this site"),
        ({"require_cookies": ["/app"], "public_home": "https://evil.example/"}, "path on this"),
        ({"require_cookies": ["/app"], "public_home": "/\\evil.example"}, "path on this site"),
        ({"require_cookies": ["/app"], "public_home": "/\t/evil.example"}, "path on this site"),
        ({"require_cookies": ["/app"], "public_home": "/home\\x"}, "path on this site"),
        ({"require_cookies": ["/app"], "public_home": " /"}, "path on this site"),
        ({"require_cookies": ["/app"], "public_home": "/a b"}, "path on this site"),
    ],
)
def test_gate_misconfiguration_fails_at_start_up(
    make_kit: MakeKit, settings: dict[str, Any], fix: str
) -> None:
    with pytest.raises(ConfigurationError, match=fix):
        make_kit(**settings)


@pytest.mark.parametrize(("path", "query"), HOSTILE_TARGETS)
def test_location_is_always_a_same_origin_relative_path(path: str, query: str) -> None:
    location = safe_location(path, query)
    assert_same_origin(location)


def test_hostile_targets_through_the_gate(make_kit: MakeKit) -> None:
    kit = make_kit(require_cookies=["/"])
    for path, query in HOSTILE_TARGETS:
        first = early(kit, path=path, query=query)
        assert first.status == 303
        assert_same_origin(dict(first.headers)["Location"])
        back = early(kit, TEST_COOKIE, path=path, query=query + "&" + CHECK)
        assert back.status == 303
        assert_same_origin(dict(back.headers)["Location"])


@given(st.text(), st.text())
def test_any_request_target_gives_a_same_origin_location(path: str, query: str) -> None:
    assert_same_origin(safe_location(path, query))


def assert_same_origin(location: str) -> None:
    assert location.startswith("/"), location
    assert not location.startswith("//"), location
    assert all(0x21 <= ord(c) <= 0x7E for c in location), location
    assert "\\" not in location, location
    resolved = urlsplit(urljoin("https://site.example/some/page", location))
    assert (resolved.scheme, resolved.netloc) == ("https", "site.example"), location


# -- The responses in full ---------------------------------------------------------------


def test_the_redirect_in_full(kit: SessionKit) -> None:
    response = early(kit, path="/app/page", query="a=1")
    assert response.status_line == "303 See Other"
    assert response.headers == [
        ("Location", "/app/page?a=1&sessionkit-cookie-check=1"),
        ("Cache-Control", "no-store"),
        ("Content-Length", "0"),
        (
            "Set-Cookie",
            "__Host-cookie-check=1; Max-Age=300; Path=/; Secure; HttpOnly; SameSite=Lax",
        ),
    ]
    assert response.body == b""


def test_head_without_cookies_is_redirected_like_get(kit: SessionKit) -> None:
    response = early(kit, method="HEAD", path="/app")
    assert response.status == 303
    assert dict(response.headers)["Location"] == "/app?sessionkit-cookie-check=1"


def test_the_json_block_in_full(kit: SessionKit) -> None:
    response = early(kit, method="POST", path="/app", accept="application/json")
    assert response.status_line == "403 Forbidden"
    assert json.loads(response.body) == {
        "error": "cookies_required",
        "detail": "This part of the site needs cookies; enable them and retry.",
        "home": "/",
    }
    assert response.headers == [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(response.body))),
        ("Cache-Control", "no-store"),
        ("Vary", "Accept, Cookie"),
        ("Set-Cookie", TEST_COOKIE + "; Max-Age=300; Path=/; Secure; HttpOnly; SameSite=Lax"),
    ]


@pytest.mark.parametrize(
    "accept", ["text/html;q=0.9", "application/xhtml+xml", "text/*", "image/png, text/*;q=0.1"]
)
def test_html_for_every_accept_that_takes_it(kit: SessionKit, accept: str) -> None:
    response = early(kit, method="POST", path="/app", accept=accept)
    assert dict(response.headers)["Content-Type"] == "text/html; charset=utf-8"


def test_store_down_answers_503_with_a_retry_after_in_html_or_json() -> None:
    page = unavailable("text/html")
    assert page.status_line == "503 Service Unavailable"
    assert page.body.startswith(b"<!doctype html>")
    assert b"<h1>Temporarily unavailable</h1>" in page.body
    assert page.headers == [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(page.body))),
        ("Cache-Control", "no-store"),
        ("Vary", "Accept, Cookie"),
        ("Retry-After", "5"),
    ]
    doc = unavailable("application/json")
    assert doc.status == 503
    assert json.loads(doc.body) == {
        "error": "session_store_unavailable",
        "detail": "Sessions cannot be checked right now; retry in a few seconds.",
    }
    assert dict(doc.headers)["Content-Type"] == "application/json"
    assert dict(doc.headers)["Retry-After"] == "5"


def test_an_early_response_cannot_be_changed_on_its_way_out(kit: SessionKit) -> None:
    response = early(kit, path="/app")
    assert isinstance(response, EarlyResponse)
    with pytest.raises(dataclasses.FrozenInstanceError):
        response.status = 200  # type: ignore[misc]


def test_a_prefix_ending_in_any_letter_is_kept_whole(make_kit: MakeKit) -> None:
    kit = make_kit(require_cookies=["/INBOX/"])
    assert kit.gate.protects("/INBOX")
    assert kit.gate.protects("/INBOX/a")
    assert kit.gate.protects("/INBO") is False


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:8000", True),
        ("app.localhost", True),
        ("127.0.0.1:5000", True),
        ("127.1.2.3", True),
        ("[::1]:8000", True),
        ("[::1]", True),
        ("", True),
        (None, True),
        ("testserver", False),
        ("example.com:80", False),
        ("10.0.0.1", False),
        ("[2001:db8::1]:443", False),
        ("localhost.evil.example", False),
        # spelled as clients may send it: case, padding, a trailing dot, bare IPv6
        ("LocalHost:8000", True),
        (" localhost ", True),
        ("localhost.:8000", True),
        ("127.0.0.1.", True),
        ("::1", True),
        ("[::1", True),
        ("[::2]:8000", False),
        ("[127.0.0.1]:80", True),
    ],
)
def test_loopback_hosts(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_a_kit_has_a_gate_only_when_it_protects_paths(make_kit: MakeKit) -> None:
    unguarded = make_kit().gate
    assert not unguarded
    assert unguarded.protects("/") is False
    assert unguarded.protects("/app") is False
    assert make_kit(require_cookies=["/app"]).gate


@pytest.mark.parametrize(
    ("target", "same_origin"),
    [
        ("/", True),
        ("/welcome", True),
        ("/a/b?c=d#e", True),
        ("/%5Cx", True),
        ("//evil.example", False),
        ("/\\evil.example", False),
        ("/home\\x", False),
        ("/\t/evil.example", False),
        ("/a b", False),
        ("/\x00", False),
        ("evil", False),
        ("", False),
        ("https://evil.example/", False),
    ],
)
def test_same_origin_paths(target: str, same_origin: bool) -> None:
    assert is_same_origin_path(target) is same_origin


def _insecure(kit: SessionKit, **request: Any) -> Any:
    """The gate's answer to a cookieless request over plain http to a real host."""
    request.setdefault("path", "/app")
    ex = kit.open(None, scheme="http", host="shop.example:8080", query=CHECK, **request)
    return ex.early


def test_plain_http_to_a_real_host_gets_the_https_page_in_full(kit: SessionKit) -> None:
    response = _insecure(kit, accept="text/html")
    assert response.status_line == "403 Forbidden"
    headers = dict(response.headers)
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    page = response.body.decode()
    assert page.startswith('<!doctype html>\n<html lang="en">')
    assert "<title>This site needs https</title>" in page
    assert "<h1>This site needs https</h1>" in page
    assert '<a href="/">go to the home page</a>' in page
    assert "$home" not in page


def test_plain_http_to_a_real_host_in_json_and_head(kit: SessionKit) -> None:
    response = _insecure(kit, accept="application/json")
    assert dict(response.headers)["Content-Type"] == "application/json"
    assert json.loads(response.body) == {
        "error": "https_required",
        "detail": "This site's cookies are Secure and this request came over plain http: "
        "use the https address.",
        "home": "/",
    }
    head = _insecure(kit, method="HEAD", accept="text/html")
    assert head.status == 403
    assert head.body == b""
    assert int(dict(head.headers)["Content-Length"]) > 0


def test_the_https_page_links_the_configured_home(make_kit: MakeKit) -> None:
    kit = make_kit(require_cookies=["/app"], public_home="/welcome?a=1&b=2")
    page = _insecure(kit, accept="text/html").body.decode()
    assert '<a href="/welcome?a=1&amp;b=2">' in page


def test_over_https_or_to_loopback_the_cookies_page_stays(kit: SessionKit) -> None:
    for scheme, host in (("https", "shop.example"), ("http", "localhost:8000"), (None, None)):
        ex = kit.open(None, path="/app", query=CHECK, accept="text/html", scheme=scheme, host=host)
        assert ex.early is not None
        assert b"Cookies are required" in ex.early.body


def test_a_cors_preflight_passes_and_a_bare_options_does_not(kit: SessionKit) -> None:
    preflight = kit.open(
        None, method="OPTIONS", path="/app/api", access_control_request_method="POST"
    )
    assert preflight.early is None
    bare = kit.open(None, method="OPTIONS", path="/app/api")
    assert bare.early is not None
    assert bare.early.status == 403
    posted = kit.open(None, method="POST", path="/app/api", access_control_request_method="POST")
    assert posted.early is not None, "only OPTIONS can be a preflight"
