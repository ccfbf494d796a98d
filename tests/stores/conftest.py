"""Real Redis topologies for the store tests: a cluster, sentinels, a server that evicts.

Each topology starts at most once per session, the first time a test asks for it, and stops
at the end of the session whatever the tests did. The ``clean_*`` fixtures hand the same
topology to one test with no keys left from earlier tests (and, for the sentinels, with
every node up and replicating again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported in the fixtures, so that tests which need no Redis need no redis-py
    from redis_topologies import RedisCluster, RedisEvicting, RedisSentinel


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A 3-master Redis Cluster on 127.0.0.1: ``.startup_nodes``, ``.url``, ``.owner_of(key)``."""
    from redis_topologies import RedisCluster, require_binary

    server = require_binary("redis-server", "redis-server")
    cli = require_binary("redis-cli", "redis-tools")
    cluster = RedisCluster(server, cli, tmp_path_factory.mktemp("redis-cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def clean_redis_cluster(redis_cluster: RedisCluster) -> RedisCluster:
    """The session's cluster with every master emptied before the test."""
    redis_cluster.flush()
    return redis_cluster


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinel]:
    """A master, a replica and three sentinels watching them as ``mymaster``, on 127.0.0.1."""
    from redis_topologies import RedisSentinel, require_binary

    sentinel = RedisSentinel(
        require_binary("redis-server", "redis-server"), tmp_path_factory.mktemp("redis-sentinel")
    )
    sentinel.start()
    try:
        yield sentinel
    finally:
        sentinel.stop()


@pytest.fixture
def clean_redis_sentinel(redis_sentinel: RedisSentinel) -> RedisSentinel:
    """The session's sentinel topology, healed (every node up, replicating) and emptied.

    Which data node is master depends on the failovers of earlier tests: ask
    ``master_address()``.
    """
    redis_sentinel.heal()
    redis_sentinel.flush()
    return redis_sentinel


@pytest.fixture(scope="session")
def make_redis_evicting(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], RedisEvicting]]:
    """``make_redis_evicting(policy)``: an empty 2 MB server under that ``maxmemory-policy``.

    Each policy's server starts once per session and is emptied at every call.
    """
    from redis_topologies import RedisEvicting, require_binary, stop_all

    binary = require_binary("redis-server", "redis-server")
    directory = tmp_path_factory.mktemp("redis-evicting")
    servers: dict[str, RedisEvicting] = {}

    def make(policy: str) -> RedisEvicting:
        server = servers.get(policy)
        if server is None:
            server = servers[policy] = RedisEvicting(binary, directory, policy=policy)
            server.start()
        else:
            server.flush()
        return server

    try:
        yield make
    finally:
        stop_all(server.node for server in servers.values())


@pytest.fixture(scope="session")
def redis_evicting(make_redis_evicting: Callable[[str], RedisEvicting]) -> RedisEvicting:
    """A server with ``maxmemory 2mb`` and ``maxmemory-policy allkeys-lru``."""
    return make_redis_evicting("allkeys-lru")


@pytest.fixture
def clean_redis_evicting(redis_evicting: RedisEvicting) -> RedisEvicting:
    """The session's allkeys-lru server, emptied and with its settings back before the test."""
    redis_evicting.flush()
    return redis_evicting
