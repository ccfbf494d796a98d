"""The Redis topology fixtures do what they claim, checked with redis-py's own clients.

Cluster: hash tags pin keys to one slot, distinct tags spread over all three masters, and a
script may touch several keys only when they share a slot. Sentinel: a client made by
``Sentinel.master_for`` keeps writing across a failover, ``WAIT`` sees the replica only while
replication runs, and a write no replica saw is gone after a failover. Eviction: a full server
evicts as its policy says, or refuses writes under ``noeviction``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode
from redis.cluster import RedisCluster as ClusterClient
from redis.exceptions import ClusterCrossSlotError, RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel
from redis_topologies import RedisCluster, RedisEvicting, RedisSentinel

# ---------------------------------------------------------------- cluster

SET_BOTH = """
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[1])
return redis.call('MGET', KEYS[1], KEYS[2])
"""


@pytest.fixture
def cluster_client(clean_redis_cluster: RedisCluster) -> Iterator[ClusterClient]:
    """redis-py's cluster client, given the startup nodes only."""
    client = ClusterClient(
        startup_nodes=[ClusterNode(host, port) for host, port in clean_redis_cluster.startup_nodes],
        decode_responses=True,
    )
    try:
        yield client
    finally:
        client.close()


def test_the_cluster_spreads_its_slots_over_three_masters(redis_cluster: RedisCluster) -> None:
    slot_map = redis_cluster.slot_map()
    assert {address for _, _, address in slot_map} == set(redis_cluster.startup_nodes)
    covered = sorted(slot for first, last, _ in slot_map for slot in range(first, last + 1))
    assert covered == list(range(16384))
    assert redis_cluster.url == f"redis://127.0.0.1:{redis_cluster.startup_nodes[0][1]}"


def test_keys_with_one_hash_tag_share_a_slot_and_a_master(
    clean_redis_cluster: RedisCluster, cluster_client: ClusterClient
) -> None:
    keys = ["{u:x}:session:1", "{u:x}:session:2", "{u:x}:sessions"]
    slots = {clean_redis_cluster.slot_of(key) for key in keys}
    assert len(slots) == 1
    assert slots == {cluster_client.keyslot(key) for key in keys}
    owners = {clean_redis_cluster.owner_of(key) for key in keys}
    assert len(owners) == 1
    for key in keys:
        cluster_client.set(key, "1")
    (owner,) = owners
    for node in clean_redis_cluster.nodes:
        with node.client() as direct:
            assert direct.dbsize() == (len(keys) if node.address == owner else 0)


def test_keys_with_different_tags_spread_over_every_master(
    clean_redis_cluster: RedisCluster, cluster_client: ClusterClient
) -> None:
    keys = [f"{{u:{user}}}:sessions" for user in range(30)]
    owners = {key: clean_redis_cluster.owner_of(key) for key in keys}
    assert set(owners.values()) == set(clean_redis_cluster.startup_nodes)
    for key in keys:
        cluster_client.set(key, "1")
    for node in clean_redis_cluster.nodes:
        with node.client() as direct:
            assert direct.dbsize() == list(owners.values()).count(node.address) > 0


def test_a_script_over_keys_of_one_tag_runs(
    clean_redis_cluster: RedisCluster, cluster_client: ClusterClient
) -> None:
    first, second = "{u:x}:session", "{u:x}:sessions"
    assert cluster_client.eval(SET_BOTH, 2, first, second, "v") == ["v", "v"]
    with clean_redis_cluster.node_at(clean_redis_cluster.owner_of(first)).client() as owner:
        assert owner.mget(first, second) == ["v", "v"]


def test_a_script_over_keys_of_two_tags_fails_with_crossslot(
    clean_redis_cluster: RedisCluster, cluster_client: ClusterClient
) -> None:
    first, second = "{u:x}:session", "{u:y}:session"
    assert clean_redis_cluster.slot_of(first) != clean_redis_cluster.slot_of(second)
    # redis-py refuses before sending ...
    with pytest.raises(RedisClusterException, match="same key slot"):
        cluster_client.eval(SET_BOTH, 2, first, second, "v")
    # ... and the node that owns the first key refuses the script when sent it anyway
    owner = cluster_client.get_node_from_key(first)
    with pytest.raises(ClusterCrossSlotError):
        cluster_client.execute_command("EVAL", SET_BOTH, 2, first, second, "v", target_nodes=owner)
    for node in clean_redis_cluster.nodes:
        with node.client() as direct:
            assert direct.dbsize() == 0


# ---------------------------------------------------------------- sentinel

NO_RETRY = Retry(NoBackoff(), 0)


@pytest.fixture
def sentinel_master(clean_redis_sentinel: RedisSentinel) -> Iterator[redis.Redis]:
    """A client to ``mymaster`` as ``Sentinel.master_for`` makes it, short timeouts, no retry."""
    sentinel = Sentinel(
        clean_redis_sentinel.sentinels,
        sentinel_kwargs={"socket_timeout": 0.5, "retry": NO_RETRY},
    )
    client = sentinel.master_for(
        clean_redis_sentinel.master_name,
        socket_timeout=2.0,
        socket_connect_timeout=0.5,
        decode_responses=True,
        retry=NO_RETRY,
    )
    try:
        yield client
    finally:
        client.close()
        sentinel.close()


def write_until_accepted(client: redis.Redis, key: str, value: str, within: float) -> float:
    """SET ``key`` until the server accepts it; the seconds that took; fail after ``within``."""
    started = time.monotonic()
    while True:
        try:
            client.set(key, value)
            return time.monotonic() - started
        except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError) as error:
            if time.monotonic() - started > within:
                pytest.fail(f"no write accepted within {within}s; last error: {error!r}")
            time.sleep(0.05)


def test_wait_counts_the_replica_only_while_replication_runs(
    clean_redis_sentinel: RedisSentinel, sentinel_master: redis.Redis
) -> None:
    assert clean_redis_sentinel.replica_count() == 1
    sentinel_master.set("attached", "1")
    assert sentinel_master.wait(1, 2000) == 1

    clean_redis_sentinel.pause_replication()
    assert clean_redis_sentinel.replica_count() == 0
    sentinel_master.set("paused", "1")
    assert sentinel_master.wait(1, 200) == 0

    clean_redis_sentinel.resume_replication()
    assert clean_redis_sentinel.replica_count() == 1
    sentinel_master.set("resumed", "1")
    assert sentinel_master.wait(1, 1000) == 1


@pytest.mark.parametrize("kill", [False, True], ids=["requested", "master-killed"])
def test_the_same_client_writes_again_after_a_failover(
    clean_redis_sentinel: RedisSentinel, sentinel_master: redis.Redis, kill: bool
) -> None:
    old = clean_redis_sentinel.master_address()
    sentinel_master.set("before", "1")
    assert sentinel_master.wait(1, 2000) == 1

    new = clean_redis_sentinel.failover(kill=kill)

    assert new != old
    assert clean_redis_sentinel.master_address() == new
    took = write_until_accepted(sentinel_master, "after", "1", within=5.0)
    assert took < 5.0
    with clean_redis_sentinel.node_at(new).client() as direct:
        assert direct.execute_command("ROLE")[0] == "master"
        assert direct.mget("before", "after") == ["1", "1"]


def test_a_write_no_replica_saw_is_lost_on_failover(
    clean_redis_sentinel: RedisSentinel, sentinel_master: redis.Redis
) -> None:
    old = clean_redis_sentinel.master_node()
    sentinel_master.set("replicated", "1")
    assert sentinel_master.wait(1, 2000) == 1
    clean_redis_sentinel.pause_replication()
    sentinel_master.set("unreplicated", "1")
    assert sentinel_master.wait(1, 200) == 0
    with old.client() as direct:
        assert direct.get("unreplicated") == "1"  # the master did accept it

    clean_redis_sentinel.failover(kill=False)

    write_until_accepted(sentinel_master, "after", "1", within=5.0)
    assert sentinel_master.get("replicated") == "1"
    assert sentinel_master.get("unreplicated") is None
    with old.client() as direct:  # a replica now, resynchronised from the new master
        assert direct.execute_command("ROLE")[0] == "slave"
        assert direct.mget("replicated", "unreplicated") == ["1", None]


# ---------------------------------------------------------------- eviction

VALUE = "x" * 1024
FILL = 4000  # about 4 MB of values for a 2 MB server


def fill(client: redis.Redis, count: int, prefix: str, ttl: int | None = None) -> None:
    """SET ``count`` 1 KB values under ``prefix``, 200 to a round trip."""
    for start in range(0, count, 200):
        with client.pipeline(transaction=False) as pipe:
            for index in range(start, min(start + 200, count)):
                pipe.set(f"{prefix}{index}", VALUE, ex=ttl)
            pipe.execute()


def test_config_get_reports_the_policy(clean_redis_evicting: RedisEvicting) -> None:
    with clean_redis_evicting.client() as client:
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        assert client.config_get("maxmemory") == {"maxmemory": str(2 * 1024 * 1024)}


def test_filling_past_maxmemory_evicts_keys_under_allkeys_lru(
    clean_redis_evicting: RedisEvicting,
) -> None:
    _, before = clean_redis_evicting.keys_and_evictions()
    with clean_redis_evicting.client() as client:
        fill(client, FILL, "k:")
    kept, evicted = clean_redis_evicting.keys_and_evictions()
    assert 0 < kept < FILL
    assert kept + evicted - before == FILL


def test_volatile_lru_evicts_only_keys_with_a_ttl(
    make_redis_evicting: Callable[[str], RedisEvicting],
) -> None:
    server = make_redis_evicting("volatile-lru")
    _, before = server.keys_and_evictions()
    with server.client() as client:
        fill(client, 100, "keep:")
        fill(client, FILL, "ttl:", ttl=3600)
        kept, evicted = server.keys_and_evictions()
        assert client.exists(*(f"keep:{index}" for index in range(100))) == 100
    assert evicted > before
    assert kept + evicted - before == 100 + FILL


def test_noeviction_refuses_writes_past_maxmemory(
    make_redis_evicting: Callable[[str], RedisEvicting],
) -> None:
    server = make_redis_evicting("noeviction")
    with server.client() as client:
        with pytest.raises(redis.ResponseError, match="used memory > 'maxmemory'"):
            fill(client, FILL, "k:")
        assert 0 < client.dbsize() < FILL
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert server.evicted_keys() == 0
