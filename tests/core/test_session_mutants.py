"""The Session mapping's lifecycle and dict API, field by field (sessionkit.session)."""

from __future__ import annotations

import dataclasses
import datetime
import pickle
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from sessionkit import SensitiveData, Session, UnserializableValue
from sessionkit.errors import BadToken
from sessionkit.lifetime import Lifetime, Timeouts
from sessionkit.privacy import SensitiveDataGuard
from sessionkit.session import State, decode_payload, encode_payload

NOW = 1_800_000_000
T = Timeouts()
GUARD = SensitiveDataGuard()
#: A state sealed a while ago, bound to a user, three privilege changes old.
OLD = State("i" * 22, "f" * 22, "alice", NOW - 900, NOW - 60, NOW - 300, NOW - 900, 3, None)


def opened(state: State = OLD, data: dict[str, Any] | None = None) -> Session:
    """A request's session that the exchange fills from its cookie on first use."""
    return Session.lazy(lambda s: s.fill(state, data), NOW, GUARD, T)


def fresh() -> Session:
    return Session.lazy(Session.reset, NOW, GUARD, T)


# -- state as the app reads it -------------------------------------------------------


def test_a_fresh_state_has_no_user_no_auth_time_and_generation_zero() -> None:
    state = State.fresh(NOW)
    assert (state.user_id, state.auth_time, state.generation, state.lifetime) == (None, 0, 0, None)
    assert (state.created_at, state.last_seen, state.rotated_at) == (NOW, NOW, NOW)
    assert fresh().auth_time is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("id", OLD.id),
        ("family", OLD.family),
        ("user_id", "alice"),
        ("created_at", NOW - 900),
        ("last_seen", NOW - 60),
        ("auth_time", NOW - 900),
        ("auth_age", 900.0),
        ("lifetime", None),
        ("expires_in", T.idle - 60),
        ("persistent", True),
    ],
)
def test_each_state_property_opens_the_session_and_counts_as_a_use(
    name: str, expected: object
) -> None:
    session = opened(data={"a": 1})
    assert getattr(session, name) == expected
    assert session.opened
    assert session.accessed


def test_the_exchange_reads_the_loaded_state_without_counting_a_use() -> None:
    session = opened()
    assert session.loaded == OLD
    assert session.opened
    assert not session.accessed
    assert fresh().loaded is None


def test_id_changed_compares_with_the_id_the_request_arrived_with() -> None:
    session = opened()
    assert session.id_changed is False
    assert not session.accessed
    session.rotate()
    assert session.id_changed is True
    assert fresh().id_changed is True


def test_is_empty_opens_first_and_counts_a_user_as_content() -> None:
    assert opened(data={"a": 1}).is_empty is False
    assert opened(OLD, None).is_empty is False  # bound to a user, no data
    assert opened(OLD._replace(user_id=None, auth_time=0), None).is_empty is True


# -- construction by the exchange ------------------------------------------------------


def test_fill_replaces_what_the_session_held_and_cancels_the_opener() -> None:
    session = opened(data={"from": "cookie"})
    session.fill(OLD._replace(id="j" * 22), {"from": "store"})
    assert session.opened
    assert session == {"from": "store"}
    assert session.id == "j" * 22
    assert session.is_new is False
    standalone = Session({"x": 1})
    standalone.fill(OLD, {"y": 2})
    assert dict(standalone.items()) == {"y": 2}


def test_reset_starts_over_after_the_session_was_filled() -> None:
    session = opened(data={"a": 1})
    session["b"] = 2
    session.reset()
    assert dict(session.items()) == {}
    assert session.is_new is True
    assert session.loaded is None
    assert session.user_id is None
    assert session.id != OLD.id


def test_a_session_opened_empty_keeps_what_is_written_to_it() -> None:
    session = fresh()
    session["a"] = 1
    assert session["a"] == 1
    session["b"] = 2
    assert session == {"a": 1, "b": 2}
    assert session.is_new is True


def test_adopt_takes_the_stores_state_and_its_data_when_given() -> None:
    session = opened(data={"mine": 1})
    session.open()
    winner = OLD._replace(id="w" * 22, generation=4)
    session.adopt(winner, {"theirs": 2})
    assert (session.state, session.loaded) == (winner, winner)
    assert session == {"theirs": 2}
    later = winner._replace(id="x" * 22)
    session.adopt(later, None)
    assert session.state == later
    assert session == {"theirs": 2}


def test_a_standalone_session_is_new_unrotated_and_can_log_in() -> None:
    session = Session({"a": 1})
    assert session.is_new is True
    assert session.explicit_rotation is False
    assert session.id_changed is True
    session.login("alice")
    assert session.ended is None
    assert session.user_id == "alice"


def test_a_standalone_session_takes_a_lifetime_under_the_default_timeouts() -> None:
    session = Session({"k": 1})
    session.set_expiry(60)
    assert session.lifetime == Lifetime(60, session.created_at + T.absolute, True)
    session.set_expiry(10**9)
    assert session.lifetime is not None
    assert session.lifetime.idle == T.max_lifetime


def test_a_standalone_session_checks_its_initial_values() -> None:
    with pytest.raises(UnserializableValue):
        Session({"a": object()})


def test_only_rotate_marks_an_explicit_rotation() -> None:
    session = opened()
    session["a"] = 1
    assert session.explicit_rotation is False
    session.rotate()
    assert session.explicit_rotation is True


# -- lifecycle changes, every field ------------------------------------------------------


def test_rotate_stamps_the_rotation_time_now() -> None:
    session = opened()
    session.rotate()
    state = session.state
    assert state.rotated_at == NOW
    assert (state.created_at, state.last_seen, state.auth_time) == (
        OLD.created_at,
        OLD.last_seen,
        OLD.auth_time,
    )
    assert state.generation == OLD.generation + 1


def test_login_restarts_every_clock_and_counts_one_privilege_change() -> None:
    session = opened()
    session.login("bob")
    state = session.state
    assert (state.created_at, state.last_seen, state.rotated_at, state.auth_time) == (
        NOW,
        NOW,
        NOW,
        NOW,
    )
    assert state.generation == OLD.generation + 1
    assert session.ended == OLD.family


def test_login_of_a_session_that_had_no_cookie_ends_no_family() -> None:
    session = fresh()
    session.login(7)
    assert session.ended is None
    assert session.user_id == 7


def test_logout_restarts_every_clock_and_forgets_the_lifetime() -> None:
    session = opened(OLD._replace(lifetime=Lifetime(600, NOW + 9000, True)), {"a": 1})
    session.invalidate()
    state = session.state
    assert state.user_id is None
    assert (state.created_at, state.last_seen, state.rotated_at, state.auth_time) == (
        NOW,
        NOW,
        NOW,
        0,
    )
    assert state.lifetime is None
    assert state.generation == OLD.generation + 1
    assert state.id != OLD.id
    assert state.family != OLD.family


# -- the dict API on a session not opened yet --------------------------------------------


def test_writes_and_removals_open_the_session_first() -> None:
    session = opened(data={"a": 1, "b": 2, "c": 3})
    session["d"] = 4
    assert session == {"a": 1, "b": 2, "c": 3, "d": 4}
    session = opened(data={"a": 1})
    del session["a"]
    assert session == {}
    assert opened(data={"a": 1}).pop("a") == 1
    assert opened(data={"a": 1}).popitem() == ("a", 1)
    assert opened(data={"a": 1}).setdefault("a", 5) == 1


def test_pop_and_setdefault_as_dict_does() -> None:
    session = opened(data={"a": 1})
    assert session.pop("missing", 5) == 5
    with pytest.raises(KeyError):
        session.pop("missing")
    assert session.setdefault("new", 9) == 9
    assert session["new"] == 9


def test_reads_give_the_data() -> None:
    session = opened(data={"a": 1, "b": 2})
    assert "a" in session
    assert "z" not in session
    assert session.get("a") == 1
    assert list(reversed(session)) == ["b", "a"]
    assert session != {"a": 1}
    assert (session != {"a": 1, "b": 2}) is False
    assert session | {"c": 3} == {"a": 1, "b": 2, "c": 3}
    copied = session.copy()
    assert copied == {"a": 1, "b": 2}
    assert type(copied) is dict


@pytest.mark.parametrize(
    "read",
    [lambda s: list(reversed(s)), lambda s: s != {}, lambda s: pickle.dumps(s)],
)
def test_these_reads_also_open_and_count(read: Callable[[Session], object]) -> None:
    session = opened(data={"a": 1})
    read(session)
    assert session.opened
    assert session.accessed


def test_in_place_or_keeps_the_session_object() -> None:
    session = opened(data={"a": 1})
    same = session
    session |= {"b": 2}
    assert session is same
    assert session == {"a": 1, "b": 2}


def test_a_pickled_session_is_its_data_as_a_plain_dict() -> None:
    restored = pickle.loads(pickle.dumps(opened(data={"a": [1, 2]})))
    assert restored == {"a": [1, 2]}
    assert type(restored) is dict


def test_password_like_keys_are_refused_at_write() -> None:
    with pytest.raises(SensitiveData):
        opened()["password"] = "hunter2"


# -- values and payloads -----------------------------------------------------------------


@pytest.mark.parametrize("number", [-(2**63), 2**64 - 1])
def test_the_64_bit_bounds_are_stored(number: int) -> None:
    session = opened()
    session["n"] = number
    assert decode_payload(encode_payload(session.state, {"n": number}))[1] == {"n": number}


@pytest.mark.parametrize("number", [-(2**63) - 1, 2**64])
def test_integers_beyond_64_bits_are_refused_at_write(number: int) -> None:
    with pytest.raises(UnserializableValue):
        opened()["n"] = number


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize("value", [datetime.datetime(2026, 1, 1), Point(1)])
def test_a_date_or_dataclass_put_inside_a_value_fails_at_save(value: object) -> None:
    """orjson would write these as text; the session refuses them as json does."""
    session = opened()
    session["items"] = []
    session["items"].append(value)
    with pytest.raises(UnserializableValue):
        encode_payload(session.state, dict(session.items()))


@pytest.mark.parametrize("payload", [b"5", b'"abcdefg"', b"null", b'"abcdefghijk"', b"true"])
def test_payloads_that_are_not_a_list_are_rejected(payload: bytes) -> None:
    with pytest.raises(BadToken) as caught:
        decode_payload(payload)
    assert caught.value.reason == "invalid_payload"


def test_an_anonymous_version_one_payload_opens() -> None:
    sid, family = "i" * 22, "f" * 22
    state, data = decode_payload(orjson.dumps([sid, family, NOW, NOW + 5, NOW + 2, None, {}]))
    assert (state.user_id, state.auth_time, state.generation, state.lifetime) == (None, 0, 0, None)
    assert data == {}
    signed_in, _ = decode_payload(orjson.dumps([sid, family, NOW, NOW + 5, NOW + 2, 42, None]))
    assert (signed_in.user_id, signed_in.auth_time, signed_in.generation) == (42, NOW, 0)
