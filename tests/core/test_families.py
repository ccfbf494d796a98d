"""The pure rules of a session family (sessionkit.families), without any store."""

from __future__ import annotations

import orjson
import pytest

from sessionkit.families import (
    Ended,
    Intent,
    Record,
    Verdict,
    diff,
    judge,
    new_record,
    parse_stored,
    plan,
)
from sessionkit.lifetime import Timeouts
from sessionkit.session import State

NOW = 1_800_000_000
T = Timeouts()


def state(sid: str = "i" * 22, user: str | int | None = "alice", **fields: object) -> State:
    base = State(sid, "f" * 22, user, NOW, NOW, NOW, NOW if user else 0, 0, None)
    return base._replace(**fields)


def record(**fields: object) -> Record:
    return new_record(state(**fields), {"a": 1}, NOW)


def test_a_cookie_bound_to_another_user_than_the_record_is_refused() -> None:
    judgement = judge(record(), state(user="mallory"), NOW, T)
    assert judgement.verdict is Verdict.REVOKED
    assert judgement.reason == "invalid_payload"


def test_the_current_id_of_an_unconfirmed_record_confirms_it() -> None:
    unconfirmed = Record(3, state(), "p" * 22, 0, b"{}")
    judgement = judge(unconfirmed, state(), NOW + 5, T)
    assert judgement.verdict is Verdict.CURRENT
    assert isinstance(judgement.write, Record)
    assert (judgement.write.version, judgement.write.confirmed_at) == (4, NOW + 5)


@pytest.mark.parametrize(
    ("confirmed_at", "now", "verdict"),
    [
        (0, NOW + 3000, Verdict.PREVIOUS),  # never confirmed: a lost response
        (NOW, NOW + T.grace, Verdict.IN_FLIGHT),  # confirmed, still in flight
        (NOW, NOW + T.grace + 1, Verdict.REPLAYED),  # confirmed, past the grace window
    ],
)
def test_the_previous_id(confirmed_at: int, now: int, verdict: Verdict) -> None:
    rec = Record(3, state(sid="n" * 22, last_seen=now), "p" * 22, confirmed_at, b"{}")
    assert judge(rec, state(sid="p" * 22, last_seen=now), now, T).verdict is verdict


def test_an_unknown_id_of_a_live_family_ends_it() -> None:
    judgement = judge(record(), state(sid="x" * 22), NOW, T)
    assert judgement.verdict is Verdict.REPLAYED
    assert isinstance(judgement.write, Ended)


@pytest.mark.parametrize(
    ("after", "verdict"), [(T.grace, Verdict.ENDED_RECENTLY), (T.grace + 1, Verdict.REVOKED)]
)
def test_a_tombstone_is_quiet_only_within_the_grace_window(after: int, verdict: Verdict) -> None:
    assert judge(Ended(2, NOW, "logout"), state(), NOW + after, T).verdict is verdict


def test_stored_text_round_trips() -> None:
    rec = Record(
        7,
        state(lifetime=None),
        "p" * 22,
        NOW,
        orjson.dumps({"k": [1]}),
        "Firefox on Linux",
        "192.0.2.0",
    )
    assert parse_stored(rec.dumps(), "f" * 22) == rec
    tomb = Ended(8, NOW, "replayed_id")
    assert parse_stored(tomb.dumps(), "f" * 22) == tomb


def test_diff_names_changed_and_deleted_keys() -> None:
    assert diff({"a": 1, "b": [1], "c": 3}, {"a": 1, "b": [1, 2], "d": 4}) == (
        {"b": [1, 2], "d": 4},
        {"c"},
    )


def test_plan_writes_nothing_when_nothing_changed() -> None:
    rec = record()
    intent = Intent(rec.state, rec.data(), False, False)
    step = plan(rec, rec, intent, NOW + 1, T)
    assert step is not None
    assert step.record is None


def test_plan_for_an_ended_family_is_none() -> None:
    rec = record()
    assert plan(Ended(2, NOW, "logout"), rec, Intent(rec.state, {}, True, False), NOW, T) is None


def test_an_ending_for_theft_is_never_quiet() -> None:
    for reason in ("replayed_id", "revoked"):
        assert judge(Ended(2, NOW, reason), state(), NOW, T).verdict is Verdict.REVOKED
