"""Server-side stores: their cost per request, Redis round trips, and how cost scales.

All of it through the raw ASGI app of the ASGI section, with sessionkit's fixed clock and
its visitor cookie off:

1. the extra cost of each store mode (Memory, SQLite, Redis) over cookie-only sessionkit,
   for read-only and read+write requests;
2. Redis round trips per request, counted on the server (MONITOR) over many requests;
3. live sessions: a store pre-filled with N other sessions (SQLite in one transaction,
   Redis through ``redis-cli --pipe``, Memory through ``save``), then requests carrying
   the cookie of one more session;
4. session size: 100 B to 3 KB of session JSON, read+write, cookie-only sessionkit,
   Starlette and the three stores (past about 2.9 KB, sessionkit's sealed session no
   longer fits a 4096-byte cookie: cookie-only refuses it, a store keeps the data).

A real ``redis-server`` is started on a free 127.0.0.1 port (no persistence) and stopped
at the end; without one, the Redis rows say "not available".
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import re
import secrets
import sqlite3
import string
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sessionkit
from sessionkit.asgi import SessionMiddleware as SessionKitMiddleware
from sessionkit.families import FamilyRef, Record, new_record
from sessionkit.session import State
from sessionkit.stores import MemoryStore, SQLiteStore

from . import core
from .bench_asgi import BARE, STARLETTE, Spec, group, sessionkit_layers, starlette_layers
from .core import NOW, OTHER_COOKIE, Mode, Summary, measure, minus, ratios, us
from .redis_server import RedisServer
from .report import Curve, Headline, Panel, Row, Section, Table, Target

COOKIE_ONLY = "sessionkit, cookie only"
KINDS = ("memory", "sqlite", "redis")
LABELS = {"memory": "MemoryStore", "sqlite": "SQLiteStore", "redis": "RedisStore"}
WORKLOADS = {"ro": "read-only", "rw": "read+write"}
#: Store round trips a request needs: a read loads the record; a write loads it, then
#: saves it over the version it read.
ROUND_TRIPS = {"ro": 1.0, "rw": 2.0}
#: Every pre-filled record lives this long after NOW (the kits' fixed clock).
RECORD_TTL = 1800
#: Where the kits of this section keep their records (all share BENCH_KEY).
NAMESPACES = core.make_kit(visitor=False).namespaces


def kit_with(store: Any) -> sessionkit.SessionKit:
    return sessionkit.SessionKit(
        secret_keys=[core.BENCH_KEY], clock=lambda: NOW, visitor_cookie=None, store=store
    )


class Stores:
    """Creates stores of each kind; keeps what must be cleaned up."""

    def __init__(self, redis: RedisServer | None) -> None:
        self.redis = redis
        self._dir = tempfile.TemporaryDirectory(prefix="sessionkit-bench-")
        self._next_db = 0
        self._count = 0
        self.made: list[Any] = []

    def available(self, kind: str) -> bool:
        return kind != "redis" or self.redis is not None

    def make(self, kind: str) -> tuple[Any, Any]:
        """A new empty store and its handle for pre-filling (db index, file path)."""
        self._count += 1
        if kind == "memory":
            store: Any = MemoryStore()
            handle: Any = None
        elif kind == "sqlite":
            handle = Path(self._dir.name) / f"sessions-{self._count}.db"
            store = SQLiteStore(handle)
        else:
            from sessionkit.stores.redis import RedisStore

            assert self.redis is not None
            handle = self._next_db
            self._next_db += 1
            store = RedisStore(self.redis.url(handle))
        self.made.append(store)
        return store, handle

    def fill(self, kind: str, store: Any, handle: Any, families: list[str]) -> None:
        """Add one anonymous live record per family, as sessionkit would have saved it."""
        namespace = NAMESPACES[0]
        until = NOW + RECORD_TTL
        record = new_record(State.fresh(NOW), {"n": 1}, NOW)
        text = record.dumps()
        if kind == "memory":
            for family in families:
                store.save(FamilyRef(family, None, NAMESPACES), None, record, until, NOW)
        elif kind == "sqlite":
            conn = sqlite3.connect(handle, isolation_level=None)
            try:
                conn.execute("BEGIN")
                conn.executemany(
                    "INSERT INTO sessionkit_families "
                    "(family, namespace, user_key, version, live, until, stored) "
                    "VALUES (?, ?, NULL, ?, 1, ?, ?)",
                    ((f, namespace, record.version, until, text) for f in families),
                )
                conn.execute("COMMIT")
            finally:
                conn.close()
        else:
            assert self.redis is not None
            prefix = store.prefix
            ttl = str(RECORD_TTL * 1000).encode()
            pipe = subprocess.Popen(
                ["redis-cli", "-p", str(self.redis.port), "-n", str(handle), "--pipe"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert pipe.stdin is not None
            assert pipe.stdout is not None
            for i in range(0, len(families), 50_000):
                chunk = []
                for f in families[i : i + 50_000]:
                    k = f"{prefix}{namespace}:{{a:{f}}}".encode()
                    chunk.append(
                        b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$2\r\nPX\r\n$%d\r\n%s\r\n"
                        % (len(k), k, len(text), text, len(ttl), ttl)
                    )
                pipe.stdin.write(b"".join(chunk))
            pipe.stdin.close()
            out = pipe.stdout.read().decode()
            pipe.wait()
            core._require(
                f"errors: 0, replies: {len(families)}" in out, f"redis --pipe failed: {out}"
            )
            # The keys must be where the store looks: one of them loads as a record.
            loaded = store.load(FamilyRef(families[0], None, NAMESPACES), NOW)
            core._require(isinstance(loaded, Record), "pre-filled Redis keys are not found")

    def size(self, kind: str, store: Any, handle: Any) -> int:
        if kind == "memory":
            return len(store)
        if kind == "sqlite":
            conn = sqlite3.connect(handle)
            try:
                return int(conn.execute("SELECT COUNT(*) FROM sessionkit_families").fetchone()[0])
            finally:
                conn.close()
        assert self.redis is not None
        return int(self.redis.command("-n", str(handle), "DBSIZE"))

    def close(self) -> None:
        for store in self.made:
            close = getattr(store, "close", None)
            if close is not None:
                close()
        self.made.clear()
        if self.redis is not None:
            self.redis.command("FLUSHALL")
        self._dir.cleanup()


def sized_data(size: int) -> dict[str, Any]:
    """Session data whose JSON is exactly ``size`` bytes (random letters as padding)."""
    data: dict[str, Any] = {
        "user": {"id": 48213, "name": "Ada"},
        "csrf": "q3Yw0m1tX8ZbB1kV2yJ7Lr4nP9eS6aHc",
        "notes": "",
    }
    base = len(json.dumps(data).encode())
    core._require(size >= base, f"session size {size} is below the minimum {base}")
    rng = random.Random(size)
    data["notes"] = "".join(rng.choice(string.ascii_letters) for _ in range(size - base))
    core._require(len(json.dumps(data).encode()) == size, "sized_data is off")
    return data


def _fits_cookie(data: dict[str, Any]) -> bool:
    kit = core.make_kit(visitor=False)
    return kit.session_spec.size(core.sealed_value(kit, data)) <= kit.max_cookie_bytes


def _overhead_table(
    title: str, per_call: dict[str, list[float]], base: str | None, notes: list[str]
) -> Table:
    """µs, overhead over the bare app (when there is one), extra over ``base``."""
    bare = per_call.get(BARE)
    rows = []
    for label, times in per_call.items():
        row = Row(label, Summary.of(us(times)))
        if bare is not None and label != BARE:
            row.overhead = Summary.of(us(minus(times, bare)))
        if base is not None and label not in (BARE, base):
            row.extra = Summary.of(us(minus(times, per_call[base])))
        rows.append(row)
    return Table(
        title,
        "µs/request",
        "",
        rows,
        notes=notes,
        extra_label=f"extra µs over {base}" if base else "",
    )


# ---------------------------------------------------------------------------- parts


def floors(stores: Stores, section: Section) -> None:
    """What one hop to another thread or one Redis round trip costs here, on its own.

    Requests run one at a time, so every store call waits for another CPU to wake up (a
    thread-pool worker for SQLite, redis-server for Redis): these two numbers are the
    floor under the store rows, and they depend on the machine (virtual CPUs wake slowly).
    """
    import asyncio

    loop = asyncio.new_event_loop()
    n = 500

    async def hops() -> None:
        for _ in range(n):
            await asyncio.to_thread(int)

    def timed(coro: Callable[[], Any]) -> float:
        best = []
        for _ in range(5):
            start = time.perf_counter_ns()
            loop.run_until_complete(coro())
            best.append((time.perf_counter_ns() - start) / n / 1000)
        return sorted(best)[2]

    try:
        parts = [f"`asyncio.to_thread` round trip {timed(hops):.0f} µs"]
        if stores.redis is not None:
            import redis.asyncio

            client = redis.asyncio.Redis.from_url(stores.redis.url())

            async def pings() -> None:
                for _ in range(n):
                    await client.ping()

            parts.append(f"redis-py asyncio PING {timed(pings):.0f} µs")
            loop.run_until_complete(client.aclose())
        section.lines.append(
            "- Floors on this machine (median of 5 x 500, one at a time): "
            + ", ".join(parts)
            + ". Requests here run one at a time, so each store call waits for another CPU "
            "to wake up (a pool thread for SQLite, redis-server for Redis); on a busy server "
            "those waits overlap other requests' work."
        )
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def modes(mode: Mode, stores: Stores, section: Section) -> None:
    """Cost of each store mode over cookie-only; Redis round trips per request."""
    for workload in ("ro", "rw"):
        specs = [
            Spec(BARE, []),
            Spec(COOKIE_ONLY, sessionkit_layers(core.make_kit(visitor=False))),
        ]
        missing = []
        for kind in KINDS:
            if stores.available(kind):
                store, _ = stores.make(kind)
                specs.append(
                    Spec(
                        f"sessionkit + {LABELS[kind]}",
                        sessionkit_layers(kit_with(store)),
                        cookie_on_write=False,
                    )
                )
            else:
                missing.append(f"{LABELS[kind]}: not available (redis-server is not installed)")
        g = group(specs, "raw", workload, wall_clock=True)
        try:
            per_call, n = measure(g.runners, mode, mode.store_repeats)
            if stores.redis is not None:
                _round_trips(section, g.runners["sessionkit + RedisStore"], stores.redis, workload)
        finally:
            g.close()
        notes = [
            f"{n} requests per timed batch, {mode.store_repeats} interleaved repeats",
            *missing,
        ]
        section.tables.append(
            _overhead_table(
                f"Store modes, {WORKLOADS[workload]}: µs per request",
                per_call,
                COOKIE_ONLY,
                notes,
            )
        )
        print(f"  stores: modes {WORKLOADS[workload]}", flush=True)


def _script_commands() -> frozenset[str]:
    """The commands the Redis store's Lua scripts call (Redis counts them by name too)."""
    from sessionkit.stores import redis as redis_store

    scripts = (
        redis_store._LOAD,
        redis_store._SAVE,
        redis_store._REVOKE_USER,
        redis_store._FORGET,
        redis_store._READ,
    )
    return frozenset(
        name.lower() for s in scripts for name in re.findall(r"redis\.call\('([A-Za-z]+)'", s)
    )


def _round_trips(
    section: Section, runner: Callable[[int], int], redis: RedisServer, w: str
) -> None:
    n = 200
    counts = redis.count_commands(lambda: runner(n))
    in_scripts = _script_commands()
    client = {k: v for k, v in counts.items() if k not in in_scripts}
    inside = {k: v for k, v in counts.items() if k in in_scripts}
    per_request = sum(calls for calls, _ in client.values()) / n
    server_us = sum(usec for _, usec in client.values()) / n
    detail = ", ".join(f"{name} {calls / n:g}" for name, (calls, _) in sorted(client.items()))
    inner = ", ".join(f"{name} {calls / n:g}" for name, (calls, _) in sorted(inside.items()))
    section.lines.append(
        f"- Redis, {WORKLOADS[w]} request: **{per_request:g} round "
        f"trip{'' if per_request == 1 else 's'} per request** "
        f"({detail or 'none'}; sessionkit does not pipeline, so each command is one round "
        f"trip), {server_us:.0f} µs of server time per request; inside scripts: "
        f"{inner or 'none'} (counted on the server with `INFO commandstats` over {n} "
        "requests)."
    )
    section.headlines.append(
        Headline(
            f"RedisStore, {WORKLOADS[w]}: round trips per request",
            Summary.of([per_request]),
            "none",
            Target(ROUND_TRIPS[w], unit=""),
            detail=detail,
            unit="round trips",
        )
    )


# ---------------------------------------------------------------------------- Redis memory

#: Logged-in users (one browser each) created for the memory measurement.
MEMORY_USERS = 200
MEMORY_TARGET = 400.0


def _memory_app(data: dict[str, Any]) -> Any:
    """``/anon`` writes an anonymous session; ``/login`` logs the scope's user in."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        session = scope["session"]
        if scope["path"] == "/anon":
            session["csrf"] = secrets.token_urlsafe(24)
        else:
            session.login(scope["bench.user"])
            session.update(data)
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
        )
        await send({"type": "http.response.body", "body": b""})

    return app


def _key_kind(key: str) -> str:
    if ":{a:" in key:
        return "anonymous family (string)"
    if key.endswith(":l"):
        return "user's live families (sorted set)"
    return "a user's family (string: its record)"


class _Usage:
    """What ``MEMORY USAGE`` says of every key in one database, by kind of key."""

    def __init__(self, client: Any) -> None:
        self.bytes: dict[str, int] = {}
        self.keys: dict[str, int] = {}
        self.name_chars: dict[str, int] = {}
        self.encodings: dict[str, set[str]] = {}
        for raw in client.scan_iter(count=1000):
            key = raw.decode()
            kind = _key_kind(key)
            self.bytes[kind] = self.bytes.get(kind, 0) + int(client.memory_usage(raw, samples=0))
            self.keys[kind] = self.keys.get(kind, 0) + 1
            self.name_chars[kind] = self.name_chars.get(kind, 0) + len(raw)
            self.encodings.setdefault(kind, set()).add(client.object("encoding", raw).decode())

    @property
    def total(self) -> int:
        return sum(self.bytes.values())


def _login_all(
    store: Any, data: dict[str, Any], users: range, *, anonymous_first: bool
) -> list[int]:
    """Log each user in from a new browser (after an anonymous session when asked)."""
    from .bench_asgi import call, scope_with, set_cookies

    app = SessionKitMiddleware(_memory_app(data), kit=kit_with(store))
    loop = asyncio.new_event_loop()
    sizes = []
    try:
        for user in users:
            cookie = OTHER_COOKIE
            if anonymous_first:
                scope = scope_with(cookie)
                scope["path"] = "/anon"
                cookies = set_cookies(loop.run_until_complete(call(app, scope)))
                core._require(len(cookies) == 1, f"anonymous write set {cookies}")
                cookie = f"{cookie}; {cookies[0].split(';', 1)[0]}"
            scope = scope_with(cookie)
            scope["path"], scope["bench.user"] = "/login", user
            cookies = set_cookies(loop.run_until_complete(call(app, scope)))
            core._require(len(cookies) == 1, f"login set {cookies}")
            sizes.append(len(cookies[0].split(";", 1)[0]))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return sizes


def redis_memory(stores: Stores, section: Section) -> None:
    """Bytes Redis holds per logged-in session: ``MEMORY USAGE`` of every key logins made."""
    import redis as redis_py

    assert stores.redis is not None
    data_bytes = len(json.dumps(core.SESSION_DATA).encode())
    flows = [
        ("login, no session data", {}, False),
        (f"login, the {data_bytes}-byte session", core.SESSION_DATA, False),
        ("anonymous session (a CSRF token), then login, no data", {}, True),
    ]
    rows = []
    notes = []
    for label, data, anonymous_first in flows:
        store, db = stores.make("redis")
        client = redis_py.Redis.from_url(stores.redis.url(db))
        try:
            users = range(1000, 1000 + MEMORY_USERS)
            _login_all(store, data, users, anonymous_first=anonymous_first)
            first = _Usage(client)
            # The same users again from a second browser each: what one more session costs.
            _login_all(store, data, users, anonymous_first=anonymous_first)
            second = _Usage(client)
        finally:
            client.close()
        per_session = first.total / MEMORY_USERS
        extra = (second.total - first.total) / MEMORY_USERS
        parts = ", ".join(
            f"{kind} {first.bytes[kind] / MEMORY_USERS:.0f} B "
            f"({first.keys[kind] / MEMORY_USERS:g} key, name "
            f"{first.name_chars[kind] / first.keys[kind]:.0f} chars, "
            f"{'/'.join(sorted(first.encodings[kind]))})"
            for kind in sorted(first.bytes)
        )
        rows.append(
            Row(
                label,
                Summary.of([per_session]),
                overhead=Summary.of([extra]),
                note=parts,
            )
        )
        section.headlines.append(
            Headline(
                f"RedisStore: bytes per logged-in session ({label})",
                Summary.of([per_session]),
                "none",
                Target(MEMORY_TARGET, unit=" B") if not data and not anonymous_first else None,
                detail=parts,
                unit="B",
            )
        )
    memory = MemoryStore()
    _login_all(memory, {}, range(1), anonymous_first=False)
    (record,) = (entry.text for entry in memory._entries.values())
    header = record.split(b"\n", 1)[0]
    notes.append(
        f"{MEMORY_USERS} users, each logged in from a new browser through the middleware; "
        "`MEMORY USAGE key SAMPLES 0` summed over every key of the database, divided by the "
        "users; then the same users log in again from a second browser each"
    )
    notes.append(
        f"a login-only record is {len(record)} bytes of text (its JSON header line "
        f"{len(header)} bytes with the device label and the address, then `{{}}`); family "
        "ids are 22 characters"
    )
    section.tables.append(
        Table(
            "Redis memory per logged-in session (`MEMORY USAGE`)",
            "bytes per session",
            "",
            rows,
            overhead_label="bytes per extra session of the same user",
            notes=notes,
        )
    )
    print("  stores: Redis memory per session", flush=True)


def live_sessions(mode: Mode, stores: Stores, section: Section) -> None:
    """Per-request cost with N other live sessions in the store."""
    sizes = mode.live_sessions
    families = [secrets.token_urlsafe(16) for _ in range(max(sizes))]
    curves: list[Curve] = []
    for kind in KINDS:
        if not stores.available(kind):
            section.lines.append(f"- live sessions, {LABELS[kind]}: not available")
            continue
        t0 = time.perf_counter()
        filled = []
        for n_live in sizes:
            store, handle = stores.make(kind)
            stores.fill(kind, store, handle, families[:n_live])
            filled.append((n_live, store, handle))
        fill_s = time.perf_counter() - t0
        gc.collect()
        gc.freeze()  # the pre-filled records need not be scanned by every collection
        try:
            for workload in ("ro", "rw"):
                specs = [Spec(COOKIE_ONLY, sessionkit_layers(core.make_kit(visitor=False)))]
                specs += [
                    Spec(
                        f"{LABELS[kind]}, {n_live:,} live",
                        sessionkit_layers(kit_with(store)),
                        cookie_on_write=False,
                    )
                    for n_live, store, _ in filled
                ]
                g = group(specs, "raw", workload, wall_clock=True)
                try:
                    per_call, n = measure(g.runners, mode, mode.store_repeats)
                finally:
                    g.close()
                for n_live, store, handle in filled:
                    count = stores.size(kind, store, handle)
                    core._require(count >= n_live, f"{kind} holds {count} < {n_live} records")
                section.tables.append(
                    _overhead_table(
                        f"{LABELS[kind]} with N other live sessions, {WORKLOADS[workload]}: "
                        "µs per request",
                        per_call,
                        COOKIE_ONLY,
                        [
                            f"{n} requests per timed batch, {mode.store_repeats} interleaved "
                            f"repeats; filling the stores took {fill_s:.1f} s",
                        ],
                    )
                )
                base = per_call[COOKIE_ONLY]
                curves.append(
                    Curve(
                        f"{LABELS[kind]}, {WORKLOADS[workload]}",
                        [float(n_live) for n_live in sizes],
                        [Summary.of(us(minus(per_call[s.label], base))) for s in specs[1:]],
                    )
                )
                print(f"  stores: live sessions {kind} {WORKLOADS[workload]}", flush=True)
        finally:
            gc.unfreeze()
            for _, store, _ in filled:
                close = getattr(store, "close", None)
                if close is not None:
                    close()
            filled.clear()
            if kind == "redis" and stores.redis is not None:
                stores.redis.command("FLUSHALL")
            gc.collect()
    section.panels.append(
        Panel(
            "stores: extra µs per request over cookie-only sessionkit, by live sessions in the "
            "store",
            "other live sessions in the store",
            "extra µs per request",
            curves,
        )
    )


def session_sizes(mode: Mode, stores: Stores, section: Section) -> None:
    """Read+write cost by session size, cookie-only, Starlette and the stores."""
    curves: dict[str, Curve] = {}
    for size in mode.sizes:
        data = sized_data(size)
        specs = [Spec(BARE, [], data=data)]
        notes = []
        if _fits_cookie(data):
            specs.append(
                Spec(COOKIE_ONLY, sessionkit_layers(core.make_kit(visitor=False)), data=data)
            )
        else:
            notes.append(
                f"{COOKIE_ONLY}: a {size}-byte session does not fit one 4096-byte cookie: "
                "SessionTooLarge (with a store, the data moves to the store)"
            )
        specs.append(Spec(STARLETTE, starlette_layers(), data=data))
        for kind in KINDS:
            if stores.available(kind):
                store, _ = stores.make(kind)
                specs.append(
                    Spec(
                        f"sessionkit + {LABELS[kind]}",
                        sessionkit_layers(kit_with(store)),
                        data=data,
                        cookie_on_write=False,
                    )
                )
        g = group(specs, "raw", "rw", bare_cookie_from=specs[1], wall_clock=True)
        try:
            per_call, n = measure(g.runners, mode, mode.store_repeats)
        finally:
            g.close()
        cookie_bytes = {
            label: max(len(p) for p in cookie.split("; ")[1:])
            for label, cookie in g.cookies.items()
        }
        table = _overhead_table(
            f"Session of {size} bytes (JSON), read+write: µs per request",
            per_call,
            None,
            [f"{n} requests per timed batch, {mode.store_repeats} interleaved repeats", *notes],
        )
        for row in table.rows:
            if row.variant in cookie_bytes:
                size_note = f"cookie {cookie_bytes[row.variant]} B"
                if cookie_bytes[row.variant] > 4096:
                    size_note += " (over the 4096 B browsers keep: the session is lost)"
                row.note = size_note
        bare = per_call[BARE]
        if STARLETTE in per_call:
            for row in table.rows:
                if row.variant not in (BARE, STARLETTE):
                    row.ratio = Summary.of(
                        ratios(minus(per_call[row.variant], bare), minus(per_call[STARLETTE], bare))
                    )
            table.ratio_label = "overhead ÷ starlette's"
        section.tables.append(table)
        for label, times in per_call.items():
            if label == BARE:
                continue
            curve = curves.setdefault(label, Curve(label, [], []))
            curve.x.append(float(size))
            curve.y.append(Summary.of(us(minus(times, bare))))
        print(f"  stores: session of {size} B", flush=True)
    section.panels.append(
        Panel(
            "read+write overhead per request by session size (raw ASGI)",
            "session size, bytes of JSON",
            "overhead µs per request",
            list(curves.values()),
        )
    )


def run(mode: Mode) -> Section:
    t0 = time.perf_counter()
    section = Section("stores", "Stores: cost per request, Redis round trips, scaling")
    section.lines = [
        "Raw ASGI app, sessionkit on a fixed clock with its visitor cookie off; cookies "
        "from a seeding request through the same stack (which also writes the store record). "
        "With a store, a read-only request loads the record and a read+write request loads "
        "and saves it. SQLite runs in a temporary directory (WAL, `synchronous=NORMAL`); its "
        "coroutine forms run in the default thread pool.",
    ]
    redis: RedisServer | None = None
    if RedisServer.available():
        redis = RedisServer().__enter__()
        section.lines.append(
            f"redis-server {redis.command('INFO', 'server').split('redis_version:')[1].split()[0]}"
            f" on 127.0.0.1:{redis.port}, `--save '' --appendonly no`."
        )
    else:
        section.lines.append("redis-server is not installed: the Redis rows are not available.")
        section.headlines.append(
            Headline(
                "RedisStore: round trips per request",
                None,
                "none",
                Target(ROUND_TRIPS["ro"], unit=""),
                status="not available: redis-server is not installed",
            )
        )
    stores = Stores(redis)
    try:
        section.lines.append("")
        floors(stores, section)
        modes(mode, stores, section)
        if stores.redis is not None:
            redis_memory(stores, section)
        live_sessions(mode, stores, section)
        session_sizes(mode, stores, section)
    finally:
        stores.close()
        if redis is not None:
            redis.stop()
    section.seconds = time.perf_counter() - t0
    return section
