"""Real Redis topologies on 127.0.0.1 for the store tests: a cluster, sentinels, an evicting server.

Every process is a real ``redis-server`` (``--sentinel`` for the sentinels) on a free port of
127.0.0.1, with its own directory under a temp dir and its log in ``<name>.log`` there. Each
class starts its processes together, waits until the topology is usable and ``stop()`` ends
every process it started. Importable as ``redis_topologies`` (``pythonpath = ["tests"]``).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from support import free_port, stop_process

HOST = "127.0.0.1"

Address = tuple[str, int]

# Data nodes replicate as this user so that replication can be cut off on purpose (ACL).
REPLICATION_USER = "replicator"


def require_binary(name: str, package: str) -> str:
    """The path of the program ``name``; fail the test run naming the Debian ``package``."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: the Redis topology tests need real servers. "
            f"Install Debian's {package} package (apt-get install {package}).",
            pytrace=False,
        )
    return path


def admin_client(port: int, timeout: float = 2.0) -> redis.Redis:
    """A plain client to 127.0.0.1:``port``: RESP2 replies as strings, no retries of its own."""
    return redis.Redis(
        host=HOST,
        port=port,
        protocol=2,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def fields(reply: Sequence[Any]) -> dict[str, Any]:
    """A RESP2 flat ``[name, value, name, value, ...]`` reply as a dict."""
    return dict(zip(reply[::2], reply[1::2], strict=True))


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    logs: Iterable[RedisNode] = (),
    interval: float = 0.05,
) -> None:
    """Poll ``condition`` until it is true; a Redis error counts as false; fail after ``timeout``.

    The failure message names ``what`` and ends with the last lines of the ``logs`` nodes' logs.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            if condition():
                return
        except redis.RedisError as error:
            last_error = error
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    tails = "\n".join(f"--- {node.name} ---\n{node.log_tail()}" for node in logs)
    pytest.fail(
        f"timed out after {timeout:.1f}s waiting until {what}"
        f" (last error: {last_error!r})\n{tails}",
        pytrace=False,
    )


class RedisNode:
    """One ``redis-server`` process on 127.0.0.1: a data node, or a sentinel (``sentinel=True``).

    A data node's config file is written anew at each ``start()`` from ``config`` plus the
    ``extra`` lines given there; a sentinel's is written once, since the sentinel rewrites it.
    """

    def __init__(
        self,
        binary: str,
        directory: Path,
        name: str,
        config: Sequence[str] = (),
        *,
        sentinel: bool = False,
        port: int | None = None,
    ) -> None:
        self.binary = binary
        self.name = name
        self.port = free_port() if port is None else port
        self.directory = directory / name
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_file = self.directory / f"{name}.conf"
        self.log = self.directory / f"{name}.log"
        self.sentinel = sentinel
        self.config = [
            f"port {self.port}",
            f"bind {HOST}",
            "daemonize no",
            f'dir "{self.directory}"',
            'logfile ""',
            *([] if sentinel else ['save ""', "appendonly no"]),
            *config,
        ]
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> Address:
        return (HOST, self.port)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def spawn(self, extra: Sequence[str] = ()) -> None:
        """Start the process without waiting for it (see ``wait_ready``)."""
        if self.running:
            return
        if not self.sentinel or not self.config_file.exists():
            self.config_file.write_text("\n".join([*self.config, *extra]) + "\n")
        argv = [self.binary, str(self.config_file), *(["--sentinel"] if self.sentinel else [])]
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def ping(self) -> bool:
        """True when the process answers PING now."""
        if not self.running:
            return False
        try:
            with admin_client(self.port, timeout=0.5) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until the process answers PING; fail with its log if it exits or times out."""

        def ready() -> bool:
            if self._process is not None and self._process.poll() is not None:
                pytest.fail(f"{self.name} exited:\n{self.log_tail()}", pytrace=False)
            return self.ping()

        wait_until(ready, timeout, f"{self.name} answers PING on port {self.port}", [self])

    def start(self, extra: Sequence[str] = (), timeout: float = 10.0) -> None:
        """Start the process (if stopped) and wait until it answers PING."""
        self.spawn(extra)
        self.wait_ready(timeout)

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and wait until it has exited."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # a frozen process could not act on SIGTERM
            stop_process(process, timeout=5.0)

    def kill(self) -> None:
        """Kill the process at once (SIGKILL), as a crash would, and wait until it has exited."""
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, sig=signal.SIGKILL)

    def client(self, timeout: float = 2.0) -> redis.Redis:
        """A plain redis-py client to this process (strings in and out, no retries)."""
        return admin_client(self.port, timeout)

    def log_tail(self, size: int = 2000) -> str:
        """The last ``size`` characters of the process's log."""
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError:
            return "(no log)"


def start_all(nodes: Sequence[RedisNode], timeout: float = 10.0) -> None:
    """Spawn every node first, then wait for each, so that they start side by side."""
    for node in nodes:
        node.spawn()
    for node in nodes:
        node.wait_ready(timeout)


def node_at(nodes: Iterable[RedisNode], address: Address) -> RedisNode:
    """The one of ``nodes`` that listens on ``address``."""
    for node in nodes:
        if node.address == tuple(address):
            return node
    raise LookupError(f"no node of this topology listens on {address}")


def stop_all(nodes: Iterable[RedisNode]) -> None:
    """Stop every node, even when stopping one of them raises."""
    errors: list[BaseException] = []
    for node in nodes:
        try:
            node.stop()
        except Exception as error:  # keep going: no process may outlive the session
            errors.append(error)
    if errors:
        raise errors[0]


# ---------------------------------------------------------------- cluster


class RedisCluster:
    """A Redis Cluster of ``masters`` masters without replicas, all slots assigned.

    Created with ``redis-cli --cluster create``; ready once every node's ``CLUSTER INFO`` says
    ``cluster_state:ok`` and all nodes agree on the slot map. ``startup_nodes`` are the
    (host, port) pairs for ``redis.cluster.RedisCluster``; ``owner_of`` tells which master
    holds a key.
    """

    def __init__(
        self,
        server_binary: str,
        cli_binary: str,
        directory: Path,
        *,
        masters: int = 3,
        node_timeout_ms: int = 2000,
    ) -> None:
        self.cli_binary = cli_binary
        self.nodes = [
            RedisNode(
                server_binary,
                directory,
                f"cluster-{index}",
                [
                    "cluster-enabled yes",
                    f"cluster-port {free_port()}",
                    f"cluster-config-file nodes-{index}.conf",
                    f"cluster-node-timeout {node_timeout_ms}",
                ],
            )
            for index in range(masters)
        ]

    @property
    def startup_nodes(self) -> list[Address]:
        return [node.address for node in self.nodes]

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.nodes[0].port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start the nodes, join them into one cluster and wait until it serves every slot."""
        try:
            start_all(self.nodes)
            argv = [
                self.cli_binary,
                "--cluster",
                "create",
                *(f"{host}:{port}" for host, port in self.startup_nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ]
            created = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, check=False
            )
            if created.returncode != 0:
                pytest.fail(
                    f"redis-cli --cluster create failed ({created.returncode}):\n"
                    f"{created.stdout}\n{created.stderr}",
                    pytrace=False,
                )
            wait_until(
                self.is_ready, timeout, "every cluster node says cluster_state:ok", self.nodes
            )
        except BaseException:
            self.stop()
            raise

    def is_ready(self) -> bool:
        """True when every node says ``cluster_state:ok`` and all report the same slot map."""
        maps = []
        for node in self.nodes:
            with node.client() as client:
                if "cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                    return False
                maps.append(self._slot_ranges(client))
        return all(slot_map == maps[0] for slot_map in maps) and len(
            {address for _, _, address in maps[0]}
        ) == len(self.nodes)

    @staticmethod
    def _slot_ranges(client: redis.Redis) -> list[tuple[int, int, Address]]:
        # CLUSTER SLOTS: [first, last, [master ip, port, id, ...], replicas...] per range
        return sorted(
            (int(first), int(last), (str(master[0]), int(master[1])))
            for first, last, master, *_ in client.execute_command("CLUSTER", "SLOTS")
        )

    def slot_map(self) -> list[tuple[int, int, Address]]:
        """The slot ranges as (first, last, master address), sorted, as node 0 reports them."""
        with self.nodes[0].client() as client:
            return self._slot_ranges(client)

    def slot_of(self, key: str) -> int:
        """The hash slot of ``key``, as the cluster computes it (``CLUSTER KEYSLOT``)."""
        with self.nodes[0].client() as client:
            return int(client.execute_command("CLUSTER", "KEYSLOT", key))

    def owner_of(self, key: str) -> Address:
        """The (host, port) of the master that holds ``key``'s slot."""
        slot = self.slot_of(key)
        for first, last, address in self.slot_map():
            if first <= slot <= last:
                return address
        raise LookupError(f"no master serves slot {slot}")

    def node_at(self, address: Address) -> RedisNode:
        """The node listening on ``address``."""
        return node_at(self.nodes, address)

    def flush(self) -> None:
        """Delete every key on every master."""
        for node in self.nodes:
            with node.client() as client:
                client.flushall()

    def stop(self) -> None:
        """Stop every node."""
        stop_all(self.nodes)


# ---------------------------------------------------------------- sentinel


class RedisSentinel:
    """One master, ``replicas`` replicas and three sentinels watching them as ``mymaster``.

    The sentinels (quorum 2) start knowing each other and the replicas, so no discovery delay
    precedes the first failover. Data nodes replicate as the ACL user ``replicator``;
    ``pause_replication()`` switches that user off on the master and cuts its replicas off,
    which is how a test gets a write the replicas never see. ``heal()`` undoes whatever a test
    did: it restarts killed nodes as replicas and lets replication run again.
    """

    master_name = "mymaster"

    def __init__(
        self,
        binary: str,
        directory: Path,
        *,
        replicas: int = 1,
        # Long enough that a busy test machine, slow to answer a PING, never makes the
        # sentinels fail over on their own in the middle of a test.
        down_after_ms: int = 2500,
        failover_timeout_ms: int = 3000,
    ) -> None:
        self.down_after_ms = down_after_ms
        password = secrets.token_hex(16)
        replication = [
            f"user {REPLICATION_USER} on >{password} ~* &* +@all",
            f"masteruser {REPLICATION_USER}",
            f"masterauth {password}",
            "repl-diskless-sync-delay 0",
        ]
        self.data_nodes = [
            RedisNode(binary, directory, f"data-{index}", replication)
            for index in range(1 + replicas)
        ]
        master = self.data_nodes[0]
        ids = [secrets.token_hex(20) for _ in range(3)]
        ports = [free_port() for _ in range(3)]
        self.sentinel_nodes: list[RedisNode] = []
        for index, (myid, port) in enumerate(zip(ids, ports, strict=True)):
            name = self.master_name
            config = [
                f"sentinel myid {myid}",
                f"sentinel monitor {name} {HOST} {master.port} 2",
                f"sentinel down-after-milliseconds {name} {down_after_ms}",
                f"sentinel failover-timeout {name} {failover_timeout_ms}",
                f"sentinel parallel-syncs {name} 1",
                *(f"sentinel known-replica {name} {HOST} {r.port}" for r in self.data_nodes[1:]),
                *(
                    f"sentinel known-sentinel {name} {HOST} {other_port} {other_id}"
                    for other_id, other_port in zip(ids, ports, strict=True)
                    if other_port != port
                ),
            ]
            self.sentinel_nodes.append(
                RedisNode(binary, directory, f"sentinel-{index}", config, sentinel=True, port=port)
            )

    @property
    def nodes(self) -> list[RedisNode]:
        return [*self.data_nodes, *self.sentinel_nodes]

    @property
    def sentinels(self) -> list[Address]:
        return [node.address for node in self.sentinel_nodes]

    def start(self, timeout: float = 30.0) -> None:
        """Start every process and wait until replication and all sentinels are in place."""
        try:
            master = self.data_nodes[0]
            master.spawn()
            for replica in self.data_nodes[1:]:
                replica.spawn([f"replicaof {HOST} {master.port}"])
            for node in self.sentinel_nodes:
                node.spawn()
            for node in self.nodes:
                node.wait_ready()
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    # -- what the sentinels and the nodes say

    def master_address(self, sentinel: int = 0) -> Address:
        """The master's address as the sentinel number ``sentinel`` reports it."""
        with self.sentinel_nodes[sentinel].client() as client:
            host, port = client.execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name
            )
        return (str(host), int(port))

    def master_node(self) -> RedisNode:
        """The data node the sentinels report as master."""
        return self.node_at(self.master_address())

    def node_at(self, address: Address) -> RedisNode:
        """The data node listening on ``address``."""
        return node_at(self.data_nodes, address)

    def replica_count(self) -> int:
        """How many replicas are attached to the master and online (its INFO replication)."""
        with self.master_node().client() as client:
            info = client.info("replication")
        replicas = [
            value
            for field, value in info.items()
            if field.startswith("slave") and isinstance(value, dict)
        ]
        return sum(1 for replica in replicas if replica.get("state") == "online")

    def _role(self, node: RedisNode) -> list[Any]:
        with node.client() as client:
            role: list[Any] = client.execute_command("ROLE")
            return role

    def _is_replica_of(self, node: RedisNode, master: RedisNode) -> bool:
        role = self._role(node)
        return role[0] == "slave" and int(role[2]) == master.port and role[3] == "connected"

    def _sentinels_agree(self, master: Address) -> bool:
        return all(
            self.master_address(index) == master for index in range(len(self.sentinel_nodes))
        )

    def _sentinels_see_everyone(self, master: RedisNode) -> bool:
        """Every sentinel sees the other sentinels and each running replica as healthy.

        A healthy peer is connected and not ``s_down`` (``master_down``, its stale vote from
        the last failover, lingers 5 s and does no harm). A healthy replica has flags exactly
        ``slave`` and answered a PING within ``down-after-milliseconds``: just after it was
        restarted a sentinel reconnects with the old last-reply time and flags it ``s_down``
        for a moment, and a replica held down is one no sentinel promotes.
        """
        replicas = {node.address for node in self.data_nodes if node is not master and node.running}
        for sentinel in self.sentinel_nodes:
            with sentinel.client() as client:
                others = client.execute_command("SENTINEL", "SENTINELS", self.master_name)
                seen = client.execute_command("SENTINEL", "REPLICAS", self.master_name)
            peers = [fields(entry) for entry in others]
            if len(peers) != len(self.sentinel_nodes) - 1:
                return False
            if any({"s_down", "disconnected"} & set(peer["flags"].split(",")) for peer in peers):
                return False
            healthy = {
                (str(replica["ip"]), int(replica["port"]))
                for replica in map(fields, seen)
                if replica["flags"] == "slave"
                and int(replica["last-ok-ping-reply"]) < self.down_after_ms
            }
            if not replicas <= healthy:
                return False
        return True

    def is_healthy(self) -> bool:
        """True when all sentinels agree on one master and every other data node replicates it."""
        address = self.master_address()
        master = self.node_at(address)
        if str(self._role(master)[0]) != "master" or not self._sentinels_agree(address):
            return False
        replicas = [node for node in self.data_nodes if node is not master]
        return (
            all(self._is_replica_of(node, master) for node in replicas)
            and self.replica_count() == len(replicas)
            and self._sentinels_see_everyone(master)
        )

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until ``is_healthy()``."""
        wait_until(self.is_healthy, timeout, "the sentinel topology is healthy", self.nodes)

    # -- what tests do to it

    def pause_replication(self, timeout: float = 10.0) -> None:
        """Cut every replica off the master until ``resume_replication()`` or ``heal()``.

        Writes the master accepts meanwhile reach no replica: ``WAIT`` returns 0 for them and
        a failover loses them.
        """
        master = self.master_node()
        with master.client() as client:
            client.execute_command("ACL", "SETUSER", REPLICATION_USER, "off")
            client.execute_command("CLIENT", "KILL", "USER", REPLICATION_USER)
        wait_until(lambda: self.replica_count() == 0, timeout, "no replica is attached", self.nodes)

    def resume_replication(self, timeout: float = 10.0) -> None:
        """Let replicas attach again; return once every running replica is attached and online.

        A cut-off replica retries about once a second, so this takes up to a second.
        """
        for node in self.data_nodes:
            if node.running:
                with node.client() as client:
                    client.execute_command("ACL", "SETUSER", REPLICATION_USER, "on")
        master = self.master_node()
        replicas = [node for node in self.data_nodes if node is not master and node.running]
        wait_until(
            lambda: self.replica_count() == len(replicas),
            timeout,
            f"{len(replicas)} replica(s) are attached again",
            self.nodes,
        )

    def failover(self, kill: bool = False, timeout: float = 30.0) -> Address:
        """Make the sentinels promote a replica; return the new master's address.

        ``kill=False`` asks a sentinel (``SENTINEL FAILOVER``); ``kill=True`` kills the master
        process (SIGKILL) and lets the sentinels notice. Returns once every sentinel reports the
        new master, it answers ``ROLE`` as master and the old master, if still running, is a
        replica connected to it. A killed master stays down until ``heal()``.

        The sentinels demote a reachable old master only 8 s after the switch (4 hello
        periods); this sends it at once what they would send then (``REPLICAOF`` the new
        master, ``CLIENT KILL TYPE normal``), so its clients meet the new master right away.
        """
        old_address = self.master_address()
        old = self.node_at(old_address)
        wait_until(
            lambda: self._sentinels_agree(old_address) and self._sentinels_see_everyone(old),
            timeout,
            "every sentinel sees the master, its replicas and the other sentinels",
            self.nodes,
        )
        if kill:
            old.kill()
        else:

            def requested() -> bool:
                with self.sentinel_nodes[0].client() as client:
                    try:
                        client.execute_command("SENTINEL", "FAILOVER", self.master_name)
                    except redis.ResponseError as error:
                        # INPROG: an earlier try got through but its reply was lost
                        if not str(error).startswith("INPROG"):
                            raise
                return True

            wait_until(requested, timeout, "a sentinel accepts SENTINEL FAILOVER", self.nodes)

        def switched() -> bool:
            address = self.master_address()
            if address == old_address or not self._sentinels_agree(address):
                return False
            return str(self._role(self.node_at(address))[0]) == "master"

        wait_until(switched, timeout, "the sentinels have switched to a new master", self.nodes)
        new = self.master_node()
        if old.running:
            with old.client() as client, client.pipeline(transaction=True) as pipe:
                pipe.execute_command("REPLICAOF", HOST, new.port)
                pipe.execute_command("CLIENT", "KILL", "TYPE", "normal")
                pipe.execute()
            wait_until(
                lambda: self._is_replica_of(old, new),
                timeout,
                f"the old master {old.name} replicates the new one",
                self.nodes,
            )
        return new.address

    def heal(self, timeout: float = 30.0) -> None:
        """Restart stopped data nodes as replicas, resume replication, wait until healthy."""
        master = self.master_node()
        for node in self.data_nodes:
            if not node.running:
                node.start([f"replicaof {HOST} {master.port}"])
        self.resume_replication()
        self.wait_healthy(timeout)

    def flush(self) -> None:
        """Delete every key on the master; return once every attached replica has too."""
        with self.master_node().client() as client:
            client.flushall()
            client.execute_command("WAIT", self.replica_count(), 2000)

    def stop(self) -> None:
        """Stop the sentinels first (so that they start no failover), then the data nodes."""
        stop_all([*self.sentinel_nodes, *self.data_nodes])


# ---------------------------------------------------------------- eviction


class RedisEvicting:
    """A single server with a small ``maxmemory`` and the eviction ``policy`` given.

    The default is 2 MB under ``allkeys-lru``; any ``maxmemory-policy`` value works.
    """

    def __init__(
        self,
        binary: str,
        directory: Path,
        *,
        policy: str = "allkeys-lru",
        maxmemory: str = "2mb",
    ) -> None:
        self.policy = policy
        self.maxmemory = maxmemory
        self.node = RedisNode(
            binary,
            directory,
            f"evicting-{policy}",
            [f"maxmemory {maxmemory}", f"maxmemory-policy {policy}"],
        )

    @property
    def port(self) -> int:
        return self.node.port

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.node.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        try:
            self.node.start()
        except BaseException:
            self.stop()
            raise

    def client(self, timeout: float = 2.0) -> redis.Redis:
        """A plain redis-py client to the server (strings in and out, no retries)."""
        return self.node.client(timeout)

    def evicted_keys(self) -> int:
        """How many keys the server has evicted since it started (INFO stats)."""
        return self.keys_and_evictions()[1]

    def keys_and_evictions(self) -> tuple[int, int]:
        """The keys in db 0 and the keys evicted so far, from one INFO call.

        A full server evicts before it runs each command, so counts taken by two commands
        (DBSIZE, then INFO) would differ by what the second one evicted.
        """
        with self.client() as client:
            info = client.execute_command("INFO", "keyspace", "stats")
        keys = int(info.get("db0", {}).get("keys", 0))
        return keys, int(info["evicted_keys"])

    def flush(self) -> None:
        """Delete every key and put the policy back to the one this server started with."""
        with self.client() as client:
            client.flushall()
            client.config_set("maxmemory-policy", self.policy)
            client.config_set("maxmemory", self.maxmemory)

    def stop(self) -> None:
        """Stop the server."""
        self.node.stop()


# ---------------------------------------------------------------- stores on these topologies


@dataclass
class Clients:
    """The redis-py clients an application makes for a topology, and what closes them.

    ``async_client`` (None when not asked for) must be closed in its own event loop, by
    ``await aclose()``; ``close()`` closes the blocking side. A Sentinel's own clients to
    the sentinels are closed with the client they serve.
    """

    client: Any
    async_client: Any
    sentinels: Any = None
    async_sentinels: Any = None

    def close(self) -> None:
        self.client.close()
        for probe in self.sentinels.sentinels if self.sentinels is not None else ():
            probe.close()

    async def aclose(self) -> None:
        await self.async_client.aclose()
        for probe in self.async_sentinels.sentinels if self.async_sentinels is not None else ():
            await probe.aclose()


def cluster_clients(
    cluster: RedisCluster, timeout: float = 1.0, *, asynchronous: bool = True
) -> Clients:
    """redis-py's blocking and (unless ``asynchronous=False``) asyncio cluster clients."""
    from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
    from redis.asyncio.cluster import RedisCluster as AsyncClusterClient
    from redis.cluster import ClusterNode
    from redis.cluster import RedisCluster as ClusterClient

    options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    client = ClusterClient(
        startup_nodes=[ClusterNode(host, port) for host, port in cluster.startup_nodes], **options
    )
    async_client = None
    if asynchronous:
        async_client = AsyncClusterClient(
            startup_nodes=[AsyncClusterNode(host, port) for host, port in cluster.startup_nodes],
            **options,
        )
    return Clients(client, async_client)


def sentinel_clients(
    sentinel: RedisSentinel, timeout: float = 1.0, *, asynchronous: bool = True
) -> Clients:
    """Blocking and (unless ``asynchronous=False``) asyncio clients of ``mymaster``, made
    by ``Sentinel.master_for``."""
    from redis.asyncio.sentinel import Sentinel as AsyncSentinel
    from redis.sentinel import Sentinel

    probe = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
    options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    sentinels = Sentinel(sentinel.sentinels, sentinel_kwargs=probe)
    client = sentinels.master_for(sentinel.master_name, **options)
    if not asynchronous:
        return Clients(client, None, sentinels)
    async_sentinels = AsyncSentinel(sentinel.sentinels, sentinel_kwargs=probe)
    async_client = async_sentinels.master_for(sentinel.master_name, **options)
    return Clients(client, async_client, sentinels, async_sentinels)


@contextlib.contextmanager
def topology_store(
    topology: RedisCluster | RedisSentinel, *, timeout: float = 1.0, **settings: Any
) -> Iterator[Any]:
    """A ``RedisStore`` given the topology's blocking client (``client=``), closed at the end.

    ``timeout`` is the client's socket timeout (a ``replica_timeout`` must be shorter);
    ``settings`` go to ``RedisStore`` (``replicas=``, ``prefix=``, ...).
    """
    from sessionkit.stores.redis import RedisStore

    if isinstance(topology, RedisCluster):
        clients = cluster_clients(topology, timeout, asynchronous=False)
    else:
        clients = sentinel_clients(topology, timeout, asynchronous=False)
    store = RedisStore(client=clients.client, **settings)
    try:
        yield store
    finally:
        clients.close()
