"""RedisStore specifics: key layout and TTLs, outages, lazy and optional import."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from sessionkit import ConfigurationError
from sessionkit.stores import SessionRecord, StoreUnavailable
from sessionkit.stores.redis import RedisStore

NOW = 1_800_000_000.0


def record(user: str | int | None = None, ttl: float = 3600) -> SessionRecord:
    return SessionRecord("sid", None, 0.0, user, {"k": 1}, NOW + ttl)


@pytest.fixture
def prefix() -> str:
    return f"test:{uuid.uuid4().hex}:"


@pytest.fixture
def store(redis_server: Any, prefix: str) -> Iterator[RedisStore]:
    opened = RedisStore(redis_server.url, prefix=prefix, socket_timeout=0.5)
    yield opened
    opened.close()


@pytest.fixture
def raw(redis_server: Any) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    client.close()


def test_key_layout_and_ttls(store: RedisStore, raw: redis.Redis, prefix: str) -> None:
    rec = record(42, ttl=100)
    store.save("fam", rec, NOW)
    assert raw.get(f"{prefix}f:fam") == rec.dumps()
    assert raw.get(f"{prefix}o:fam") == json.dumps(42)
    assert raw.smembers(f"{prefix}u:42") == {"fam"}
    for key in (f"{prefix}f:fam", f"{prefix}o:fam", f"{prefix}u:42"):
        pttl = raw.pttl(key)
        assert 99_000 < pttl <= 100_000, key

    # the user's set lives as long as its longest-lived family
    store.save("long", record(42, ttl=1000), NOW)
    assert 999_000 < raw.pttl(f"{prefix}u:42") <= 1_000_000
    store.save("short", record(42, ttl=10), NOW)
    assert 999_000 < raw.pttl(f"{prefix}u:42") <= 1_000_000
    assert 9_000 < raw.pttl(f"{prefix}f:short") <= 10_000

    # an anonymous family has no owner key and joins no set
    store.save("anon", record(None, ttl=50), NOW)
    assert raw.exists(f"{prefix}o:anon") == 0
    assert 49_000 < raw.pttl(f"{prefix}f:anon") <= 50_000


def test_ttl_follows_the_callers_clock(store: RedisStore, raw: redis.Redis, prefix: str) -> None:
    """TTL is expires_at - now, so a caller's clock far from the server's changes nothing."""
    long_ago = 1_000_000.0
    store.save("fam", SessionRecord("s", None, 0.0, "u", None, long_ago + 30), long_ago)
    assert 29_000 < raw.pttl(f"{prefix}f:fam") <= 30_000
    assert store.load("fam", long_ago) is not None


def test_an_expired_save_removes_the_keys(store: RedisStore, raw: redis.Redis, prefix: str) -> None:
    store.save("fam", record("u"), NOW)
    store.save("fam", record("u", ttl=-5), NOW)
    assert raw.exists(f"{prefix}f:fam", f"{prefix}o:fam") == 0
    assert raw.sismember(f'{prefix}u:"u"', "fam") == 0


def test_keys_really_expire(store: RedisStore, raw: redis.Redis, prefix: str) -> None:
    store.save("fam", SessionRecord("s", None, 0.0, "u", None, NOW + 0.05), NOW)
    time.sleep(0.2)
    assert raw.exists(f"{prefix}f:fam", f"{prefix}o:fam", f'{prefix}u:"u"') == 0
    assert store.delete_user("u") == 0


def test_delete_user_leaves_nothing_behind(
    store: RedisStore, raw: redis.Redis, prefix: str
) -> None:
    for i in range(5):
        store.save(f"f{i}", record("u"), NOW)
    store.save("other", record("v"), NOW)
    assert store.delete_user("u") == 5
    assert sorted(raw.keys(f"{prefix}*")) == [
        f"{prefix}f:other",
        f"{prefix}o:other",
        f'{prefix}u:"v"',
    ]


def test_stale_members_are_pruned(store: RedisStore, raw: redis.Redis, prefix: str) -> None:
    for i in range(5):
        store.save(f"f{i}", SessionRecord("s", None, 0.0, "u", None, NOW + 0.05), NOW)
    time.sleep(0.1)
    store.save("live", record("u", ttl=600), NOW)
    for _ in range(10):
        store.save("live", record("u", ttl=600), NOW)
    assert raw.smembers(f'{prefix}u:"u"') == {"live"}


def test_prefixes_keep_stores_apart(redis_server: Any) -> None:
    a = RedisStore(redis_server.url, prefix=f"a{uuid.uuid4().hex}:")
    b = RedisStore(redis_server.url, prefix=f"b{uuid.uuid4().hex}:")
    a.save("fam", record("u"), NOW)
    assert b.load("fam", NOW) is None
    assert b.delete_user("u") == 0
    assert a.delete_user("u") == 1
    a.close()
    b.close()


def test_loop_clients_close_with_their_loop(store: RedisStore) -> None:
    async def use() -> int:
        await store.asave("fam", record("u"), NOW)
        return len(store._loops)

    assert asyncio.run(use()) == 1
    gc.collect()
    assert len(store._loops) == 0

    async def use_and_close() -> None:
        assert await store.aload("fam", NOW) is not None
        await store.aclose()
        assert len(store._loops) == 0
        assert await store.aload("fam", NOW) is not None  # a new client, on demand

    asyncio.run(use_and_close())
    assert len(store._loops) == 0


ALL_CALLS: list[tuple[str, Callable[[RedisStore], Any]]] = [
    ("load", lambda s: s.load("fam", NOW)),
    ("save", lambda s: s.save("fam", record("u"), NOW)),
    ("delete", lambda s: s.delete("fam")),
    ("delete_user", lambda s: s.delete_user("u")),
]
ALL_ACALLS: list[tuple[str, Callable[[RedisStore], Any]]] = [
    ("aload", lambda s: s.aload("fam", NOW)),
    ("asave", lambda s: s.asave("fam", record("u"), NOW)),
    ("adelete", lambda s: s.adelete("fam")),
    ("adelete_user", lambda s: s.adelete_user("u")),
]


def assert_all_unavailable(store: RedisStore, limit: float) -> None:
    for name, call in ALL_CALLS:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            call(store)
        assert time.monotonic() - started < limit, name
        assert isinstance(info.value.__cause__, redis.RedisError), name


async def assert_all_unavailable_async(store: RedisStore, limit: float) -> None:
    for name, call in ALL_ACALLS:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            await call(store)
        assert time.monotonic() - started < limit, name
        assert isinstance(info.value.__cause__, redis.RedisError), name


def assert_all_work(store: RedisStore) -> None:
    store.save("fam", record("u"), NOW)
    assert store.load("fam", NOW) == record("u")
    assert store.delete_user("u") == 1
    store.delete("fam")


async def assert_all_work_async(store: RedisStore) -> None:
    await store.asave("fam", record("u"), NOW)
    assert await store.aload("fam", NOW) == record("u")
    assert await store.adelete_user("u") == 1
    await store.adelete("fam")


def test_outage_and_recovery(redis_server: Any, prefix: str) -> None:
    store = RedisStore(redis_server.url, prefix=prefix, socket_timeout=1.0)

    async def scenario() -> None:
        # one event loop across the whole outage: its client must recover too
        await assert_all_work_async(store)
        assert_all_work(store)
        redis_server.stop()
        try:
            assert_all_unavailable(store, limit=2.0)
            await assert_all_unavailable_async(store, limit=2.0)
        finally:
            redis_server.start()
        # the same store object, the same loop: calls work again
        await assert_all_work_async(store)
        assert_all_work(store)

    asyncio.run(scenario())
    store.close()


def test_outage_before_first_use(redis_server: Any, prefix: str) -> None:
    redis_server.stop()
    try:
        store = RedisStore(redis_server.url, prefix=prefix)  # no connection yet: no error
        assert_all_unavailable(store, limit=2.0)
        asyncio.run(assert_all_unavailable_async(store, limit=2.0))
    finally:
        redis_server.start()
    assert_all_work(store)
    asyncio.run(assert_all_work_async(store))
    store.close()


def test_a_hung_server_times_out(redis_server: Any, prefix: str) -> None:
    """A server that accepts but never answers: socket_timeout bounds every call."""
    store = RedisStore(redis_server.url, prefix=prefix, socket_timeout=0.3)

    async def scenario() -> None:
        await assert_all_work_async(store)
        assert_all_work(store)
        redis_server.pause()
        try:
            assert_all_unavailable(store, limit=1.5)
            await assert_all_unavailable_async(store, limit=1.5)
        finally:
            redis_server.resume()
        await assert_all_work_async(store)
        assert_all_work(store)

    asyncio.run(scenario())
    store.close()


def test_password_is_not_in_messages() -> None:
    store = RedisStore("redis://user:hunter2@127.0.0.1:1/0", socket_timeout=0.5)
    with pytest.raises(StoreUnavailable) as info:
        store.load("fam", NOW)
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)
    store.close()


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "not a url"])
def test_bad_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="redis://"):
        RedisStore(url)


def test_bad_timeout_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="socket_timeout"):
        RedisStore(socket_timeout=0)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_importing_stores_does_not_import_redis() -> None:
    done = run_python(
        "import sys, sessionkit.stores as s\n"
        "assert 'redis' not in sys.modules, 'redis imported too early'\n"
        "assert 'RedisStore' in dir(s)\n"
        "cls = s.RedisStore\n"
        "assert 'redis' in sys.modules and cls.__name__ == 'RedisStore'\n"
        "from sessionkit.stores import RedisStore\n"
        "assert RedisStore is cls\n"
    )
    assert done.returncode == 0, done.stderr


def test_without_redis_the_import_error_names_the_extra() -> None:
    done = run_python(
        "import sys\n"
        "sys.modules['redis'] = None  # as if redis-py were not installed\n"
        "import sessionkit.stores\n"
        "try:\n"
        "    from sessionkit.stores import RedisStore\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('imported')\n"
    )
    assert done.returncode == 0, done.stderr
    assert "pip install sessionkit[redis]" in done.stdout
