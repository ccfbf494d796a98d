"""One contract, three stores: memory, SQLite on a file, Redis on a real server."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionkit.stores import MemoryStore, SessionRecord, SQLiteStore, Store

NOW = 1_800_000_000.0


def make_record(
    user: str | int | None = None,
    *,
    expires_at: float = NOW + 3600,
    sid: str = "sid-1",
    data: dict[str, Any] | None = None,
) -> SessionRecord:
    return SessionRecord(sid, None, 0.0, user, data, expires_at)


def open_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SQLiteStore(tmp_path / "sessions.db")
    from sessionkit.stores import RedisStore

    server = request.getfixturevalue("redis_server")
    return RedisStore(server.url, prefix=f"test:{uuid.uuid4().hex}:")


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    opened = open_store(request.param, tmp_path, request)
    yield opened
    if hasattr(opened, "close"):
        opened.close()


def test_is_a_store(store: Store) -> None:
    assert isinstance(store, Store)


def test_round_trip(store: Store) -> None:
    record = SessionRecord(
        session_id="current",
        previous_id="older",
        previous_until=NOW + 5.5,
        user_id="alice@example.com",
        data={"cart": [1, 2, {"x": None}], "name": "Zoë ✓", "n": 1.25, "ok": True},
        expires_at=NOW + 1800.25,
    )
    store.save("fam-1", record, NOW)
    assert store.load("fam-1", NOW) == record
    assert store.load("fam-1", NOW + 1800) == record


def test_missing_family_is_none(store: Store) -> None:
    assert store.load("no-such-family", NOW) is None


def test_save_replaces(store: Store) -> None:
    store.save("fam", make_record(sid="a"), NOW)
    store.save("fam", make_record(sid="b", expires_at=NOW + 60), NOW)
    loaded = store.load("fam", NOW)
    assert loaded is not None
    assert (loaded.session_id, loaded.expires_at) == ("b", NOW + 60)


def test_expired_record_is_not_returned(store: Store) -> None:
    store.save("fam", make_record(expires_at=NOW + 10), NOW)
    assert store.load("fam", NOW + 9.999) is not None
    assert store.load("fam", NOW + 10) is None
    assert store.load("fam", NOW + 11) is None


def test_saving_an_expired_record_keeps_nothing(store: Store) -> None:
    store.save("fam", make_record("u"), NOW)
    store.save("fam", make_record("u", expires_at=NOW - 1), NOW)
    assert store.load("fam", NOW - 100) is None
    assert store.delete_user("u") == 0


def test_delete(store: Store) -> None:
    store.save("a", make_record("u"), NOW)
    store.save("b", make_record("u"), NOW)
    store.delete("a")
    assert store.load("a", NOW) is None
    assert store.load("b", NOW) is not None
    store.delete("a")  # missing: not an error
    store.delete("never-saved")
    assert store.delete_user("u") == 1


def test_delete_user(store: Store) -> None:
    store.save("a1", make_record(1), NOW)
    store.save("a2", make_record(1), NOW)
    store.save("s1", make_record("1"), NOW)  # the string "1" is another user than the int 1
    store.save("b1", make_record(2), NOW)
    store.save("anon", make_record(None), NOW)

    assert store.delete_user(1) == 2
    assert store.load("a1", NOW) is None
    assert store.load("a2", NOW) is None
    for family in ("s1", "b1", "anon"):
        assert store.load(family, NOW) is not None, family

    assert store.delete_user(1) == 0
    assert store.delete_user("1") == 1
    assert store.load("s1", NOW) is None
    assert store.load("b1", NOW) is not None
    assert store.delete_user("nobody") == 0


def test_rebinding_a_family_moves_it_to_the_new_user(store: Store) -> None:
    store.save("fam", make_record("alice"), NOW)
    store.save("fam", make_record("bob"), NOW)
    assert store.delete_user("alice") == 0
    assert store.load("fam", NOW) is not None
    store.save("fam", make_record(None), NOW)
    assert store.delete_user("bob") == 0
    assert store.load("fam", NOW) is not None
    store.save("fam", make_record("carol"), NOW)
    assert store.delete_user("carol") == 1
    assert store.load("fam", NOW) is None


def test_async_forms(store: Store) -> None:
    async def scenario() -> None:
        assert await store.aload("fam", NOW) is None
        record = make_record(7, data={"k": "v"})
        await store.asave("fam", record, NOW)
        await store.asave("other", make_record("7"), NOW)
        assert await store.aload("fam", NOW) == record
        assert await store.aload("fam", record.expires_at - 0.001) == record
        await store.asave("short", make_record(expires_at=NOW + 1), NOW)
        assert await store.aload("short", NOW + 1) is None
        await store.asave("gone", make_record(7), NOW)
        await store.adelete("gone")
        await store.adelete("gone")
        assert await store.aload("gone", NOW) is None
        assert await store.adelete_user(7) == 1
        assert await store.aload("fam", NOW) is None
        assert await store.aload("other", NOW) is not None

    asyncio.run(scenario())
    # the blocking forms see what the coroutines wrote
    assert store.load("other", NOW) is not None


def test_several_event_loops(store: Store) -> None:
    """Each asyncio.run is a new loop; the same store keeps working in every one."""

    async def save(family: str) -> None:
        await store.asave(family, make_record("u"), NOW)

    async def count() -> int:
        return await store.adelete_user("u")

    for i in range(3):
        asyncio.run(save(f"fam-{i}"))
    errors: list[BaseException] = []

    def in_thread(i: int) -> None:
        try:
            asyncio.run(save(f"thread-{i}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=in_thread, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert asyncio.run(count()) == 7


def test_async_concurrent_saves(store: Store) -> None:
    async def scenario() -> int:
        await asyncio.gather(*(store.asave(f"f{i}", make_record("many"), NOW) for i in range(40)))
        loaded = await asyncio.gather(*(store.aload(f"f{i}", NOW) for i in range(40)))
        assert all(r is not None for r in loaded)
        return await store.adelete_user("many")

    assert asyncio.run(scenario()) == 40


def test_concurrent_saves_from_threads(store: Store) -> None:
    per_thread, threads_n = 40, 8
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                store.save(f"t{t}-{i}", make_record(t % 2, sid=f"{t}-{i}"), NOW)
                store.save("shared", make_record("shared", sid=f"{t}-{i}"), NOW)
                loaded = store.load(f"t{t}-{i}", NOW)
                assert loaded is not None
                assert loaded.session_id == f"{t}-{i}"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    shared = store.load("shared", NOW)
    assert shared is not None
    assert shared.session_id.endswith(f"-{per_thread - 1}")
    assert store.delete_user(0) == per_thread * threads_n // 2
    assert store.delete_user(1) == per_thread * threads_n // 2
    assert store.delete_user("shared") == 1
