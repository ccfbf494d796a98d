"""Privacy promises as properties of the library: no secrets in sessions, opt-out, addresses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sessionkit import ConfigurationError, SecurityEvent, SessionKit
from sessionkit.privacy import SensitiveData, SensitiveDataGuard

MakeKit = Callable[..., SessionKit]
GUARD = SensitiveDataGuard()


def luhn_complete(start: str, length: int) -> str:
    """``start`` padded with zeros to ``length`` digits, the last one making the Luhn sum."""
    body = start.ljust(length - 1, "0")
    total = 0
    for index, char in enumerate(reversed(body)):
        value = int(char) * (1 if index % 2 else 2)
        total += value - 9 if value > 9 else value
    return body + str(-total % 10)


def fullwidth(text: str) -> str:
    """``text`` in full-width forms (ideographic space for a space), which NFKC undoes."""
    return "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) for c in text)


def arabic_indic(digits: str) -> str:
    return "".join(chr(0x0660 + int(d)) for d in digits)


def nested(value: Any, depth: int) -> Any:
    for level in range(depth):
        value = [value] if level % 2 else {"inner": value}
    return value


def refused_without_showing_it(value: Any, key: str = "note") -> None:
    with pytest.raises(SensitiveData) as caught:
        GUARD.check(key, value)
    message = str(caught.value)
    assert not any(char.isdigit() for char in message), message


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "user_password",
        "USER_PASSWORD",
        "OLD_PIN",
        "newPassword",
        "new-password",
        "passwd",
        "pwd",
        "PIN",
        "pin_code",
        "cvv",
        "card.cvc",
        "secret",
        "apiSecret",
        "card_number",
        "cardNumber",
        "creditCard",
        "ssn",
        "passphrase",
        "newPassphrase",
        "passcode",
        "pincode",
        "PINCODE",
        "security_code",
        "securityCode",
        "securitycode",
        fullwidth("password"),
        fullwidth("PIN"),
        "pass\u200bword",
        "\ufb01le_secret",
    ],
)
def test_password_like_keys_are_refused(key: str) -> None:
    assert GUARD.key_is_sensitive(key)
    with pytest.raises(SensitiveData, match="never be stored in a session"):
        GUARD.check(key, True)


@pytest.mark.parametrize(
    "key",
    ["user", "cart", "spinner", "shipping", "opinion", "pinned", "passing", "csrf_token", "topic"],
)
def test_ordinary_keys_pass(key: str) -> None:
    assert not GUARD.key_is_sensitive(key)


@pytest.mark.parametrize(
    "value",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111.1111.1111.1111",
        "card: 5555 5555 5555 4444, exp 12/30",
        "378282246310005",
        "3782 822463 10005",
        "6011111111111117",
        "2221000000000009",
        fullwidth("4111111111111111"),
        fullwidth("4111 1111 1111 1111"),
        fullwidth("4111-1111-1111-1111"),
        "note \u2474 4111\u00a01111\u20091111\u202f1111",
        arabic_indic("4111111111111111"),
        "4111111111111111.0",
        "4111111111111111.00",
        "ref 12 4111 1111 1111 1111",
        "4111111111111111 4111",
        "4222222222222",
        luhn_complete("6011", 19),
        luhn_complete("4", 19),
        4111111111111111,
        -4111111111111111,
        4222222222222,
        4111111111111111.0,
        5555555555554444.0,
        ["ok", {"nested": "4012888888881881"}],
        {"deep": [[["4111111111111111"]]]},
        ("tuple", 4111111111111111),
    ],
)
def test_card_numbers_are_refused_wherever_they_are(value: Any) -> None:
    refused_without_showing_it(value)


@pytest.mark.parametrize("length", range(13, 20))
@pytest.mark.parametrize("start", ["34", "37", "4", "51", "55", "6011", "65", "2221", "2720"])
def test_every_card_length_from_13_to_19_digits_is_refused(start: str, length: int) -> None:
    card = luhn_complete(start, length)
    refused_without_showing_it(card)
    refused_without_showing_it(int(card))
    groups = " ".join(card[i : i + 4] for i in range(0, length, 4))
    refused_without_showing_it(f"card {groups} on file")


@pytest.mark.parametrize("length", [12, 20])
def test_too_short_or_too_long_for_a_card_passes(length: int) -> None:
    number = luhn_complete("4", length)
    GUARD.check("note", number)
    GUARD.check("note", int(number))


@pytest.mark.parametrize(
    ("start", "refused"),
    [("2220", False), ("2221", True), ("2500", True), ("2720", True), ("2721", False)],
)
def test_the_mastercard_2_series_is_2221_to_2720(start: str, refused: bool) -> None:
    card = luhn_complete(start, 16)
    assert GUARD.value_is_sensitive(card) is refused
    assert GUARD.value_is_sensitive(int(card)) is refused


@pytest.mark.parametrize("start", ["0", "1", "7", "8", "9"])
def test_luhn_valid_numbers_without_a_card_prefix_pass(start: str) -> None:
    for length in range(13, 20):
        GUARD.check("note", luhn_complete(start, length))


@pytest.mark.parametrize("depth", [33, 200, 5000, 100_000])
def test_no_nesting_depth_hides_a_card_number_or_a_key(depth: int) -> None:
    refused_without_showing_it(nested("4111111111111111", depth))
    refused_without_showing_it(nested(4111111111111111, depth))
    refused_without_showing_it(nested({"password": "x"}, depth))
    GUARD.check("note", nested("fine", depth))


def test_a_deep_value_written_to_a_session_is_refused(make_kit: MakeKit) -> None:
    session = make_kit().open(None).session
    with pytest.raises(SensitiveData):
        session["note"] = nested("4111111111111111", 40)
    session["note"] = nested("fine", 40)


def test_a_value_that_contains_itself_is_walked_once() -> None:
    loop: list[Any] = ["fine"]
    loop.append(loop)
    GUARD.check("note", loop)
    loop.append({"again": loop, "card": "4111 1111 1111 1111"})
    refused_without_showing_it(loop)


def test_patterns_match_the_normalised_text_too() -> None:
    guard = SensitiveDataGuard(patterns=[r"\bIBAN\b"])
    for text in ("my IBAN", "my " + fullwidth("IBAN")):
        with pytest.raises(SensitiveData):
            guard.check("note", text)
    guard.check("note", "my iban")


@pytest.mark.parametrize(
    "value",
    [
        "4111111111111112",
        "4111 1111 1111 1112",
        "1764240000000",
        1764240000000,
        1764240000000.0,
        "1764240000000.5",
        1764240000.123,
        4111111111111111.5,
        float("inf"),
        float("nan"),
        "+44 20 7946 0958",
        "+1 415-555-2671",
        "+1 (415) 555.2671",
        "+49 30 901820",
        "0044 20 7946 0958",
        "order 2026-11-27-000123",
        "ORD-2026-000123456",
        "INV.2026.11.000042",
        "order #100023456789",
        "192.168.100.200",
        "51.507350951234",
        "3.14159265358979",
        "1.4111111111111111",
        "0.4111111111111111",
        "-0.4111111111111111",
        "2026.11.27",
        "550e8400-e29b-41d4-a716-446655440000",
        "sha1 a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
        "x4111111111111111",
        "4111111111111111x",
        "1234 5678",
        "",
        12,
        True,
        None,
        ["4111", "1111"],
    ],
)
def test_ordinary_values_pass(value: Any) -> None:
    GUARD.check("note", value)


def test_a_number_too_long_to_print_passes() -> None:
    GUARD.check("note", 10**5000)


def test_digests_and_tokens_are_not_card_numbers() -> None:
    import base64
    import hashlib
    import secrets

    for n in range(3000):
        GUARD.check("hash", hashlib.sha256(str(n).encode()).hexdigest())
        GUARD.check("hash", hashlib.sha512(str(n).encode()).hexdigest())
        GUARD.check("token", secrets.token_urlsafe(32))
        GUARD.check("token", base64.b64encode(secrets.token_bytes(48)).decode())


def test_allowed_keys_skip_the_value_check_too() -> None:
    guard = SensitiveDataGuard(allowed_keys=["test_card"])
    guard.check("test_card", "4111111111111111")
    with pytest.raises(SensitiveData):
        guard.check("other", "4111111111111111")


def test_nested_password_keys_are_refused() -> None:
    with pytest.raises(SensitiveData):
        GUARD.check("profile", {"name": "a", "password": "hunter2"})


def test_guard_settings(make_kit: MakeKit) -> None:
    kit = make_kit(sensitive_keys_allowed=["csrf_secret"], sensitive_patterns=[r"\bIBAN\b"])
    session = kit.open(None).session
    session["csrf_secret"] = "abc"
    with pytest.raises(SensitiveData):
        session["note"] = "my IBAN is ..."
    with pytest.raises(SensitiveData):
        session["secret"] = "x"
    relaxed = make_kit(sensitive_data=False).open(None).session
    relaxed["password"] = "not checked"
    relaxed["card"] = "4111111111111111"
    with pytest.raises(ConfigurationError, match="not a regex"):
        make_kit(sensitive_patterns=["("])
    with pytest.raises(ConfigurationError, match="lists"):
        make_kit(sensitive_keys_allowed="csrf_secret")


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.__setitem__("password", "x"),
        lambda s: s.update(password="x"),
        lambda s: s.setdefault("pin", "1234"),
        lambda s: s.__ior__({"card": "4111111111111111"}),
    ],
)
def test_every_write_path_is_guarded(make_kit: MakeKit, write: Callable[[Any], Any]) -> None:
    session = make_kit().open(None).session
    with pytest.raises(SensitiveData):
        write(session)
    assert session == {}
    assert not session.modified


def set_cookies(headers: list[tuple[str, str]]) -> dict[str, str]:
    return {v.split("=", 1)[0]: v for n, v in headers if n == "Set-Cookie"}


def cookie_header(headers: list[tuple[str, str]]) -> str:
    return "; ".join(
        v.split(";", 1)[0] for v in set_cookies(headers).values() if "Max-Age=0" not in v
    )


def test_opt_out_expires_the_visitor_cookie_and_remembers_without_an_id(
    make_kit: MakeKit,
) -> None:
    kit = make_kit()
    first = kit.open(None)
    assert first.visitor is not None
    cookie = cookie_header(first.response_headers([]))
    ex = kit.open(cookie)
    assert ex.visitor == first.visitor
    ex.opt_out()
    assert ex.visitor is None
    sent = set_cookies(ex.response_headers([]))
    assert "Max-Age=0" in sent["__Host-visitor"]
    assert sent["__Host-opt-out"].startswith("__Host-opt-out=1; Max-Age=31536000; Expires=")
    assert sent["__Host-opt-out"].endswith("; Path=/; Secure; HttpOnly; SameSite=Lax")
    later = kit.open("__Host-opt-out=1")
    assert later.visitor is None
    assert later.response_headers([]) == [("Vary", "Cookie")]


def test_opt_in_forgets_the_choice_and_issues_an_id(make_kit: MakeKit) -> None:
    kit = make_kit()
    ex = kit.open("__Host-opt-out=1")
    assert ex.visitor is None
    ex.opt_in()
    assert ex.visitor is not None
    headers = ex.response_headers([])
    assert "Max-Age=0" in set_cookies(headers)["__Host-opt-out"]
    assert kit.open(cookie_header(headers)).visitor == ex.visitor


def test_a_browser_signal_outlasts_opt_in(make_kit: MakeKit) -> None:
    ex = make_kit().open("__Host-opt-out=1", sec_gpc="1")
    ex.opt_in()
    assert ex.visitor is None
    sent = set_cookies(ex.response_headers([]))
    assert "__Host-visitor" not in sent
    assert "Max-Age=0" in sent["__Host-opt-out"]


def test_opt_out_is_a_no_op_without_a_visitor_cookie(make_kit: MakeKit) -> None:
    ex = make_kit(visitor_cookie=None).open(None)
    ex.opt_out()
    ex.opt_in()
    assert ex.response_headers([]) == []


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "198.51.100.7", "192.0.2.0"),
        (1, "198.51.100.7", "198.51.100.0"),
        (1, "203.0.113.66, 198.51.100.7", "198.51.100.0"),
        (2, "203.0.113.66, 198.51.100.7, 10.0.0.1", "198.51.100.0"),
        (2, "10.0.0.1", "192.0.2.0"),
        (1, None, "192.0.2.0"),
        (1, "not-an-ip", None),
    ],
)
def test_trusted_proxy_hops_decide_which_address_is_believed(
    make_kit: MakeKit, hops: int, forwarded: str | None, expected: str | None
) -> None:
    events: list[SecurityEvent] = []
    kit = make_kit(trusted_proxy_hops=hops, on_security_event=events.append)
    ex = kit.open("__Host-session=forged", client="192.0.2.10", forwarded_for=forwarded)
    assert events == []  # nothing is opened until the app uses the session
    ex.session.get("x")
    assert [e.client for e in events] == [expected]


def test_trusted_proxy_hops_must_be_a_count(make_kit: MakeKit) -> None:
    with pytest.raises(ConfigurationError, match="number of proxies"):
        make_kit(trusted_proxy_hops=-1)


def test_patterns_do_not_refuse_text_just_for_being_non_ascii() -> None:
    guard = SensitiveDataGuard(patterns=[r"\bIBAN\b"])
    for text in ("café", "ﬁle", fullwidth("note")):
        guard.check("note", text)


def test_the_guard_remembers_its_verdict_on_4096_keys_and_no_more() -> None:
    guard = SensitiveDataGuard()
    for number in range(4100):
        assert not guard.key_is_sensitive(f"item{number}")
    assert len(guard._known) == 4096
    assert guard.key_is_sensitive("password")
    assert len(guard._known) == 4096


def test_opting_out_again_keeps_the_opt_out_cookie(make_kit: MakeKit) -> None:
    ex = make_kit().open("__Host-opt-out=1")
    ex.opt_out()
    assert ex.visitor is None
    assert "__Host-opt-out" not in set_cookies(ex.response_headers([]))


@pytest.mark.parametrize(
    "value", [None, True, 0, 2.5, "hello", [], [1, "x", None], {"note": "x"}, ({"a": [1]},)]
)
def test_value_is_sensitive_answers_a_bool_for_harmless_values(value: object) -> None:
    assert GUARD.value_is_sensitive(value) is False
