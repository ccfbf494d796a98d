"""What a "where you're signed in" page costs: listing one user's sessions, ending one.

For a user with 1, 10, 100 and 1,000 live sessions, on SQLite (a file in a temporary
directory) and on a real ``redis-server`` (127.0.0.1, no persistence):

- ``kit.sessions_of(user)``: the store's listing plus the handles and the
  :class:`~sessionkit.devices.SessionInfo` entries, median of many calls;
- ``kit.revoke_session(user, handle)``: the listing again (a handle is checked against the
  user's own sessions), then one conditional write;
- on Redis, the commands that reach the server for one listing, counted with ``MONITOR``
  (a client's command is one round trip; commands run inside a script cost none).

The sessions are written straight into the store (``store.save``), as logins would leave
them. Run from the repository root::

    python -m benchmarks.bench_devices            # about half a minute on 2 cores
    python -m benchmarks.bench_devices --quick    # fewer repeats
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sessionkit
from sessionkit.families import FamilyRef, new_record, stored_until
from sessionkit.session import State, new_session_id
from sessionkit.stores import SQLiteStore
from sessionkit.stores.base import Store

from .redis_server import RedisServer

SIZES = (1, 10, 100, 1000)
NOW = 1_800_000_000.0
USER = "alice"
DEVICES = ("Firefox on Windows", "Mobile Safari on iOS", "Chrome on Mac OS X")


def fill(kit: sessionkit.SessionKit, store: Store, count: int) -> None:
    """Give ``USER`` ``count`` live sessions (and another user one, to be left alone)."""
    for n in range(count + 1):
        user = USER if n < count else "bob"
        family = new_session_id()
        state = State(
            new_session_id(), family, user, int(NOW), int(NOW), int(NOW), int(NOW), 1, None
        )
        record = new_record(state, {"n": n}, NOW, DEVICES[n % len(DEVICES)], "192.0.2.0")
        ref = FamilyRef(family, user, kit.namespaces)
        assert store.save(ref, None, record, stored_until(record, kit.timeouts), NOW)


def median_us(call: Callable[[], object], seconds: float) -> float:
    """Median µs of ``call`` over batches filling about ``seconds``."""
    call()
    start = time.perf_counter()
    call()
    once = max(time.perf_counter() - start, 1e-6)
    batch = max(1, int(0.02 / once))
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 5:
        start = time.perf_counter()
        for _ in range(batch):
            call()
        samples.append((time.perf_counter() - start) / batch * 1e6)
    return statistics.median(samples)


def revoke_cost(kit: sessionkit.SessionKit, store: Store, count: int, rounds: int) -> float:
    """Median µs of ending one session of a user who has ``count``."""
    samples = []
    for _ in range(rounds):
        handle = kit.sessions_of(USER)[0].handle
        start = time.perf_counter()
        assert kit.revoke_session(USER, handle)
        samples.append((time.perf_counter() - start) * 1e6)
        fill_one(kit, store)
    return statistics.median(samples)


def fill_one(kit: sessionkit.SessionKit, store: Store) -> None:
    family = new_session_id()
    state = State(new_session_id(), family, USER, int(NOW), int(NOW), int(NOW), int(NOW), 1, None)
    record = new_record(state, {}, NOW, DEVICES[0], "192.0.2.0")
    ref = FamilyRef(family, USER, kit.namespaces)
    assert store.save(ref, None, record, stored_until(record, kit.timeouts), NOW)


def run(seconds: float, rounds: int) -> None:
    load_before = os.getloadavg()[0]
    key = sessionkit.generate_key()
    rows: list[tuple[str, int, float, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="sessionkit-bench-devices-") as tmp:
        redis = RedisServer() if RedisServer.available() else None
        try:
            if redis is not None:
                redis.__enter__()
            for count in SIZES:
                stores: list[tuple[str, Store, RedisServer | None]] = [
                    ("SQLite", SQLiteStore(Path(tmp) / f"s{count}.db"), None)
                ]
                if redis is not None:
                    from sessionkit.stores.redis import RedisStore

                    redis.command("FLUSHALL")
                    stores.append(("Redis", RedisStore(redis.url()), redis))
                for name, store, server in stores:
                    kit = sessionkit.SessionKit(secret_keys=[key], store=store, clock=lambda: NOW)
                    fill(kit, store, count)
                    assert len(kit.sessions_of(USER)) == count
                    listing = median_us(lambda kit=kit: kit.sessions_of(USER), seconds)
                    ending = revoke_cost(kit, store, count, rounds)
                    trips = "-"
                    if server is not None:
                        client, lua = server.count_commands(lambda kit=kit: kit.sessions_of(USER))
                        trips = f"{sum(client.values())} ({', '.join(sorted(client))})"
                        trips += f", {sum(lua.values())} inside the script"
                    rows.append((name, count, listing, ending, trips))
                    close = getattr(store, "close", None)
                    if close is not None:
                        close()
        finally:
            if redis is not None:
                redis.stop()
    print(f"load average {load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    print()
    print("| store | sessions of the user | sessions_of (µs) | revoke_session (µs) |")
    print("|---|---:|---:|---:|")
    for name, count, listing, ending, _ in rows:
        print(f"| {name} | {count:,} | {listing:,.0f} | {ending:,.0f} |")
    print()
    print("Redis commands per listing (client commands are round trips):")
    for name, count, _, _, trips in rows:
        if name == "Redis":
            print(f"  {count:>5,} sessions: {trips}")
    if redis is None:
        print("  redis-server is not installed: the Redis rows were skipped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter repeats")
    args = parser.parse_args()
    run(seconds=0.3 if args.quick else 1.5, rounds=10 if args.quick else 40)


if __name__ == "__main__":
    main()
