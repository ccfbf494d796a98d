"""The pure rules of a session family (sessionkit.families), without any store."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from sessionkit.errors import BadToken
from sessionkit.families import (
    MAX_PREVIOUS_IDS,
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
from sessionkit.lifetime import Lifetime, Timeouts
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
    unconfirmed = Record(3, state(), ("p" * 22,), 0, b"{}")
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
    rec = Record(3, state(sid="n" * 22, last_seen=now), ("p" * 22,), confirmed_at, b"{}")
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
        ("p" * 22,),
        NOW,
        orjson.dumps({"k": [1]}),
        "Firefox on Linux",
        "192.0.2.0",
    )
    assert parse_stored(rec.dumps(), "f" * 22, "alice") == rec
    tomb = Ended(8, NOW, "replayed_id")
    assert parse_stored(tomb.dumps(), "f" * 22, "alice") == tomb


@pytest.mark.parametrize(
    "rec",
    [
        new_record(state(user=None, auth_time=0), {}, NOW),
        Record(2, state(last_seen=NOW + 9, rotated_at=NOW + 4), (), 0, b"{}"),
        Record(2, state(generation=3, lifetime=Lifetime(60, NOW + 99, True)), (), NOW, b"{}"),
        Record(4, state(auth_time=NOW + 7), ("p" * 22, "q" * 22), 0, b'{"a":1}'),
        Record(4, state(), (), NOW + 2, b"{}", None, "2001:db8::1"),
        Record(4, state(), (), NOW + 2, b"{}", "curl"),
    ],
)
def test_every_field_of_a_record_round_trips(rec: Record) -> None:
    assert parse_stored(rec.dumps(), rec.state.family, rec.state.user_id) == rec


def test_a_logged_in_record_without_data_fits_a_compact_redis_hash() -> None:
    """Redis keeps a hash whose values are all at most 64 bytes in its compact listpack
    encoding; the record of a login without data is one, whatever the user id."""
    text = record(user="someone.with.a.long.name@example.com").dumps()
    assert len(text) <= 64
    assert b"example.com" not in text


@pytest.mark.parametrize(
    "head",
    [
        b"[1]",
        b'[1,"i",1800000000,0,0,0]',
        b'[1,"i",1800000000,0,0,0,0,0,null,null,null,null,9]',
        b'["1","i",1800000000,0,0,0,0]',
        b"[1,2,1800000000,0,0,0,0]",
        b'[1,"i",1.5,0,0,0,0]',
        b'[1,"i",1800000000,"x",0,0,0]',
        b'[1,"i",1800000000,0,0,0,0,0,null,[7]]',
        b'[1,"i",1800000000,0,0,0,0,0,[1]]',
        b"{}",
        b"not json",
    ],
)
def test_a_malformed_record_header_is_refused(head: bytes) -> None:
    with pytest.raises(BadToken):
        parse_stored(head + b"\n{}", "f" * 22, "alice")


def test_a_record_needs_its_data_line() -> None:
    with pytest.raises(BadToken):
        parse_stored(record().dumps().partition(b"\n")[0], "f" * 22, "alice")


def rotated(rec: Record, intent: Intent, now: int = NOW + 1) -> Record:
    step = plan(rec, rec, intent, now, T)
    assert step is not None
    assert step.record is not None
    return step.record


def explicit(rec: Record) -> Intent:
    return Intent(rec.state, rec.data(), False, True)


def test_a_privilege_change_while_the_id_is_unconfirmed_replaces_it() -> None:
    unconfirmed = Record(3, state(sid="m" * 22), ("b" * 22,), 0, b"{}")
    after = rotated(unconfirmed, explicit(unconfirmed))
    assert after.state.id not in ("m" * 22, "b" * 22)
    assert after.previous_ids == ("b" * 22, "m" * 22)
    assert after.confirmed_at == 0
    assert after.state.rotated_at == NOW + 1
    for held in after.previous_ids:  # a late response, or the browser's older cookie
        assert judge(after, state(sid=held), NOW + 2, T).verdict is Verdict.PREVIOUS
    assert judge(after, after.state, NOW + 2, T).verdict is Verdict.CURRENT
    confirmed = replace(after, confirmed_at=NOW + 2)
    for held in after.previous_ids:
        assert judge(confirmed, state(sid=held), NOW + 2 + T.grace, T).verdict is Verdict.IN_FLIGHT
        late = judge(confirmed, state(sid=held), NOW + 3 + T.grace, T)
        assert late.verdict is Verdict.REPLAYED


def test_privilege_changes_in_a_row_keep_a_bounded_number_of_previous_ids() -> None:
    """Every response lost: the browser still holds the last confirmed id, which stays
    accepted however many privilege changes follow; of the others, the newest stay."""
    rec = Record(3, state(sid="m" * 22), ("c" * 22,), 0, b"{}")
    minted = [rec.state.id]
    for _ in range(MAX_PREVIOUS_IDS + 2):
        rec = rotated(rec, explicit(rec))
        minted.append(rec.state.id)
    assert rec.previous_ids == ("c" * 22, *minted[-MAX_PREVIOUS_IDS:-1])
    assert judge(rec, state(sid="c" * 22), NOW + 2, T).verdict is Verdict.PREVIOUS


def test_a_privilege_change_after_a_confirmation_keeps_only_the_replaced_id() -> None:
    rec = Record(3, state(sid="c" * 22), ("b" * 22,), NOW, b"{}")
    after = rotated(rec, explicit(rec))
    assert after.previous_ids == ("c" * 22,)
    assert after.confirmed_at == 0


def test_a_privilege_change_rotates_even_after_a_parallel_rotation() -> None:
    """A parallel request rotated the id (its response may reach an attacker who held the
    older one): the privilege change still gets an id of its own."""
    base = Record(3, state(sid="b" * 22), (), NOW, b"{}")
    winner = Record(4, state(sid="w" * 22), ("b" * 22,), 0, b"{}")
    step = plan(winner, base, explicit(base), NOW + 1, T)
    assert step is not None
    assert step.record is not None
    assert step.record.state.id not in ("b" * 22, "w" * 22)
    assert step.record.previous_ids == ("b" * 22, "w" * 22)
    assert step.expected == 4


@pytest.mark.parametrize(
    ("confirmed_at", "now", "rotates"),
    [
        (0, NOW + 10_000, False),  # never on the timer while the id is unconfirmed
        (NOW, NOW + T.grace, False),  # nor within the grace after the confirmation
        (NOW, NOW + 10_000, True),
    ],
)
def test_the_timer_rotates_only_a_confirmed_id_past_the_grace(
    confirmed_at: int, now: int, rotates: bool
) -> None:
    timeouts = Timeouts(rotate_every=1)
    rec = Record(3, state(last_seen=now), ("b" * 22,), confirmed_at, b"{}")
    step = plan(rec, rec, Intent(rec.state, rec.data(), False, False), now, timeouts)
    assert step is not None
    changed = step.record is not None and step.record.state.id != rec.state.id
    assert changed is rotates


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
