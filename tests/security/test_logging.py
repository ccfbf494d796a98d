"""ASVS V16 security events: every refusal is logged once, never with the token or data.

Also V4.1.3: the client address in an event comes from the connection, or from
``X-Forwarded-For`` only as far as ``trusted_proxy_hops`` proxies vouch for it.
"""

from __future__ import annotations

import base64
import logging
import struct
from collections.abc import Callable
from typing import Any

import pytest
from sksec import CoreBrowser

import sessionkit
from sessionkit import SessionKit
from sessionkit.seal import Sealer, b64decode, b64encode
from sessionkit.stores import MemoryStore

pytestmark = pytest.mark.security

MakeKit = Callable[..., SessionKit]
SESSION = "__Host-session"
SECRET_DATA = "alice.liddell@example.com"


def _login(browser: CoreBrowser) -> None:
    browser.request(lambda s: (s.login(SECRET_DATA), s.update(note=SECRET_DATA)))


def _each_reason(kit: SessionKit, clock: Any, key: str) -> dict[str, str]:
    """reason -> a cookie header that makes the kit refuse for that reason."""
    browser = CoreBrowser(kit)
    _login(browser)
    good = browser.jar[SESSION]
    raw = b64decode(good)
    hour = struct.unpack(">I", raw[5:9])[0]
    other = SessionKit(secret_keys=[sessionkit.generate_key()], clock=clock)
    foreign = CoreBrowser(other)
    _login(foreign)
    sealer = Sealer(kit.keys, "session", SESSION, max_age=kit.absolute_timeout, max_skew=60)
    return {
        "malformed": f"{SESSION}={good[:20]}!",
        "tampered": f"{SESSION}={good[:-2]}{'AA' if good[-2:] != 'AA' else 'BA'}",
        "unknown_key": f"{SESSION}={foreign.jar[SESSION]}",
        "oversized": f"{SESSION}={good * 40}",
        "duplicate": f"{SESSION}={good}; {SESSION}={good}",
        "from_the_future": f"{SESSION}={b64encode(raw[:5] + struct.pack('>I', hour + 3) + raw[9:])}",  # noqa: E501
        "invalid_payload": f"{SESSION}={sealer.seal(b'[1,2,3]', clock.now)}",
    }


@pytest.mark.asvs("16.2.5", "16.3.3", "16.4.1")
def test_each_refusal_is_one_event_without_the_token_or_data(
    make_kit: MakeKit, clock: Any, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[Any] = []
    kit = make_kit(on_security_event=events.append, visitor_cookie=None)
    cases = _each_reason(kit, clock, key)
    for reason, header in cases.items():
        events.clear()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="sessionkit.security"):
            kit.open(header, client="198.51.100.23").session.get("")
        assert [e.reason for e in events] == [reason]
        assert events[0].cookie == SESSION
        assert events[0].client == "198.51.100.0", "truncated to its /24 by default"
        assert len(caplog.records) == 1, reason
        _assert_no_secret(caplog, events, header)


def _assert_no_secret(caplog: pytest.LogCaptureFixture, events: list[Any], header: str) -> None:
    values = [pair.split("=", 1)[1] for pair in header.split("; ")]
    texts = [caplog.text, *(r.getMessage() for r in caplog.records), *map(repr, events)]
    texts += [repr(vars(r)) for r in caplog.records]
    encoded = base64.b64encode(SECRET_DATA.encode()).decode()
    for text in texts:
        for value in values:
            for i in range(0, max(1, len(value) - 12), 12):
                assert value[i : i + 12] not in text, "a piece of the cookie value was logged"
        assert SECRET_DATA not in text
        assert encoded[:12] not in text
    for record in caplog.records:
        assert "\n" not in record.getMessage()


@pytest.mark.asvs("16.2.5", "16.3.3")
def test_store_refusals_are_logged_without_the_token(
    make_kit: MakeKit, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[Any] = []
    kit = make_kit(store=MemoryStore(), rotation_grace=5, on_security_event=events.append)
    browser = CoreBrowser(kit)
    _login(browser)
    stolen = browser.copy()
    with caplog.at_level(logging.INFO, logger="sessionkit.security"):
        browser.request(lambda s: s.rotate())
        browser.request()  # the new id is presented: the old one has 5 s left
        clock.advance(6)
        stolen.copy().request()  # replayed after the grace window: the family is revoked
        browser.request()  # the current cookie is dead too
    assert [e.reason for e in events] == ["replayed_id", "revoked"]
    for value in stolen.jar.values():
        assert value[:16] not in caplog.text
    assert SECRET_DATA not in caplog.text


@pytest.mark.asvs("7.3.1", "7.3.2", "16.3.3")
def test_expiry_is_logged_at_info_and_attacks_at_warning(
    make_kit: MakeKit, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    kit = make_kit(rotate_every=None)
    browser = CoreBrowser(kit)
    _login(browser)
    idle = browser.copy()
    with caplog.at_level(logging.INFO, logger="sessionkit.security"):
        clock.advance(kit.idle_timeout + 1)
        idle.request()
        browser.request(cookie=f"{SESSION}=x")
    levels = [(r.levelno, r.getMessage().rsplit(": ", 1)[1].split(" ")[0]) for r in caplog.records]
    assert levels == [(logging.INFO, "expired_idle"), (logging.WARNING, "malformed")]


@pytest.mark.asvs("16.4.1", "4.1.3")
@pytest.mark.parametrize(
    ("peer", "forwarded", "hops", "logged"),
    [
        ("198.51.100.23", None, 0, "198.51.100.0"),
        ("198.51.100.23", "6.6.6.6", 0, "198.51.100.0"),  # not believed without a proxy
        ("10.0.0.2", "6.6.6.6, 198.51.100.23", 1, "198.51.100.0"),  # the proxy's entry
        ("10.0.0.2", "198.51.100.23, 6.6.6.6, 192.0.2.1", 2, "6.6.6.0"),
        ("10.0.0.2", "x\r\nFAKE LOG LINE", 1, None),
        ("1.2.3.4\r\nFAKE LOG LINE", None, 0, None),
        ("<script>", None, 0, None),
        ("2001:db8:1234:5678::1", None, 0, "2001:db8:1234::"),
    ],
)
def test_the_logged_client_cannot_be_forged_or_inject_lines(
    make_kit: MakeKit,
    caplog: pytest.LogCaptureFixture,
    peer: str,
    forwarded: str | None,
    hops: int,
    logged: str | None,
) -> None:
    events: list[Any] = []
    kit = make_kit(on_security_event=events.append, trusted_proxy_hops=hops)
    with caplog.at_level(logging.INFO, logger="sessionkit.security"):
        kit.open(f"{SESSION}=garbage", client=peer, forwarded_for=forwarded).session.get("")
    assert [e.client for e in events] == [logged]
    assert len(caplog.records) == 1
    assert "\n" not in caplog.records[0].getMessage()
    assert "\r" not in caplog.records[0].getMessage()
    assert "FAKE" not in caplog.text
