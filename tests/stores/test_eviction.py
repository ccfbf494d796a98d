"""Eviction can log people out, never keep them in: "log out everywhere" on a full Redis.

A 2 MB server under an ``allkeys-*`` policy is sent more sessions than fit: Redis evicts
keys while users keep browsing (within the second or two of the test, Redis's LRU clock
barely moves, so LRU picks nearly at random, like ``allkeys-random``).

Every key ``revoke_user`` needs is one a load touches (a user's hash and live set, found
by name from the user id, with no index of its own to lose), so after ``revoke_user`` not
one device of that user is logged in, whichever keys were evicted and whichever survived.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flows import Browser, login, put
from redis_topologies import RedisEvicting

from sessionkit import SecurityEvent, SessionKit
from sessionkit.families import FamilyRef, Record, new_record
from sessionkit.session import State, new_session_id
from sessionkit.stores.redis import RedisStore

MakeKit = Callable[..., SessionKit]

USERS = [f"user-{n}" for n in range(40)]
DEVICES = 3  # per user
FILLER = 1500  # other people's sessions: more than 2 MB holds
ROUNDS = 15  # the users who keep browsing make a request after every FILLER // ROUNDS logins


@pytest.fixture(params=["allkeys-lru", "allkeys-random"])
def evicting(
    request: pytest.FixtureRequest, make_redis_evicting: Callable[[str], RedisEvicting]
) -> RedisEvicting:
    return make_redis_evicting(request.param)


@pytest.fixture
def store(evicting: RedisEvicting) -> Iterator[RedisStore]:
    opened = RedisStore(evicting.url, socket_timeout=2.0)
    yield opened
    opened.close()


def filler_sessions(store: RedisStore, kit: SessionKit, count: int, start: int) -> None:
    """Log ``count`` other users in, straight into the store, each with some data."""
    now = kit.clock()
    for n in range(start, start + count):
        ref = FamilyRef(new_session_id(), f"other-{n}", kit.namespaces)
        state = State.fresh(now)._replace(
            id=new_session_id(), family=ref.family, user_id=ref.user_id
        )
        record = new_record(state, {"cart": ["item"] * 40}, now)
        stored = Record(1, record.state, (), int(now), record.data_json)
        store.save(ref, None, stored, now + 3600, now)


def test_after_revoke_user_no_device_stays_logged_in_on_a_full_redis(
    evicting: RedisEvicting, store: RedisStore, make_kit: MakeKit
) -> None:
    events: list[SecurityEvent] = []
    kit = make_kit(store=store, visitor_cookie=None, on_security_event=events.append)
    devices = {user: [Browser(kit) for _ in range(DEVICES)] for user in USERS}
    for user, browsers in devices.items():
        for browser in browsers:
            browser.request(login(user))
            browser.request(put(theme="dark", seen=list(range(20))))
    copies = {user: [b.copy() for b in browsers] for user, browsers in devices.items()}
    _, evicted_before = evicting.keys_and_evictions()

    # Other people log in until Redis has evicted many times over; meanwhile the
    # first half of the users keep browsing on their first devices.
    for round_ in range(ROUNDS):
        filler_sessions(store, kit, FILLER // ROUNDS, round_ * (FILLER // ROUNDS))
        for user in USERS[: len(USERS) // 2]:
            devices[user][0].request(put(round=round_))
    _, evicted = evicting.keys_and_evictions()
    assert evicted - evicted_before > FILLER // 4, "Redis did evict, and a lot"

    still_in = {user: sum(copy.copy().user() == user for copy in copies[user]) for user in USERS}
    assert any(still_in.values()), "some sessions survived eviction (or this proves nothing)"
    assert not all(still_in.values()), "some users lost every session to eviction"

    for user in USERS:
        kit.revoke_user(user)

    logged_in = [
        (user, index)
        for user in USERS
        for index, browser in enumerate([*devices[user], *copies[user]])
        if browser.user() is not None
    ]
    assert logged_in == []
    assert "replayed_id" not in [event.reason for event in events]
