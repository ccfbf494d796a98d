"""The core exchange: what a request's cookies give and what the response must carry."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionkit import ConfigurationError, SecurityEvent, SessionKit, SessionTooLarge, generate_key
from sessionkit.exchange import Exchange

MakeKit = Callable[..., SessionKit]
KEY = generate_key()
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 6265bis cookie-octet: %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
COOKIE_OCTETS = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+")


def set_cookies(headers: list[tuple[str, str]]) -> dict[str, str]:
    return {v.split("=", 1)[0]: v for n, v in headers if n == "Set-Cookie"}


def cookie_header(headers: list[tuple[str, str]]) -> str:
    return "; ".join(v.split(";", 1)[0] for v in set_cookies(headers).values())


def logged_in(kit: SessionKit, **data: Any) -> tuple[Exchange, str]:
    ex = kit.open(None)
    ex.session.update(data or {"user": "alice"})
    return ex, cookie_header(ex.response_headers([]))


def used(ex: Exchange) -> Exchange:
    """The exchange after its app read the session (which opens it)."""
    ex.session.get("anything")
    return ex


def test_anonymous_request_that_writes_nothing_gets_no_session_cookie(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None)
    ex = used(kit.open(None))
    plain = [("Content-Type", "text/plain")]
    assert ex.response_headers(plain) == [*plain, ("Vary", "Cookie")]


def test_a_request_whose_app_never_uses_the_session_gets_nothing(make_kit: MakeKit) -> None:
    kit = make_kit()
    _, cookie = logged_in(kit)
    for header in (None, cookie, "__Host-session=garbage"):
        ex = kit.open(header)
        assert ex.response_headers([("Cache-Control", "public, max-age=60")]) == [
            ("Cache-Control", "public, max-age=60")
        ]
        assert not ex.session.opened


def test_written_session_round_trips(make_kit: MakeKit, clock: Any) -> None:
    kit = make_kit(visitor_cookie=None)
    _, cookie = logged_in(kit, user="alice", n=1)
    clock.advance(5)
    ex = kit.open(cookie)
    assert ex.session == {"user": "alice", "n": 1}
    assert not ex.session.is_new
    assert ex.response_headers([]) == [("Vary", "Cookie")]


def test_touch_refreshes_at_most_once_per_interval(make_kit: MakeKit, clock: Any) -> None:
    kit = make_kit(visitor_cookie=None, touch_interval=60)
    _, cookie = logged_in(kit)
    clock.advance(59)
    assert "__Host-session" not in set_cookies(used(kit.open(cookie)).response_headers([]))
    clock.advance(1)
    assert "__Host-session" not in set_cookies(kit.open(cookie).response_headers([]))  # unused
    refreshed = used(kit.open(cookie)).response_headers([])
    assert "__Host-session" in set_cookies(refreshed)
    cookie = cookie_header(refreshed)
    clock.advance(30)
    assert "__Host-session" not in set_cookies(used(kit.open(cookie)).response_headers([]))


def test_active_session_outlives_idle_timeout_but_not_absolute(
    make_kit: MakeKit, clock: Any
) -> None:
    kit = make_kit(visitor_cookie=None, rotate_every=None)
    _, cookie = logged_in(kit)
    start = clock.now
    while clock.now - start < 12 * 3600 - 600:
        clock.advance(600)
        ex = kit.open(cookie)
        assert ex.session == {"user": "alice"}, clock.now - start
        cookie = cookie_header(ex.response_headers([])) or cookie
    clock.advance(601)
    assert kit.open(cookie).session == {}


def test_max_age_never_outlives_the_absolute_timeout(make_kit: MakeKit, clock: Any) -> None:
    kit = make_kit(visitor_cookie=None, rotate_every=None)
    ex, cookie = logged_in(kit)
    assert "Max-Age=1800;" in set_cookies(ex.response_headers([]))["__Host-session"]
    clock.advance(12 * 3600 - 100)
    ex = make_kit(visitor_cookie=None, rotate_every=None, idle_timeout=12 * 3600).open(cookie)
    ex.session["x"] = 1
    assert "Max-Age=100;" in set_cookies(ex.response_headers([]))["__Host-session"]


def test_persistent_cookie_off_gives_a_browser_session_cookie(make_kit: MakeKit) -> None:
    ex, _ = logged_in(make_kit(visitor_cookie=None, persistent_cookie=False))
    assert "Max-Age" not in set_cookies(ex.response_headers([]))["__Host-session"]


def test_timed_rotation_changes_the_id_and_reissues(make_kit: MakeKit, clock: Any) -> None:
    kit = make_kit(visitor_cookie=None, rotate_every=900)
    first, cookie = logged_in(kit)
    clock.advance(899)
    ex = kit.open(cookie)
    assert ex.session.id == first.session.id
    touched = cookie_header(ex.response_headers([]))  # a touch, not a rotation
    assert kit.open(touched).session.id == first.session.id
    clock.advance(1)
    ex = kit.open(cookie)
    assert ex.session == {"user": "alice"}
    rotated = cookie_header(ex.response_headers([]))
    assert rotated
    after = kit.open(rotated)
    assert after.session.id != first.session.id
    assert after.session == {"user": "alice"}


def test_older_key_is_accepted_then_reissued_under_the_newest(make_kit: MakeKit) -> None:
    old, new = generate_key(), generate_key()
    _, cookie = logged_in(make_kit(secret_keys=[old], visitor_cookie=None))
    rotated = make_kit(secret_keys=[new, old], visitor_cookie=None)
    ex = rotated.open(cookie)
    assert ex.session == {"user": "alice"}
    reissued = cookie_header(ex.response_headers([]))
    assert make_kit(secret_keys=[new], visitor_cookie=None).open(reissued).session == {
        "user": "alice"
    }
    assert make_kit(secret_keys=[new], visitor_cookie=None).open(cookie).session == {}


def _flip_middle(cookie: str) -> str:
    name, value = cookie.split("=", 1)
    at = len(value) // 2
    return f"{name}={value[:at]}{'A' if value[at] != 'A' else 'B'}{value[at + 1 :]}"


@pytest.mark.parametrize(
    ("mangle", "reasons"),
    [
        (lambda c: c[:-4], {"tampered", "malformed"}),
        (_flip_middle, {"tampered"}),
        (lambda c: c.split("=", 1)[0] + "=garbage", {"malformed"}),
        (lambda c: c + "; " + c, {"duplicate"}),
        (lambda c: c.split("=", 1)[0] + "=" + "A" * 5000, {"oversized"}),
    ],
)
def test_bad_cookie_gives_empty_session_expiring_cookie_and_one_event(
    make_kit: MakeKit, mangle: Callable[[str], str], reasons: set[str]
) -> None:
    events: list[SecurityEvent] = []
    kit = make_kit(visitor_cookie=None, on_security_event=events.append)
    _, cookie = logged_in(kit)
    ex = kit.open(mangle(cookie), client="203.0.113.9")
    assert ex.session == {}
    assert ex.session.is_new
    assert len(events) == 1
    assert events[0].reason in reasons
    assert (events[0].cookie, events[0].client) == (
        "__Host-session",
        "203.0.113.0",
    )
    assert "Max-Age=0" in set_cookies(ex.response_headers([]))["__Host-session"]


def test_bad_cookie_replaced_when_the_app_writes(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None)
    ex = kit.open("__Host-session=garbage")
    ex.session["fresh"] = True
    header = set_cookies(ex.response_headers([]))["__Host-session"]
    assert "Max-Age=1800" in header
    assert kit.open(header.split(";")[0]).session == {"fresh": True}


def test_events_go_to_the_security_logger(
    make_kit: MakeKit, caplog: pytest.LogCaptureFixture, clock: Any
) -> None:
    kit = make_kit(visitor_cookie=None)
    _, cookie = logged_in(kit)
    with caplog.at_level(logging.INFO, logger="sessionkit.security"):
        used(kit.open("__Host-session=garbage", client="2001:db8:1:2::7"))
        clock.advance(3600)
        used(kit.open(cookie))
    assert [(r.levelno, r.sessionkit_event.reason) for r in caplog.records] == [  # type: ignore[attr-defined]
        (logging.WARNING, "malformed"),
        (logging.INFO, "expired_idle"),
    ]
    assert "2001:db8:1::" in caplog.records[0].getMessage()
    assert "garbage" not in caplog.text


def test_client_address_modes(make_kit: MakeKit) -> None:
    for mode, expected in (("full", "198.51.100.7"), ("off", None), ("truncated", "198.51.100.0")):
        events: list[SecurityEvent] = []
        kit = make_kit(visitor_cookie=None, client_address=mode, on_security_event=events.append)
        used(kit.open("__Host-session=x", client="198.51.100.7"))
        used(kit.open("__Host-session=x", client="/run/app.sock"))
        assert [e.client for e in events] == [expected, None]


def test_invalidate_expires_the_cookie(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None)
    _, cookie = logged_in(kit)
    ex = kit.open(cookie)
    ex.session.invalidate()
    assert "Max-Age=0" in set_cookies(ex.response_headers([]))["__Host-session"]


def test_login_without_data_keeps_a_cookie(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None)
    ex = kit.open(None)
    ex.session.login("u1")
    cookie = cookie_header(ex.response_headers([]))
    assert kit.open(cookie).session.user_id == "u1"


def test_session_too_large_raises_with_size_and_limit(make_kit: MakeKit) -> None:
    ex = make_kit(visitor_cookie=None).open(None)
    ex.session["blob"] = "x" * 4000
    with pytest.raises(SessionTooLarge) as caught:
        ex.response_headers([])
    assert caught.value.limit == 4096
    assert caught.value.size > 4096
    assert "4096" in str(caught.value)


def test_vary_and_cache_control(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None)
    ex, cookie = logged_in(kit)
    headers = ex.response_headers(
        [("Cache-Control", "public, max-age=600"), ("Vary", "Accept-Encoding")]
    )
    assert ("Cache-Control", "no-store") in headers
    assert not any(v.startswith("public") for _, v in headers)
    assert ("Vary", "Accept-Encoding") in headers
    assert ("Vary", "Cookie") in headers
    kept = kit.open(cookie).response_headers(
        [("vary", "Accept, cookie"), ("Cache-Control", "max-age=5")]
    )
    assert kept == [("vary", "Accept, cookie"), ("Cache-Control", "max-age=5")]
    ex = kit.open(None)
    ex.session["a"] = 1
    # Whatever the app said, a response that sets a cookie is stored by no cache.
    for app_said in (["private, no-store"], ["public", "no-store"], ["public, max-age=60"]):
        ex = kit.open(None)
        ex.session["a"] = 1
        headers = ex.response_headers([("Cache-Control", v) for v in app_said])
        assert [v for n, v in headers if n == "Cache-Control"] == ["no-store"]


def test_app_set_cookies_are_kept(make_kit: MakeKit) -> None:
    ex, _ = logged_in(make_kit(visitor_cookie=None))
    headers = ex.response_headers([("Set-Cookie", "theme=dark"), ("Set-Cookie", "lang=en")])
    values = [v for n, v in headers if n == "Set-Cookie"]
    assert values[:2] == ["theme=dark", "lang=en"]
    assert len(values) == 3


@pytest.mark.parametrize(
    ("settings", "fix"),
    [
        ({"secure": False}, "insecure_development=True"),
        ({"idle_timeout": 0}, "positive whole number"),
        ({"idle_timeout": 1.5}, "positive whole number"),
        ({"idle_timeout": 3600, "absolute_timeout": 60}, "raise absolute_timeout"),
        ({"touch_interval": 1000}, "at most half of idle_timeout"),
        ({"visitor_max_age": 401 * 86400}, "400 days"),
        ({"client_address": "everything"}, "'truncated', 'full', 'off'"),
        ({"session_cookie": "v", "visitor_cookie": "v"}, "different names"),
        ({"domain": "example.org", "session_cookie": "__Host-s"}, "__Secure- prefix"),
        ({"same_site": "none", "insecure_development": True}, "keep secure=True"),
    ],
)
def test_misconfiguration_fails_at_start_up(
    make_kit: MakeKit, settings: dict[str, Any], fix: str
) -> None:
    with pytest.raises(ConfigurationError, match=fix.replace("(", r"\(")):
        make_kit(**settings)


def test_insecure_development_drops_secure_and_the_prefix(make_kit: MakeKit) -> None:
    kit = make_kit(insecure_development=True)
    ex = kit.open(None)
    ex.session["a"] = 1
    assert ex.visitor is not None
    cookies = set_cookies(ex.response_headers([]))
    assert set(cookies) == {"session", "visitor"}
    assert all("Secure" not in v for v in cookies.values())


def test_path_or_domain_turn_the_default_name_to_the_secure_prefix(make_kit: MakeKit) -> None:
    assert make_kit(path="/app").session_spec.name == "__Secure-session"
    assert make_kit(domain="example.org").session_spec.name == "__Secure-session"
    assert make_kit().visitor_spec.name == "__Host-visitor"  # type: ignore[union-attr]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=60)
@given(st.dictionaries(st.text(min_size=1, max_size=10), json_values, min_size=1, max_size=6))
def test_emitted_cookies_always_match_the_cookie_grammar(data: dict[str, Any]) -> None:
    kit = SessionKit(secret_keys=[KEY], sensitive_data=False)
    ex = kit.open(None)
    ex.session.update(data)
    ex.session.login("someone")
    assert ex.visitor is not None
    cookies = [v for n, v in ex.response_headers([]) if n == "Set-Cookie"]
    assert len(cookies) == 2
    for header in cookies:
        pair = header.split(";", 1)[0]
        name, _, value = pair.partition("=")
        assert TOKEN.fullmatch(name)
        assert COOKIE_OCTETS.fullmatch(value)
        assert all(0x20 <= ord(c) <= 0x7E for c in header)
    back = kit.open("; ".join(c.split(";", 1)[0] for c in cookies))
    assert back.session == data


def test_a_failing_event_hook_never_breaks_the_request(
    make_kit: MakeKit, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: SecurityEvent) -> None:
        raise RuntimeError("hook bug")

    kit = make_kit(visitor_cookie=None, on_security_event=broken)
    with caplog.at_level(logging.WARNING, logger="sessionkit.security"):
        ex = used(kit.open("__Host-session=garbage"))
    assert ex.session == {}
    assert "on_security_event raised" in caplog.text
    assert "Max-Age=0" in dict(ex.response_headers([]))["Set-Cookie"]
