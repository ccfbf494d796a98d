"""Sessions with a server-side store: revocation, rotation with grace, replay, spill-over.

These run the core against the real in-process MemoryStore; the same flows run against
SQLite and Redis in tests/integration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sessionkit import ConfigurationError, SecurityEvent, SessionKit, SessionTooLarge
from sessionkit.gate import EarlyResponse
from sessionkit.kit import Exchange
from sessionkit.stores.memory import MemoryStore

MakeKit = Callable[..., SessionKit]


class Client:
    """A cookie jar that runs requests through the core the way a front end does."""

    def __init__(self, kit: SessionKit) -> None:
        self.kit = kit
        self.jar: dict[str, str] = {}

    def request(self, act: Callable[[Exchange], Any] = lambda ex: None) -> Exchange:
        cookie = "; ".join(f"{k}={v}" for k, v in self.jar.items()) or None
        ex = self.kit.open(cookie)
        assert ex.load_record() is None
        act(ex)
        changes = ex.finish([], [])
        assert not isinstance(changes, EarlyResponse)
        for name, value in changes.add:
            if name == "Set-Cookie":
                pair = value.split(";", 1)[0]
                key, _, val = pair.partition("=")
                if "Max-Age=0" in value:
                    self.jar.pop(key, None)
                else:
                    self.jar[key] = val
        return ex

    def copy(self) -> Client:
        other = Client(self.kit)
        other.jar = dict(self.jar)
        return other


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def events() -> list[SecurityEvent]:
    return []


@pytest.fixture
def kit(make_kit: MakeKit, store: MemoryStore, events: list[SecurityEvent]) -> SessionKit:
    return make_kit(store=store, visitor_cookie=None, on_security_event=events.append)


def login(ex: Exchange, user: str = "alice") -> None:
    ex.session.login(user)


def test_requests_that_never_write_create_no_record(kit: SessionKit, store: MemoryStore) -> None:
    browser = Client(kit)
    browser.request(lambda ex: ex.session.get("x"))
    browser.request()
    assert len(store) == 0
    assert browser.jar == {}


def test_a_written_session_has_a_record_and_reads_back(kit: SessionKit, store: MemoryStore) -> None:
    browser = Client(kit)
    browser.request(lambda ex: ex.session.update(cart=[1, 2]))
    assert len(store) == 1
    assert browser.request().session == {"cart": [1, 2]}


def test_cookie_copied_before_logout_is_refused_after(
    kit: SessionKit, events: list[SecurityEvent]
) -> None:
    browser = Client(kit)
    browser.request(login)
    thief = browser.copy()
    assert thief.request().session.user_id == "alice"
    browser.request(lambda ex: ex.session.invalidate())
    replayed = thief.request()
    assert replayed.session.user_id is None
    assert replayed.session == {}
    assert [e.reason for e in events] == ["revoked"]
    assert "__Host-session" not in thief.jar


def test_login_rotates_without_grace_so_a_fixed_id_is_dead(
    kit: SessionKit, events: list[SecurityEvent]
) -> None:
    victim = Client(kit)
    victim.request(lambda ex: ex.session.update(cart=[1]))
    attacker = victim.copy()
    before = victim.request().session.id
    after = victim.request(login).session
    assert after.id != before
    assert after == {"cart": [1]}
    assert attacker.request().session.user_id is None
    assert [e.reason for e in events] == ["revoked"]
    assert victim.request().session.user_id == "alice"


def test_timed_rotation_keeps_a_grace_window_then_detects_replay(
    kit: SessionKit, clock: Any, events: list[SecurityEvent]
) -> None:
    browser = Client(kit)
    first = browser.request(login).session.id
    stale = browser.copy()
    clock.advance(kit.rotate_every or 0)
    rotated = browser.request().session.id
    assert rotated != first
    clock.advance(kit.rotation_grace - 1)
    in_flight = stale.copy().request()
    assert in_flight.session.user_id == "alice"
    assert in_flight.session.id == rotated
    assert in_flight.header_changes([], []).add == [("Vary", "Cookie")], "nothing re-issued"
    assert events == []
    clock.advance(2)
    assert stale.request().session.user_id is None
    assert [e.reason for e in events] == ["replayed_id"]
    assert browser.request().session.user_id is None, "the whole session is revoked"
    assert [e.reason for e in events] == ["replayed_id", "revoked"]


def test_explicit_rotate_keeps_data_and_user(kit: SessionKit) -> None:
    browser = Client(kit)
    browser.request(login)
    old = browser.copy()
    ex = browser.request(lambda ex: ex.session.rotate())
    assert browser.request().session.id == ex.session.id
    assert browser.request().session.user_id == "alice"
    assert old.request().session.id == ex.session.id, "grace window"


def test_revoke_user_ends_every_session_of_that_user_only(
    kit: SessionKit, store: MemoryStore
) -> None:
    laptop, phone, other = Client(kit), Client(kit), Client(kit)
    laptop.request(login)
    phone.request(login)
    other.request(lambda ex: login(ex, "bob"))
    assert kit.revoke_user("alice") == 2
    assert laptop.request().session.user_id is None
    assert phone.request().session.user_id is None
    assert other.request().session.user_id == "bob"


def test_revoke_user_needs_a_store(make_kit: MakeKit) -> None:
    kit = make_kit()
    with pytest.raises(ConfigurationError, match="needs a server-side store"):
        kit.revoke_user("alice")


def test_store_must_be_a_store(make_kit: MakeKit) -> None:
    with pytest.raises(ConfigurationError, match="not a sessionkit store"):
        make_kit(store={})


def test_a_session_too_large_for_a_cookie_is_kept_in_the_store(
    kit: SessionKit, store: MemoryStore
) -> None:
    browser = Client(kit)
    blob = "x" * 6000
    browser.request(lambda ex: ex.session.update(blob=blob))
    assert len(browser.jar["__Host-session"]) < 200
    assert browser.request().session == {"blob": blob}
    browser.request(lambda ex: ex.session.update(more=1))
    assert browser.request().session == {"blob": blob, "more": 1}
    browser.request(lambda ex: ex.session.pop("blob"))
    assert browser.request().session == {"more": 1}
    assert len(browser.jar["__Host-session"]) > 60


def test_without_a_store_a_too_large_session_still_raises(make_kit: MakeKit) -> None:
    ex = make_kit(visitor_cookie=None).open(None)
    ex.session["blob"] = "x" * 6000
    with pytest.raises(SessionTooLarge):
        ex.response_headers([])


def test_record_expires_with_the_session(kit: SessionKit, store: MemoryStore, clock: Any) -> None:
    browser = Client(kit)
    browser.request(login)
    family = browser.request().session.family
    record = store.load(family, clock.now)
    assert record is not None
    assert record.expires_at == pytest.approx(
        clock.now + kit.idle_timeout + kit.touch_interval, abs=1
    )
    clock.advance(kit.idle_timeout + kit.touch_interval + 1)
    assert store.load(family, clock.now) is None


def test_data_writes_skip_the_store_while_the_record_outlives_the_session(
    kit: SessionKit, store: MemoryStore, clock: Any
) -> None:
    browser = Client(kit)
    first = browser.request(login)
    assert first.store_ops
    clock.advance(1)
    write = browser.request(lambda ex: ex.session.update(n=1))
    assert write.store_ops == [], "only the cookie changed"
    clock.advance(kit.touch_interval)
    later = browser.request(lambda ex: ex.session.update(n=2))
    assert [family for family, _ in later.store_ops] == [later.session.family]
    assert browser.request().session == {"n": 2}
    clock.advance(kit.idle_timeout - 1)
    assert browser.request().session == {"n": 2}, "the record kept up with the session"


def test_clearing_a_session_deletes_its_record(kit: SessionKit, store: MemoryStore) -> None:
    browser = Client(kit)
    family = browser.request(lambda ex: ex.session.update(a=1)).session.family
    assert store.load(family, 0) is not None
    browser.request(lambda ex: ex.session.clear())
    assert store.load(family, 0) is None
    assert browser.jar == {}
