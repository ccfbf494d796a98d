"""What goes wrong in production, in a fixed order, on every store.

Each test interleaves requests the way real traffic does — a request held open across a
logout, a response lost on the way, three tabs rotating at once — and checks the
promises: nothing in flight brings an ended session back, no honest browser is logged
out or accused of theft, data never rolls back. They run on MemoryStore, SQLiteStore and
a real Redis server (``any_store``), with a clock the tests move.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flows import Browser, Contended, login, put, read

from sessionkit import SecurityEvent, Session, SessionKit
from sessionkit.stores.base import Store

MakeKit = Callable[..., SessionKit]


@pytest.fixture
def events() -> list[SecurityEvent]:
    return []


@pytest.fixture
def kit(make_kit: MakeKit, any_store: Store, events: list[SecurityEvent]) -> SessionKit:
    return make_kit(store=any_store, visitor_cookie=None, on_security_event=events.append)


def reasons(events: list[SecurityEvent]) -> list[str]:
    return [event.reason for event in events]


def logged_in(kit: SessionKit, user: str = "alice") -> Browser:
    browser = Browser(kit)
    browser.request(login(user))
    assert browser.user() == user
    return browser


# ------------------------------------------------------------ held requests and revocation


def test_a_request_held_across_logout_cannot_bring_the_session_back(kit: SessionKit) -> None:
    victim = logged_in(kit)
    thief = victim.copy()
    held = thief.start(method="POST")  # headers sent, body held back
    victim.request(Session.invalidate)  # the victim logs out
    held.run(put(note="written after logout")).deliver()  # then the body arrives
    assert held.set_cookies == []  # no cookie for the thief
    assert thief.user() is None  # the stolen cookie stays dead
    assert victim.user() is None


def test_a_request_held_across_revoke_user_cannot_bring_the_session_back(
    kit: SessionKit,
) -> None:
    victim = logged_in(kit)
    thief = victim.copy()
    held = thief.start(method="POST")
    assert kit.revoke_user("alice") == 1
    held.run(put(cart=["stolen"])).deliver()
    assert thief.user() is None
    assert victim.user() is None


def test_session_clear_is_a_revoking_logout(kit: SessionKit) -> None:
    victim = logged_in(kit)
    copy = victim.copy()
    victim.request(Session.clear)  # the Flask and Starlette logout idiom
    assert victim.user() is None
    assert copy.user() is None


def test_a_request_held_across_a_privilege_rotation_gets_no_new_id(
    kit: SessionKit, clock: Any, events: list[SecurityEvent]
) -> None:
    victim = logged_in(kit)
    thief = victim.copy()
    held = thief.start(method="POST")
    victim.request(lambda s: (s.update(role="admin"), s.rotate()))
    victim.request()  # the victim's browser presents the new id
    held.run(put(seen=True)).deliver()
    assert held.set_cookies == []  # the elevated id is not handed to the held request
    clock.advance(kit.rotation_grace + 1)
    assert thief.user() is None  # the copy of the old id is a replay
    assert "replayed_id" in reasons(events)
    assert victim.user() is None  # and the whole family ended with it


def test_a_parallel_request_of_the_same_browser_at_logout_leaves_the_new_cookie(
    kit: SessionKit,
) -> None:
    browser = logged_in(kit)
    poll = browser.start()  # an XHR in flight
    browser.request(lambda s: (s.invalidate(), s.update(flash="bye")))
    poll.run(read("x")).deliver()  # arrives after the logout response
    assert browser.request(read("flash")).result == "bye"  # its cookie survived


def test_login_while_an_old_request_is_in_flight_does_not_log_out(kit: SessionKit) -> None:
    browser = Browser(kit)
    browser.request(put(cart=["book"]))  # an anonymous session with a cart
    xhr = browser.start()
    browser.request(login("alice"))  # the login form, submitted meanwhile
    xhr.run(read("cart")).deliver()  # the old request's response arrives last
    assert browser.user() == "alice"
    assert browser.request(read("cart")).result == ["book"]


# ------------------------------------------------------------ rotation that is confirmed


def test_a_lost_rotating_response_logs_nobody_out(
    kit: SessionKit, clock: Any, events: list[SecurityEvent]
) -> None:
    browser = logged_in(kit)
    clock.advance(kit.rotate_every)  # rotation due
    before = dict(browser.jar)
    browser.start().run(read("x")).lose()  # the response carrying the new id is lost
    assert browser.jar == before
    clock.advance(60)
    reissue = browser.request(read("x"))  # the old id again: re-issued, not refused
    assert reissue.set_cookies
    assert browser.jar != before
    clock.advance(kit.rotation_grace + 30)
    assert browser.user() == "alice"
    assert reasons(events) == []


@pytest.mark.parametrize("tabs", [2, 3])
@pytest.mark.parametrize("order", ["started together", "one after another"])
def test_parallel_tabs_rotating_at_once_log_nobody_out(
    kit: SessionKit, clock: Any, events: list[SecurityEvent], tabs: int, order: str
) -> None:
    browser = logged_in(kit)
    for _ in range(3):
        clock.advance(kit.rotate_every)
        if order == "started together":
            flights = [browser.start() for _ in range(tabs)]
            for flight in flights:
                flight.run(put(tab=id(flight))).respond()
            for flight in reversed(flights):
                flight.deliver()
        else:
            # each tab was sent before the previous response arrived
            first = browser.start().run(read("x")).respond()
            rest = [browser.start() for _ in range(tabs - 1)]
            first.deliver()
            for flight in rest:
                flight.run(read("x")).deliver()
        clock.advance(kit.rotation_grace + 1)
        assert browser.user() == "alice"
    assert reasons(events) == []


def test_an_old_id_after_the_new_one_was_seen_is_a_replay_refused_at_load(
    kit: SessionKit, clock: Any, events: list[SecurityEvent]
) -> None:
    browser = logged_in(kit)
    thief = browser.copy()
    clock.advance(kit.rotate_every)
    browser.request(read("x"))  # rotated
    browser.request(read("x"))  # the new id presented: confirmed
    clock.advance(kit.rotation_grace + 1)
    flight = thief.start()  # load only: a WebSocket, or a handler that raises
    assert flight.session.user_id is None
    assert reasons(events) == ["replayed_id"]
    assert browser.user() is None  # revoked at load, with no response needed


def test_within_the_grace_window_an_in_flight_old_id_is_fine(
    kit: SessionKit, clock: Any, events: list[SecurityEvent]
) -> None:
    browser = logged_in(kit)
    late = browser.copy()  # a request sent just before the rotation arrived
    clock.advance(kit.rotate_every)
    browser.request(read("x"))
    browser.request(read("x"))
    clock.advance(kit.rotation_grace - 1)
    assert late.request(read("x")).session.user_id == "alice"
    assert reasons(events) == []


def test_a_timer_shorter_than_the_grace_never_leaves_an_in_flight_request_two_ids_behind(
    make_kit: MakeKit, any_store: Store, clock: Any, events: list[SecurityEvent]
) -> None:
    """Regression: with ``rotate_every`` no longer than ``rotation_grace``, the timer rotated
    again right after a tab confirmed the new id, and a request another tab had sent with
    the id before was judged two ids behind: a replay, the user logged out, a theft event."""
    kit = make_kit(
        store=any_store,
        visitor_cookie=None,
        on_security_event=events.append,
        rotate_every=1,
        rotation_grace=2,
    )
    browser = logged_in(kit)
    first_id = browser.request(lambda s: s.id).result
    clock.advance(1)
    sent_before = browser.copy()  # a tab's request on its way with the login id
    browser.request(read("x"))  # the timer rotates
    browser.request(read("x"))  # the new id is presented: confirmed
    clock.advance(1)  # the timer is due again, within the grace window
    browser.request(read("x"))
    assert sent_before.request(lambda s: s.user_id).result == "alice"
    assert reasons(events) == []
    clock.advance(kit.rotation_grace + 1)
    last_id = browser.request(lambda s: s.id).result
    browser.request(read("x"))
    assert browser.request(lambda s: s.id).result not in (first_id, last_id), "the timer rotates"
    assert browser.user() == "alice"
    assert reasons(events) == []


def test_a_privilege_change_right_after_a_lost_rotation_gets_a_new_id(
    kit: SessionKit, clock: Any
) -> None:
    """After a timed rotation whose response was lost, the browser presents the previous
    id; a ``rotate()`` for a privilege change in that request gets a new id: the elevated
    session never keeps the id minted before the change (the one in the lost response,
    which whoever intercepted it holds)."""
    browser = logged_in(kit)
    before = browser.request(lambda s: s.id).result
    clock.advance(kit.rotate_every)
    lost = browser.start().run(read("x")).lose()  # timed rotation, new id never delivered
    minted = lost.session.id
    assert minted != before
    browser.request(lambda s: (s.rotate(), s.update(role="admin")))
    after = browser.request(lambda s: s.id).result
    assert after not in (before, minted)


def test_a_slow_response_that_lands_after_a_privilege_change_is_no_replay(
    kit: SessionKit, clock: Any, events: list[SecurityEvent]
) -> None:
    """Two tabs: one's timed rotation is still on its way while the other's privilege change
    answers first; the slow response then lands last, so the browser holds the replaced
    id. That is no theft: the browser goes on, is re-issued the newest id, and only a copy
    presented after the grace that follows is a replay."""
    browser = logged_in(kit)
    clock.advance(kit.rotate_every)
    slow = browser.start().run(read("x")).respond()  # timed rotation, response held back
    minted = slow.session.id
    browser.request(lambda s: (s.rotate(), s.update(role="admin")))
    slow.deliver()  # lands last: the browser now holds the id the privilege change replaced
    copy = browser.copy()
    assert browser.request(read("role")).result == "admin"
    assert browser.request(lambda s: s.id).result != minted, "the newest id was re-issued"
    assert browser.user() == "alice"
    assert reasons(events) == []
    clock.advance(kit.rotation_grace + 1)
    assert copy.user() is None, "the replaced id, presented after the grace, is a replay"
    assert reasons(events) == ["replayed_id"]


def test_privilege_changes_whose_responses_are_all_lost_never_log_the_browser_out(
    kit: SessionKit, events: list[SecurityEvent]
) -> None:
    browser = logged_in(kit)
    for level in range(6):
        browser.start().run(lambda s, level=level: (s.rotate(), s.update(level=level))).lose()
    assert browser.request(read("level")).result == 5
    assert browser.user() == "alice"
    assert reasons(events) == []


@pytest.mark.parametrize("rivals", [3, 12])
def test_a_write_that_loses_many_races_in_a_row_still_lands(make_kit: MakeKit, rivals: int) -> None:
    """Regression: a write retried only 4 times, so a request whose save lost 4 races in a
    row (other tabs' writes) got a 503: about one in 40,000 requests of three tabs."""
    store = Contended()
    kit = make_kit(store=store, visitor_cookie=None)
    browser = logged_in(kit)
    store.rivals = rivals
    flight = browser.request(put(note="kept"))
    assert flight.status == 200
    assert store.rivals == 0
    assert browser.request(read("note")).result == "kept"


def test_a_write_that_never_stops_losing_gives_up_with_a_503(make_kit: MakeKit) -> None:
    store = Contended()
    kit = make_kit(store=store, visitor_cookie=None)
    browser = logged_in(kit)
    store.rivals = 10_000
    assert browser.request(put(note="lost")).status == 503
    store.rivals = 0
    assert browser.request(read("note")).result is None, "nothing was overwritten"
    assert browser.user() == "alice"


# ------------------------------------------------------------ data never rolls back


def test_an_older_cookie_copy_does_not_bring_older_data_back(kit: SessionKit) -> None:
    browser = logged_in(kit)
    old = browser.copy()
    for attempt in (1, 2, 3):
        browser.request(put(attempts=attempt))
    assert old.request(read("attempts")).result == 3
    old.request(lambda s: s.__setitem__("attempts", s["attempts"] + 1))
    assert browser.request(read("attempts")).result == 4


def test_a_removed_flag_does_not_come_back_inside_the_grace_window(kit: SessionKit) -> None:
    browser = logged_in(kit)
    browser.request(put(sudo=True))
    old = browser.copy()
    browser.request(lambda s: (s.pop("sudo"), s.rotate()))
    assert old.request(read("sudo")).result is None
    assert browser.request(read("sudo")).result is None


def test_parallel_writes_to_different_keys_both_survive(kit: SessionKit) -> None:
    browser = logged_in(kit)
    a = browser.start().run(put(cart=["book"]))
    b = browser.start().run(put(flash="saved"))
    a.deliver()
    b.deliver()
    assert browser.request(lambda s: (s.get("cart"), s.get("flash"))).result == (
        ["book"],
        "saved",
    )


def test_a_parallel_delete_is_kept(kit: SessionKit) -> None:
    browser = logged_in(kit)
    browser.request(put(flash="hello", cart=[]))
    a = browser.start().run(lambda s: s.pop("flash"))
    b = browser.start().run(put(cart=["pen"]))
    b.deliver()
    a.deliver()
    assert browser.request(dict).result == {"cart": ["pen"]}


# ------------------------------------------------------------ fixation and shared browsers


def test_login_as_another_user_starts_with_no_data(kit: SessionKit) -> None:
    browser = logged_in(kit, "alice")
    browser.request(put(second_factor_ok=True, cart=["alice's"]))
    browser.request(login("bob"))
    assert browser.request(dict).result == {}


def test_login_of_the_same_user_keeps_the_data(kit: SessionKit) -> None:
    browser = logged_in(kit, "alice")
    browser.request(put(cart=["book"]))
    browser.request(login("alice"))
    assert browser.request(read("cart")).result == ["book"]


def test_a_planted_pre_login_cookie_is_dead_after_login(
    kit: SessionKit, events: list[SecurityEvent]
) -> None:
    attacker = Browser(kit)
    attacker.request(put(planted=True))
    victim = attacker.copy()  # the attacker fixed the victim's cookie
    victim.request(login("alice"))
    assert attacker.request(read("planted")).result is None
    assert attacker.user() is None
    assert victim.user() == "alice"


def test_integer_user_ids_come_back_as_integers(kit: SessionKit) -> None:
    browser = Browser(kit)
    browser.request(login(42))
    assert browser.user() == 42
    assert kit.revoke_user(42) == 1
    assert browser.user() is None


def test_revoke_user_ends_only_that_users_sessions(kit: SessionKit) -> None:
    alice_laptop, alice_phone = logged_in(kit, "alice"), logged_in(kit, "alice")
    bob = logged_in(kit, "bob")
    assert kit.revoke_user("alice") == 2
    assert alice_laptop.user() is None
    assert alice_phone.user() is None
    assert bob.user() == "bob"


# ------------------------------------------------------------ lifetimes


def test_remember_me_outlives_the_idle_timeout_and_stops_at_its_end(
    kit: SessionKit, clock: Any
) -> None:
    browser = Browser(kit)
    browser.request(lambda s: (s.login("alice"), s.set_expiry(14 * 24 * 3600)))
    clock.advance(kit.idle_timeout * 10)
    assert browser.user() == "alice"
    clock.advance(14 * 24 * 3600)
    assert browser.user() is None


def test_idle_sessions_end_on_the_server_whatever_the_cookie_says(
    kit: SessionKit, clock: Any, events: list[SecurityEvent]
) -> None:
    browser = logged_in(kit)
    clock.advance(kit.idle_timeout + 1)
    assert browser.user() is None
    assert reasons(events) == ["expired_idle"]


# ------------------------------------------------------------ sent before, processed after


def test_a_request_sent_before_the_login_response_arrived_leaves_the_login(
    kit: SessionKit, events: list[SecurityEvent]
) -> None:
    browser = Browser(kit)
    browser.request(put(cart=["book"]))
    signing_in = browser.start(method="POST").run(login("alice")).respond()
    xhr = browser.start()  # sent with the pre-login cookie, processed after the login
    assert xhr.run(read("cart")).result is None
    xhr.respond()
    signing_in.deliver()
    xhr.deliver()  # arrives last: it must not expire the new cookie
    assert xhr.set_cookies == []
    assert browser.user() == "alice"
    assert reasons(events) == []


def test_a_request_sent_before_the_logout_response_arrived_is_answered_quietly(
    kit: SessionKit, events: list[SecurityEvent]
) -> None:
    browser = logged_in(kit)
    leaving = (
        browser.start(method="POST")
        .run(lambda s: (s.invalidate(), s.update(flash="bye")))
        .respond()
    )
    xhr = browser.start()
    assert xhr.run(lambda s: s.user_id).result is None
    leaving.deliver()
    xhr.deliver()
    assert browser.request(read("flash")).result == "bye"
    assert reasons(events) == []


def test_an_explicit_rotation_after_a_lost_rotating_response_logs_nobody_out(
    kit: SessionKit, clock: Any, events: list[SecurityEvent]
) -> None:
    browser = logged_in(kit)
    clock.advance(kit.rotate_every)
    browser.start().run(read("x")).lose()  # the new id never arrives
    browser.start().run(Session.rotate).lose()  # a privilege change, its answer lost too
    clock.advance(kit.rotation_grace + 1)
    assert browser.user() == "alice"
    browser.request(read("x"))
    clock.advance(kit.rotation_grace + 1)
    assert browser.user() == "alice"
    assert reasons(events) == []


# ------------------------------------------------------------ found by the lifecycle model


def test_a_response_that_only_reissues_checks_the_family_first(kit: SessionKit) -> None:
    browser = Browser(kit)
    browser.request(put(n=1))
    browser.start().run(lambda s: s.set_expiry(3 * 24 * 3600)).lose()  # the record moved on
    stale = browser.start()  # would re-issue from the record it read
    signing_in = browser.start(method="POST").run(login("alice")).respond()
    stale.run(read("n")).respond()  # the family ended meanwhile
    signing_in.deliver()
    stale.deliver()
    assert stale.set_cookies == []
    assert browser.user() == "alice"


def test_a_request_that_lost_the_race_never_overwrites_a_newer_value(kit: SessionKit) -> None:
    browser = logged_in(kit)
    browser.request(put(n=1))
    slow = browser.start().run(lambda s: s.__setitem__("n", s["n"] + 1))  # read n=1
    browser.request(lambda s: s.__setitem__("n", s["n"] + 1))  # 2
    browser.request(lambda s: s.__setitem__("n", s["n"] + 1))  # 3
    slow.deliver()  # wants n=2, computed from a value two writes old
    assert browser.request(read("n")).result == 3


def test_a_rotation_right_after_login_keeps_the_user(kit: SessionKit, clock: Any) -> None:
    browser = logged_in(kit)
    clock.advance(1)
    browser.request(Session.rotate)
    assert browser.user() == "alice"
    clock.advance(1)
    browser.request(Session.confirm_login)
    assert browser.user() == "alice"


def test_an_old_id_in_flight_is_served_but_handed_nothing(kit: SessionKit, clock: Any) -> None:
    browser = logged_in(kit)
    late = browser.copy()
    clock.advance(kit.rotate_every)
    browser.request(read("x"))
    browser.request(read("x"))  # the new id presented
    flight = late.request(put(seen=True))
    assert flight.session.user_id == "alice"
    assert flight.set_cookies == []
