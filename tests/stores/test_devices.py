"""A user's sessions on every store (memory, SQLite, real Redis): list, end one, hooks.

Each test drives the real core (``SessionKit.open`` / ``Exchange``) with browsers that
differ by User-Agent, as a front end would, against each kind of store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flows import Browser, Flight, login

from sessionkit import SecurityEvent, SessionKit
from sessionkit.devices import NewDevice
from sessionkit.stores.base import Store
from support import CHROME_ANDROID, FIREFOX_WINDOWS, SAFARI_IPHONE


@dataclass
class Device(Browser):
    """A browser with its own User-Agent and address."""

    user_agent: str = FIREFOX_WINDOWS
    client: str = "192.0.2.1"

    def start(self, *, method: str = "GET", path: str = "/") -> Flight:
        exchange = self.kit.open(
            self.header(), method=method, path=path, client=self.client, user_agent=self.user_agent
        )
        early = exchange.early
        if early is None:
            early = exchange.load_record()
        return Flight(self, exchange, early)


@pytest.fixture
def events() -> list[SecurityEvent]:
    return []


@pytest.fixture
def kit(
    any_store: Store, make_kit: Callable[..., SessionKit], events: list[SecurityEvent]
) -> SessionKit:
    return make_kit(store=any_store, on_security_event=events.append)


def _signed_in(kit: SessionKit, user: str, agent: str, client: str = "192.0.2.1") -> Device:
    device = Device(kit, user_agent=agent, client=client)
    device.request(login(user))
    assert device.user() == user
    return device


def test_the_list_shows_each_session_with_its_label_and_address(kit: SessionKit) -> None:
    laptop = _signed_in(kit, "alice", FIREFOX_WINDOWS, "198.51.100.77")
    phone = _signed_in(kit, "alice", SAFARI_IPHONE, "203.0.113.9")
    _signed_in(kit, "bob", CHROME_ANDROID)
    listed = laptop.request(lambda s: kit.sessions_of("alice", current=s)).result
    assert [(i.device, i.address, i.current) for i in listed] == [
        ("Firefox on Windows", "198.51.100.0", True),
        ("Mobile Safari on iOS", "203.0.113.0", False),
    ]
    for info in listed:
        assert info.created_at == info.auth_time == int(kit.clock())
        assert info.last_seen >= info.created_at
    from_phone = phone.request(lambda s: kit.sessions_of("alice", current=s)).result
    assert [i.current for i in from_phone] == [True, False]
    assert from_phone[0].handle == listed[1].handle
    assert [i.device for i in kit.sessions_of("bob")] == ["Chrome Mobile on Android"]


def test_the_list_never_holds_a_session_id_or_family(kit: SessionKit) -> None:
    device = _signed_in(kit, "alice", FIREFOX_WINDOWS)
    state = device.request(lambda s: s.state).result
    text = repr(kit.sessions_of("alice"))
    assert state.id not in text
    assert state.family not in text
    for value in device.jar.values():
        assert value not in text


def test_ending_one_session_logs_out_exactly_that_browser(
    kit: SessionKit, events: list[SecurityEvent]
) -> None:
    laptop = _signed_in(kit, "alice", FIREFOX_WINDOWS)
    phone = _signed_in(kit, "alice", SAFARI_IPHONE)
    tablet = _signed_in(kit, "alice", CHROME_ANDROID)
    listed = laptop.request(lambda s: kit.sessions_of("alice", current=s)).result
    [phone_entry] = [i for i in listed if i.device == "Mobile Safari on iOS"]
    assert kit.revoke_session("alice", phone_entry.handle) is True
    assert events == []
    served = phone.request(lambda s: s.user_id)
    assert served.result is None
    assert [e.reason for e in events] == ["revoked"]
    assert any("Max-Age=0" in c for c in served.set_cookies)
    assert laptop.user() == "alice"
    assert tablet.user() == "alice"
    remaining = {i.device for i in kit.sessions_of("alice")}
    assert remaining == {"Firefox on Windows", "Chrome Mobile on Android"}
    # The same handle again names nothing live any more.
    assert kit.revoke_session("alice", phone_entry.handle) is False


def test_a_handle_of_another_user_ends_nothing_and_is_reported(
    kit: SessionKit, events: list[SecurityEvent]
) -> None:
    _signed_in(kit, "alice", FIREFOX_WINDOWS)
    bob = _signed_in(kit, "bob", SAFARI_IPHONE)
    [bobs] = kit.sessions_of("bob")
    assert kit.revoke_session("alice", bobs.handle, client="198.51.100.77") is False
    assert events == [SecurityEvent("foreign_handle", kit.session_spec.name, "198.51.100.0")]
    assert bob.user() == "bob"
    assert len(kit.sessions_of("bob")) == 1
    assert kit.revoke_session("alice", "not a handle") is False
    assert [e.reason for e in events] == ["foreign_handle", "foreign_handle"]


def test_ending_the_current_session_from_its_own_request(kit: SessionKit) -> None:
    laptop = _signed_in(kit, "alice", FIREFOX_WINDOWS)

    def end_mine(session: Any) -> bool:
        [mine] = kit.sessions_of("alice", current=session)
        return kit.revoke_session("alice", mine.handle)

    assert laptop.request(end_mine).result is True
    assert laptop.user() is None
    assert kit.sessions_of("alice") == []


def test_logout_and_revoke_user_empty_the_list(kit: SessionKit) -> None:
    laptop = _signed_in(kit, "alice", FIREFOX_WINDOWS)
    _signed_in(kit, "alice", SAFARI_IPHONE)
    laptop.request(lambda s: s.invalidate())
    assert [i.device for i in kit.sessions_of("alice")] == ["Mobile Safari on iOS"]
    assert kit.revoke_user("alice") == 1
    assert kit.sessions_of("alice") == []


def test_timed_out_sessions_leave_the_list(kit: SessionKit) -> None:
    _signed_in(kit, "alice", FIREFOX_WINDOWS)
    kit.clock.advance(kit.idle_timeout + 1)  # type: ignore[attr-defined]
    assert kit.sessions_of("alice") == []


def test_last_seen_and_auth_time_follow_the_session(kit: SessionKit) -> None:
    laptop = _signed_in(kit, "alice", FIREFOX_WINDOWS)
    start = int(kit.clock())
    kit.clock.advance(kit.touch_interval + 5)  # type: ignore[attr-defined]
    laptop.request(lambda s: s.get("x"))
    [info] = kit.sessions_of("alice")
    assert info.last_seen == start + kit.touch_interval + 5
    assert info.auth_time == start
    kit.clock.advance(10)  # type: ignore[attr-defined]
    laptop.request(lambda s: s.confirm_login())
    [after] = kit.sessions_of("alice")
    assert after.auth_time == start + kit.touch_interval + 15
    assert after.handle == info.handle  # a rotation keeps the family, so the handle


def test_the_coroutine_forms_agree(kit: SessionKit, events: list[SecurityEvent]) -> None:
    _signed_in(kit, "alice", FIREFOX_WINDOWS)
    phone = _signed_in(kit, "alice", SAFARI_IPHONE)
    bob = _signed_in(kit, "bob", CHROME_ANDROID)

    async def scenario() -> tuple[list[Any], bool, bool]:
        listed = await kit.asessions_of("alice")
        [bobs] = await kit.asessions_of("bob")
        foreign = await kit.arevoke_session("alice", bobs.handle)
        [phone_entry] = [i for i in listed if i.device == "Mobile Safari on iOS"]
        ended = await kit.arevoke_session("alice", phone_entry.handle)
        return listed, foreign, ended

    listed, foreign, ended = asyncio.run(scenario())
    assert {i.device for i in listed} == {"Firefox on Windows", "Mobile Safari on iOS"}
    assert (foreign, ended) == (False, True)
    assert [e.reason for e in events] == ["foreign_handle"]
    assert phone.user() is None
    assert bob.user() == "bob"
    assert [i.device for i in kit.sessions_of("alice")] == ["Firefox on Windows"]


# ----------------------------------------------------------------------- new devices


@pytest.fixture
def notices() -> list[NewDevice]:
    return []


@pytest.fixture
def hooked(
    any_store: Store, make_kit: Callable[..., SessionKit], notices: list[NewDevice]
) -> SessionKit:
    return make_kit(store=any_store, on_new_device=notices.append)


def test_a_login_from_a_new_device_label_calls_the_hook(
    hooked: SessionKit, notices: list[NewDevice]
) -> None:
    now = int(hooked.clock())
    _signed_in(hooked, "alice", FIREFOX_WINDOWS, "198.51.100.77")
    assert notices == [NewDevice("alice", "Firefox on Windows", "198.51.100.0", now, ())]
    _signed_in(hooked, "alice", FIREFOX_WINDOWS)  # a second Firefox on Windows: known
    assert len(notices) == 1
    _signed_in(hooked, "alice", SAFARI_IPHONE)
    assert notices[1] == NewDevice(
        "alice", "Mobile Safari on iOS", "192.0.2.0", now, ("Firefox on Windows",)
    )
    _signed_in(hooked, "bob", FIREFOX_WINDOWS)  # another user's devices are not alice's
    assert [n.user_id for n in notices] == ["alice", "alice", "bob"]


def test_signing_in_again_on_the_same_browser_is_no_news(
    hooked: SessionKit, notices: list[NewDevice]
) -> None:
    laptop = _signed_in(hooked, "alice", FIREFOX_WINDOWS)
    laptop.request(login("alice"))
    assert laptop.user() == "alice"
    assert len(notices) == 1
    assert len(hooked.sessions_of("alice")) == 1


def test_a_broken_hook_does_not_break_the_login(
    any_store: Store, make_kit: Callable[..., SessionKit], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: NewDevice) -> None:
        raise RuntimeError("mail server down")

    kit = make_kit(store=any_store, on_new_device=broken)
    device = _signed_in(kit, "alice", FIREFOX_WINDOWS)
    assert device.user() == "alice"
    assert "on_new_device raised" in caplog.text


def test_no_hook_means_no_extra_store_call_at_login(any_store: Store, key: str) -> None:
    calls: list[str] = []

    class Counting(SessionKit):
        def timed(self, name: str, call: Callable[..., Any], args: tuple[Any, ...]) -> Any:
            calls.append(name)
            return super().timed(name, call, args)

    Device(Counting(secret_keys=[key], store=any_store)).request(login("alice"))
    assert "families_of" not in calls
    hooked = Counting(secret_keys=[key], store=any_store, on_new_device=lambda event: None)
    calls.clear()
    Device(hooked).request(login("alice"))
    assert calls.count("families_of") == 1
