from __future__ import annotations

import datetime
import json
import math

import pytest

from sessionkit import Session, UnserializableValue
from sessionkit.errors import BadToken
from sessionkit.session import SESSION_ID_BYTES

NOW = 1_800_000_000
LIMITS = {"idle_timeout": 1800, "absolute_timeout": 43200, "max_clock_skew": 60}


def reopen(session: Session, now: float = NOW) -> Session:
    opened, spilled = Session.opened(session.payload(), now, **LIMITS)
    assert not spilled
    return opened


def test_new_session_is_empty_unmodified_with_a_random_id() -> None:
    s = Session(NOW)
    assert s == {}
    assert s.is_new
    assert not s.modified
    assert s.is_empty
    assert s.created_at == s.last_seen == NOW
    assert len(s.id) == 22
    assert len({Session(NOW).id for _ in range(1000)}) == 1000
    assert SESSION_ID_BYTES * 8 >= 128


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
def test_every_write_is_tracked(mutate: object) -> None:
    s = Session(NOW)
    mutate(s)  # type: ignore[operator]
    assert s.modified
    assert s == {"a": 1}


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.__delitem__("a"),
        lambda s: s.pop("a"),
        lambda s: s.pop("a", None),
        lambda s: s.popitem(),
        lambda s: s.clear(),
    ],
)
def test_every_removal_is_tracked(mutate: object) -> None:
    s = reopen(_with(a=1))
    assert not s.modified
    mutate(s)  # type: ignore[operator]
    assert s.modified
    assert s == {}


def test_reads_and_no_op_changes_are_not_modifications() -> None:
    s = reopen(_with(a=1))
    assert s.get("a") == 1
    assert s["a"] == 1
    assert "a" in s
    assert s.pop("missing", 0) == 0
    assert s.setdefault("a", 5) == 1
    assert dict(s) == {"a": 1}
    assert json.dumps({"session": s}) == '{"session": {"a": 1}}'
    assert s | {"b": 2} == {"a": 1, "b": 2}
    Session(NOW).clear()
    assert not s.modified
    with pytest.raises(KeyError):
        s.pop("missing")


def test_nested_change_needs_the_modified_flag() -> None:
    s = reopen(_with(cart=[]))
    s["cart"].append("apple")
    assert not s.modified
    s.modified = True
    assert reopen(s)["cart"] == ["apple"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("when", datetime.datetime(2026, 1, 1)),
        ("set", {1, 2}),
        ("bytes", b"x"),
        ("nan", math.nan),
        ("inf", math.inf),
        ("obj", object()),
        ("big", 2**64),
        ("nested-big", {"n": [-(2**63) - 1]}),
        ("nested-nan", [1.0, math.nan]),
        ("surrogate", "\ud800"),
        ("nested-surrogate", ["\udfff"]),
        (1, "int key"),
    ],
)
def test_non_json_values_fail_at_write(key: object, value: object) -> None:
    s = Session(NOW)
    with pytest.raises(UnserializableValue, match="session"):
        s[key] = value  # type: ignore[index]
    with pytest.raises(UnserializableValue):
        s.update({key: value})
    assert s == {}
    assert not s.modified


def test_non_json_value_changed_in_place_fails_clearly_at_save() -> None:
    s = _with(items=[])
    s["items"].append({1, 2})
    with pytest.raises(UnserializableValue, match="changed in place"):
        s.payload()


def test_round_trip_keeps_id_times_user_and_data() -> None:
    s = _with(name="ünïcode", n=1.5, nested={"a": [1, None, True]})
    s.login("user-7")
    back = reopen(s, NOW + 5)
    assert back == s
    assert back.id == s.id
    assert back.user_id == "user-7"
    assert back.created_at == NOW
    assert not back.is_new
    assert not back.modified
    assert not back.id_changed


def test_rotate_changes_id_keeps_data() -> None:
    s = reopen(_with(a=1))
    old = s.id
    s.rotate()
    assert s.id != old
    assert s.id_changed
    assert s == {"a": 1}


def test_login_rotates_and_binds() -> None:
    s = reopen(_with(cart=[1]))
    old = s.id
    s.login(42)
    assert s.id != old
    assert s.user_id == 42
    assert s == {"cart": [1]}
    assert not s.is_empty
    with pytest.raises(UnserializableValue):
        s.login(["not", "an", "id"])  # type: ignore[arg-type]


def test_invalidate_drops_everything_under_a_new_id() -> None:
    s = _with(a=1)
    s.login("u")
    s = reopen(s, NOW + 100)
    old = s.id
    s.invalidate()
    assert s == {}
    assert s.user_id is None
    assert s.id != old
    assert s.is_empty
    assert s.created_at == NOW + 100


@pytest.mark.parametrize(
    ("now", "reason"),
    [
        (NOW + 1801, "expired_idle"),
        (NOW - 61, "from_the_future"),
    ],
)
def test_timeouts_and_future_timestamps_are_enforced(now: int, reason: str) -> None:
    with pytest.raises(BadToken) as caught:
        reopen(_with(a=1), now)
    assert caught.value.reason == reason


def test_absolute_timeout_holds_however_active() -> None:
    s = _with(a=1)
    now = NOW
    while now < NOW + 43200 - 600:
        now += 600
        s = reopen(s, now)
        s._now = int(now)
    with pytest.raises(BadToken, match="expired_absolute"):
        reopen(s, NOW + 43201)


A = "a" * 22


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"{}",
        b"[]",
        f'["short", "{A}", 1, 1, 1, null, {{}}]'.encode(),
        f'["{A}", "short", 1, 1, 1, null, {{}}]'.encode(),
        f'["{A}", "{A}", 1, 1, 1, null, []]'.encode(),
        f'["{A}", "{A}", 2, 1, 1, null, {{}}]'.encode(),
        f'["{A}", "{A}", 1.5, 2, 2, null, {{}}]'.encode(),
        f'["{A}", "{A}", 1, 1, 1, [1], {{}}]'.encode(),
        f'["{A}", "{A}", true, 1, 1, null, {{}}]'.encode(),
        f'["{A}", 1, 1, 1, null, {{}}]'.encode(),
        b"\xff\xfe",
    ],
)
def test_payloads_of_the_wrong_shape_are_rejected(payload: bytes) -> None:
    with pytest.raises(BadToken, match="invalid_payload"):
        Session.opened(payload, NOW, **LIMITS)


def test_payload_without_data_says_the_store_holds_it() -> None:
    s = _with(a=1)
    opened, spilled = Session.opened(s.payload(with_data=False), NOW, **LIMITS)
    assert spilled
    assert opened == {}
    assert opened.family == s.family


def test_family_survives_rotation_but_not_login_or_logout() -> None:
    s = reopen(_with(a=1))
    family = s.family
    s.rotate()
    assert s.family == family
    s.login("u")
    assert s.family != family
    assert s.loaded_family == family
    family = s.family
    s.invalidate()
    assert s.family != family


def _with(**data: object) -> Session:
    s = Session(NOW)
    s.update(data)
    return s
