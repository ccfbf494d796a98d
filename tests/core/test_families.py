"""The pure rules of a session family (sessionkit.families), without any store."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import orjson
import pytest

from sessionkit.errors import BadToken
from sessionkit.events import EXPIRED_ABSOLUTE, EXPIRED_IDLE, FROM_THE_FUTURE
from sessionkit.families import (
    MAX_PREVIOUS_IDS,
    Ended,
    FamilyRef,
    Intent,
    Judgement,
    Plan,
    Record,
    Verdict,
    diff,
    ended,
    judge,
    new_record,
    parse_stored,
    plan,
    stored_until,
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


def test_the_current_id_of_a_confirmed_record_writes_nothing() -> None:
    """A confirmation is written once: presenting the current id again must not move it,
    or every request would reopen the grace window of the previous id."""
    confirmed = Record(3, state(), ("p" * 22,), NOW, b"{}")
    assert judge(confirmed, state(), NOW + 100, T) == Judgement(Verdict.CURRENT)
    assert judge(confirmed, state(sid="p" * 22), NOW + 100, T).verdict is Verdict.REPLAYED


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
    assert len(rec.previous_ids) == MAX_PREVIOUS_IDS == 4  # a record stays small
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


# -- the stored text ----------------------------------------------------------------------

SID = "i" * 22
FULL = Record(
    7,
    state(
        last_seen=NOW + 60,
        rotated_at=NOW + 30,
        auth_time=NOW + 10,
        generation=2,
        lifetime=Lifetime(60, NOW + 99, True),
    ),
    ("p" * 22,),
    NOW + 40,
    b'{"k":[1]}',
    "Firefox",
    "192.0.2.0",
)


@pytest.mark.parametrize(
    ("rec", "text"),
    [
        (new_record(state(), {}, NOW), b'[1,"' + SID.encode() + b'",1800000000,0,0,0,0]\n{}'),
        (
            FULL,
            b'[7,"' + SID.encode() + b'",1800000000,60,30,10,40,2,[60,1800000099,true],'
            b'"' + b"p" * 22 + b'","Firefox","192.0.2.0"]\n{"k":[1]}',
        ),
        (
            Record(7, state(generation=2), (), 0, b"{}"),
            b'[7,"' + SID.encode() + b'",1800000000,0,0,0,null,2]\n{}',
        ),
        (
            Record(7, state(), ("p", "q"), 0, b"{}"),
            b'[7,"' + SID.encode() + b'",1800000000,0,0,0,null,0,null,["p","q"]]\n{}',
        ),
    ],
)
def test_the_stored_text_of_a_record_is_exact(rec: Record, text: bytes) -> None:
    """Records written by an earlier process stay readable: the text is pinned, byte for
    byte, and trailing fields at their defaults (generation 0, no lifetime, ...) are left
    out, so a record grows only with what it holds."""
    assert rec.dumps() == text
    assert parse_stored(text, "f" * 22, "alice") == rec
    assert parse_stored(text.decode(), "f" * 22, "alice") == rec


def test_the_stored_text_of_a_tombstone_is_exact() -> None:
    tomb = Ended(8, NOW, "logout")
    assert tomb.dumps() == b'[8,0,1800000000,"logout"]'
    assert parse_stored(b'[9,0,1800000005,"login"]', "f" * 22, None) == Ended(9, NOW + 5, "login")


def test_a_tombstone_followed_by_a_data_line_is_refused() -> None:
    with pytest.raises(BadToken):
        parse_stored(Ended(8, NOW, "logout").dumps() + b"\n{}", "f" * 22, "alice")


@pytest.mark.parametrize("data_json", [b"[1]", b'"text"', b"null"])
def test_stored_data_that_is_not_an_object_is_refused(data_json: bytes) -> None:
    rec = parse_stored(record().dumps().partition(b"\n")[0] + b"\n" + data_json, "f" * 22, "alice")
    assert isinstance(rec, Record)
    with pytest.raises(BadToken):
        rec.data()


def test_a_record_gives_a_fresh_copy_of_its_data() -> None:
    rec = record()
    rec.data()["a"] = 2
    assert rec.data() == {"a": 1}


@pytest.mark.parametrize(
    "value",
    [
        FamilyRef("f" * 22, "alice", ("app",)),
        record(),
        Ended(2, NOW, "logout"),
        Judgement(Verdict.CURRENT),
        Intent(state(), {}, False, False),
        Plan(None, 1),
    ],
)
def test_what_the_rules_decide_cannot_be_changed_afterwards(value: object) -> None:
    """A judged record is the one a request later writes over, and a decided write is the
    one saved: nothing can edit them in between."""
    field = dataclasses.fields(value)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, None)


def test_a_tombstone_is_kept_for_the_grace_window_or_its_family_s_end() -> None:
    tomb = Ended(2, NOW, "logout")
    assert stored_until(tomb, T) == NOW + T.grace
    assert stored_until(tomb, T, NOW + 3600) == NOW + 3600
    assert stored_until(tomb, T, NOW + 1) == NOW + T.grace


def test_a_record_is_kept_until_its_idle_end_with_a_touch_of_slack_or_its_end() -> None:
    assert stored_until(record(last_seen=NOW + 5), T) == NOW + 5 + T.idle + T.touch
    old = record(created_at=NOW - T.absolute + 100)
    assert stored_until(old, T) == NOW + 100


# -- judging a cookie ---------------------------------------------------------------------


def test_a_family_without_a_record_is_refused_as_revoked() -> None:
    judgement = judge(None, state(), NOW, T)
    assert judgement == Judgement(Verdict.REVOKED, reason="revoked")


def test_a_tombstone_past_its_grace_is_reported_as_revoked() -> None:
    judgement = judge(Ended(2, NOW, "logout"), state(), NOW + T.grace + 1, T)
    assert judgement == Judgement(Verdict.REVOKED, reason="revoked")
    assert judge(Ended(2, NOW, "logout"), state(), NOW, T) == Judgement(Verdict.ENDED_RECENTLY)


def test_a_tombstone_of_a_login_as_stored_is_quiet_within_the_grace_window() -> None:
    """A parallel request of the same browser logged in: the browser holds the new cookie."""
    tomb = parse_stored(b'[2,0,1800000000,"login"]', "f" * 22, "alice")
    assert judge(tomb, state(), NOW + T.grace, T) == Judgement(Verdict.ENDED_RECENTLY)


@pytest.mark.parametrize(
    ("fields", "now", "reason"),
    [
        ({"last_seen": NOW}, NOW + T.idle + 1, EXPIRED_IDLE),
        ({"last_seen": NOW + T.absolute}, NOW + T.absolute + 1, EXPIRED_ABSOLUTE),
        ({"last_seen": NOW + T.max_skew + 1}, NOW, FROM_THE_FUTURE),
    ],
)
def test_a_record_past_its_timeouts_is_refused_with_the_reason(
    fields: dict[str, int], now: int, reason: str
) -> None:
    rec = record(**fields)
    assert judge(rec, rec.state, now, T) == Judgement(Verdict.REVOKED, reason=reason)


def test_the_cookie_s_later_last_seen_keeps_the_session_alive() -> None:
    """The record refreshes ``last_seen`` at most once per touch interval, the cookie
    on every change: the later of the two decides the idle end."""
    rec = record()
    cookie = state(last_seen=NOW + 1000)
    assert judge(rec, cookie, NOW + 1000 + T.idle, T).verdict is Verdict.CURRENT
    late = judge(rec, cookie, NOW + 1001 + T.idle, T)
    assert late == Judgement(Verdict.REVOKED, reason=EXPIRED_IDLE)


def test_a_cookie_s_last_seen_from_the_future_is_refused() -> None:
    cookie = state(last_seen=NOW + T.max_skew + 1)
    assert judge(record(), cookie, NOW, T) == Judgement(Verdict.REVOKED, reason=FROM_THE_FUTURE)


def test_a_replay_ends_the_family_over_the_version_it_read() -> None:
    rec = Record(5, state(), (), NOW, b"{}")
    judgement = judge(rec, state(sid="x" * 22), NOW + 3.7, T)
    assert judgement == Judgement(
        Verdict.REPLAYED, write=Ended(6, NOW + 3, "replayed_id"), reason="replayed_id"
    )


# -- planning a write ---------------------------------------------------------------------


def written(current: Record, base: Record, intent: Intent, now: int = NOW + 1) -> Record:
    step = plan(current, base, intent, now, T)
    assert step is not None
    assert step.record is not None
    assert step.expected == current.version
    assert step.record.version == current.version + 1
    return step.record


def test_a_timed_rotation_waits_for_the_rotation_interval() -> None:
    timeouts = Timeouts(rotate_every=900)
    rec = Record(3, state(), ("b" * 22,), NOW, b"{}")
    after = rec
    for now, rotates in ((NOW + 100, False), (NOW + 899, False), (NOW + 900, True)):
        step = plan(rec, rec, Intent(rec.state, rec.data(), False, False), now, timeouts)
        assert step is not None
        assert step.record is not None  # a touch interval went by
        after = step.record
        assert (after.state.id != rec.state.id) is rotates
    assert after.state.rotated_at == NOW + 900
    assert after.previous_ids == (SID,)
    assert after.confirmed_at == 0


def test_a_privilege_change_after_a_confirmation_restarts_the_rotation_clock() -> None:
    rec = Record(3, state(sid="c" * 22), ("b" * 22,), NOW, b"{}")
    assert rotated(rec, explicit(rec), NOW + 7).state.rotated_at == NOW + 7


def test_a_privilege_change_of_the_request_is_kept() -> None:
    rec = record()
    mine = rec.state._replace(generation=1, auth_time=NOW + 1, lifetime=Lifetime(60, 0, False))
    after = written(rec, rec, Intent(mine, rec.data(), False, False))
    assert after.state.generation == 1
    assert after.state.auth_time == NOW + 1
    assert after.state.lifetime == Lifetime(60, 0, False)


def test_a_parallel_write_keeps_the_higher_generation_and_the_later_authentication() -> None:
    base = record(generation=1)
    winner = replace(base, version=2, state=base.state._replace(generation=3, auth_time=NOW + 8))
    mine = base.state._replace(generation=2, auth_time=NOW + 5)
    step = plan(winner, base, Intent(mine, base.data(), False, False), NOW + 1, T)
    assert step == Plan(None, 2)  # the winner's state stands as it is
    newer = base.state._replace(generation=4, auth_time=NOW + 9)
    after = written(winner, base, Intent(newer, base.data(), False, False))
    assert (after.state.generation, after.state.auth_time) == (4, NOW + 9)


def test_a_parallel_write_keeps_the_lifetime_the_winner_set() -> None:
    base = record()
    life = Lifetime(0, 0, False)
    winner = replace(base, version=2, state=base.state._replace(lifetime=life))
    intent = Intent(base.state, {"a": 1, "b": 2}, True, False)
    after = written(winner, base, intent)
    assert after.state.lifetime == life
    assert after.data() == {"a": 1, "b": 2}


def test_an_unchanged_session_is_refreshed_once_per_touch_interval() -> None:
    rec = record()
    intent = Intent(rec.state, rec.data(), False, False)
    step = plan(rec, rec, intent, NOW + T.touch - 1, T)
    assert step == Plan(None, rec.version)
    assert written(rec, rec, intent, NOW + T.touch).state.last_seen == NOW + T.touch


def test_a_change_of_state_is_activity_but_never_moves_last_seen_back() -> None:
    rec = record(last_seen=NOW + 30)
    intent = Intent(rec.state._replace(generation=1), rec.data(), False, False)
    assert written(rec, rec, intent, NOW + 10).state.last_seen == NOW + 30
    assert written(rec, rec, intent, NOW + 40).state.last_seen == NOW + 40
    data_only = Intent(rec.state, {"a": 2}, True, False)
    assert written(rec, rec, data_only, NOW + 40).state.last_seen == NOW + 30


def test_a_key_deleted_here_but_changed_by_the_winner_keeps_the_winner_s_value() -> None:
    base = replace(record(), data_json=b'{"a":1,"b":2,"c":3}')
    winner = replace(base, version=2, data_json=b'{"a":9,"b":2,"c":3,"w":1}')
    after = written(winner, base, Intent(base.state, {"c": 4}, True, False))
    assert after.data() == {"a": 9, "c": 4, "w": 1}


def test_the_first_record_of_a_family_counts_as_confirmed() -> None:
    rec = new_record(state(), {"a": 1}, NOW + 0.9, "curl", "192.0.2.0")
    assert rec == Record(1, state(), (), NOW, b'{"a":1}', "curl", "192.0.2.0")


def test_ending_a_family_writes_over_its_version() -> None:
    assert ended(Record(5, state(), (), NOW, b"{}"), NOW + 2.5, "logout") == Ended(
        6, NOW + 2, "logout"
    )
