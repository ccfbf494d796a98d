"""One request's lifecycle through the exchange, where only the exchange decides.

A store that stops answering between two requests (a real store on a loopback port nobody
listens on), the response headers an app already set, a 5xx that drops the request's
changes, and the visitor's opt-out and opt-in in every order.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import itsdangerous
import pytest
from flows import Browser, Contended, login, put

from sessionkit import ForgeryPolicy, LifecycleEvent, SessionKit, generate_key
from sessionkit.cookies import MAX_COOKIE_BYTES
from sessionkit.devices import NewDevice
from sessionkit.errors import SessionTooLarge
from sessionkit.events import CREATED, KEY_REISSUED, MIGRATED, REVOKED, STORE_UNAVAILABLE
from sessionkit.exchange import HeaderChanges, RequestInfo
from sessionkit.families import FamilyRef, Stored
from sessionkit.forgery import Provenance
from sessionkit.gate import EarlyResponse
from sessionkit.migrate import Migration, StarletteCookie
from sessionkit.stores import MemoryStore
from sessionkit.stores.redis import RedisStore
from support import Events, free_port

MakeKit = Callable[..., SessionKit]
PROTECTED = "/account"
STARLETTE_KEY = "the-old-frameworks-secret-key-0123456789"
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


def migration() -> Migration:
    """Starlette's cookies under :data:`STARLETTE_KEY` move to sessionkit until 2030."""
    return Migration([StarletteCookie(STARLETTE_KEY)], until=datetime(2030, 1, 1, tzinfo=UTC))


def starlette_cookie(data: dict[str, object]) -> str:
    """A cookie value as Starlette's SessionMiddleware signs it under :data:`STARLETTE_KEY`."""
    return (
        itsdangerous.TimestampSigner(STARLETTE_KEY)
        .sign(base64.b64encode(json.dumps(data).encode()))
        .decode()
    )


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
    assert events.names.count(STORE_UNAVAILABLE) == 1
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
    assert events.names.count(STORE_UNAVAILABLE) == 1
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
    assert events.names.count(STORE_UNAVAILABLE) == 1, (
        "the outage was already reported when the record was loaded"
    )


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
    assert events.names.count(STORE_UNAVAILABLE) == 2, "one per request"


def test_a_new_session_that_cannot_be_saved_is_a_503(
    kits: tuple[SessionKit, SessionKit], events: Events
) -> None:
    _, down = kits
    ex = down.open(None)
    ex.session["cart"] = ["tea"]
    answer = ex.finish([], [])
    assert isinstance(answer, EarlyResponse)
    assert answer.status == 503
    assert events.names.count(STORE_UNAVAILABLE) == 1

    async def awaited() -> object:
        ex = down.open(None)
        ex.session.login("alice")
        return await ex.afinish([], [])

    answer = asyncio.run(awaited())
    assert isinstance(answer, EarlyResponse)
    assert answer.status == 503
    assert events.names.count(STORE_UNAVAILABLE) == 2


def test_a_request_without_a_session_cookie_never_asks_the_store(
    kits: tuple[SessionKit, SessionKit], events: Events
) -> None:
    _, down = kits
    ex = down.open(None, path=PROTECTED)
    assert ex.load_record() is None
    assert asyncio.run(ex.aload_record()) is None
    assert events.names.count(STORE_UNAVAILABLE) == 0


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


def test_opting_in_then_out_within_one_request_keeps_the_remembered_choice(
    make_kit: MakeKit,
) -> None:
    kit = make_kit()
    ex = kit.open(None)
    ex.opt_out()
    cookie = cookie_header(ex.finish([], []))
    again = kit.open(cookie)
    again.opt_in()
    again.opt_out()
    assert again.visitor is None
    assert set_cookies(again.finish([], [])) == [], "the opt-out cookie stays as it is"


def test_opting_out_then_in_with_a_visitor_cookie_gives_a_new_id(make_kit: MakeKit) -> None:
    kit = make_kit()
    first = kit.open(None)
    old = first.visitor
    cookie = cookie_header(first.finish([], []))
    ex = kit.open(cookie)
    ex.opt_out()
    ex.opt_in()
    new = ex.visitor
    assert new is not None
    assert new != old, "the id given up is not handed back"
    sent = named(ex.finish([], []))
    assert set(sent) == {kit.visitor_spec.name}
    assert "Max-Age=0" not in sent[kit.visitor_spec.name]


# ------------------------------------------------------------------ requests and cookies


def test_a_request_description_defaults_to_a_get_of_the_root() -> None:
    assert RequestInfo() == RequestInfo(None, "GET", "/", "", None, None, None, None, None)


def test_a_cookie_of_a_kit_with_a_store_opens_nothing_in_a_kit_without_one(
    make_kit: MakeKit, events: Events
) -> None:
    with_store = make_kit(visitor_cookie=None, store=MemoryStore(), on_security_event=events)
    without = make_kit(visitor_cookie=None, on_security_event=events)
    stored = logged_in(with_store)
    ex = without.open(stored)
    assert ex.session.user_id is None
    assert [e.reason for e in events.all] == ["invalid_payload"]
    ex = without.open(None)
    ex.session.login("alice")
    alone = cookie_header(ex.finish([], []))
    ex = with_store.open(alone)
    assert ex.load_record() is None
    assert ex.session.user_id is None
    assert [e.reason for e in events.all] == ["invalid_payload"] * 2


def test_a_refused_cookie_the_app_never_reads_is_still_expired(
    make_kit: MakeKit, events: Events
) -> None:
    kit = make_kit(visitor_cookie=None, store=MemoryStore(), on_security_event=events)
    ex = kit.open(f"{kit.session_spec.name}=forged")
    assert ex.load_record() is None
    assert not ex.untouched
    [deleted] = set_cookies(ex.finish([], []))
    assert deleted.startswith(f"{kit.session_spec.name}=;")
    assert "Max-Age=0" in deleted
    assert len(events.all) == 1


def test_with_a_migration_and_no_cookie_at_all_the_session_starts_empty(
    make_kit: MakeKit,
) -> None:
    kit = make_kit(visitor_cookie=None, migrate=migration())
    ex = kit.open(None)
    assert ex.session.is_empty
    assert set_cookies(ex.finish([], [])) == []


def test_the_awaited_finish_without_a_store_sets_the_cookie(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None)
    ex = kit.open(None)
    ex.session["note"] = "kept"
    changes = asyncio.run(ex.afinish([], []))
    assert kit.open(cookie_header(changes)).session["note"] == "kept"


def test_a_loaded_record_is_not_pending_any_more(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None, store=MemoryStore())
    cookie = logged_in(kit)
    ex = kit.open(cookie)
    assert ex.pending is not None
    assert ex.load_record() is None
    assert ex.pending is None


def test_a_request_that_carries_no_token_check_passes_it(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None)
    ex = kit.open(None)
    assert ex.token_check is None
    assert ex.check_token("anything") is None


# ------------------------------------------------------------------ lifecycle events


def test_every_lifecycle_event_names_its_family(make_kit: MakeKit, events: Events) -> None:
    old, new = generate_key(), generate_key()
    before = make_kit(secret_keys=[old], visitor_cookie=None, on_lifecycle_event=events)
    ex = before.open(None)
    ex.session["note"] = "kept"
    cookie = cookie_header(ex.finish([], []))
    after = make_kit(secret_keys=[new, old], visitor_cookie=None, on_lifecycle_event=events)
    assert set_cookies(after.open(cookie).finish([], [])) != [], "re-issued under the new key"
    created, reissued = (e for e in events.all if isinstance(e, LifecycleEvent))
    assert (created.name, reissued.name) == (CREATED, KEY_REISSUED)
    assert created.family is not None
    assert reissued.family is not None
    migrating = make_kit(  # the old cookie is signed at the real time
        visitor_cookie=None, on_lifecycle_event=events, migrate=migration(), clock=time.time
    )
    value = starlette_cookie({"cart": ["tea"]})
    ex = migrating.open(f"session={value}")
    assert ex.session["cart"] == ["tea"]
    ex.finish([], [])
    migrated = events.all[-1]
    assert isinstance(migrated, LifecycleEvent)
    assert migrated.name == MIGRATED
    assert migrated.family is not None


# ------------------------------------------------------------------ the store, answered late


def held_logged_in(kit: SessionKit) -> Browser:
    browser = Browser(kit)
    browser.request(login("alice"))
    return browser


def test_a_request_held_across_logout_and_a_new_login_leaves_the_new_session(
    make_kit: MakeKit,
) -> None:
    kit = make_kit(visitor_cookie=None, store=MemoryStore())
    browser = held_logged_in(kit)
    held = browser.start(method="POST")
    browser.request(lambda s: s.invalidate())
    browser.request(login("bob"))
    held.run(put(note="from before the logout")).deliver()
    assert held.set_cookies == [], "neither a new session nor a deletion"
    assert browser.user() == "bob"


def test_a_login_in_a_request_held_across_logout_starts_a_session(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None, store=MemoryStore())
    browser = held_logged_in(kit)
    held = browser.start(method="POST")
    browser.request(lambda s: s.invalidate())
    held.run(login("bob")).deliver()
    assert held.set_cookies != []
    assert browser.user() == "bob"


def test_a_logout_that_loses_races_still_ends_the_session(make_kit: MakeKit) -> None:
    store = Contended()
    kit = make_kit(visitor_cookie=None, store=store)
    browser = held_logged_in(kit)
    thief = browser.copy()
    store.rivals = 3
    browser.request(lambda s: s.invalidate())
    assert store.rivals == 0
    assert thief.user() is None


def test_a_logout_that_never_stops_losing_is_a_503_and_no_logout_is_claimed(
    make_kit: MakeKit,
) -> None:
    store = Contended()
    kit = make_kit(visitor_cookie=None, store=store)
    browser = held_logged_in(kit)
    store.rivals = 10_000
    assert browser.request(lambda s: s.invalidate()).status == 503


def test_a_login_on_a_browser_with_a_stored_anonymous_session_tells_of_a_new_device(
    make_kit: MakeKit,
) -> None:
    seen: list[NewDevice] = []
    kit = make_kit(visitor_cookie=None, store=MemoryStore(), on_new_device=seen.append)
    ex = kit.open(None, user_agent=CHROME)
    ex.session.login("alice")
    ex.finish([], [])
    ex = kit.open(None, user_agent=FIREFOX)
    ex.session["cart"] = ["tea"]
    cart = cookie_header(ex.finish([], []))
    ex = kit.open(cart, user_agent=FIREFOX)
    assert ex.load_record() is None
    ex.session.login("alice")
    ex.finish([], [])
    assert [(d.device, d.known) for d in seen] == [
        ("Chrome on Linux", ()),
        ("Firefox on Windows", ("Chrome on Linux",)),
    ]


def test_a_request_sent_before_the_logout_response_arrived_writes_nothing(
    make_kit: MakeKit,
) -> None:
    kit = make_kit(visitor_cookie=None, store=MemoryStore())
    browser = held_logged_in(kit)
    leaving = browser.start(method="POST").run(lambda s: s.invalidate()).respond()
    late = browser.start(method="POST")  # the pre-logout cookie, after the logout
    late.run(put(note="after the logout")).respond()
    leaving.deliver()
    late.deliver()
    assert late.set_cookies == [], "no new session of the note, no deletion"
    assert browser.user() is None
    assert browser.request(lambda s: s.get("note")).result is None


def test_a_login_sent_before_the_logout_response_arrived_still_logs_in(
    make_kit: MakeKit,
) -> None:
    kit = make_kit(visitor_cookie=None, store=MemoryStore())
    browser = held_logged_in(kit)
    leaving = browser.start(method="POST").run(lambda s: s.invalidate()).respond()
    signing_in = browser.start(method="POST").run(login("bob")).respond()
    leaving.deliver()
    signing_in.deliver()
    assert signing_in.set_cookies != []
    assert browser.user() == "bob"


def test_a_confirmation_that_never_stops_losing_fails_closed(make_kit: MakeKit) -> None:
    store = Contended()
    kit = make_kit(visitor_cookie=None, store=store, require_cookies=[PROTECTED])
    browser = Browser(kit)
    browser.request(login("alice"))
    browser.request(lambda s: s.rotate())  # the next request with the new id confirms it
    store.rivals = 10_000
    assert browser.start(path=PROTECTED).status == 503
    public = browser.start(path="/")
    assert public.status == 200
    assert public.run(lambda s: s.user_id).result is None, "served as nobody"
    store.rivals = 0
    assert browser.user() == "alice"


def test_a_token_is_checked_once(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None, forgery=ForgeryPolicy(token_paths=["/"]))
    first = kit.open(None)
    token = first.csrf_token()
    cookie = cookie_header(first.finish([], []))
    host = "app.example"
    ex = kit.open(
        cookie,
        method="POST",
        path="/",
        provenance=Provenance(host=host, origin=f"https://{host}", token=token),
    )
    assert ex.token_check is not None
    assert ex.check_token() is None
    assert ex.token_check is None


def test_a_cookie_of_exactly_the_size_limit_is_sent(make_kit: MakeKit) -> None:
    # base64 text is never 1 more than a multiple of 4 long: with this name, one value is
    # exactly 4096 bytes with its name
    kit = make_kit(visitor_cookie=None, session_cookie="__Host-sk")
    spec = kit.session_spec
    sizes: dict[int, bool] = {}
    for length in range(2900, 3100):
        ex = kit.open(None)
        ex.session["text"] = "a" * length
        try:
            [value] = set_cookies(ex.finish([], []))
        except SessionTooLarge as exc:
            sizes[exc.size] = False
        else:
            sizes[spec.size(value.split(";", 1)[0].split("=", 1)[1])] = True
    assert sizes[MAX_COOKIE_BYTES] is True
    assert all(sent == (size <= MAX_COOKIE_BYTES) for size, sent in sizes.items())


def test_a_stored_session_under_an_older_key_is_reissued_unread_and_reported(
    make_kit: MakeKit, events: Events
) -> None:
    old, new = generate_key(), generate_key()
    store = MemoryStore()
    before = make_kit(secret_keys=[old], visitor_cookie=None, store=store)
    cookie = logged_in(before)
    after = make_kit(
        secret_keys=[new, old], visitor_cookie=None, store=store, on_lifecycle_event=events
    )
    ex = after.open(cookie)
    assert ex.load_record() is None
    assert set_cookies(ex.finish([], [])) != []
    [reissued] = events.all
    assert isinstance(reissued, LifecycleEvent)
    assert reissued.name == KEY_REISSUED


# ------------------------------------------------------------------ writes lost and races lost


class Forgetful(MemoryStore):
    """A MemoryStore that, while ``losing``, acknowledges writes and keeps none of them (a
    Redis master that fails over before its replica saw the write)."""

    def __init__(self) -> None:
        super().__init__()
        self.losing = False

    def save(
        self, ref: FamilyRef, expected: int | None, stored: Stored, until: float, now: float
    ) -> bool:
        return self.losing or super().save(ref, expected, stored, until, now)


class Occupied(MemoryStore):
    """A MemoryStore that refuses to create a family, as if its id were already taken."""

    def save(
        self, ref: FamilyRef, expected: int | None, stored: Stored, until: float, now: float
    ) -> bool:
        return expected is not None and super().save(ref, expected, stored, until, now)


def test_activity_the_store_lost_is_kept_from_the_cookie(make_kit: MakeKit, clock: Any) -> None:
    store = Forgetful()
    kit = make_kit(visitor_cookie=None, store=store)
    cookie = logged_in(kit)
    clock.advance(kit.timeouts.touch)
    seen = int(clock())
    store.losing = True
    ex = kit.open(cookie)
    assert ex.load_record() is None
    refreshed = cookie_header(ex.finish([], []))
    assert refreshed, "the refresh was due"
    store.losing = False
    clock.advance(5)
    ex = kit.open(refreshed)
    assert ex.load_record() is None
    assert ex.session.user_id == "alice"
    assert ex.session.last_seen == seen, "the cookie's later activity, not the record's"
    assert ex.session.expires_in == kit.timeouts.idle_of(None) - 5


def test_a_cookie_reissued_from_what_was_read_follows_a_rotation_made_meanwhile(
    make_kit: MakeKit, clock: Any
) -> None:
    kit = make_kit(visitor_cookie=None, store=MemoryStore())
    first = logged_in(kit)
    lost = kit.open(first)
    assert lost.load_record() is None
    lost.session.rotate()
    assert cookie_header(lost.finish([], [])), "a rotation whose response never arrived"
    slow = kit.open(first)
    assert slow.load_record() is None
    fast = kit.open(first)
    assert fast.load_record() is None
    fast.session.rotate()
    rotated = cookie_header(fast.finish([], []))
    reissued = cookie_header(slow.finish([], []))
    assert reissued, "the browser still held the first id: it gets the current one"
    other_tab = kit.open(rotated)
    assert other_tab.load_record() is None
    assert other_tab.session.user_id == "alice"
    other_tab.finish([], [])
    clock.advance(kit.timeouts.grace + 1)
    later = kit.open(reissued)
    assert later.load_record() is None
    assert later.session.user_id == "alice", "the id the record held, not a replayed one"


def test_an_emptied_session_that_never_wins_its_write_is_a_503(make_kit: MakeKit) -> None:
    store = Contended()
    kit = make_kit(visitor_cookie=None, store=store)
    ex = kit.open(None)
    ex.session["cart"] = ["tea"]
    cookie = cookie_header(ex.finish([], []))
    ex = kit.open(cookie)
    assert ex.load_record() is None
    del ex.session["cart"]
    store.rivals = 1_000
    answer = ex.finish([], [])
    assert isinstance(answer, EarlyResponse)
    assert answer.status == 503, "the cart was not emptied: the page must not say it was"


def test_a_new_family_the_store_refuses_is_a_503(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None, store=Occupied())
    ex = kit.open(None)
    ex.session.login("alice")
    answer = ex.finish([], [])
    assert isinstance(answer, EarlyResponse)
    assert answer.status == 503, "no cookie for a session the store does not hold"


def test_a_logout_after_a_revocation_keeps_the_revocation_loud(
    make_kit: MakeKit, events: Events
) -> None:
    kit = make_kit(visitor_cookie=None, store=MemoryStore(), on_security_event=events)
    cookie = logged_in(kit)
    ex = kit.open(cookie)
    assert ex.load_record() is None
    assert kit.revoke_user("alice") == 1
    ex.session.invalidate()
    assert set_cookies(ex.finish([], [])) != [], "the browser's cookie is deleted"
    assert events.all == []
    again = kit.open(cookie)
    assert again.load_record() is None
    assert again.session.user_id is None
    assert events.names == [REVOKED], (
        "a copy presented after a revocation is reported, even within the grace period"
    )
