"""ASVS V7 session management: ids, fixation, renewal, timeouts, logout, revocation.

Each test drives the framework-free core the way a front end does (``CoreBrowser``),
with a hand-moved clock, so a timeout is proven on the server side: the browser here
ignores ``Max-Age`` and keeps sending what it has.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sksec import BASE64URL, CoreBrowser

import sessionkit
from sessionkit import ConfigurationError, SessionKit
from sessionkit.kit import DEFAULT_ABSOLUTE_TIMEOUT, DEFAULT_IDLE_TIMEOUT
from sessionkit.seal import Sealer, b64encode
from sessionkit.stores import MemoryStore

pytestmark = pytest.mark.security

MakeKit = Callable[..., SessionKit]
SESSION = "__Host-session"
ROOT = Path(__file__).resolve().parents[2]


def login(user: str, **data: Any) -> Callable[[Any], None]:
    def app(session: Any) -> None:
        session.login(user)
        session.update(data)

    return app


def write(**data: Any) -> Callable[[Any], None]:
    return lambda session: session.update(data)


def state(response: Any) -> tuple[Any, dict[str, Any]]:
    return response.session.user_id, dict(response.session)


# ---------------------------------------------------------------- ids


def _decoded_id(value: str) -> bytes:
    assert len(value) == 22
    assert BASE64URL.fullmatch(value)
    raw = base64.urlsafe_b64decode(value + "==")
    assert len(raw) == 16
    return raw


@pytest.mark.asvs("7.2.2", "7.2.3", "11.5.1")
def test_session_ids_have_128_random_bits_and_never_repeat(make_kit: MakeKit) -> None:
    """Ids and family ids (the store's reference) are 128 CSPRNG bits, all distinct."""
    kit = make_kit()
    n = 20_000
    ids: set[bytes] = set()
    families: set[bytes] = set()
    ones = [0] * 128
    for _ in range(n):
        session = kit.open(None).session
        raw = _decoded_id(session.id)
        ids.add(raw)
        families.add(_decoded_id(session.family))
        bits = int.from_bytes(raw, "big")
        for i in range(128):
            ones[i] += (bits >> i) & 1
    assert len(ids) == n
    assert len(families) == n
    assert not ids & families
    # Each of the 128 bits is set in about half the ids: none is fixed or derived from a
    # counter or a clock (the binomial spread at n=20,000 is 0.0035; the bound is 10x).
    for i, count in enumerate(ones):
        assert 0.465 < count / n < 0.535, (i, count)


@pytest.mark.asvs("7.2.2", "11.5.1", "14.3.3")
def test_visitor_ids_are_random_and_carry_nothing(make_kit: MakeKit) -> None:
    kit = make_kit()
    visitors = {kit.open(None).visitor for _ in range(5_000)}
    assert len(visitors) == 5_000
    for visitor in list(visitors)[:50]:
        assert visitor is not None
        _decoded_id(visitor)


@pytest.mark.asvs("7.2.2")
def test_every_seal_of_one_session_is_a_new_token(make_kit: MakeKit, clock: Any) -> None:
    """Tokens are generated per response (fresh nonce), never a static value."""
    kit = make_kit(visitor_cookie=None)
    browser = CoreBrowser(kit)
    tokens = set()
    for i in range(20):
        browser.request(write(n=i))
        tokens.add(browser.jar[SESSION])
    assert len(tokens) == 20


# ---------------------------------------------------------------- adoption


def _foreign_values(kit: SessionKit, key: str, clock: Any) -> dict[str, str]:
    now = clock.now
    other = SessionKit(secret_keys=[sessionkit.generate_key()], clock=clock)
    other_browser = CoreBrowser(other)
    other_browser.request(login("alice"))
    ours = CoreBrowser(kit)
    ours.request(login("alice"))
    genuine = ours.jar[SESSION]
    raw = base64.urlsafe_b64decode(genuine + "==")
    forged_body = raw[:21] + bytes(len(raw) - 21)
    insecure = SessionKit(secret_keys=[key], clock=clock, insecure_development=True)
    plain = CoreBrowser(insecure)
    plain.request(login("alice"))
    payload = b'["AAAAAAAAAAAAAAAAAAAAAA","BBBBBBBBBBBBBBBBBBBBBB",%d,%d,%d,"alice",{}]' % (
        (int(now),) * 3
    )
    return {
        "a chosen id": "AAAAAAAAAAAAAAAAAAAAAA",
        "a chosen long id": "attacker-chosen-session-id-0123456789",
        "an unsealed payload": b64encode(payload),
        "another key's token": other_browser.jar[SESSION],
        "our header, forged body": b64encode(forged_body),
        "our token for another cookie name": plain.jar["session"],
        "a token sealed for another purpose": _sealed_for_visitor_purpose(kit, payload, now),
        "empty": "",
    }


def _sealed_for_visitor_purpose(kit: SessionKit, payload: bytes, now: float) -> str:
    sealer = Sealer(kit.keys, "visitor", SESSION, max_age=kit.absolute_timeout, max_skew=60)
    return sealer.seal(payload, now)


@pytest.mark.asvs("7.2.1", "9.1.1", "9.2.2", "9.2.3")
def test_values_the_server_did_not_issue_are_never_adopted(
    make_kit: MakeKit, key: str, clock: Any, events: list[Any]
) -> None:
    kit = make_kit(on_security_event=events.append)
    for what, value in _foreign_values(kit, key, clock).items():
        events.clear()
        browser = CoreBrowser(kit, {SESSION: value})
        response = browser.request(path="/")
        session = response.session
        assert session is not None
        assert session.is_new, what
        assert session.user_id is None, what
        assert dict(session) == {}, what
        assert session.id not in value, what
        assert response.cookies[SESSION][1]["max-age"] == "0", what
        assert [e.reason for e in events] != [], what
        assert SESSION not in browser.jar, what


@pytest.mark.asvs("7.2.1")
def test_a_sealed_session_the_store_does_not_know_is_refused(
    make_kit: MakeKit, events: list[Any]
) -> None:
    """With a store, even an authentic cookie is adopted only if the store says so."""
    issued_elsewhere = make_kit(store=MemoryStore())
    browser = CoreBrowser(issued_elsewhere)
    browser.request(login("alice"))
    kit = make_kit(store=MemoryStore(), on_security_event=events.append)
    response = CoreBrowser(kit, dict(browser.jar)).request(path="/app")
    assert response.session is not None
    assert response.session.user_id is None
    assert response.session.is_new
    assert [e.reason for e in events] == ["revoked"]


# ---------------------------------------------------------------- fixation, renewal


@pytest.mark.asvs("7.2.4")
@pytest.mark.parametrize("with_store", [False, True])
def test_login_issues_a_new_id_and_a_planted_cookie_gains_nothing(
    make_kit: MakeKit, with_store: bool
) -> None:
    kit = make_kit(store=MemoryStore() if with_store else None)
    attacker = CoreBrowser(kit)
    attacker.request(write(cart=["planted"]))
    planted = attacker.request().session
    assert planted is not None
    victim = CoreBrowser(kit, dict(attacker.jar))  # session fixation: the cookie is planted
    logged_in = victim.request(login("victim"))
    assert logged_in.session is not None
    assert logged_in.session.id != planted.id
    assert logged_in.session.family != planted.family
    assert victim.jar[SESSION] != attacker.jar[SESSION]
    after = attacker.request()
    assert after.session is not None
    assert after.session.user_id is None, "the planted cookie never becomes the victim's"
    if with_store:
        assert after.session.is_new, "with a store the pre-login session ended"
        assert after.session == {}


@pytest.mark.asvs("7.2.4")
def test_re_authentication_ends_the_previous_token(make_kit: MakeKit) -> None:
    kit = make_kit(store=MemoryStore())
    browser = CoreBrowser(kit)
    first = browser.request(login("alice")).session
    before = browser.copy()
    second = browser.request(login("alice")).session
    assert first is not None
    assert second is not None
    assert second.id != first.id
    assert second.family != first.family
    assert before.request().session.user_id is None  # type: ignore[union-attr]
    assert browser.request().session.user_id == "alice"  # type: ignore[union-attr]


@pytest.mark.asvs("SK-ROTATE-PRIVILEGE")
def test_rotate_on_privilege_change_ends_the_old_id(
    make_kit: MakeKit, clock: Any, events: list[Any]
) -> None:
    kit = make_kit(store=MemoryStore(), rotation_grace=5, on_security_event=events.append)
    browser = CoreBrowser(kit)
    browser.request(login("alice", role="user"))
    before = browser.copy()
    old_id = browser.request().session.id  # type: ignore[union-attr]

    def promote(session: Any) -> None:
        session["role"] = "admin"
        session.rotate()

    promoted = browser.request(promote).session
    assert promoted is not None
    assert promoted.id != old_id
    assert dict(promoted) == {"role": "admin"}
    browser.request()  # the browser presents the new id
    clock.advance(6)  # past the grace window: the old cookie is a replayed copy
    replayed = before.request().session
    assert replayed is not None
    assert replayed.user_id is None
    assert "replayed_id" in [e.reason for e in events]
    # and the whole session is revoked: the promoted cookie is dead too
    assert browser.request().session.user_id is None  # type: ignore[union-attr]


@pytest.mark.asvs("SK-ROTATE-TIMER")
@pytest.mark.parametrize("with_store", [False, True])
def test_the_id_changes_on_a_timer_and_the_data_stays(
    make_kit: MakeKit, clock: Any, with_store: bool
) -> None:
    kit = make_kit(store=MemoryStore() if with_store else None, rotate_every=900)
    browser = CoreBrowser(kit)
    first = browser.request(login("alice", cart=[1])).session
    assert first is not None
    seen = [first.id]
    for _ in range(4):
        clock.advance(450)
        session = browser.request().session
        assert session is not None
        assert session.user_id == "alice"
        assert dict(session) == {"cart": [1]}
        seen.append(session.id)
    # rotated at +900 and +1800 (every second step), never in between
    assert seen[1] == seen[0]
    assert seen[2] != seen[1]
    assert seen[3] == seen[2]
    assert seen[4] != seen[3]


@pytest.mark.asvs("SK-ROTATE-TIMER", "7.4.1")
def test_after_a_timed_rotation_the_old_cookie_ends_with_its_grace(
    make_kit: MakeKit, clock: Any, events: list[Any]
) -> None:
    kit = make_kit(
        store=MemoryStore(), rotate_every=900, rotation_grace=10, on_security_event=events.append
    )
    browser = CoreBrowser(kit)
    browser.request(login("alice"))
    old = browser.copy()
    clock.advance(900)
    browser.request()  # rotates
    browser.request()  # the browser presents the new id
    clock.advance(5)
    in_grace = old.copy().request().session
    assert in_grace is not None
    assert in_grace.user_id == "alice", "a request in flight within the grace window"
    clock.advance(6)
    assert old.request().session.user_id is None  # type: ignore[union-attr]
    assert events[-1].reason == "replayed_id"


# ---------------------------------------------------------------- timeouts


@pytest.mark.asvs("7.3.1")
@pytest.mark.parametrize("with_store", [False, True])
def test_idle_timeout_is_enforced_by_the_server(
    make_kit: MakeKit, clock: Any, events: list[Any], with_store: bool
) -> None:
    kit = make_kit(
        store=MemoryStore() if with_store else None,
        rotate_every=None,
        on_security_event=events.append,
    )
    browser = CoreBrowser(kit)
    response = browser.request(login("alice"))
    max_age = int(response.cookies[SESSION][1]["max-age"])
    assert max_age <= kit.idle_timeout
    kept = browser.copy()  # a client that ignores Max-Age keeps this cookie
    clock.advance(kit.idle_timeout - 1)
    assert kept.copy().request().session.user_id == "alice"  # type: ignore[union-attr]
    clock.advance(2)
    late = kept.request()
    assert late.session is not None
    assert late.session.user_id is None
    assert late.cookies[SESSION][1]["max-age"] == "0"
    if not with_store:
        assert [e.reason for e in events] == ["expired_idle"]


@pytest.mark.asvs("7.3.2")
def test_absolute_timeout_ends_even_an_active_session(
    make_kit: MakeKit, clock: Any, events: list[Any]
) -> None:
    kit = make_kit(on_security_event=events.append)
    browser = CoreBrowser(kit)
    browser.request(login("alice"))
    start = clock.now
    while clock.now + 600 <= start + kit.absolute_timeout:
        clock.advance(600)
        response = browser.request()
        assert response.session.user_id == "alice", clock.now - start  # type: ignore[union-attr]
        for _value, attrs in response.cookies.values():
            if attrs.get("max-age"):
                assert clock.now + int(attrs["max-age"]) <= start + kit.absolute_timeout + 1
    clock.now = start + kit.absolute_timeout + 1
    assert browser.request().session.user_id is None  # type: ignore[union-attr]
    assert [e.reason for e in events] == ["expired_absolute"]


@pytest.mark.asvs("7.1.1")
def test_the_timeouts_are_documented_as_configured() -> None:
    assert DEFAULT_IDLE_TIMEOUT == 30 * 60
    assert DEFAULT_ABSOLUTE_TIMEOUT == 12 * 3600
    security = (ROOT / "SECURITY.md").read_text()
    assert "30 minutes" in security
    assert "12 hours" in security
    assert "idle_timeout" in security
    assert "absolute_timeout" in security


# ---------------------------------------------------------------- termination


@pytest.mark.asvs("7.4.1", "14.3.1")
def test_logout_expires_the_cookie_and_with_a_store_ends_every_copy(
    make_kit: MakeKit, events: list[Any], clock: Any
) -> None:
    kit = make_kit(store=MemoryStore(), require_cookies=["/app"], on_security_event=events.append)
    browser = CoreBrowser(kit)
    browser.request(login("alice", cart=[1]))
    stolen = browser.copy()
    out = browser.request(lambda session: session.invalidate())
    value, attrs = out.cookies[SESSION]
    assert value == ""
    assert attrs["max-age"] == "0"
    assert attrs["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert SESSION not in browser.jar
    # Within the grace window a copy is answered as nobody, its cookie left alone (a
    # parallel tab of the browser that logged out may already hold a newer cookie).
    quiet = stolen.copy().request()
    assert quiet.session is not None
    assert quiet.session.user_id is None
    assert SESSION not in quiet.cookies
    clock.advance(kit.rotation_grace + 1)
    for path in ("/", "/app/inbox"):
        replay = stolen.copy().request(path=path)
        assert replay.session is not None
        assert replay.session.user_id is None, path
        assert dict(replay.session) == {}, path
        assert replay.cookies[SESSION][1]["max-age"] == "0", path
    assert {e.reason for e in events} == {"revoked"}


@pytest.mark.asvs("SK-STATELESS-REPLAY")
def test_without_a_store_a_copy_taken_before_logout_lives_until_it_times_out(
    make_kit: MakeKit, clock: Any
) -> None:
    """The documented limit of cookie-only mode (SECURITY.md, threat model)."""
    kit = make_kit(rotate_every=None)
    browser = CoreBrowser(kit)
    browser.request(login("alice"))
    stolen = browser.copy()
    browser.request(lambda session: session.invalidate())
    assert browser.request().session.user_id is None  # type: ignore[union-attr]
    clock.advance(60)
    assert stolen.request().session.user_id == "alice"  # type: ignore[union-attr]
    clock.advance(kit.idle_timeout + 1)
    assert stolen.request().session.user_id is None  # type: ignore[union-attr]


@pytest.mark.asvs("7.4.2", "7.4.3", "7.4.5")
def test_revoke_user_ends_every_session_of_that_user_only(make_kit: MakeKit) -> None:
    kit = make_kit(store=MemoryStore())
    laptop, phone, other = CoreBrowser(kit), CoreBrowser(kit), CoreBrowser(kit)
    laptop.request(login("carol"))
    phone.request(login("carol"))
    other.request(login("dave"))
    assert kit.revoke_user("carol") == 2
    assert laptop.request().session.user_id is None  # type: ignore[union-attr]
    assert phone.request().session.user_id is None  # type: ignore[union-attr]
    assert other.request().session.user_id == "dave"  # type: ignore[union-attr]
    # after a password change, "end all other sessions" and sign in again here
    laptop.request(login("carol"))
    assert laptop.request().session.user_id == "carol"  # type: ignore[union-attr]
    with pytest.raises(ConfigurationError, match="store"):
        make_kit().revoke_user("carol")


@pytest.mark.asvs("7.4.5", "11.2.2")
def test_removing_a_key_ends_every_session_sealed_under_it(
    make_kit: MakeKit, key: str, clock: Any, events: list[Any]
) -> None:
    """ "End all sessions of all users": deploy a key ring without the old key."""
    old = make_kit()
    browsers = [CoreBrowser(old) for _ in range(5)]
    for i, browser in enumerate(browsers):
        browser.request(login(f"user{i}"))
    rotated = make_kit(secret_keys=[sessionkit.generate_key()], on_security_event=events.append)
    for browser in browsers:
        browser.kit = rotated
        assert browser.request().session.user_id is None  # type: ignore[union-attr]
    assert {e.reason for e in events} == {"unknown_key"}
