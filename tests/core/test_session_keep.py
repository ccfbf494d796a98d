"""Empty sessions: kept ones persist (Django's ``create()``), emptied ones lose their cookie."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sessionkit import ConfigurationError, SensitiveData, SessionKit, UnserializableValue
from sessionkit.exchange import Exchange, HeaderChanges
from sessionkit.stores.memory import MemoryStore

MakeKit = Callable[..., SessionKit]
NAME = "__Host-session"


def respond(ex: Exchange) -> list[tuple[str, str]]:
    """The response's added headers, after the store (if any) was written."""
    changes = ex.finish([], [])
    assert isinstance(changes, HeaderChanges)
    return changes.add


def reopen(kit: SessionKit, cookie: str) -> Exchange:
    """The next request's exchange, its store record loaded as the front ends do."""
    ex = kit.open(cookie)
    if ex.pending is not None:
        assert ex.load_record() is None
    return ex


def set_cookies(headers: list[tuple[str, str]]) -> dict[str, str]:
    return {v.split("=", 1)[0]: v for n, v in headers if n == "Set-Cookie"}


def cookie_of(headers: list[tuple[str, str]]) -> str:
    return "; ".join(v.split(";", 1)[0] for v in set_cookies(headers).values())


@pytest.fixture(params=["cookie", "store"])
def kit(request: pytest.FixtureRequest, make_kit: MakeKit) -> SessionKit:
    store = MemoryStore() if request.param == "store" else None
    return make_kit(visitor_cookie=None, store=store)


def test_a_kept_empty_session_gets_a_cookie_and_keeps_its_id(kit: SessionKit, clock: Any) -> None:
    ex = kit.open(None)
    ex.session.keep()
    headers = respond(ex)
    assert NAME in set_cookies(headers)
    first = ex.session.id
    clock.advance(5)
    again = reopen(kit, cookie_of(headers))
    assert again.session == {}
    assert not again.session.is_new
    assert again.session.id == first
    assert NAME not in set_cookies(respond(again)), "unchanged: nothing to send"


def test_an_empty_session_is_not_persisted_unless_kept(kit: SessionKit) -> None:
    ex = kit.open(None)
    ex.session.get("x")
    assert NAME not in set_cookies(respond(ex))


def test_an_emptied_session_loses_its_cookie(make_kit: MakeKit) -> None:
    # Cookie-only: with a store the cookie holds only ids, and the emptied record stays.
    kit = make_kit(visitor_cookie=None)
    ex = kit.open(None)
    ex.session["x"] = 1
    cookie = cookie_of(respond(ex))
    emptied = reopen(kit, cookie)
    del emptied.session["x"]
    deleted = set_cookies(respond(emptied))[NAME]
    assert "Max-Age=0" in deleted


def test_logout_of_a_kept_session_ends_keeping(kit: SessionKit) -> None:
    ex = kit.open(None)
    ex.session.keep()
    cookie = cookie_of(respond(ex))
    out = reopen(kit, cookie)
    out.session.invalidate()
    assert not out.session.kept
    assert "Max-Age=0" in set_cookies(respond(out))[NAME]


def test_logout_in_the_request_that_kept_the_session_sends_no_cookie(kit: SessionKit) -> None:
    ex = kit.open(None)
    ex.session.keep()
    ex.session.invalidate()
    assert not ex.session.kept
    assert NAME not in set_cookies(respond(ex))


def test_touch_interval_zero_refreshes_every_request(make_kit: MakeKit, clock: Any) -> None:
    kit = make_kit(visitor_cookie=None, touch_interval=0)
    ex = kit.open(None)
    ex.session["x"] = 1
    cookie = cookie_of(respond(ex))
    for _ in range(3):
        again = kit.open(cookie)
        again.session.get("x")
        headers = respond(again)
        assert NAME in set_cookies(headers)
        cookie = cookie_of(headers)


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_touch_interval_must_be_whole_non_negative_seconds(
    make_kit: MakeKit, value: object
) -> None:
    with pytest.raises(ConfigurationError, match="touch_interval"):
        make_kit(touch_interval=value)


def test_keep_marks_the_session_used_and_changed(make_kit: MakeKit) -> None:
    ex = make_kit(visitor_cookie=None).open(None)
    session = ex.session
    assert not session.kept
    session.keep()
    assert session.kept
    assert session.accessed
    assert session.modified


def test_is_new_opens_a_lazy_session(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None)
    ex = kit.open(None)
    ex.session["x"] = 1
    cookie = cookie_of(respond(ex))
    again = kit.open(cookie)
    assert not again.session.opened
    assert again.session.is_new is False, "read before anything else opened the session"
    assert kit.open(None).session.is_new is True


def test_put_trusted_stores_past_the_guard_but_not_past_json(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None)
    ex = kit.open(None)
    session = ex.session
    with pytest.raises(SensitiveData):
        session["_password_reset_token"] = "set-password"
    session.put_trusted("_password_reset_token", "set-password")
    assert session["_password_reset_token"] == "set-password"
    assert session.accessed
    assert session.modified
    with pytest.raises(UnserializableValue):
        session.put_trusted("_password_reset_token", {1, 2})
    again = kit.open(cookie_of(respond(ex)))
    assert again.session == {"_password_reset_token": "set-password"}


def test_put_trusted_opens_the_session_first(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None)
    ex = kit.open(None)
    ex.session["a"] = 1
    again = kit.open(cookie_of(respond(ex)))
    again.session.put_trusted("b", 2)
    assert dict(again.session) == {"a": 1, "b": 2}
