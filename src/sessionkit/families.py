"""The rules of a session family in a store: what a request may do, decided without I/O.

With a store, every session *family* (one login, from login to logout, across all its id
rotations) has one record, and the record is the truth: the current id, the id it
replaced, the user, the timestamps, the lifetime and the session data. The cookie only
points at it. A store offers two atomic operations, and this module decides what to ask:

- ``load``: the family's record (:class:`Record`), its tombstone (:class:`Ended`), or
  nothing;
- ``save``: replace it *if its version is still the one this request read* (create it if
  nothing is there), else report a conflict.

Because every write is conditional, nothing in flight can bring an ended session back:
a request that read version 7 cannot write after a logout wrote version 8. A request
that loses such a race reads the record again and re-applies only what it changed
itself (:func:`plan`): the winner's id, user and lifetime stand, the keys this request
alone set or deleted go on top of the winner's data (a key the winner changed too keeps
the winner's value), and an ended family stays ended.

**Confirmed rotation.** When an id is replaced, the record keeps the previous one, and
the new id is *unconfirmed* until a request presents it. Until then the previous id
keeps working (a lost response, three tabs rotating at once); once the new id was seen,
the previous one works for ``rotation_grace`` seconds more (requests in flight), and
after that presenting it is a replay: the whole family is ended at once, when the
request is loaded, before any handler runs. A family is never rotated on the timer
while its current id is unconfirmed, nor within the grace window after it was
confirmed, so a request sent before the confirmation is at most one id behind.

An explicit ``rotate()`` (a privilege change) is never delayed. Right after a
confirmation, it wins over a request of the same browser still in flight with an older
id. While the current id is unconfirmed, it replaces that id too (whoever holds the
response that carried it does not get the new privileges), and the record keeps every id
the browser may hold (up to :data:`MAX_PREVIOUS_IDS`) as previous ids: a late response
that carried the replaced id is then no replay, while the new id is unconfirmed and for
the grace window after.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any

import orjson

from .errors import BadToken
from .events import INVALID_PAYLOAD, REPLAYED, REVOKED
from .lifetime import Lifetime, Timeouts
from .session import State, UserId, check_timeouts, new_session_id

__all__ = [
    "LOGIN",
    "LOGOUT",
    "MAX_PREVIOUS_IDS",
    "Ended",
    "FamilyRef",
    "Plan",
    "Record",
    "Stored",
    "Verdict",
    "diff",
    "judge",
    "parse_stored",
    "plan",
]

_HEADER_END = b"\n"
#: Why a family ended, recorded in its tombstone: the user's own logout, or a login.
LOGOUT = "logout"
LOGIN = "login"
#: Second header field of a tombstone (a record has the session id there).
_ENDED_MARK = 0
#: The most ids a record accepts from before its current one (privilege changes in a row
#: while each new id's response was lost): the last confirmed id and the newest others.
MAX_PREVIOUS_IDS = 4
#: A record's header fields, and the defaults of those a header may leave out at its end.
_TAIL_DEFAULTS: tuple[Any, ...] = (*(None,) * 7, 0, None, None, None, None)
_HEADER_FIELDS = 7


@dataclass(frozen=True, slots=True)
class FamilyRef:
    """Where a family's record lives: its id, its user (or None), the kit's namespaces.

    ``namespaces`` (newest first) keep the records of applications that share a store
    apart; a store looks in all of them and writes in the first.
    """

    family: str
    user_id: UserId | None
    namespaces: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Record:
    """The server-side state of one live session family.

    ``state`` is the session's current state (its ``last_seen`` refreshed at most once
    per touch interval); ``previous_ids`` the ids the browser may still hold from before
    the current one, accepted until ``confirmed_at`` + grace once the current id was
    presented (``confirmed_at`` 0: not yet); ``data_json`` the session data as JSON text;
    ``device`` and ``address`` what the login came from (for the user's list of their
    sessions).
    """

    version: int
    state: State
    previous_ids: tuple[str, ...]
    confirmed_at: int
    data_json: bytes
    device: str | None = None
    address: str | None = None

    def data(self) -> dict[str, Any]:
        """A fresh copy of the session data."""
        value = orjson.loads(self.data_json)
        if not isinstance(value, dict):
            raise BadToken(INVALID_PAYLOAD)
        return value

    def dumps(self) -> bytes:
        """The text a store keeps: a JSON header line, then the data's JSON.

        The header is short, so that a logged-in session without data fits Redis's
        compact encoding of small hashes (values of at most 64 bytes): the family and the
        user are where the store keeps the text, times are seconds after ``created_at``,
        and trailing fields that hold their defaults are left out.
        """
        s = self.state
        base = s.created_at
        life = s.lifetime
        prev = self.previous_ids
        header: list[Any] = [
            self.version,
            s.id,
            base,
            s.last_seen - base,
            s.rotated_at - base,
            s.auth_time - base if s.auth_time else None,
            self.confirmed_at - base if self.confirmed_at else None,
            s.generation,
            None if life is None else [life.idle, life.end, life.persistent],
            prev[0] if len(prev) == 1 else list(prev) or None,
            self.device,
            self.address,
        ]
        while len(header) > _HEADER_FIELDS and header[-1] == _TAIL_DEFAULTS[len(header) - 1]:
            header.pop()
        return orjson.dumps(header) + _HEADER_END + self.data_json


@dataclass(frozen=True, slots=True)
class Ended:
    """The tombstone of an ended family, kept until the family's end.

    ``reason`` says how it ended (``"logout"``, ``"login"``, ``"replayed_id"``,
    ``"revoked"``); ``ended_at`` when.
    """

    version: int
    ended_at: int
    reason: str

    def dumps(self) -> bytes:
        """The text a store keeps."""
        return orjson.dumps([self.version, _ENDED_MARK, self.ended_at, self.reason])


Stored = Record | Ended


def parse_stored(text: bytes | str, family: str, user_id: UserId | None) -> Stored:
    """Parse what :meth:`Record.dumps` or :meth:`Ended.dumps` wrote for ``family``.

    ``user_id`` is the user the store keeps the text under (None: an anonymous family).
    Raises :class:`BadToken` (``invalid_payload``) for anything else.
    """
    raw = text.encode() if isinstance(text, str) else text
    head, sep, data_json = raw.partition(_HEADER_END)
    try:
        fields = orjson.loads(head)
        if fields[1] == _ENDED_MARK and not sep:
            version, _, ended_at, reason = fields
            return Ended(int(version), int(ended_at), str(reason))
        if not sep or not _HEADER_FIELDS <= len(fields) <= len(_TAIL_DEFAULTS):
            raise ValueError
        fields += _TAIL_DEFAULTS[len(fields) :]
        version, sid, base, seen, rotated, auth, confirmed, gen, life, prev, device, address = (
            fields
        )
        if type(version) is not int or not isinstance(sid, str) or type(base) is not int:
            raise ValueError
        lifetime = None if life is None else Lifetime(int(life[0]), int(life[1]), bool(life[2]))
        auth_time = 0 if auth is None else base + int(auth)
        state = State(
            sid, family, user_id, base, base + int(seen), base + int(rotated), auth_time,
            int(gen), lifetime,
        )  # fmt: skip
        previous = () if prev is None else (prev,) if isinstance(prev, str) else tuple(prev)
        if not all(isinstance(p, str) for p in previous):
            raise ValueError
        at = 0 if confirmed is None else base + int(confirmed)
        return Record(version, state, previous, at, data_json, device, address)
    except (ValueError, TypeError, IndexError, KeyError):
        raise BadToken(INVALID_PAYLOAD) from None


def stored_until(stored: Stored, timeouts: Timeouts, ended_family_end: int = 0) -> int:
    """When a store may forget ``stored`` (seconds since the epoch).

    A record lives until its session's idle end (plus a touch interval of slack, since
    ``last_seen`` is refreshed at that granularity) or its absolute end, whichever is
    first; a tombstone until ``ended_family_end``, the end its family would have had
    (at least the grace window).
    """
    if isinstance(stored, Ended):
        return max(ended_family_end, stored.ended_at + timeouts.grace)
    s = stored.state
    end = timeouts.end_of(s.lifetime, s.created_at)
    idle_end = s.last_seen + timeouts.idle_of(s.lifetime) + timeouts.touch
    return min(end, idle_end)


# ----------------------------------------------------------------------------- loading


class Verdict(enum.Enum):
    """What a load decided about the cookie a request presented."""

    #: The current id.
    CURRENT = "current"
    #: The previous id within the grace window after the current one was presented: a
    #: request already in flight. It goes on as the current id; nothing is re-issued to
    #: it (the browser holds the current cookie already).
    IN_FLIGHT = "in_flight"
    #: The previous id while the current one is unconfirmed: a lost response or a
    #: parallel tab. The request goes on as the current id and re-issues its cookie.
    PREVIOUS = "previous"
    #: The family ended less than ``rotation_grace`` ago by a logout or login (of a
    #: parallel request of the same browser):
    #: the request goes on with an empty session and must not touch the cookie, which
    #: the browser may already have replaced.
    ENDED_RECENTLY = "ended_recently"
    #: The family is gone (logged out, revoked, expired): refused, cookie expired.
    REVOKED = "revoked"
    #: An id of the family that may no longer be presented: the cookie was copied.
    REPLAYED = "replayed"


@dataclass(frozen=True, slots=True)
class Judgement:
    """A load's verdict, the write it needs before the app runs, and the reason to report."""

    verdict: Verdict
    #: Written (conditionally, over the loaded version) before the app runs, or None.
    write: Stored | None = None
    #: The security event reason to report, or None.
    reason: str | None = None


def judge(stored: Stored | None, cookie: State, now: float, timeouts: Timeouts) -> Judgement:
    """Decide what the cookie state ``cookie`` may do against the family's ``stored`` state."""
    stamp = int(now)
    if stored is None:
        return Judgement(Verdict.REVOKED, reason=REVOKED)
    if isinstance(stored, Ended):
        # A parallel request of the same browser ended it (its logout or login): that
        # browser may already hold the new cookie. An ending for theft is always loud.
        own = stored.reason in (LOGOUT, LOGIN)
        if own and stamp - stored.ended_at <= timeouts.grace:
            return Judgement(Verdict.ENDED_RECENTLY)
        return Judgement(Verdict.REVOKED, reason=REVOKED)
    state = stored.state
    if cookie.user_id != state.user_id:
        return Judgement(Verdict.REVOKED, reason=INVALID_PAYLOAD)
    expired = check_timeouts(_seen(state, cookie), now, timeouts)
    if expired is not None:
        return Judgement(Verdict.REVOKED, reason=expired)
    if cookie.id == state.id:
        if stored.confirmed_at:
            return Judgement(Verdict.CURRENT)
        confirmed = replace(stored, version=stored.version + 1, confirmed_at=stamp)
        return Judgement(Verdict.CURRENT, write=confirmed)
    if cookie.id in stored.previous_ids:
        if not stored.confirmed_at:
            return Judgement(Verdict.PREVIOUS)
        if stamp - stored.confirmed_at <= timeouts.grace:
            return Judgement(Verdict.IN_FLIGHT)
    ended = Ended(stored.version + 1, stamp, REPLAYED)
    return Judgement(Verdict.REPLAYED, write=ended, reason=REPLAYED)


def _seen(state: State, cookie: State) -> State:
    """The record's state with the later of the two ``last_seen`` stamps."""
    if cookie.last_seen > state.last_seen:
        return state._replace(last_seen=cookie.last_seen)
    return state


# ----------------------------------------------------------------------------- writing


def diff(base: dict[str, Any], current: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The keys ``current`` sets (with their values) and deletes, relative to ``base``."""
    changed = {k: v for k, v in current.items() if k not in base or base[k] != v}
    deleted = {k for k in base if k not in current}
    return changed, deleted


def _same(a: dict[str, Any], b: dict[str, Any], key: str) -> bool:
    """Whether ``key`` is absent from both or holds equal values in both."""
    if key in a:
        return key in b and a[key] == b[key]
    return key not in b


@dataclass(frozen=True, slots=True)
class Intent:
    """What one request did to its session, relative to the record it loaded."""

    #: The session's state at the end of the request (id, lifetime, auth_time, ...).
    state: State
    #: The session's data at the end of the request.
    data: dict[str, Any]
    #: Whether the app changed the data (then :attr:`data` is compared key by key).
    data_changed: bool
    #: Whether the app called ``rotate()`` or ``confirm_login()``.
    explicit_rotation: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """The record a request writes over ``expected`` (None: create), or nothing."""

    record: Record | None
    expected: int | None


def plan(
    current: Stored | None,
    base: Record,
    intent: Intent,
    now: float,
    timeouts: Timeouts,
) -> Plan | None:
    """The write that applies ``intent`` on top of ``current`` (the family as stored now).

    ``base`` is the record the request loaded. When ``current`` is ``base``, this is the
    ordinary write; when a parallel request wrote in between, the winner's state stands
    and only what this request changed relative to ``base`` is applied on top of it.
    Returns None when the family is gone (the request's changes are dropped: it ended
    elsewhere) and a plan with ``record=None`` when nothing needs writing.
    """
    if not isinstance(current, Record):
        return None
    stamp = int(now)
    winner = current.state
    mine = intent.state
    state = winner
    previous_ids = current.previous_ids
    confirmed_at = current.confirmed_at
    # A timed rotation waits until the current id was presented, and then until the grace
    # window after that is over: requests sent before the current id was first presented
    # have arrived by then, so none of them is ever two ids behind (which would be a
    # replay). A parallel request that rotated already did this request's timed rotation.
    due = (
        timeouts.rotate_every is not None
        and stamp - winner.rotated_at >= timeouts.rotate_every
        and confirmed_at > 0
        and stamp - confirmed_at > timeouts.grace
        and winner.id == base.state.id
    )
    if intent.explicit_rotation and not confirmed_at:
        # A privilege change while the current id is unconfirmed (its response lost, or
        # still on its way): the new id replaces it at once, and until the new one is
        # presented the browser may hold any of the ids it could have been sent. When
        # there are too many, the last confirmed one (the first) and the newest stay.
        kept = (*previous_ids[1:], winner.id)[1 - MAX_PREVIOUS_IDS :]
        previous_ids = (*previous_ids[:1], *kept)
        state = state._replace(id=new_session_id(), rotated_at=stamp)
    elif intent.explicit_rotation or due:
        previous_ids, confirmed_at = (winner.id,), 0
        state = state._replace(id=new_session_id(), rotated_at=stamp)
    if mine.generation != base.state.generation:
        state = state._replace(generation=max(winner.generation, mine.generation))
    if mine.lifetime != base.state.lifetime:
        state = state._replace(lifetime=mine.lifetime)
    if mine.auth_time != base.state.auth_time:
        state = state._replace(auth_time=max(winner.auth_time, mine.auth_time))
    if state != winner or stamp - winner.last_seen >= timeouts.touch:
        # Any change is activity; and the payload keeps rotated_at, auth_time <= last_seen.
        state = state._replace(last_seen=max(stamp, winner.last_seen))
    data_json = current.data_json
    if intent.data_changed:
        base_data = base.data()
        changed, deleted = diff(base_data, intent.data)
        if changed or deleted:
            if current.version == base.version:
                data = intent.data
            else:
                # Keys the winner changed since this request read them keep the winner's
                # value: a request that lost the race never overwrites a newer write.
                data = current.data()
                untouched = {k for k in (*changed, *deleted) if _same(data, base_data, k)}
                for key in deleted & untouched:
                    data.pop(key, None)
                data.update({k: v for k, v in changed.items() if k in untouched})
            data_json = orjson.dumps(data)
    if (
        state == winner
        and previous_ids == current.previous_ids
        and confirmed_at == current.confirmed_at
        and data_json == current.data_json
    ):
        return Plan(None, current.version)
    record = Record(
        current.version + 1,
        state,
        previous_ids,
        confirmed_at,
        data_json,
        current.device,
        current.address,
    )
    return Plan(record, current.version)


def new_record(
    state: State,
    data: dict[str, Any],
    now: float,
    device: str | None = None,
    address: str | None = None,
) -> Record:
    """The first record of a family started by this request (a login or a first write).

    No previous id exists to protect, so its id counts as confirmed.
    """
    return Record(1, state, (), int(now), orjson.dumps(data), device, address)


def ended(stored: Record, now: float, reason: str) -> Ended:
    """The tombstone that ends ``stored`` at ``now``."""
    return Ended(stored.version + 1, int(now), reason)
