"""The forgery decisions of the core: origin checks, the policy's validation, tokens."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sessionkit
from sessionkit.forgery import (
    DEFAULT_REFUSED_PAGE,
    Forgery,
    ForgeryPolicy,
    Provenance,
    check_origin,
    check_websocket,
    csrf_exempt,
    form_token,
    marked_exempt,
    origin_of,
    reads_form,
    request_origin,
    token_required,
    token_scope,
)
from sessionkit.keys import KeyRing

KitFactory = Callable[..., sessionkit.SessionKit]
APP = "https://app.example"
HOST = "app.example"
FAMILY = "f" * 22
OTHER_FAMILY = "g" * 22

DEFAULT = ForgeryPolicy()


def here(**headers: Any) -> Provenance:
    """A request to https://app.example with the given origin headers."""
    headers.setdefault("host", HOST)
    return Provenance(**headers)


# --------------------------------------------------------------------------- the policy


@pytest.mark.parametrize(
    "entry",
    [
        "app.example",
        "https://app.example/path",
        "https://app.example/?q=1",
        "https://app.example#top",
        "https://user@app.example",
        "https://*.example",
        "ftp://app.example",
        "null",
        "",
        "https://",
        "https://app.example:99999",
        42,
    ],
)
def test_an_entry_that_is_not_an_origin_is_refused_naming_the_fix(entry: Any) -> None:
    with pytest.raises(ValueError, match=r"scheme://host\[:port\]"):
        ForgeryPolicy(trusted_origins=[entry])


def test_a_single_string_is_not_taken_for_a_list() -> None:
    with pytest.raises(sessionkit.ConfigurationError, match="list of origins"):
        ForgeryPolicy(trusted_origins="https://app.example")
    with pytest.raises(sessionkit.ConfigurationError, match="list of path prefixes"):
        ForgeryPolicy(exempt="/hooks")


def test_trusted_origins_are_normalised() -> None:
    policy = ForgeryPolicy(
        trusted_origins=["HTTPS://Admin.Example:443", "http://localhost:8000/", "http://[::1]"]
    )
    assert policy.trusted_origins == {
        "https://admin.example",
        "http://localhost:8000",
        "http://[::1]",
    }


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"exempt": ["hooks"]}, "must be a path starting with '/'"),
        ({"token_paths": ["app"]}, "must be a path starting with '/'"),
        ({"safe_methods": ["GET", "post"]}, "exempt the paths"),
        ({"safe_methods": "GET"}, "list of methods"),
        ({"token_header": "X CSRF"}, "not a header name"),
        ({"token_field": ""}, "1 to 64 letters"),
        ({"token_field": "a b"}, "1 to 64 letters"),
        ({"enabled": "yes"}, "True or False"),
        ({"refused_page": 3}, "HTML template"),
        ({"refused_json": "x"}, "callable"),
    ],
)
def test_bad_settings_fail_at_construction(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(sessionkit.ConfigurationError, match=message):
        ForgeryPolicy(**settings)


def test_the_policy_is_frozen_and_comparable() -> None:
    policy = ForgeryPolicy(exempt=["/hooks/"], trusted_origins=["https://a.example"])
    assert policy == ForgeryPolicy(exempt=["/hooks"], trusted_origins=["https://a.example/"])
    assert policy.exempt == ("/hooks",)
    with pytest.raises(AttributeError):
        policy.enabled = False  # type: ignore[misc]


def test_the_kit_takes_the_settings_or_a_policy_but_not_both(make_kit: KitFactory) -> None:
    kit = make_kit(trusted_origins=["https://a.example"], csrf_exempt=["/hooks"])
    assert kit.forgery.policy == ForgeryPolicy(
        trusted_origins=["https://a.example"], exempt=["/hooks"]
    )
    policy = ForgeryPolicy(token_paths=["/"])
    assert make_kit(forgery=policy).forgery.policy is policy
    with pytest.raises(sessionkit.ConfigurationError, match="given twice"):
        make_kit(forgery=policy, csrf_exempt=["/hooks"])
    with pytest.raises(sessionkit.ConfigurationError, match="ForgeryPolicy"):
        make_kit(forgery={"enabled": False})
    with pytest.raises(sessionkit.ConfigurationError, match="not an origin"):
        make_kit(trusted_origins=["admin.example"])


def test_protection_is_on_by_default(make_kit: KitFactory) -> None:
    assert make_kit().forgery.policy.enabled
    assert DEFAULT.safe_methods == {"GET", "HEAD", "OPTIONS", "TRACE"}


# --------------------------------------------------------------------------- origins


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://app.example", "https://app.example"),
        ("https://APP.example:443/a/b?c#d", "https://app.example"),
        ("http://app.example:80", "http://app.example"),
        ("http://app.example:8080", "http://app.example:8080"),
        ("https://app.example:80", "https://app.example:80"),
        ("wss://app.example", "https://app.example"),
        ("ws://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://[::1]:8000/x", "http://[::1]:8000"),
        ("https://user:pw@app.example/", "https://app.example"),
        ("null", None),
        ("/relative", None),
        ("", None),
        ("http://[::1", None),
        ("http://app.example:port", None),
    ],
)
def test_origin_of(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin


def test_the_request_origin_follows_trusted_proxies_only() -> None:
    behind = Provenance(
        host="10.0.0.5:8000",
        scheme="http",
        forwarded_host="app.example",
        forwarded_proto="https",
    )
    assert request_origin(behind) == "http://10.0.0.5:8000"
    assert request_origin(behind, trusted_hops=1) == APP
    two = behind._replace(forwarded_proto="http, https", forwarded_host="evil.example, app.example")
    assert request_origin(two, trusted_hops=1) == APP
    assert request_origin(behind, trusted_hops=2) == "http://10.0.0.5:8000"  # header too short
    assert request_origin(Provenance(host=None)) is None
    assert request_origin(Provenance(host="evil.example/@app.example")) is None


# The documented table (docs/forgery.md): unsafe method, request to https://app.example.
CASES = [
    # Sec-Fetch-Site decides when it is there (every current browser).
    ({"fetch_site": "same-origin", "origin": APP}, None),
    ({"fetch_site": "none"}, None),
    ({"fetch_site": "same-origin", "origin": "https://evil.example"}, None),
    ({"fetch_site": "same-site", "origin": "https://sub.app.example"}, "cross_site"),
    ({"fetch_site": "cross-site", "origin": "https://evil.example"}, "cross_site"),
    ({"fetch_site": "cross-site"}, "cross_site"),
    ({"fetch_site": "Cross-Site ", "origin": APP}, "cross_site"),
    ({"fetch_site": "bogus", "origin": APP}, "cross_site"),
    ({"fetch_site": "cross-site", "origin": "https://admin.example"}, None),
    # Without it (older browsers): Origin against the request's own origin.
    ({"origin": APP}, None),
    ({"origin": "https://app.example:443"}, None),
    ({"origin": "https://evil.example"}, "origin_mismatch"),
    ({"origin": "http://app.example"}, "origin_mismatch"),
    ({"origin": "https://app.example:8443"}, "origin_mismatch"),
    ({"origin": "https://sub.app.example"}, "origin_mismatch"),
    ({"origin": "null"}, "origin_mismatch"),
    ({"origin": "garbage"}, "origin_mismatch"),
    ({"origin": "https://admin.example"}, None),
    # Without Origin either: the Referer's origin.
    ({"referer": "https://app.example/form"}, None),
    ({"referer": "https://evil.example/attack"}, "origin_mismatch"),
    ({"referer": "not a url"}, "origin_mismatch"),
    ({"referer": "https://admin.example/page"}, None),
    # Neither: not a browser, on to the next layer.
    ({}, None),
]


@pytest.mark.parametrize(("headers", "reason"), CASES)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "PROPFIND"])
def test_unsafe_requests_are_judged_by_their_origin(
    method: str, headers: dict[str, str], reason: str | None
) -> None:
    policy = ForgeryPolicy(trusted_origins=["https://admin.example"])
    assert check_origin(policy, method, "/transfer", here(**headers)) == reason


@pytest.mark.parametrize(("headers", "reason"), CASES)
@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE"])
def test_safe_methods_are_never_refused(
    method: str, headers: dict[str, str], reason: str | None
) -> None:
    assert check_origin(DEFAULT, method, "/transfer", here(**headers)) is None


def test_exempt_paths_and_a_disabled_policy_pass() -> None:
    evil = here(fetch_site="cross-site", origin="https://evil.example")
    policy = ForgeryPolicy(exempt=["/hooks"])
    assert check_origin(policy, "POST", "/hooks", evil) is None
    assert check_origin(policy, "POST", "/hooks/pay", evil) is None
    assert check_origin(policy, "POST", "/hooksmith", evil) == "cross_site"
    assert check_origin(policy, "POST", "/hooks/../account", evil) == "cross_site"
    assert check_origin(policy, "POST", "//hooks/pay", evil) == "cross_site"
    assert check_origin(ForgeryPolicy(enabled=False), "POST", "/", evil) is None


def test_the_own_origin_behind_a_proxy_comes_from_trusted_hops() -> None:
    behind = Provenance(origin=APP, host="10.0.0.5:8000", scheme="http", forwarded_proto="https")
    assert check_origin(DEFAULT, "POST", "/", behind) == "origin_mismatch"
    assert check_origin(DEFAULT, "POST", "/", behind._replace(forwarded_host=HOST), 1) is None


def test_a_websocket_from_another_origin_is_refused() -> None:
    policy = ForgeryPolicy(trusted_origins=["https://admin.example"])
    ws = here(scheme="wss")
    assert check_websocket(policy, "/ws", ws._replace(origin=APP)) is None
    assert check_websocket(policy, "/ws", ws._replace(origin="https://admin.example")) is None
    assert check_websocket(policy, "/ws", ws) is None  # no Origin: not a browser
    for origin in ("https://evil.example", "null", "http://app.example"):
        assert check_websocket(policy, "/ws", ws._replace(origin=origin)) == "origin_mismatch"
    exempt = ForgeryPolicy(exempt=["/ws"])
    assert check_websocket(exempt, "/ws", ws._replace(origin="https://evil.example")) is None


@given(
    st.sampled_from(["POST", "GET", "WEBSOCKET", "DELETE"]),
    st.text(max_size=40),
    st.builds(
        Provenance,
        origin=st.none() | st.text(max_size=60),
        referer=st.none() | st.text(max_size=60),
        fetch_site=st.none() | st.text(max_size=20),
        host=st.none() | st.text(max_size=40),
        scheme=st.sampled_from(["http", "https", "ws", "wss", ""]),
        forwarded_host=st.none() | st.text(max_size=40),
        forwarded_proto=st.none() | st.text(max_size=10),
    ),
    st.integers(0, 3),
)
def test_any_headers_give_a_decision_never_an_exception(
    method: str, path: str, provenance: Provenance, hops: int
) -> None:
    policy = ForgeryPolicy(exempt=["/hooks"], token_paths=["/app"])
    assert check_origin(policy, method, "/" + path, provenance, hops) in (
        None,
        "cross_site",
        "origin_mismatch",
    )
    assert check_websocket(policy, "/" + path, provenance, hops) in (None, "origin_mismatch")


# --------------------------------------------------------------------------- tokens


def test_token_paths_and_scopes() -> None:
    policy = ForgeryPolicy(token_paths=["/app", "/app/admin"], exempt=["/app/hooks"])
    assert token_scope(policy, "/app/settings") == "/app"
    assert token_scope(policy, "/app/admin/users") == "/app/admin"
    assert token_scope(policy, "/app/x/../admin/users") == "/app/admin"
    assert token_scope(policy, "/public") is None
    assert token_required(policy, "POST", "/app/settings")
    assert not token_required(policy, "GET", "/app/settings")
    assert not token_required(policy, "POST", "/public")
    assert not token_required(policy, "POST", "/app/hooks/pay")
    assert token_scope(ForgeryPolicy(token_paths=["/"]), "/anything") == ""
    assert token_scope(DEFAULT, "/anything") is None


def _forgery(*keys: str) -> Forgery:
    return Forgery(ForgeryPolicy(token_paths=["/"]), KeyRing(keys or [sessionkit.generate_key()]))


def test_a_token_verifies_for_its_session_generation_and_scope() -> None:
    forgery = _forgery()
    token = forgery.mint(FAMILY, 3, "/app")
    assert forgery.verify(token, FAMILY, 3, "/app") is None
    assert forgery.verify(f"  {token} ", FAMILY, 3, "/app") is None
    assert forgery.verify(token, OTHER_FAMILY, 3, "/app") == "token_invalid"
    assert forgery.verify(token, FAMILY, 4, "/app") == "token_invalid"
    assert forgery.verify(token, FAMILY, 3, "/app/admin") == "token_invalid"
    assert forgery.verify(token, FAMILY, 3, "") == "token_invalid"
    site_wide = forgery.mint(FAMILY, 3, "")
    assert forgery.verify(site_wide, FAMILY, 3, "/app") is None
    assert forgery.verify(site_wide, FAMILY, 3, "") is None
    assert forgery.verify(None, FAMILY, 3, "/app") == "token_missing"
    assert forgery.verify("", FAMILY, 3, "/app") == "token_missing"
    for bad in ("x", token[:-1], token + "A", "!" * len(token), "é" * len(token)):
        assert forgery.verify(bad, FAMILY, 3, "/app") == "token_invalid"


def test_another_key_ring_refuses_the_token_and_a_rotated_ring_keeps_it() -> None:
    old, new = sessionkit.generate_key(), sessionkit.generate_key()
    token = _forgery(old).mint(FAMILY, 0, "")
    assert _forgery(new).verify(token, FAMILY, 0, "") == "token_invalid"
    assert _forgery(new, old).verify(token, FAMILY, 0, "") is None


IDS = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
    min_size=22,
    max_size=22,
)
_FORGERY = _forgery()


@given(IDS, IDS, st.integers(0, 10**6), st.integers(0, 10**6), st.text(max_size=30))
def test_a_token_of_any_other_session_is_refused(
    family: str, other: str, generation: int, other_generation: int, scope: str
) -> None:
    token = _FORGERY.mint(family, generation, scope)
    assert _FORGERY.verify(token, family, generation, scope) is None
    if (other, other_generation) != (family, generation):
        assert _FORGERY.verify(token, other, other_generation, scope) == "token_invalid"


@given(st.text(min_size=1, max_size=30), st.text(max_size=30))
def test_a_token_for_another_scope_is_refused(scope: str, other: str) -> None:
    token = _FORGERY.mint(FAMILY, 1, scope)
    assert (_FORGERY.verify(token, FAMILY, 1, other) is None) == (scope == other)


@given(st.data())
def test_any_altered_character_is_refused(data: st.DataObject) -> None:
    token = _FORGERY.mint(FAMILY, 1, "")
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
    )
    altered = token[:index] + replacement + token[index + 1 :]
    if altered != token:
        assert _FORGERY.verify(altered, FAMILY, 1, "") == "token_invalid"


def test_every_render_masks_the_token_afresh() -> None:
    tokens = {_FORGERY.mint(FAMILY, 1, "") for _ in range(50)}
    assert len(tokens) == 50
    assert all(_FORGERY.verify(t, FAMILY, 1, "") is None for t in tokens)
    # No two renders share a byte-aligned substring longer than chance allows, so a
    # compression oracle (BREACH) learns nothing across them.
    first, second = sorted(tokens)[:2]
    assert not any(first[i : i + 8] in second for i in range(len(first) - 8))


# --------------------------------------------------------------------------- forms


def test_the_token_is_read_from_an_urlencoded_form() -> None:
    kind = "application/x-www-form-urlencoded"
    body = urlencode({"csrf_token": "a+b/c=", "amount": "10"}).encode()
    assert form_token(body, kind, "csrf_token") == "a+b/c="
    assert form_token(body, kind + "; charset=utf-8", "csrf_token") == "a+b/c="
    assert form_token(b"amount=10", kind, "csrf_token") is None
    assert form_token(b"csrf_token=abc&amount=1", kind, "csrf_token", complete=False) == "abc"
    assert form_token(b"amount=1&csrf_token=ab", kind, "csrf_token", complete=False) is None
    assert form_token(b"csrf%5Ftoken=x", kind, "csrf_token") == "x"


def test_the_token_is_read_from_a_multipart_form() -> None:
    kind = "multipart/form-data; boundary=XyZ"
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\ntok123\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n"
    )
    assert form_token(body, kind, "csrf_token") == "tok123"
    assert form_token(body, 'multipart/form-data; boundary="XyZ"', "csrf_token") == "tok123"
    assert form_token(body[:40], kind, "csrf_token", complete=False) is None
    assert form_token(body, "multipart/form-data", "csrf_token") is None
    assert form_token(body, kind, "file") == "hello"
    assert form_token(body, "application/json", "csrf_token") is None
    assert form_token(body, None, "csrf_token") is None


def test_which_bodies_are_forms() -> None:
    assert reads_form("application/x-www-form-urlencoded")
    assert reads_form("Multipart/Form-Data; boundary=x")
    assert not reads_form("application/json")
    assert not reads_form("text/plain")
    assert not reads_form(None)


@given(st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5), st.text())
def test_any_urlencoded_form_gives_back_its_token(fields: dict[str, str], token: str) -> None:
    fields = {k: v for k, v in fields.items() if k != "csrf_token"}
    body = urlencode({"csrf_token": token, **fields}).encode()
    assert form_token(body, "application/x-www-form-urlencoded", "csrf_token") == token


@given(st.binary(max_size=200), st.text(max_size=60))
def test_any_body_gives_a_value_or_none(body: bytes, kind: str) -> None:
    value = form_token(body, kind, "csrf_token")
    assert value is None or isinstance(value, str)


# --------------------------------------------------------------------------- refusals


def test_the_refusal_is_a_403_page_or_json(make_kit: KitFactory) -> None:
    forgery = make_kit(public_home="/start").forgery
    page = forgery.refusal("cross_site", "text/html")
    assert page.status == 403
    assert b"Request refused" in page.body
    assert b'href="/start"' in page.body
    assert ("Cache-Control", "no-store") in page.headers
    doc = forgery.refusal("token_missing", "application/json")
    assert json.loads(doc.body)["reason"] == "token_missing"
    assert ("Content-Type", "application/json") in doc.headers
    assert forgery.refusal("cross_site", None).body.startswith(b"<!doctype html>")
    assert "$home" in DEFAULT_REFUSED_PAGE


def test_the_refusal_can_be_replaced(make_kit: KitFactory) -> None:
    policy = ForgeryPolicy(
        refused_page=lambda reason: f"<p>no: {reason}</p>",
        refused_json=lambda reason: {"nope": reason},
    )
    forgery = make_kit(forgery=policy).forgery
    assert forgery.refusal("cross_site", "text/html").body == b"<p>no: cross_site</p>"
    assert json.loads(forgery.refusal("origin_mismatch", "application/json").body) == {
        "nope": "origin_mismatch"
    }


def test_the_exempt_mark() -> None:
    def view() -> None:
        """A view."""

    assert not marked_exempt(view)
    assert csrf_exempt(view) is view
    assert marked_exempt(view)
    assert not marked_exempt(None)


# --------------------------------------------------------------------------- the kit


def _events(make_kit: KitFactory, **settings: Any) -> tuple[sessionkit.SessionKit, list[Any]]:
    events: list[Any] = []
    return make_kit(on_security_event=events.append, **settings), events


def test_the_kit_refuses_a_forged_request_with_a_403_and_an_event(make_kit: KitFactory) -> None:
    kit, events = _events(make_kit)
    evil = here(fetch_site="cross-site", origin="https://evil.example")
    exchange = kit.open(None, method="POST", path="/transfer", provenance=evil, client="10.1.2.3")
    assert exchange.early is not None
    assert exchange.early.status == 403
    assert [(e.reason, e.cookie, e.client) for e in events] == [
        ("cross_site", "__Host-session", "10.1.2.0")
    ]
    fine = kit.open(None, method="POST", path="/transfer", provenance=here(origin=APP))
    assert fine.early is None
    assert fine.token_check is None
    assert kit.open(None, method="POST", path="/transfer").early is None  # no provenance
    assert len(events) == 1


def test_the_forgery_refusal_comes_before_the_cookies_gate(make_kit: KitFactory) -> None:
    kit, events = _events(make_kit, require_cookies=["/app"])
    evil = here(origin="https://evil.example")
    exchange = kit.open(None, method="POST", path="/app/x", provenance=evil)
    assert exchange.early is not None
    assert b"Request refused" in exchange.early.body
    assert [e.reason for e in events] == ["origin_mismatch"]


def test_an_exemption_callback_is_asked_only_before_a_refusal(make_kit: KitFactory) -> None:
    kit, events = _events(make_kit)
    asked: list[bool] = []

    def exempt() -> bool:
        asked.append(True)
        return True

    assert kit.open(None, method="POST", provenance=here(origin=APP), exempt=exempt).early is None
    assert asked == []
    evil = here(origin="https://evil.example")
    assert kit.open(None, method="POST", provenance=evil, exempt=exempt).early is None
    assert asked == [True]
    assert events == []


def test_a_websocket_handshake_is_judged_by_origin(make_kit: KitFactory) -> None:
    kit, events = _events(make_kit)
    ws = here(scheme="wss", origin="https://evil.example")
    assert kit.open(None, method="WEBSOCKET", path="/ws", provenance=ws).early is not None
    ok = ws._replace(origin=APP)
    assert kit.open(None, method="WEBSOCKET", path="/ws", provenance=ok).early is None
    assert [e.reason for e in events] == ["origin_mismatch"]
    tokens = make_kit(forgery=ForgeryPolicy(token_paths=["/"]))
    handshake = tokens.open(None, method="WEBSOCKET", path="/ws", provenance=ok)
    assert handshake.early is None
    assert handshake.token_check is None  # a browser's WebSocket can send no token


def _cookie_of(exchange: Any) -> str:
    for name, value in exchange.response_headers([]):
        if name == "Set-Cookie" and value.startswith("__Host-session="):
            return value.split(";", 1)[0]
    raise AssertionError("no session cookie")


def test_the_session_bound_token_end_to_end(make_kit: KitFactory) -> None:
    kit, events = _events(make_kit, forgery=ForgeryPolicy(token_paths=["/"]))
    page = kit.open(None, path="/form")
    token = page.csrf_token()
    assert page.session.modified  # an empty session is kept for the token
    cookie = _cookie_of(page)

    def post(sent_header: str | None, form: str | None, cookie: str | None = cookie) -> Any:
        exchange = kit.open(
            cookie,
            method="POST",
            path="/form",
            provenance=here(origin=APP, token=sent_header, content_type="text/plain"),
        )
        assert exchange.token_check is not None
        assert not exchange.token_check.form
        return exchange.check_token(form)

    assert post(token, None) is None
    assert post(None, token) is None
    assert post(None, None).status == 403
    assert post("x" * 86, None).status == 403
    assert post(token, None, cookie=None).status == 403  # no session: no token can match
    assert [e.reason for e in events] == ["token_missing", "token_invalid", "token_invalid"]


def test_a_token_from_before_a_login_or_rotation_is_refused(make_kit: KitFactory) -> None:
    kit, _ = _events(make_kit, forgery=ForgeryPolicy(token_paths=["/"]))
    first = kit.open(None, path="/")
    old = first.csrf_token()
    cookie = _cookie_of(first)
    second = kit.open(cookie, path="/")
    assert second.csrf_token() != old
    second.session.rotate()
    new = second.csrf_token()
    rotated = _cookie_of(second)

    def refused(token: str) -> bool:
        exchange = kit.open(rotated, method="POST", path="/", provenance=here(token=token))
        return exchange.check_token() is not None

    assert refused(old)
    assert not refused(new)
    third = kit.open(rotated, path="/")
    third.session.login("alice")
    after_login = _cookie_of(third)
    exchange = kit.open(after_login, method="POST", path="/", provenance=here(token=new))
    assert exchange.check_token() is not None


def test_a_token_survives_a_timed_rotation(make_kit: KitFactory, clock: Any) -> None:
    kit, _ = _events(make_kit, forgery=ForgeryPolicy(token_paths=["/"]))
    first = kit.open(None, path="/")
    first.session["n"] = 1
    token = first.csrf_token()
    cookie = _cookie_of(first)
    clock.advance(16 * 60)
    second = kit.open(cookie, path="/")
    second.session["n"] = 2
    later = _cookie_of(second)
    assert second.session.id != first.session.id
    exchange = kit.open(later, method="POST", path="/", provenance=here(token=token))
    assert exchange.check_token() is None


def test_a_token_is_bound_to_the_token_path_it_posts_to(make_kit: KitFactory) -> None:
    kit, _ = _events(make_kit, forgery=ForgeryPolicy(token_paths=["/app", "/admin"]))
    page = kit.open(None, path="/app/page")
    for_app = page.csrf_token("/app/save")
    for_admin = page.csrf_token("/admin/users")
    site_wide = page.csrf_token()
    cookie = _cookie_of(page)

    def refused(path: str, token: str) -> bool:
        exchange = kit.open(cookie, method="POST", path=path, provenance=here(token=token))
        return exchange.check_token() is not None

    assert not refused("/app/save", for_app)
    assert refused("/admin/users", for_app)
    assert not refused("/admin/users", for_admin)
    assert refused("/app/save", for_admin)
    assert not refused("/app/save", site_wide)
    assert not refused("/admin/users", site_wide)
