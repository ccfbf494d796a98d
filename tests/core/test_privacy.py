"""Privacy promises as properties of the library: no secrets in sessions, opt-out, addresses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sessionkit import ConfigurationError, SecurityEvent, SessionKit
from sessionkit.privacy import SensitiveData, SensitiveDataGuard

MakeKit = Callable[..., SessionKit]
GUARD = SensitiveDataGuard()


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "user_password",
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
        "card: 5555 5555 5555 4444, exp 12/30",
        "378282246310005",
        "6011111111111117",
        "2221000000000009",
        4111111111111111,
        ["ok", {"nested": "4012888888881881"}],
        {"deep": [[["4111111111111111"]]]},
    ],
)
def test_card_numbers_are_refused_wherever_they_are(value: Any) -> None:
    with pytest.raises(SensitiveData, match="payment card number") as caught:
        GUARD.check("note", value)
    assert "4111" not in str(caught.value)
    assert "5555" not in str(caught.value)


@pytest.mark.parametrize(
    "value",
    [
        "4111111111111112",
        "1764240000000",
        1764240000000,
        "+44 20 7946 0958",
        "order 2026-11-27-000123",
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


def test_digests_and_tokens_are_not_card_numbers() -> None:
    import hashlib
    import secrets

    for n in range(3000):
        GUARD.check("hash", hashlib.sha256(str(n).encode()).hexdigest())
        GUARD.check("hash", hashlib.sha512(str(n).encode()).hexdigest())
        GUARD.check("token", secrets.token_urlsafe(32))


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
    cookie = cookie_header(first.response_headers([]))
    ex = kit.open(cookie)
    assert ex.visitor == first.visitor
    ex.opt_out()
    assert ex.visitor is None
    sent = set_cookies(ex.response_headers([]))
    assert "Max-Age=0" in sent["__Host-visitor"]
    assert sent["__Host-opt-out"].startswith("__Host-opt-out=1; Max-Age=31536000; Path=/; Secure")
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
    kit.open("__Host-session=forged", client="192.0.2.10", forwarded_for=forwarded)
    assert [e.client for e in events] == [expected]


def test_trusted_proxy_hops_must_be_a_count(make_kit: MakeKit) -> None:
    with pytest.raises(ConfigurationError, match="number of proxies"):
        make_kit(trusted_proxy_hops=-1)
