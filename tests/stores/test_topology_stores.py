"""RedisStore on a real Cluster and through real Sentinel: the application's own clients.

The store contract itself runs on both topologies in test_contract.py. Here: keys of many
users spread over every master while each user's keys stay in one slot; the asyncio
clients an application passes as ``async_client=`` (closed by the test in their own event
loop); and failovers. After a failover the store serves again with the same clients; a
revocation acknowledged with ``replicas=1`` stays revoked when the master is killed right
after it; a revocation no replica received (``replicas=0``, or a ``WAIT`` that timed out,
which is logged) is lost in a failover, as SECURITY.md says.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

import pytest
from flows import Browser, login
from redis_topologies import (
    RedisCluster,
    RedisSentinel,
    cluster_clients,
    sentinel_clients,
    topology_store,
    wait_until,
)

from sessionkit import ConfigurationError, SessionKit
from sessionkit.families import FamilyRef, Record, new_record
from sessionkit.session import State, new_session_id
from sessionkit.stores import StoreUnavailable
from sessionkit.stores.redis import RedisStore, _user_tag

MakeKit = Callable[..., SessionKit]

NOW = 1_800_000_000.0
NS = ("aaaaaaaa",)
RECOVERY = 15.0  # seconds a failover may keep the store from answering


def ref(user: str | None) -> FamilyRef:
    return FamilyRef(new_session_id(), user, NS)


def rec(r: FamilyRef, version: int = 1, **data: object) -> Record:
    state = State.fresh(NOW)._replace(id=r.family[::-1], family=r.family, user_id=r.user_id)
    record = new_record(state, dict(data), NOW)
    return Record(version, record.state, (), int(NOW), record.data_json)


# ---------------------------------------------------------------- cluster


def test_a_users_keys_share_a_slot_and_users_spread_over_every_master(
    clean_redis_cluster: RedisCluster,
) -> None:
    users = [f"user-{n}" for n in range(30)]
    with topology_store(clean_redis_cluster, prefix="spread:") as store:
        for user in users:
            for _ in range(2):
                r = ref(user)
                assert store.save(r, None, rec(r), NOW + 600, NOW)
            assert len(store.families_of(user, NS, NOW)) == 2
        anonymous = ref(None)
        assert store.save(anonymous, None, rec(anonymous), NOW + 600, NOW)
    holders: dict[tuple[str, int], int] = {}
    for node in clean_redis_cluster.nodes:
        with node.client() as direct:
            keys = direct.keys("spread:*")
        holders[node.address] = len(keys)
        for key in keys:
            assert clean_redis_cluster.owner_of(key) == node.address
    assert all(count > 0 for count in holders.values()), holders
    assert sum(holders.values()) == 3 * len(users) + 1  # two records and a live set per user
    for user in users:
        base = f"spread:{NS[0]}:{{u:{_user_tag(user)}}}"
        owner = clean_redis_cluster.owner_of(base)
        with clean_redis_cluster.node_at(owner).client() as direct:
            assert direct.zcard(f"{base}:l") == 2
            assert len(direct.keys(f"{base}:*")) == 3


def test_an_asyncio_cluster_client_used_side_by_side_from_its_first_command(
    clean_redis_cluster: RedisCluster,
) -> None:
    """Regression: redis-py's asyncio cluster client, never used before, raced on its
    connections when the store's first commands went out together, and an AttributeError
    escaped (a 500, not a 503). The store now lets it learn the slot map first."""
    clients = cluster_clients(clean_redis_cluster)
    store = RedisStore(client=clients.client, async_client=clients.async_client)
    r = ref("race")

    async def scenario() -> list[bool]:
        try:
            created = await asyncio.gather(
                *(store.asave(r, None, rec(r, w=i), NOW + 60, NOW) for i in range(20))
            )
            updated = await asyncio.gather(
                *(store.asave(r, 1, rec(r, 2, w=i), NOW + 60, NOW) for i in range(20))
            )
            assert await store.arevoke_user("race", NS, NOW) == 1
            return [*created, *updated]
        finally:
            await clients.aclose()

    try:
        outcomes = asyncio.run(scenario())
    finally:
        clients.close()
    assert sum(outcomes[:20]) == 1, "exactly one creation"
    assert sum(outcomes[20:]) == 1, "exactly one write over version 1"


@pytest.mark.parametrize("topology", ["cluster", "sentinel"])
def test_an_async_client_serves_its_loop_and_other_loops_use_the_blocking_client(
    request: pytest.FixtureRequest, topology: str
) -> None:
    """Regression: an ``async_client=`` was used from every event loop, and a second loop
    failed with RuntimeError ("attached to a different loop"), a 500. It now belongs to the
    first loop that uses it; other loops run ``client=`` in a thread."""
    if topology == "cluster":
        clients = cluster_clients(request.getfixturevalue("clean_redis_cluster"))
    else:
        clients = sentinel_clients(request.getfixturevalue("clean_redis_sentinel"))
    store = RedisStore(client=clients.client, async_client=clients.async_client)
    owner = ref("u")

    async def first_loop() -> None:
        try:
            assert await store.asave(owner, None, rec(owner), NOW + 60, NOW)
            assert await store.aload(owner, NOW) == rec(owner)
        finally:
            await clients.aclose()

    async def another_loop() -> None:
        r = ref("u")
        assert await store.asave(r, None, rec(r), NOW + 60, NOW)
        assert len(await store.afamilies_of("u", NS, NOW)) == 2

    try:
        asyncio.run(first_loop())
        asyncio.run(another_loop())
        threading_errors: list[BaseException] = []

        def in_thread() -> None:
            try:
                asyncio.run(another_loop_in_thread())
            except BaseException as exc:  # pragma: no cover - reported below
                threading_errors.append(exc)

        async def another_loop_in_thread() -> None:
            assert await store.aload(owner, NOW) == rec(owner)

        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join()
        assert threading_errors == []
        assert store.revoke_user("u", NS, NOW) == 2
    finally:
        clients.close()


def test_an_async_client_alone_on_a_second_loop_names_the_fix(
    clean_redis_cluster: RedisCluster,
) -> None:
    clients = cluster_clients(clean_redis_cluster)
    clients.close()  # this application has no blocking client
    store = RedisStore(async_client=clients.async_client)
    r = ref("u")

    async def first_loop() -> None:
        try:
            assert await store.asave(r, None, rec(r), NOW + 60, NOW)
        finally:
            await clients.aclose()

    asyncio.run(first_loop())
    with pytest.raises(ConfigurationError, match="pass client= too"):
        asyncio.run(store.aload(r, NOW))


# ---------------------------------------------------------------- sentinel failover


def served_as(browser: Browser, within: float = RECOVERY) -> object:
    """The user the browser's next request to the application is served as.

    While the store does not answer, the application gets 503s: they are retried (the
    browser's cookies stay as they were) until ``within`` seconds have passed.
    """
    deadline = time.monotonic() + within
    while True:
        flight = browser.request(lambda session: session.user_id, path="/app/inbox")
        if flight.status != 503:
            assert flight.status == 200
            return flight.result
        assert time.monotonic() < deadline, f"the store still answers 503 after {within}s"
        time.sleep(0.05)


def replicate_everything(sentinel: RedisSentinel) -> None:
    """Return once the replica has every write the master has accepted so far."""
    with sentinel.master_node().client() as master:
        assert master.execute_command("WAIT", 1, 5000) == 1


def kill_master_and_wait_for_promotion(sentinel: RedisSentinel) -> None:
    """SIGKILL the master at once; return when the sentinels have promoted the replica."""
    old = sentinel.master_address()
    sentinel.node_at(old).kill()

    def promoted() -> bool:
        address = sentinel.master_address()
        if address == old or not all(
            sentinel.master_address(index) == address
            for index in range(len(sentinel.sentinel_nodes))
        ):
            return False
        with sentinel.node_at(address).client() as client:
            return bool(client.execute_command("ROLE")[0] == "master")

    wait_until(promoted, 30.0, "the sentinels promote the replica", sentinel.nodes)


def test_an_acknowledged_revocation_survives_killing_the_master_right_after_it(
    clean_redis_sentinel: RedisSentinel, make_kit: MakeKit
) -> None:
    with topology_store(
        clean_redis_sentinel, timeout=15.0, replicas=1, replica_timeout=10.0
    ) as store:
        kit = make_kit(store=store, visitor_cookie=None, require_cookies=["/app"])
        devices = [Browser(kit) for _ in range(3)]
        for device in devices:
            device.request(login("alice"))
        bystander = Browser(kit)
        bystander.request(login("bob"))
        copies = [device.copy() for device in devices]
        replicate_everything(clean_redis_sentinel)

        # No replica receives anything now: revoke_user must not return yet.
        clean_redis_sentinel.pause_replication()
        ended: list[int] = []
        revoking = threading.Thread(target=lambda: ended.append(kit.revoke_user("alice")))
        revoking.start()
        revoking.join(0.5)
        assert revoking.is_alive(), "revoke_user returned before a replica had the revocation"
        clean_redis_sentinel.resume_replication()
        revoking.join(10.0)
        assert ended == [3]

        kill_master_and_wait_for_promotion(clean_redis_sentinel)

        # The store serves again with the same clients (no permanent 503) ...
        assert served_as(bystander) == "bob", "a replicated session survives the failover"
        # ... and every device of the revoked user, and every copy, stays logged out.
        for browser in [*devices, *copies]:
            assert served_as(browser) is None
        # A new login works on the new master, many requests in a row.
        fresh = Browser(kit)
        fresh.request(login("alice"))
        assert all(served_as(fresh, within=0) == "alice" for _ in range(20))


def test_a_revocation_no_replica_received_is_lost_in_a_failover(
    clean_redis_sentinel: RedisSentinel, make_kit: MakeKit, caplog: pytest.LogCaptureFixture
) -> None:
    """What SECURITY.md documents for ``replicas=0``, and for a ``WAIT`` that timed out."""
    with (
        topology_store(clean_redis_sentinel, replicas=0) as unsafe,
        topology_store(clean_redis_sentinel, replicas=1, replica_timeout=0.2) as waiting,
    ):
        kits = {
            "bob": make_kit(store=unsafe, visitor_cookie=None, require_cookies=["/app"]),
            "carol": make_kit(store=waiting, visitor_cookie=None, require_cookies=["/app"]),
        }
        devices = {user: Browser(kit) for user, kit in kits.items()}
        for user, device in devices.items():
            device.request(login(user))
        replicate_everything(clean_redis_sentinel)

        clean_redis_sentinel.pause_replication()
        with caplog.at_level(logging.WARNING, logger="sessionkit.stores"):
            assert kits["bob"].revoke_user("bob") == 1
            warned_before = [r for r in caplog.records if "replicas" in r.getMessage()]
            assert warned_before == [], "replicas=0 waits for nobody and says nothing"
            assert kits["carol"].revoke_user("carol") == 1
        (warning,) = [r for r in caplog.records if "replicas" in r.getMessage()]
        assert warning.levelno == logging.WARNING
        assert "acknowledged by 0 of 1 replicas" in warning.getMessage()
        assert "a failover now could undo it" in warning.getMessage()
        for device in devices.values():
            assert served_as(device.copy()) is None  # revoked on the master

        clean_redis_sentinel.failover(kill=False)

        # The new master never saw either revocation: both sessions are back.
        for user, device in devices.items():
            assert served_as(device.copy()) == user


def test_the_asyncio_sentinel_client_serves_again_after_the_master_is_killed(
    clean_redis_sentinel: RedisSentinel,
) -> None:
    """ASGI's side of a failover: the same ``async_client=`` answers again, no restart."""
    clients = sentinel_clients(clean_redis_sentinel)
    store = RedisStore(client=clients.client, async_client=clients.async_client, replicas=1)
    kept, revoked = ref("erin"), ref("frank")

    async def scenario() -> tuple[object, object]:
        try:
            for r in (kept, revoked):
                assert await store.asave(r, None, rec(r), NOW + 600, NOW)
            await asyncio.to_thread(replicate_everything, clean_redis_sentinel)
            assert await store.arevoke_user("frank", NS, NOW) == 1
            await asyncio.to_thread(kill_master_and_wait_for_promotion, clean_redis_sentinel)
            deadline = time.monotonic() + RECOVERY
            while True:
                try:
                    loaded = await store.aload(kept, NOW)
                    break
                except StoreUnavailable:  # while the sentinels switch: a 503, then service
                    assert time.monotonic() < deadline, "still unavailable"
                    await asyncio.sleep(0.05)
            for _ in range(20):  # and it stays up
                assert await store.aload(kept, NOW) == loaded
            return loaded, await store.aload(revoked, NOW)
        finally:
            await clients.aclose()

    try:
        loaded, gone = asyncio.run(scenario())
    finally:
        clients.close()
    assert loaded == rec(kept)
    assert gone is None
