"""SQLiteStore specifics: configuration errors, WAL, several processes, failures, purging."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sessionkit import ConfigurationError
from sessionkit.families import FamilyRef, Record, new_record
from sessionkit.session import State
from sessionkit.stores import SQLiteStore, StoreUnavailable

NOW = 1_800_000_000.0
NS = ("aaaaaaaa",)


def ref(family: str, user: str | int | None = "u") -> FamilyRef:
    return FamilyRef(family.ljust(22, "-"), user, NS)


def record(family: str, user: str | int | None = "u") -> Record:
    state = State("i" * 22, family.ljust(22, "-"), user, int(NOW), int(NOW), int(NOW),
                  int(NOW) if user is not None else 0, 0, None)  # fmt: skip
    return new_record(state, {}, NOW)


def create(
    store: SQLiteStore, family: str, user: str | int | None = "u", until: float = NOW + 3600
) -> bool:
    return store.save(ref(family, user), None, record(family, user), until, NOW)


#: What a worker process runs first: a store on the database, and the helpers above.
_PRELUDE = """
import sys
from sessionkit.stores import SQLiteStore
from sessionkit.families import FamilyRef, new_record
from sessionkit.session import State
NOW = {now!r}
NS = ("aaaaaaaa",)
store = SQLiteStore({db!r})
def ref(f, u="u"):
    return FamilyRef(f.ljust(22, "-"), u, NS)
def create(f, u="u"):
    t = int(NOW)
    state = State("i" * 22, f.ljust(22, "-"), u, t, t, t, t, 0, None)
    return store.save(ref(f, u), None, new_record(state, {{}}, NOW), NOW + 60, NOW)
"""


def run_python(code: str, db: Path) -> str:
    """Run ``code`` in a new interpreter with ``store`` open on ``db``; return its stdout."""
    prelude = _PRELUDE.format(now=NOW, db=str(db))
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_missing_directory_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "sessions.db"
    with pytest.raises(ConfigurationError, match="does not exist") as info:
        SQLiteStore(missing)
    assert "mkdir" in str(info.value)
    assert str(missing.parent) in str(info.value)


@pytest.mark.parametrize("path", [":memory:", ""])
def test_unshared_databases_are_refused(path: str) -> None:
    with pytest.raises(ConfigurationError, match="MemoryStore"):
        SQLiteStore(path)


def test_a_file_that_is_not_a_database_is_a_configuration_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"this is not a SQLite database, not even close" * 100)
    with pytest.raises(ConfigurationError, match=r"bogus\.db"):
        SQLiteStore(bogus)


def test_schema_wal_and_private_files(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(str(db))
    create(store, "fam")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(sessionkit_families)")}
        assert columns == {"family", "namespace", "user_key", "version", "live", "until", "stored"}
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(sessionkit_families)")}
        assert {"sessionkit_families_user", "sessionkit_families_until"} <= indexes
        assert conn.execute("SELECT user_key FROM sessionkit_families").fetchall() == [('"u"',)]
    conn.close()
    # the file, its write-ahead log and shared memory are the owner's alone
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        assert path.stat().st_mode & 0o777 == 0o600, path
    store.close()
    # a second store on the same file finds the schema in place
    again = SQLiteStore(db)
    assert again.load(ref("fam"), NOW) == record("fam")
    again.close()


def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    db.touch(mode=0o640)
    db.chmod(0o640)
    SQLiteStore(db).close()
    assert db.stat().st_mode & 0o777 == 0o640


def test_two_processes_share_one_file(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    store = SQLiteStore(db)
    # another process writes; this one reads
    run_python('create("theirs", 5)', db)
    assert store.load(ref("theirs", 5), NOW) is not None
    # this one writes; another reads
    create(store, "mine", "me")
    out = run_python('print(store.load(ref("mine", "me"), NOW).state.user_id)', db)
    assert out.strip() == "me"
    # another process revokes the user; this one sees the family gone
    run_python('store.revoke_user("me", NS, NOW)', db)
    assert store.load(ref("mine", "me"), NOW) is None
    store.revoke_user(5, NS, NOW)
    assert run_python('print(store.load(ref("theirs", 5), NOW))', db).strip() == "None"
    store.close()


def test_two_processes_writing_at_once(tmp_path: Path) -> None:
    db = tmp_path / "busy.db"
    store = SQLiteStore(db)
    code = """
        tag = sys.argv[1]
        for i in range(200):
            assert create(f"{tag}-{i}", "both")
    """
    script = _PRELUDE.format(now=NOW, db=str(db)) + textwrap.dedent(code)
    procs = [
        subprocess.Popen([sys.executable, "-c", script, tag], stderr=subprocess.PIPE, text=True)
        for tag in ("a", "b")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert store.load(ref("a-199", "both"), NOW) is not None
    assert store.revoke_user("both", NS, NOW) == 400
    store.close()


def test_worker_processes_starting_together_all_set_up_the_new_file(tmp_path: Path) -> None:
    """Two workers creating one new database at the same instant both start (15 rounds)."""
    script = textwrap.dedent(
        """
        import sys, time
        from sessionkit.stores import SQLiteStore
        start = float(sys.argv[2])
        while time.time() < start:
            pass
        SQLiteStore(sys.argv[1]).close()
        """
    )
    for round_ in range(15):
        db = tmp_path / f"new-{round_}.db"
        start = str(time.time() + 0.3)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, str(db), start], stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err


def test_a_locked_database_raises_store_unavailable(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    store = SQLiteStore(db, timeout=0.2)
    create(store, "fam")
    blocker = sqlite3.connect(db, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            create(store, "fam2")
        assert time.monotonic() - started < 2
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        with pytest.raises(StoreUnavailable):
            store.revoke_user("u", NS, NOW)

        async def attempt() -> int:
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.005)
                    ticks += 1

            task = asyncio.create_task(ticker())
            try:
                with pytest.raises(StoreUnavailable):
                    await store.asave(ref("fam3"), None, record("fam3"), NOW + 60, NOW)
            finally:
                task.cancel()
            return ticks

        # the event loop kept running while the save waited for the lock in a thread
        assert asyncio.run(attempt()) >= 5
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert create(store, "fam2")
    assert store.revoke_user("u", NS, NOW) == 2
    store.close()


def test_async_calls_run_on_the_loop_when_the_file_is_free(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    threads: set[int] = set()
    original = asyncio.to_thread

    async def spy(func: object, *args: object) -> object:
        threads.add(1)
        return await original(func, *args)  # type: ignore[arg-type]

    async def scenario() -> None:
        asyncio.to_thread = spy  # type: ignore[assignment]
        try:
            assert await store.asave(ref("x"), None, record("x"), NOW + 60, NOW)
            assert await store.aload(ref("x"), NOW) == record("x")
            assert [f for f, _ in await store.afamilies_of("u", NS, NOW)] == [ref("x").family]
        finally:
            asyncio.to_thread = original

    asyncio.run(scenario())
    assert threads == set(), "no thread hop while nobody holds the lock"
    store.close()


def test_expired_rows_are_purged(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "p.db")
    for i in range(10):
        create(store, f"old{i}", "u", until=NOW + 1)
    assert store.purge(NOW) == 0
    assert store.purge(NOW + 1) == 10
    for i in range(10):
        create(store, f"old{i}", "u", until=NOW + 1)
    # saves purge now and then on their own
    for i in range(300):
        store.save(ref(f"new{i}", "v"), None, record(f"new{i}", "v"), NOW + 100, NOW + 2)
    with sqlite3.connect(store.path) as conn:
        sql = "SELECT count(*) FROM sessionkit_families WHERE user_key = ?"
        (left,) = conn.execute(sql, ('"u"',)).fetchone()
    conn.close()
    assert left == 0
    assert store.revoke_user("v", NS, NOW + 2) == 300
    store.close()


def test_revoking_many_sessions_works_in_chunks(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "many.db")
    with sqlite3.connect(store.path, isolation_level=None) as conn:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO sessionkit_families VALUES (?, ?, ?, 1, 1, ?, ?)",
            ((f"f{i}", NS[0], '"many"', NOW + 60, record("x").dumps()) for i in range(5000)),
        )
        conn.execute("COMMIT")
    conn.close()
    assert store.revoke_user("many", NS, NOW) == 5000
    assert store.families_of("many", NS, NOW) == []
    store.close()


def test_close_then_use_again(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "c.db")
    create(store, "fam")
    store.close()
    store.close()
    assert store.load(ref("fam"), NOW) == record("fam")
    store.close()
