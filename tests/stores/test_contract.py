"""One contract, three stores: memory, SQLite on a file, Redis on a real server.

A store makes no decision; it must load what was saved, write only over the version it
is told, keep tenants apart by namespace, and forget what has expired. Everything the
session rules rely on is pinned here, on all three stores (``any_store``), and for Redis on
every topology it is deployed on: one server, a 3-master Cluster and Sentinel, each with
the application's own redis-py clients for the last two.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from sessionkit.families import Ended, FamilyRef, Record, new_record
from sessionkit.session import State, new_session_id
from sessionkit.stores.base import Store

pytestmark = pytest.mark.parametrize(
    "any_store", ["memory", "sqlite", "redis", "redis-cluster", "redis-sentinel"], indirect=True
)

NOW = 1_800_000_000.0
NS = ("aaaaaaaa",)


def ref(user: str | int | None = "alice", ns: tuple[str, ...] = NS) -> FamilyRef:
    return FamilyRef(new_session_id(), user, ns)


def rec(r: FamilyRef, version: int = 1, **data: object) -> Record:
    state = State.fresh(NOW)._replace(id=r.family[::-1], family=r.family, user_id=r.user_id)
    if r.user_id is not None:
        state = state._replace(auth_time=int(NOW))
    record = new_record(state, dict(data), NOW)
    return Record(version, record.state, (), int(NOW), record.data_json)


def test_is_a_store(any_store: Store) -> None:
    assert isinstance(any_store, Store)


@pytest.mark.parametrize("user", ["alice", 7, None])
def test_create_then_load(any_store: Store, user: str | int | None) -> None:
    r = ref(user)
    assert any_store.load(r, NOW) is None
    record = rec(r, cart=["book"])
    assert any_store.save(r, None, record, NOW + 60, NOW)
    assert any_store.load(r, NOW) == record


def test_create_refuses_when_something_live_is_there(any_store: Store) -> None:
    r = ref()
    assert any_store.save(r, None, rec(r), NOW + 60, NOW)
    assert not any_store.save(r, None, rec(r, x=1), NOW + 60, NOW)
    tomb = Ended(2, int(NOW), "logout")
    assert any_store.save(r, 1, tomb, NOW + 60, NOW)
    assert not any_store.save(r, None, rec(r), NOW + 60, NOW), "a tombstone blocks re-creation"
    assert any_store.load(r, NOW) == tomb


def test_save_writes_only_over_the_expected_version(any_store: Store) -> None:
    r = ref()
    any_store.save(r, None, rec(r), NOW + 60, NOW)
    assert not any_store.save(r, 5, rec(r, 6, stale=True), NOW + 60, NOW)
    assert any_store.save(r, 1, rec(r, 2, fresh=True), NOW + 60, NOW)
    assert not any_store.save(r, 1, rec(r, 2, stale=True), NOW + 60, NOW)
    loaded = any_store.load(r, NOW)
    assert isinstance(loaded, Record)
    assert (loaded.version, loaded.data()) == (2, {"fresh": True})


def test_a_conditional_save_of_a_missing_family_fails(any_store: Store) -> None:
    r = ref()
    assert not any_store.save(r, 1, rec(r, 2), NOW + 60, NOW)
    assert any_store.load(r, NOW) is None


def test_expired_state_is_gone(any_store: Store) -> None:
    r = ref()
    any_store.save(r, None, rec(r), NOW + 60, NOW)
    assert any_store.load(r, NOW + 59.9) is not None
    assert any_store.load(r, NOW + 60) is None
    assert not any_store.save(r, 1, rec(r, 2), NOW + 120, NOW + 61), "no write over expired"
    assert any_store.save(r, None, rec(r), NOW + 120, NOW + 61), "expired makes room"


def test_saving_an_already_expired_state_keeps_nothing(any_store: Store) -> None:
    r = ref()
    any_store.save(r, None, rec(r), NOW + 60, NOW)
    assert any_store.save(r, 1, rec(r, 2), NOW, NOW)
    assert any_store.load(r, NOW) is None


def test_namespaces_keep_applications_apart(any_store: Store) -> None:
    mine = ref("alice", ns=("11111111",))
    theirs = FamilyRef(new_session_id(), "alice", ("22222222",))
    any_store.save(mine, None, rec(mine), NOW + 60, NOW)
    any_store.save(theirs, None, rec(theirs), NOW + 60, NOW)
    assert any_store.revoke_user("alice", ("11111111",), NOW) == 1
    assert any_store.load(mine, NOW) is None
    assert any_store.load(theirs, NOW) is not None
    assert any_store.load(FamilyRef(theirs.family, "alice", ("11111111",)), NOW) is None


def test_a_record_moves_to_the_newest_namespace_when_written(any_store: Store) -> None:
    old = ref("alice", ns=("0ld0ld00",))
    rotated = FamilyRef(old.family, "alice", ("ne3ne3ne", "0ld0ld00"))
    any_store.save(old, None, rec(old), NOW + 60, NOW)
    assert any_store.load(rotated, NOW) == rec(old)
    assert any_store.save(rotated, 1, rec(old, 2), NOW + 60, NOW)
    assert any_store.load(FamilyRef(old.family, "alice", ("ne3ne3ne",)), NOW) is not None
    assert any_store.load(old, NOW) is None
    assert any_store.revoke_user("alice", ("ne3ne3ne",), NOW) == 1


def test_revoke_user_ends_only_that_users_live_families(any_store: Store) -> None:
    alice = [ref("alice") for _ in range(3)]
    for r in alice:
        any_store.save(r, None, rec(r), NOW + 60, NOW)
    bob, numeric = ref("bob"), ref(1)
    any_store.save(bob, None, rec(bob), NOW + 60, NOW)
    any_store.save(numeric, None, rec(numeric), NOW + 60, NOW)
    any_store.save(alice[0], 1, Ended(2, int(NOW), "logout"), NOW + 60, NOW)
    assert any_store.revoke_user("alice", NS, NOW) == 2  # the ended one is not counted
    assert all(any_store.load(r, NOW) is None for r in alice[1:])
    # The family that had ended may keep its tombstone (a store may leave it to expire).
    assert not isinstance(any_store.load(alice[0], NOW), Record)
    assert any_store.load(bob, NOW) is not None
    assert any_store.revoke_user("1", NS, NOW) == 0, "1 and '1' are different users"
    assert any_store.revoke_user(1, NS, NOW) == 1
    assert any_store.revoke_user("nobody", NS, NOW) == 0


def test_families_of_lists_live_records_only(any_store: Store) -> None:
    live = [ref("alice") for _ in range(3)]
    for r in live:
        any_store.save(r, None, rec(r), NOW + 60, NOW)
    ended, expired = ref("alice"), ref("alice")
    any_store.save(ended, None, rec(ended), NOW + 60, NOW)
    any_store.save(ended, 1, Ended(2, int(NOW), "logout"), NOW + 60, NOW)
    any_store.save(expired, None, rec(expired), NOW + 10, NOW)
    found = any_store.families_of("alice", NS, NOW + 20)
    assert sorted(f for f, _ in found) == sorted(r.family for r in live)
    assert all(isinstance(record, Record) for _, record in found)
    assert any_store.families_of("bob", NS, NOW) == []


def test_async_forms(any_store: Store) -> None:
    async def scenario() -> None:
        r = ref(7)
        assert await any_store.aload(r, NOW) is None
        assert await any_store.asave(r, None, rec(r, k="v"), NOW + 60, NOW)
        assert not await any_store.asave(r, None, rec(r), NOW + 60, NOW)
        assert await any_store.aload(r, NOW) == rec(r, k="v")
        assert [f for f, _ in await any_store.afamilies_of(7, NS, NOW)] == [r.family]
        assert await any_store.arevoke_user(7, NS, NOW) == 1
        assert await any_store.aload(r, NOW) is None

    asyncio.run(scenario())


def test_several_event_loops(any_store: Store) -> None:
    """Each asyncio.run is a new loop; the same store keeps working in every one."""

    async def create() -> None:
        r = ref("u")
        await any_store.asave(r, None, rec(r), NOW + 60, NOW)

    for _ in range(3):
        asyncio.run(create())
    errors: list[BaseException] = []

    def in_thread() -> None:
        try:
            asyncio.run(create())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=in_thread) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert any_store.revoke_user("u", NS, NOW) == 7


def test_concurrent_writers_of_one_version_exactly_one_wins(any_store: Store) -> None:
    r = ref("race")
    any_store.save(r, None, rec(r), NOW + 60, NOW)
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    wins: list[int] = []
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            barrier.wait()
            if any_store.save(r, 1, rec(r, 2, winner=t), NOW + 60, NOW):
                wins.append(t)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(wins) == 1
    loaded = any_store.load(r, NOW)
    assert isinstance(loaded, Record)
    assert loaded.data() == {"winner": wins[0]}


def test_concurrent_async_writers_of_one_version_exactly_one_wins(any_store: Store) -> None:
    r = ref("race")
    any_store.save(r, None, rec(r), NOW + 60, NOW)

    async def scenario() -> list[bool]:
        return list(
            await asyncio.gather(
                *(any_store.asave(r, 1, rec(r, 2, w=i), NOW + 60, NOW) for i in range(20))
            )
        )

    assert sum(asyncio.run(scenario())) == 1
