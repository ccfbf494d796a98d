"""One request's lifecycle through the exchange, where only the exchange decides.

A store that stops answering between two requests (a real store on a loopback port nobody
listens on), the response headers an app already set, a 5xx that drops the request's
changes, and the visitor's opt-out and opt-in in every order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from sessionkit import LifecycleEvent, SecurityEvent, SessionKit
from sessionkit.events import STORE_UNAVAILABLE
from sessionkit.exchange import HeaderChanges
from sessionkit.gate import EarlyResponse
from sessionkit.stores import MemoryStore
from sessionkit.stores.redis import RedisStore
from support import free_port

MakeKit = Callable[..., SessionKit]
PROTECTED = "/account"


class Events:
    """Every security and lifecycle event of a kit, in order."""

    def __init__(self) -> None:
        self.all: list[SecurityEvent | LifecycleEvent] = []

    def __call__(self, event: SecurityEvent | LifecycleEvent) -> None:
        self.all.append(event)

    @property
    def outages(self) -> int:
        return sum(isinstance(e, LifecycleEvent) and e.name == STORE_UNAVAILABLE for e in self.all)


def set_cookies(changes: HeaderChanges | EarlyResponse) -> list[str]:
    assert isinstance(changes, HeaderChanges), f"answered {changes}"
    return [value for name, value in changes.add if name == "Set-Cookie"]


def cookie_header(changes: HeaderChanges | EarlyResponse) -> str:
    """The ``Cookie`` header a browser sends after receiving ``changes``."""
    return "; ".join(c.split(";", 1)[0] for c in set_cookies(changes) if "Max-Age=0" not in c)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def kits(make_kit: MakeKit, events: Events) -> tuple[SessionKit, SessionKit]:
    """The same application twice: its store answering, and its store gone away."""
    common = {
        "visitor_cookie": None,
        "require_cookies": [PROTECTED],
        "on_security_event": events,
        "on_lifecycle_event": events,
    }
    up = make_kit(store=MemoryStore(), **common)
    down = make_kit(store=RedisStore(f"redis://127.0.0.1:{free_port()}/0"), **common)
    return up, down


def logged_in(kit: SessionKit) -> str:
    ex = kit.open(None)
    ex.session.login("alice")
    return cookie_header(ex.finish([], []))


# ------------------------------------------------------------------ the store goes away


def test_a_protected_page_answers_503_when_the_store_is_down(
    kits: tuple[SessionKit, SessionKit], events: Events
) -> None:
    up, down = kits
    cookie = logged_in(up)
    ex = down.open(cookie, path=PROTECTED)
    answer = ex.load_record()
    assert isinstance(answer, EarlyResponse)
    assert answer.status == 503
    assert events.outages == 1
    assert ex.pending is None, "the record is not loaded twice"


def test_a_public_page_goes_on_without_the_session_and_leaves_the_cookie_alone(
    kits: tuple[SessionKit, SessionKit], events: Events
) -> None:
    up, down = kits
    cookie = logged_in(up)
    ex = down.open(cookie, path="/")
    assert ex.load_record() is None
    assert ex.session.user_id is None, "served as nobody while the store is down"
    assert set_cookies(ex.finish([], [])) == [], "the browser keeps its cookie for later"
    assert events.outages == 1
    again = up.open(cookie)
    assert again.load_record() is None
    assert again.session.user_id == "alice", "the session outlived the outage"


def test_a_change_made_while_the_store_is_down_is_a_503_reported_once(
    kits: tuple[SessionKit, SessionKit], events: Events
) -> None:
    up, down = kits
    cookie = logged_in(up)
    ex = down.open(cookie, path="/")
    assert ex.load_record() is None
    ex.session.invalidate()
    answer = ex.finish([], [])
    assert isinstance(answer, EarlyResponse)
    assert answer.status == 503, "a logout that did not stick is not reported as done"
    assert events.outages == 1, "the outage was already reported when the record was loaded"


def test_the_awaited_forms_agree_when_the_store_is_down(
    kits: tuple[SessionKit, SessionKit], events: Events
) -> None:
    up, down = kits
    cookie = logged_in(up)

    async def requests() -> tuple[object, object, object]:
        protected = await down.open(cookie, path=PROTECTED).aload_record()
        public = down.open(cookie, path="/")
        loaded = await public.aload_record()
        public.session["note"] = "lost"
        return protected, loaded, await public.afinish([], [])

    protected, loaded, finished = asyncio.run(requests())
    assert isinstance(protected, EarlyResponse)
    assert protected.status == 503
    assert loaded is None
    assert isinstance(finished, EarlyResponse)
    assert finished.status == 503
    assert events.outages == 2, "one per request"


def test_a_new_session_that_cannot_be_saved_is_a_503(
    kits: tuple[SessionKit, SessionKit], events: Events
) -> None:
    _, down = kits
    ex = down.open(None)
    ex.session["cart"] = ["tea"]
    answer = ex.finish([], [])
    assert isinstance(answer, EarlyResponse)
    assert answer.status == 503
    assert events.outages == 1

    async def awaited() -> object:
        ex = down.open(None)
        ex.session.login("alice")
        return await ex.afinish([], [])

    answer = asyncio.run(awaited())
    assert isinstance(answer, EarlyResponse)
    assert answer.status == 503
    assert events.outages == 2


def test_a_request_without_a_session_cookie_never_asks_the_store(
    kits: tuple[SessionKit, SessionKit], events: Events
) -> None:
    _, down = kits
    ex = down.open(None, path=PROTECTED)
    assert ex.load_record() is None
    assert asyncio.run(ex.aload_record()) is None
    assert events.outages == 0


# ------------------------------------------------------------------ a 5xx drops the changes


def test_discard_drops_the_requests_changes_and_sends_no_cookie(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None)
    ex = kit.open(None)
    ex.session["note"] = "kept"
    cookie = cookie_header(ex.finish([], []))
    ex = kit.open(cookie)
    ex.session["note"] = "written before the error"
    ex.discard()
    assert set_cookies(ex.finish([], [])) == []
    assert kit.open(cookie).session["note"] == "kept"


def test_discard_with_a_store_leaves_the_record_as_it_was(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None, store=MemoryStore())
    ex = kit.open(None)
    ex.session.login("alice")
    ex.session["note"] = "kept"
    cookie = cookie_header(ex.finish([], []))
    ex = kit.open(cookie)
    assert ex.load_record() is None
    ex.session["note"] = "written before the error"
    ex.discard()
    assert set_cookies(ex.finish([], [])) == []
    again = kit.open(cookie)
    assert again.load_record() is None
    assert again.session.user_id == "alice"
    assert again.session["note"] == "kept"


def test_a_logout_before_a_server_error_still_ends_the_session(make_kit: MakeKit) -> None:
    """As Django's ``flush()``, which deletes the stored session at once: an error after a
    logout never brings the session back."""
    kit = make_kit(visitor_cookie=None, store=MemoryStore())
    ex = kit.open(None)
    ex.session.login("alice")
    cookie = cookie_header(ex.finish([], []))
    ex = kit.open(cookie)
    assert ex.load_record() is None
    ex.session.invalidate()
    ex.discard()
    ex.finish([], [])
    again = kit.open(cookie)
    assert again.load_record() is None
    assert again.session.user_id is None


def test_a_refused_cookie_is_expired_even_when_the_request_fails(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None)
    ex = kit.open(f"{kit.session_spec.name}=forged")
    ex.session["note"] = "written before the error"
    ex.discard()
    [deleted] = set_cookies(ex.finish([], []))
    assert deleted.startswith(f"{kit.session_spec.name}=;")
    assert "Max-Age=0" in deleted


def test_discard_of_a_session_only_read_changes_nothing(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None)
    ex = kit.open(None)
    ex.discard()  # the app never opened it: nothing to drop
    ex.session["note"] = "kept"
    cookie = cookie_header(ex.finish([], []))
    ex = kit.open(cookie)
    assert ex.session["note"] == "kept"
    ex.discard()
    assert ex.session["note"] == "kept", "a read is not a change"


# ------------------------------------------------------------------ the app's own headers


def test_an_apps_vary_that_covers_cookie_gets_no_second_one(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None)
    for vary in ("Cookie", "accept-encoding, COOKIE", " cookie ", "*", "Accept,*"):
        ex = kit.open(None)
        ex.session.get("x")
        changes = ex.header_changes([vary], [])
        assert ("Vary", "Cookie") not in changes.add, vary
    for vary in ("Cookies", "Set-Cookie", "Accept-Cookie", "Accept"):
        ex = kit.open(None)
        ex.session.get("x")
        assert ex.header_changes([vary], []).add == [("Vary", "Cookie")], vary
    ex = kit.open(None)
    ex.session.get("x")
    assert ex.header_changes(["Accept", "Cookie"], []).add == [], "a second Vary header counts"


def test_response_headers_replace_the_apps_caching_only_when_a_cookie_is_set(
    make_kit: MakeKit,
) -> None:
    kit = make_kit(visitor_cookie=None)
    app = [("Content-Type", "text/html"), ("cache-control", "public, max-age=3600")]
    ex = kit.open(None)
    assert ex.response_headers(app) == app, "an untouched session changes nothing"
    ex = kit.open(None)
    ex.session.get("x")
    assert ex.response_headers(app) == [*app, ("Vary", "Cookie")]
    ex = kit.open(None)
    ex.session["x"] = 1
    headers = ex.response_headers([*app, ("VARY", "cookie")])
    assert ("cache-control", "public, max-age=3600") not in headers
    assert [n for n, _ in headers].count("Vary") == 0, "the app's Vary already covers it"
    assert headers[:2] == [("Content-Type", "text/html"), ("VARY", "cookie")]
    assert ("Cache-Control", "no-store") in headers
    assert len(set_cookies(HeaderChanges(headers, False))) == 1


def test_a_cookie_on_a_response_without_caching_headers_drops_nothing(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None)
    ex = kit.open(None)
    ex.session["x"] = 1
    changes = ex.header_changes([], [])
    assert changes.drop_cache_control is False
    assert changes.add[:2] == [("Vary", "Cookie"), ("Cache-Control", "no-store")]


# ------------------------------------------------------------------ opting out and back in


def named(changes: HeaderChanges | EarlyResponse) -> dict[str, str]:
    """The response's ``Set-Cookie`` values by cookie name."""
    return {c.split("=", 1)[0]: c for c in set_cookies(changes)}


def test_opting_out_expires_the_visitor_cookie_and_remembers_the_choice(make_kit: MakeKit) -> None:
    kit = make_kit()
    first = kit.open(None)
    assert first.visitor is not None
    cookie = cookie_header(first.finish([], []))
    ex = kit.open(cookie)
    ex.opt_out()
    assert ex.visitor is None
    sent = named(ex.finish([], []))
    assert "Max-Age=0" in sent[kit.visitor_spec.name]
    assert sent[kit.opt_out_spec.name].startswith(f"{kit.opt_out_spec.name}=1;")
    assert "Max-Age=0" not in sent[kit.opt_out_spec.name]


def test_opting_out_before_any_visitor_cookie_sets_only_the_choice(make_kit: MakeKit) -> None:
    kit = make_kit()
    ex = kit.open(None)
    ex.opt_out()
    assert ex.visitor is None
    assert set(named(ex.finish([], []))) == {kit.opt_out_spec.name}


def test_opting_out_after_reading_the_id_in_the_same_request(make_kit: MakeKit) -> None:
    kit = make_kit()
    ex = kit.open(None)
    assert ex.visitor is not None  # minted, not yet sent
    ex.opt_out()
    assert ex.visitor is None
    assert set(named(ex.finish([], []))) == {kit.opt_out_spec.name}, "the id is never sent"


def test_opting_out_again_sends_nothing_new(make_kit: MakeKit) -> None:
    kit = make_kit()
    ex = kit.open(None)
    ex.opt_out()
    cookie = cookie_header(ex.finish([], []))
    again = kit.open(cookie)
    again.opt_out()
    assert set_cookies(again.finish([], [])) == [], "the choice is already remembered"


def test_opting_in_forgets_the_choice_and_gives_an_id(make_kit: MakeKit) -> None:
    kit = make_kit()
    ex = kit.open(None)
    ex.opt_out()
    cookie = cookie_header(ex.finish([], []))
    back = kit.open(cookie)
    assert back.visitor is None
    back.opt_in()
    visitor = back.visitor
    assert visitor is not None
    sent = named(back.finish([], []))
    assert "Max-Age=0" in sent[kit.opt_out_spec.name]
    assert "Max-Age=0" not in sent[kit.visitor_spec.name]
    later = kit.open(sent[kit.visitor_spec.name].split(";", 1)[0])
    assert later.visitor == visitor


def test_opting_in_without_having_opted_out_keeps_the_id(make_kit: MakeKit) -> None:
    kit = make_kit()
    first = kit.open(None)
    visitor = first.visitor
    cookie = cookie_header(first.finish([], []))
    ex = kit.open(cookie)
    assert ex.visitor == visitor
    ex.opt_in()
    assert ex.visitor == visitor
    assert set_cookies(ex.finish([], [])) == [], "nothing to forget, nothing to mint"


def test_opting_out_then_in_within_one_request_leaves_an_id_and_no_choice(
    make_kit: MakeKit,
) -> None:
    kit = make_kit()
    ex = kit.open(None)
    ex.opt_out()
    ex.opt_in()
    assert ex.visitor is not None
    assert set(named(ex.finish([], []))) == {kit.visitor_spec.name}


def test_a_privacy_signal_outlasts_opting_in(make_kit: MakeKit) -> None:
    kit = make_kit()
    ex = kit.open(None)
    ex.opt_out()
    cookie = cookie_header(ex.finish([], []))
    back = kit.open(cookie, sec_gpc="1")
    back.opt_in()
    assert back.visitor is None
    sent = named(back.finish([], []))
    assert set(sent) == {kit.opt_out_spec.name}, "the choice is forgotten, no id is minted"
    assert "Max-Age=0" in sent[kit.opt_out_spec.name]


def test_without_a_visitor_cookie_opting_in_or_out_does_nothing(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None)
    ex = kit.open(None)
    ex.opt_out()
    ex.opt_in()
    assert ex.visitor is None
    assert ex.untouched
    assert set_cookies(ex.finish([], [])) == []
