"""ASVS V7.5: a user views and ends their sessions; sensitive actions need a fresh login.

Driven through the framework-free core (``CoreBrowser``) with a store and a hand-moved
clock, as the rest of the V7 suite. A stale login is sent to re-authentication, and the
``next`` it carries never leads a browser off the site.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sksec import CoreBrowser, same_origin

from sessionkit import SecurityEvent, SessionKit
from sessionkit.devices import FreshLogin, safe_next
from sessionkit.stores import MemoryStore

pytestmark = pytest.mark.security

MakeKit = Callable[..., SessionKit]


def signed_in(kit: SessionKit, user: str) -> CoreBrowser:
    browser = CoreBrowser(kit)
    browser.request(lambda s: s.login(user))
    return browser


def user_of(browser: CoreBrowser) -> Any:
    response = browser.request()
    assert response.session is not None
    return response.session.user_id


@pytest.mark.asvs("7.5.2", "7.4.1")
def test_a_user_lists_their_sessions_and_ends_one(make_kit: MakeKit) -> None:
    kit = make_kit(store=MemoryStore())
    laptop, phone, tablet = (signed_in(kit, "alice") for _ in range(3))
    listed = kit.sessions_of("alice")
    assert len(listed) == 3
    for info in listed:
        assert len(info.handle) == 22
    current = laptop.request().session
    mine = kit.sessions_of("alice", current=current)
    assert [i.current for i in mine] == [True, False, False]
    phone_handle = kit.sessions_of("alice", current=phone.request().session)[0].handle
    stolen = phone.copy()
    assert kit.revoke_session("alice", phone_handle) is True
    assert user_of(phone) is None
    assert user_of(stolen) is None
    assert user_of(laptop) == "alice"
    assert user_of(tablet) == "alice"
    assert len(kit.sessions_of("alice")) == 2


@pytest.mark.asvs("7.5.2", "16.3.3")
def test_a_handle_of_another_user_ends_nothing_and_is_logged(make_kit: MakeKit) -> None:
    events: list[SecurityEvent] = []
    kit = make_kit(store=MemoryStore(), on_security_event=events.append)
    signed_in(kit, "alice")
    bob = signed_in(kit, "bob")
    [bobs] = kit.sessions_of("bob")
    assert kit.revoke_session("alice", bobs.handle, client="203.0.113.7") is False
    assert user_of(bob) == "bob"
    assert events == [SecurityEvent("foreign_handle", kit.session_spec.name, "203.0.113.0")]


@pytest.mark.asvs("7.5.2", "7.2.1")
def test_the_list_gives_nothing_that_opens_a_session(make_kit: MakeKit) -> None:
    kit = make_kit(store=MemoryStore())
    browser = signed_in(kit, "alice")
    [info] = kit.sessions_of("alice")
    session = browser.request().session
    assert session is not None
    for secret in (session.id, session.family, *browser.jar.values()):
        assert secret not in repr(info)
    # A handle presented as a session cookie is just a malformed cookie.
    thief = CoreBrowser(kit, {kit.session_spec.name: info.handle})
    assert user_of(thief) is None


@pytest.mark.asvs("7.5.1", "7.5.3")
def test_a_stale_login_is_sent_to_reauthenticate_and_confirm_login_renews_it(
    make_kit: MakeKit, clock: Any
) -> None:
    kit = make_kit(store=MemoryStore())
    rule = kit.fresh_login(300)
    browser = signed_in(kit, "alice")
    before = browser.request().session
    assert before is not None
    assert rule.decide(before.auth_age, "/account/email", "") is None
    clock.advance(301)
    stale = browser.request().session
    assert stale is not None
    location = rule.decide(stale.auth_age, "/account/email", "")
    assert location == "/login?next=%2Faccount%2Femail"
    old_id = stale.id
    browser.request(lambda s: s.confirm_login())
    fresh = browser.request().session
    assert fresh is not None
    assert fresh.auth_age == 0
    assert fresh.id != old_id
    assert rule.decide(fresh.auth_age, "/account/email", "") is None


@pytest.mark.asvs("7.5.1")
def test_no_login_is_never_fresh(make_kit: MakeKit) -> None:
    kit = make_kit(store=MemoryStore())
    session = CoreBrowser(kit).request().session
    assert session is not None
    assert session.auth_age is None
    assert kit.fresh_login(10**6).decide(session.auth_age, "/account", "") is not None


@pytest.mark.asvs("3.7.2", "1.2.2")
@settings(max_examples=300)
@given(st.text(), st.text())
def test_the_reauth_next_never_leads_off_site(path: str, query: str) -> None:
    location = FreshLogin(60, "/reauth").decide(None, path, query)
    assert location is not None
    assert same_origin(location)
    [back] = parse_qs(urlsplit(location).query)["next"]
    assert same_origin(back)
    assert safe_next(back) == back


@pytest.mark.asvs("3.7.2")
@settings(max_examples=300)
@given(st.text())
def test_safe_next_lets_through_only_same_origin_targets(value: str) -> None:
    assert same_origin(safe_next(value))
