from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import pytest

from sessionkit import SecurityEvent, SessionKit, generate_key
from sessionkit.errors import BadToken
from sessionkit.keys import KeyRing
from sessionkit.seal import b64decode
from sessionkit.visitor import VERIFIED_CACHE_SIZE, VisitorCodec

MakeKit = Callable[..., SessionKit]
NAME = "__Host-visitor"


def visitor_cookie(headers: list[tuple[str, str]]) -> str | None:
    for name, value in headers:
        if name == "Set-Cookie" and value.startswith(NAME + "="):
            return value
    return None


def test_value_is_only_an_id_and_a_mac() -> None:
    ring = KeyRing([generate_key()])
    codec = VisitorCodec(ring)
    vid = codec.mint()
    raw = b64decode(codec.sign(vid, NAME))
    assert len(raw) == 1 + 4 + 16 + 16
    assert raw[1:5] == ring.key_ids[0]
    assert raw[5:21] == b64decode(vid)
    assert codec.verify(codec.sign(vid, NAME), NAME) == (vid, True)
    assert len({codec.mint() for _ in range(1000)}) == 1000


def test_forged_moved_or_foreign_values_are_rejected() -> None:
    codec = VisitorCodec(KeyRing([generate_key()]))
    value = codec.sign(codec.mint(), NAME)
    for bad, reason in (
        (value[:-2] + ("AA" if value[-2:] != "AA" else "BA"), "tampered"),
        (VisitorCodec(KeyRing([generate_key()])).sign(codec.mint(), NAME), "unknown_key"),
        ("x" * 100, "oversized"),
        (value[:20], "malformed"),
    ):
        with pytest.raises(BadToken) as caught:
            codec.verify(bad, NAME)
        assert caught.value.reason == reason
    with pytest.raises(BadToken, match="tampered"):
        codec.verify(value, "__Host-session")


def test_set_once_then_not_resent(make_kit: MakeKit) -> None:
    kit = make_kit()
    ex = kit.open(None)
    assert visitor_cookie(ex.response_headers([])) is None, "minted only when asked for"
    ex = kit.open(None)
    assert ex.visitor is not None
    header = visitor_cookie(ex.response_headers([]))
    assert header is not None
    assert "; Max-Age=31536000; Expires=" in header
    assert header.endswith("; Path=/; Secure; HttpOnly; SameSite=Lax")
    again = kit.open(header.split(";")[0])
    assert again.visitor == ex.visitor
    assert again.response_headers([]) == [("Vary", "Cookie")], "read, not re-sent"


def test_older_key_reissues_the_same_id(make_kit: MakeKit) -> None:
    old, new = generate_key(), generate_key()
    ex = make_kit(secret_keys=[old]).open(None)
    assert ex.visitor is not None
    header = visitor_cookie(ex.response_headers([]))
    assert header is not None
    ex2 = make_kit(secret_keys=[new, old]).open(header.split(";")[0])
    assert ex2.visitor == ex.visitor
    reissued = visitor_cookie(ex2.response_headers([]))
    assert reissued is not None
    assert make_kit(secret_keys=[new]).open(reissued.split(";")[0]).visitor == ex.visitor


@pytest.mark.parametrize("headers", [{"sec_gpc": "1"}, {"dnt": "1"}, {"sec_gpc": " 1 "}])
def test_opt_out_sets_nothing_and_expires_an_existing_cookie(
    make_kit: MakeKit, headers: dict[str, Any]
) -> None:
    kit = make_kit()
    first = kit.open(None, **headers)
    assert first.visitor is None
    assert first.response_headers([]) == [("Vary", "Cookie")]
    plain = kit.open(None)
    assert plain.visitor is not None
    header = visitor_cookie(plain.response_headers([]))
    assert header is not None
    ex = kit.open(header.split(";")[0], **headers)
    assert ex.visitor is None
    expired = visitor_cookie(ex.response_headers([]))
    assert expired is not None
    assert "Max-Age=0" in expired


def test_gpc_zero_is_not_an_opt_out(make_kit: MakeKit) -> None:
    assert make_kit().open(None, sec_gpc="0", dnt="0").visitor is not None


def test_bad_visitor_cookie_is_replaced_with_an_event(make_kit: MakeKit) -> None:
    events: list[SecurityEvent] = []
    kit = make_kit(on_security_event=events.append)
    ex = kit.open("__Host-visitor=forged")
    assert ex.visitor is not None
    assert events == [SecurityEvent("malformed", NAME, None)]
    assert visitor_cookie(ex.response_headers([])) is not None


def test_visitor_cookie_never_restores_a_login(make_kit: MakeKit) -> None:
    kit = make_kit()
    ex = kit.open(None)
    ex.session.login("alice")
    assert ex.visitor is not None
    headers = ex.response_headers([])
    only_visitor = visitor_cookie(headers)
    assert only_visitor is not None
    later = kit.open(only_visitor.split(";")[0])
    assert later.session.user_id is None
    assert later.session == {}
    assert later.visitor == ex.visitor


def test_visitor_cookie_can_be_turned_off(make_kit: MakeKit) -> None:
    ex = make_kit(visitor_cookie=None).open(None)
    assert ex.visitor is None
    assert ex.response_headers([]) == []


def test_a_remembered_value_is_bound_to_its_cookie_name() -> None:
    codec = VisitorCodec(KeyRing([generate_key()]))
    value = codec.sign(codec.mint(), NAME)
    assert codec.verify(value, NAME)[1]
    with pytest.raises(BadToken, match="tampered"):
        codec.verify(value, "__Host-other")
    assert codec.verify(value, NAME)[1]


def test_the_memo_of_verified_values_stays_bounded() -> None:
    codec = VisitorCodec(KeyRing([generate_key()]))
    values: dict[str, str] = {}
    for _ in range(VERIFIED_CACHE_SIZE + 10):
        vid = codec.mint()
        value = codec.sign(vid, NAME)
        values[value] = vid
        assert codec.verify(value, NAME) == (vid, True)
        assert len(codec._verified) <= VERIFIED_CACHE_SIZE
    for value, vid in list(values.items())[:: VERIFIED_CACHE_SIZE // 8]:
        assert codec.verify(value, NAME) == (vid, True)


def test_a_value_under_an_older_key_is_not_current_cached_or_not() -> None:
    old, new = generate_key(), generate_key()
    codec = VisitorCodec(KeyRing([new, old]))
    vid = codec.mint()
    old_value = VisitorCodec(KeyRing([old])).sign(vid, NAME)
    new_value = codec.sign(vid, NAME)
    assert old_value != new_value
    for _ in range(2):
        assert codec.verify(old_value, NAME) == (vid, False)
        assert codec.verify(new_value, NAME) == (vid, True)


def test_a_value_built_from_the_documented_layout_verifies() -> None:
    """docs/token-format.md: 0x01, key id, 16-byte id, HMAC-SHA256 truncated to 16 bytes."""
    ring = KeyRing([generate_key()])
    kid = ring.key_ids[0]
    vid = bytes(range(16))
    signed = b"\x01" + kid + vid
    mac = hmac.new(ring.subkeys("visitor")[kid], signed + NAME.encode(), hashlib.sha256)
    value = base64.urlsafe_b64encode(signed + mac.digest()[:16]).rstrip(b"=").decode()
    expected_id = base64.urlsafe_b64encode(vid).rstrip(b"=").decode()
    codec = VisitorCodec(ring)
    assert codec.verify(value, NAME) == (expected_id, True)
    assert codec.sign(expected_id, NAME) == value


def test_values_longer_than_64_characters_are_not_decoded() -> None:
    codec = VisitorCodec(KeyRing([generate_key()]))
    for text, reason in (("A" * 64, "malformed"), ("A" * 65, "oversized")):
        with pytest.raises(BadToken) as caught:
            codec.verify(text, NAME)
        assert caught.value.reason == reason


def test_the_memo_holds_4096_verified_values_then_starts_over() -> None:
    codec = VisitorCodec(KeyRing([generate_key()]))
    for _ in range(4096):
        codec.verify(codec.sign(codec.mint(), NAME), NAME)
    assert len(codec._verified) == 4096 == VERIFIED_CACHE_SIZE
    codec.verify(codec.sign(codec.mint(), NAME), NAME)
    assert len(codec._verified) == 1


def test_two_visitor_cookies_are_a_duplicate_event_and_neither_is_believed(
    make_kit: MakeKit,
) -> None:
    events: list[SecurityEvent] = []
    kit = make_kit(on_security_event=events.append)
    first, second = (kit.visitors.sign(kit.visitors.mint(), NAME) for _ in range(2))
    ex = kit.open(f"{NAME}={first}; {NAME}={second}")
    visitor = ex.visitor
    assert visitor is not None
    assert visitor not in (
        kit.visitors.verify(first, NAME)[0],
        kit.visitors.verify(second, NAME)[0],
    )
    assert events == [SecurityEvent("duplicate", NAME, None)]
    assert visitor_cookie(ex.response_headers([])) is not None
