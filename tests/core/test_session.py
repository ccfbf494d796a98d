"""The Session mapping, its lifecycle and its sealed payload (sessionkit.session)."""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from sessionkit import Session, UnserializableValue
from sessionkit.errors import BadToken
from sessionkit.lifetime import Lifetime, Timeouts
from sessionkit.privacy import SensitiveDataGuard
from sessionkit.session import (
    SESSION_ID_BYTES,
    State,
    check_timeouts,
    decode_payload,
    encode_payload,
)

NOW = 1_800_000_000
T = Timeouts()
GUARD = SensitiveDataGuard()


def opened(state: State, data: dict[str, Any] | None = None) -> Session:
    """A request's session, filled as the exchange fills it from a cookie."""
    session = Session.lazy(lambda s: s.fill(state, data), NOW, GUARD, T)
    return session


def fresh() -> Session:
    return Session.lazy(Session.reset, NOW, GUARD, T)


# ---------------------------------------------------------------------- Starlette's API


def test_session_of_a_mapping_holds_it_unmodified_and_unaccessed() -> None:
    s = Session({"a": "1", "b": "2"})
    assert s == {"a": "1", "b": "2"}
    assert not s.modified
    assert not s.accessed
    s.get("a")
    s.pop("missing", None)
    s.setdefault("a", "other")
    assert not s.modified
    assert not s.accessed  # reads of a standalone session are no access, as in Starlette


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.__setitem__("a", 1),
        lambda s: s.update({"a": 1}),
        lambda s: s.update(a=1),
        lambda s: s.update([("a", 1)]),
        lambda s: s.setdefault("a", 1),
        lambda s: s.__ior__({"a": 1}),
    ],
)
def test_every_write_is_tracked(mutate: Callable[[Session], object]) -> None:
    s = Session()
    mutate(s)
    assert s.modified
    assert s.accessed
    assert s == {"a": 1}


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.__delitem__("a"),
        lambda s: s.pop("a"),
        lambda s: s.pop("a", None),
        lambda s: s.popitem(),
    ],
)
def test_every_removal_is_tracked(mutate: Callable[[Session], object]) -> None:
    s = Session({"a": 1})
    mutate(s)
    assert s.modified
    assert s == {}


def test_nested_change_needs_the_modified_flag() -> None:
    s = opened(State.fresh(NOW), {"cart": []})
    s["cart"].append("book")
    assert not s.modified
    s.modified = True
    assert s.modified


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("when", datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)),
        ("set", {1, 2}),
        ("bytes", b"x"),
        ("nan", math.nan),
        ("inf", math.inf),
        ("obj", object()),
        ("big", 2**64),
        ("nested-big", [2**64]),
        ("nested-nan", {"x": [math.nan]}),
        ("surrogate", "\ud800"),
        ("nested-surrogate", ["\udfff"]),
        (1, "int key"),
    ],
)
def test_non_json_values_fail_at_write(key: Any, value: object) -> None:
    s = Session()
    with pytest.raises(UnserializableValue):
        s[key] = value
    assert s == {}
    assert not s.modified


def test_a_value_changed_in_place_that_is_not_json_fails_clearly_at_save() -> None:
    s = Session({"box": []})
    s["box"].append(object())
    with pytest.raises(UnserializableValue, match="changed in place"):
        encode_payload(s.state, dict(dict.items(s)))


# ---------------------------------------------------------------------- lazy opening


def test_a_request_session_opens_on_first_use_only() -> None:
    calls: list[int] = []

    def opener(session: Session) -> None:
        calls.append(1)
        session.fill(State.fresh(NOW), {"a": 1})

    s = Session.lazy(opener, NOW, GUARD, T)
    assert not s.opened
    assert calls == []
    assert json.dumps(s) == "{}"  # what a C-level reader sees before first use
    assert s["a"] == 1
    assert calls == [1]
    assert s.accessed
    assert json.dumps(s) == '{"a": 1}'
    s.get("a")
    assert calls == [1]


@pytest.mark.parametrize(
    "use",
    [
        lambda s: s.get("a"),
        lambda s: "a" in s,
        lambda s: len(s),
        lambda s: list(s),
        lambda s: list(s.items()),
        lambda s: list(s.keys()),
        lambda s: list(s.values()),
        lambda s: s == {},
        lambda s: dict(s),
        lambda s: {**s},
        lambda s: s | {},
        lambda s: s.copy(),
        lambda s: repr(s),
        lambda s: s.id,
        lambda s: s.user_id,
        lambda s: s.mark_accessed(),
    ],
)
def test_every_read_opens_the_session_and_counts_as_access(
    use: Callable[[Session], object],
) -> None:
    s = opened(State.fresh(NOW), {"a": 1})
    use(s)
    assert s.opened
    assert s.accessed


def test_the_exchange_can_open_without_counting_access() -> None:
    s = opened(State.fresh(NOW), {"a": 1})
    assert s.state.family
    assert s.opened
    assert not s.accessed


# ---------------------------------------------------------------------- lifecycle


def logged_in(user: str | int = "alice") -> Session:
    s = opened(State.fresh(NOW - 100), {"cart": ["book"]})
    s.login(user)
    return s


def test_login_rotates_binds_and_counts_from_now() -> None:
    anonymous = State.fresh(NOW - 100)
    s = opened(anonymous, {"cart": ["book"]})
    s.login("alice")
    assert s.user_id == "alice"
    assert s.id != anonymous.id
    assert s.family != anonymous.family
    assert s.created_at == s.auth_time == NOW
    assert s.ended == anonymous.family
    assert s["cart"] == ["book"]  # an anonymous session's data survives login
    assert s.modified


def test_login_as_another_user_drops_the_data() -> None:
    alice = logged_in().state
    s = opened(alice, {"second_factor_ok": True})
    s.login("bob")
    assert s == {}
    assert s.user_id == "bob"


def test_login_of_the_same_user_keeps_the_data() -> None:
    s = opened(logged_in().state, {"cart": [1]})
    s.login("alice")
    assert s == {"cart": [1]}


@pytest.mark.parametrize("user", [1.5, None, ["a"], True])
def test_login_takes_str_or_int_users_only(user: Any) -> None:
    with pytest.raises(UnserializableValue):
        fresh().login(user)


@pytest.mark.parametrize("logout", [Session.invalidate, Session.clear])
def test_logout_drops_data_user_and_family(logout: Callable[[Session], None]) -> None:
    alice = logged_in().state
    s = opened(alice, {"x": 1})
    logout(s)
    assert s == {}
    assert s.user_id is None
    assert s.auth_time is None
    assert s.family != alice.family
    assert s.id != alice.id
    assert s.ended == alice.family
    assert s.is_empty


def test_rotate_changes_the_id_and_generation_and_keeps_the_rest() -> None:
    alice = logged_in().state
    s = opened(alice, {"x": 1})
    s.rotate()
    assert s.id != alice.id
    assert s.family == alice.family
    assert s.user_id == "alice"
    assert s == {"x": 1}
    assert s.state.generation == alice.generation + 1
    assert s.explicit_rotation
    assert s.ended is None


def test_confirm_login_refreshes_auth_time_and_rotates() -> None:
    alice = logged_in().state._replace(auth_time=NOW - 500, last_seen=NOW - 10)
    s = opened(alice)
    assert s.auth_age == 500
    s.confirm_login()
    assert s.auth_age == 0
    assert s.id != alice.id
    with pytest.raises(RuntimeError, match="login"):
        fresh().confirm_login()


def test_set_expiry_gives_the_session_its_own_lifetime() -> None:
    s = opened(logged_in().state)
    s.set_expiry(14 * 24 * 3600)
    assert s.lifetime == Lifetime(14 * 24 * 3600, NOW + 14 * 24 * 3600, True)
    s.set_expiry(0)
    assert not s.persistent
    s.set_expiry(None)
    assert s.lifetime is None
    assert s.persistent


# ---------------------------------------------------------------------- the payload


def test_new_ids_are_random_128_bits() -> None:
    ids = {State.fresh(NOW).id for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 22 for i in ids)
    assert SESSION_ID_BYTES * 8 >= 128


@pytest.mark.parametrize("user", ["alice", 42, None])
def test_payload_round_trips_state_and_data(user: str | int | None) -> None:
    state = State.fresh(NOW)._replace(
        user_id=user,
        auth_time=NOW if user is not None else 0,
        generation=3,
        lifetime=Lifetime(600, NOW + 900, False),
    )
    assert decode_payload(encode_payload(state, {"k": [1, {"x": None}]})) == (
        state,
        {"k": [1, {"x": None}]},
    )
    assert decode_payload(encode_payload(state, None)) == (state, None)


def test_integer_users_stay_integers() -> None:
    state = State.fresh(NOW)._replace(user_id=42, auth_time=NOW)
    restored, _ = decode_payload(encode_payload(state, {}))
    assert restored.user_id == 42
    assert type(restored.user_id) is int


def test_version_one_payloads_still_open() -> None:
    sid, family = "i" * 22, "f" * 22
    old = orjson.dumps([sid, family, NOW, NOW + 5, NOW + 2, "alice", {"a": 1}])
    state, data = decode_payload(old)
    assert (state.id, state.family, state.user_id, state.auth_time) == (sid, family, "alice", NOW)
    assert data == {"a": 1}


SID = "i" * 22
F = "f" * 22


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"{}",
        b"[]",
        b"\xff\xfe",
        orjson.dumps([2, "short", F, None, 1, 1, 1, 0, 0, None, {}]),
        orjson.dumps([2, SID, "short", None, 1, 1, 1, 0, 0, None, {}]),
        orjson.dumps([2, SID, F, None, 1, 1, 1, 0, 0, None, []]),
        orjson.dumps([2, SID, F, None, 2, 1, 1, 0, 0, None, {}]),  # created after seen
        orjson.dumps([2, SID, F, None, 1, 1, 2, 0, 0, None, {}]),  # rotated after seen
        orjson.dumps([2, SID, F, None, 1.5, 2, 2, 0, 0, None, {}]),
        orjson.dumps([2, SID, F, [1], 1, 1, 1, 0, 0, None, {}]),
        orjson.dumps([2, SID, F, None, True, 1, 1, 0, 0, None, {}]),
        orjson.dumps([2, SID, F, None, 1, 1, 1, 1, 0, None, {}]),  # auth_time without a user
        orjson.dumps([2, SID, F, "u", 5, 9, 5, 2, 0, None, {}]),  # auth_time before creation
        orjson.dumps([2, SID, F, "u", 1, 1, 1, 1, -1, None, {}]),
        orjson.dumps([2, SID, F, "u", 1, 1, 1, 1, 0, [1, 2], {}]),
        orjson.dumps([2, SID, F, "u", 1, 1, 1, 1, 0, [1, 2, 1], {}]),
        orjson.dumps([2, SID, F, "u", 1, 1, 1, 1, 0, [-1, 2, True], {}]),
        orjson.dumps([3, SID, F, None, 1, 1, 1, 0, 0, None, {}]),
        orjson.dumps([SID, F, 1, 1, 1, None]),
    ],
)
def test_payloads_of_the_wrong_shape_are_rejected(payload: bytes) -> None:
    with pytest.raises(BadToken) as info:
        decode_payload(payload)
    assert info.value.reason == "invalid_payload"


# ---------------------------------------------------------------------- timeouts, exactly


def test_idle_and_absolute_bounds_are_inclusive_and_the_skew_exact() -> None:
    state = State.fresh(NOW)
    assert check_timeouts(state, NOW + T.idle, T) is None
    assert check_timeouts(state, NOW + T.idle + 1, T) == "expired_idle"
    active = state._replace(last_seen=NOW + T.absolute)
    assert check_timeouts(active, NOW + T.absolute, T) is None
    assert check_timeouts(active, NOW + T.absolute + 1, T) == "expired_absolute"
    assert check_timeouts(state, NOW - T.max_skew, T) is None
    assert check_timeouts(state, NOW - T.max_skew - 1, T) == "from_the_future"


def test_a_remembered_sessions_own_idle_bound_is_inclusive() -> None:
    lifetime = T.lifetime_for(3600, NOW, NOW)
    assert lifetime is not None
    assert lifetime.end > NOW + 3601
    remembered = State.fresh(NOW)._replace(lifetime=lifetime)
    assert check_timeouts(remembered, NOW + 3600, T) is None
    assert check_timeouts(remembered, NOW + 3601, T) == "expired_idle"


def test_a_browser_session_lifetime_keeps_the_kits_idle_bound() -> None:
    closing = State.fresh(NOW)._replace(lifetime=T.lifetime_for(0, NOW, NOW))
    assert check_timeouts(closing, NOW + T.idle, T) is None
    assert check_timeouts(closing, NOW + T.idle + 1, T) == "expired_idle"


@pytest.mark.parametrize("expiry", [0, 60, datetime.timedelta(days=3)])
def test_a_sealed_lifetime_opens_as_it_was_set(expiry: object) -> None:
    lifetime = T.lifetime_for(expiry, NOW, NOW)  # type: ignore[arg-type]
    state = State.fresh(NOW)._replace(lifetime=lifetime)
    opened, data = decode_payload(encode_payload(state, {"k": 1}))
    assert opened == state
    assert data == {"k": 1}


def test_a_remembered_session_is_capped_by_max_lifetime() -> None:
    remembered = State.fresh(NOW)._replace(lifetime=Lifetime(10**9, 10**12, True))
    assert T.idle_of(remembered.lifetime) == T.max_lifetime
    seen = remembered._replace(last_seen=NOW + T.max_lifetime)
    assert check_timeouts(seen, NOW + T.max_lifetime, T) is None
    assert check_timeouts(seen, NOW + T.max_lifetime + 1, T) == "expired_absolute"
