"""Shared fixtures: keys, a movable clock and a SessionKit factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import sessionkit

# Property tests assert behaviour, never speed: a loaded CI machine must not fail them on
# Hypothesis's per-example deadline or its too-slow health check.
settings.register_profile("sessionkit", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("sessionkit")


class Clock:
    """A clock tests move by hand; pass ``clock=clock`` to SessionKit."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def key() -> str:
    return sessionkit.generate_key()


@pytest.fixture
def make_kit(key: str, clock: Clock) -> Callable[..., sessionkit.SessionKit]:
    """Build a SessionKit with the test key and clock; keyword arguments override."""

    def make(**settings: Any) -> sessionkit.SessionKit:
        settings.setdefault("secret_keys", [key])
        settings.setdefault("clock", clock)
        return sessionkit.SessionKit(**settings)

    return make


# -- A real Redis server for the store tests ---------------------------------------------
# (imports here so this section can be appended without touching the ones above)

import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

from support import free_port, stop_process  # noqa: E402


class RedisServer:
    """A ``redis-server`` on 127.0.0.1 that tests may stop and start again on the same port.

    ``url`` stays valid across ``stop()``/``start()``; the data does not (no persistence).
    """

    def __init__(self, binary: str, directory: Path, port: int) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.log = directory / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server (if stopped) and wait until it answers PING."""
        if self.running:
            return
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "save": "",
            "appendonly": "no",
            "dir": str(self.directory),
            "daemonize": "no",
        }
        argv = [self.binary] + [
            arg for name, value in options.items() for arg in (f"--{name}", value)
        ]
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if self.ping():
                return
            time.sleep(0.02)
        tail = self.log.read_text(errors="replace")[-2000:]
        self.stop()
        pytest.fail(f"redis-server did not answer PING on port {self.port}; its log:\n{tail}")

    def stop(self) -> None:
        """Stop the server and wait until it has exited."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused server could not act on SIGTERM
        stop_process(process)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing answers."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run again (SIGCONT)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def ping(self) -> bool:
        """True when the server answers PING now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real Redis server for this test session: ``.url``, ``.stop()``, ``.start()``.

    A test that stops it must start it again (``try``/``finally``); it keeps its port.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not installed: the Redis store tests need a real server. "
            "Install Debian's redis-server package (apt-get install redis-server).",
            pytrace=False,
        )
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- Every store, for the tests that must hold on all of them ------------------------------

import redis as redis_py  # noqa: E402

from sessionkit.stores import MemoryStore, SQLiteStore  # noqa: E402
from sessionkit.stores.base import Store  # noqa: E402


@pytest.fixture(params=["memory", "sqlite", "redis"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store of each kind: MemoryStore, SQLiteStore and a real Redis.

    Parametrized indirectly (``pytest.mark.parametrize("any_store", [...], indirect=True)``,
    from a test under tests/stores, where the topology fixtures are) it also opens
    ``"redis-cluster"`` (a RedisStore given redis-py's blocking cluster client) and
    ``"redis-sentinel"`` (given a ``Sentinel.master_for`` client); their coroutine forms
    run that client in a thread. (An ``async_client=`` belongs to one event loop, and these
    tests run several: see tests/stores/test_topology_stores.py.)
    """
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "sqlite":
        yield SQLiteStore(tmp_path / "sessions.db")
    elif request.param == "redis":
        from sessionkit.stores.redis import RedisStore

        server: RedisServer = request.getfixturevalue("redis_server")
        redis_py.Redis.from_url(server.url).flushall()
        store = RedisStore(server.url)
        try:
            yield store
        finally:
            store.close()
    else:
        from redis_topologies import topology_store

        fixture = {"redis-cluster": "clean_redis_cluster", "redis-sentinel": "clean_redis_sentinel"}
        with topology_store(request.getfixturevalue(fixture[request.param])) as store:
            yield store
