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
from sessionkit.stores import SessionRecord, SQLiteStore, StoreUnavailable

NOW = 1_800_000_000.0


def record(user: str | int | None = None, expires_at: float = NOW + 3600) -> SessionRecord:
    return SessionRecord("sid", None, 0.0, user, None, expires_at)


def run_python(code: str, db: Path) -> str:
    """Run ``code`` in a new interpreter with ``store`` open on ``db``; return its stdout."""
    prelude = textwrap.dedent(
        f"""
        import sys
        from sessionkit.stores import SQLiteStore, SessionRecord
        NOW = {NOW!r}
        store = SQLiteStore({str(db)!r})
        """
    )
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


def test_schema_and_wal(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(str(db))
    store.save("fam", record("u"), NOW)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(sessionkit_sessions)")}
        assert columns == {"family", "record", "user_key", "expires_at"}
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(sessionkit_sessions)")}
        assert {"sessionkit_sessions_user_key", "sessionkit_sessions_expires_at"} <= indexes
        assert conn.execute("SELECT user_key FROM sessionkit_sessions").fetchall() == [('"u"',)]
    conn.close()
    store.close()
    # a second store on the same file finds the schema in place
    again = SQLiteStore(db)
    assert again.load("fam", NOW) == record("u")
    again.close()


def test_two_processes_share_one_file(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    store = SQLiteStore(db)
    # another process writes; this one reads
    run_python('store.save("theirs", SessionRecord("s", None, 0.0, 5, None, NOW + 60), NOW)', db)
    assert store.load("theirs", NOW) == SessionRecord("s", None, 0.0, 5, None, NOW + 60)
    # this one writes; another reads
    store.save("mine", record("me"), NOW)
    out = run_python('print(store.load("mine", NOW).user_id)', db)
    assert out.strip() == "me"
    # another process deletes; this one sees it gone
    run_python('store.delete("mine")', db)
    assert store.load("mine", NOW) is None
    # this one deletes a user; another sees the family gone
    store.delete_user(5)
    assert run_python('print(store.load("theirs", NOW))', db).strip() == "None"
    store.close()


def test_two_processes_writing_at_once(tmp_path: Path) -> None:
    db = tmp_path / "busy.db"
    store = SQLiteStore(db)
    code = """
        tag = sys.argv[1]
        for i in range(200):
            store.save(f"{tag}-{i}", SessionRecord("s", None, 0.0, "both", None, NOW + 60), NOW)
    """
    script = (
        f"import sys\nfrom sessionkit.stores import SQLiteStore, SessionRecord\n"
        f"NOW = {NOW!r}\nstore = SQLiteStore({str(db)!r})\n" + textwrap.dedent(code)
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, tag], stderr=subprocess.PIPE, text=True)
        for tag in ("a", "b")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert store.load("a-199", NOW) is not None
    assert store.load("b-0", NOW) is not None
    assert store.delete_user("both") == 400
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
    store.save("fam", record("u"), NOW)
    blocker = sqlite3.connect(db, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            store.save("fam2", record("u"), NOW)
        assert time.monotonic() - started < 2
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        with pytest.raises(StoreUnavailable):
            store.delete_user("u")

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
                    await store.asave("fam3", record("u"), NOW)
            finally:
                task.cancel()
            return ticks

        # the event loop kept running while the save waited for the lock
        assert asyncio.run(attempt()) >= 5
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.save("fam2", record("u"), NOW)
    assert store.delete_user("u") == 2
    store.close()


def test_expired_rows_are_purged(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "p.db")
    for i in range(10):
        store.save(f"old{i}", record("u", expires_at=NOW + 1), NOW)
    assert store.purge(NOW) == 0
    assert store.purge(NOW + 1) == 10
    for i in range(10):
        store.save(f"old{i}", record("u", expires_at=NOW + 1), NOW)
    # saves purge now and then on their own
    for i in range(300):
        store.save(f"new{i}", record("v", expires_at=NOW + 100), NOW + 2)
    assert store.delete_user("u") == 0
    assert store.delete_user("v") == 300
    store.close()


def test_close_then_use_again(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "c.db")
    store.save("fam", record(), NOW)
    store.close()
    store.close()
    assert store.load("fam", NOW) == record()
    store.close()
