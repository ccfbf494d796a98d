"""Shared pieces of the benchmarks: the machine, the payload, statistics and the timing loop.

Every number is the median over interleaved repeats of one timed batch per variant, so
machine noise (frequency changes, other processes) hits every variant alike. Ratios are
computed per repeat (sessionkit / peer, from the same repeat) and then summarised; they
are the headline, absolute times depend on the machine.
"""

from __future__ import annotations

import base64
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import itsdangerous
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware

import sessionkit
from sessionkit.asgi import SessionMiddleware as SessionKitMiddleware
from sessionkit.errors import BadToken
from sessionkit.session import State, check_timeouts, decode_payload, encode_payload

#: A fixed request time: the sessionkit cookies are sealed at it and the kits' clock
#: returns it, so no touch, rotation or expiry ever happens during a run.
NOW = float(int(time.time()))

#: A realistic logged-in session: 280 bytes of JSON in Starlette's ``json.dumps`` spelling.
SESSION_DATA: dict[str, Any] = {
    "user": {"id": 48213, "name": "Ada Lovelace", "email": "ada@example.org"},
    "roles": ["editor", "reviewer"],
    "csrf": "q3Yw0m1tX8ZbB1kV2yJ7Lr4nP9eS6aHc",
    "locale": "en-GB",
    "cart": [{"sku": "BK-1843", "qty": 1}, {"sku": "PN-0042", "qty": 3}],
    "flash": ["Your changes were saved."],
}

#: An unrelated cookie every request carries, as real browsers send several.
OTHER_COOKIE = "_pk_id.1.1fff=3b1f6a2c9d7e4b10.1712345678."

STARLETTE_SECRET = "starlette-benchmark-secret-0123456789abcdef"
STARLETTE_MAX_AGE = 14 * 24 * 60 * 60  # Starlette's default

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


# ---------------------------------------------------------------------------- machine


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _source() -> str:
    """Where sessionkit was imported from, with the git commit when it is a checkout."""
    where = Path(sessionkit.__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(where)
    return f"{where} (git {head}{', modified' if dirty else ''})"


def machine_lines() -> list[str]:
    from cryptography.hazmat.backends.openssl import backend

    return [
        f"platform: {platform.platform()}",
        f"python: {sys.version.split()[0]} ({platform.python_implementation()})",
        f"cryptography: {_version('cryptography')} ({backend.openssl_version_text()})",
        f"cpu: {_cpu_model()} x{_cpu_count()}",
        "versions: "
        + ", ".join(
            f"{dist} {_version(dist)}"
            for dist in (
                "sessionkit",
                "starlette",
                "starsessions",
                "itsdangerous",
                "flask",
                "werkzeug",
                "django",
                "uvicorn",
                "uvloop",
                "httptools",
                "h11",
                "redis",
            )
        ),
        f"sessionkit source: {_source()}",
    ]


def _cpu_count() -> int:
    return os.cpu_count() or 0


def _require(condition: bool, message: str) -> None:
    """Stop the run when a variant would not take the intended path (``assert`` may be off)."""
    if not condition:
        raise RuntimeError(f"benchmark set-up is wrong: {message}")


# ---------------------------------------------------------------------------- statistics


@dataclass
class Summary:
    median: float
    q1: float
    q3: float
    lo: float
    hi: float

    @classmethod
    def of(cls, values: list[float]) -> Summary:
        if len(values) >= 2:
            q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        else:
            q1 = q3 = values[0]
        return cls(statistics.median(values), q1, q3, min(values), max(values))


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Mode:
    name: str
    repeats: int  # interleaved repeats of every in-process group
    batch_seconds: float  # wall time one timed batch of one variant aims at
    store_repeats: int  # repeats of the store groups (each holds a store per variant)
    e2e_repeats: int  # wrk runs per server
    e2e_seconds: float  # length of one wrk run
    live_sessions: tuple[int, ...]  # store sizes (records) for the live-sessions scaling
    sizes: tuple[int, ...]  # session sizes (bytes of JSON) for the size scaling


QUICK = Mode(
    "quick",
    repeats=9,
    batch_seconds=0.012,
    store_repeats=7,
    e2e_repeats=3,
    e2e_seconds=2.0,
    live_sessions=(1_000, 10_000),
    sizes=(100, 1_000, 3_000),
)
FULL = Mode(
    "full",
    repeats=41,
    batch_seconds=0.08,
    store_repeats=31,
    e2e_repeats=5,
    e2e_seconds=3.0,
    live_sessions=(1_000, 100_000, 1_000_000),
    sizes=(100, 300, 1_000, 2_000, 3_000),
)


#: Clocks for the in-process timings that wait for nothing (codec, ASGI, WSGI): wall time,
#: or this thread's CPU time, which other processes sharing the machine do not inflate.
#: Store timings always use wall time (their cost is mostly waiting for another process).
CLOCKS: dict[str, Callable[[], int]] = {"wall": time.perf_counter_ns, "cpu": time.thread_time_ns}
_clock = ["wall"]


def use_clock(name: str) -> None:
    """Time the sections that wait for nothing with ``CLOCKS[name]`` from now on."""
    if name not in CLOCKS:
        raise ValueError(f"unknown clock {name!r}; choose from {', '.join(CLOCKS)}")
    _clock[0] = name


def clock_name() -> str:
    return _clock[0]


def clock() -> Callable[[], int]:
    """The clock of the sections that wait for nothing (see :data:`CLOCKS`)."""
    return CLOCKS[_clock[0]]


def _calibrate(run: Callable[[int], int], target_s: float) -> int:
    """Find a batch size whose timed run lasts about ``target_s``."""
    n = 16
    while True:
        elapsed = run(n) / 1e9
        if elapsed >= target_s / 4 or n >= 1 << 22:
            return max(16, int(n * target_s / max(elapsed, 1e-9)))
        n *= 4


# ---------------------------------------------------------------------------- codec


def make_kit(*, visitor: bool) -> sessionkit.SessionKit:
    return sessionkit.SessionKit(
        secret_keys=[BENCH_KEY],
        clock=lambda: NOW,
        **({} if visitor else {"visitor_cookie": None}),
    )


BENCH_KEY = sessionkit.generate_key()


class Codec:
    """sessionkit's cookie codec, the steps a cookie-only exchange runs and nothing else.

    Sealing is :func:`encode_payload` then :meth:`Sealer.seal`; opening is
    :meth:`Sealer.unseal`, :func:`decode_payload` and :func:`check_timeouts`, as
    ``Exchange`` does for a session cookie.
    """

    def __init__(self, kit: sessionkit.SessionKit) -> None:
        self.sealer = kit.sealer
        self.timeouts = kit.timeouts
        self.state = State.fresh(NOW)

    def seal(self, data: dict[str, Any]) -> str:
        return self.sealer.seal(encode_payload(self.state, data), NOW)

    def open(self, value: str) -> tuple[State, dict[str, Any] | None]:
        payload, _ = self.sealer.unseal(value, NOW)
        state, data = decode_payload(payload)
        expired = check_timeouts(state, NOW, self.timeouts)
        if expired is not None:
            raise BadToken(expired)
        return state, data


def sealed_value(kit: sessionkit.SessionKit, data: dict[str, Any] = SESSION_DATA) -> str:
    """A session cookie value ``kit`` accepts at ``NOW``, holding ``data``."""
    return Codec(kit).seal(data)


class StarletteCodec:
    """The encode and decode steps of starlette/middleware/sessions.py, nothing else."""

    def __init__(self, secret_key: str, max_age: int | None = STARLETTE_MAX_AGE) -> None:
        self.signer = itsdangerous.TimestampSigner(str(secret_key))
        self.max_age = max_age

    def encode(self, session: dict[str, Any]) -> str:
        data = base64.b64encode(json.dumps(session).encode("utf-8"))
        data = self.signer.sign(data)
        return data.decode("utf-8")

    def decode(self, cookie_value: str) -> dict[str, Any]:
        data = cookie_value.encode("utf-8")
        data = self.signer.unsign(data, max_age=self.max_age)
        return json.loads(base64.b64decode(data))  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- ASGI


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: Any) -> None:
    return None


async def app_read_write(scope: Scope, receive: Any, send: Any) -> None:
    scope["session"]["n"] = scope["session"].get("n", 0) + 1
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


async def app_untouched(scope: Scope, receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


def _scope(cookie_header: str) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": "/app/projects",
        "raw_path": b"/app/projects",
        "root_path": "",
        "query_string": b"",
        "server": ("example.org", 443),
        "client": ("203.0.113.7", 51234),
        "headers": [
            (b"host", b"example.org"),
            (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101"),
            (b"accept", b"text/html,application/xhtml+xml,*/*;q=0.8"),
            (b"accept-language", b"en-GB,en;q=0.5"),
            (b"cookie", cookie_header.encode("latin-1")),
        ],
    }


@dataclass
class AsgiVariant:
    label: str
    app: ASGIApp
    scope: Scope


def asgi_variants(inner: ASGIApp) -> list[AsgiVariant]:
    """bare, sessionkit (visitor off), sessionkit (visitor on), starlette around ``inner``."""
    kit_plain = make_kit(visitor=False)
    kit_visitor = make_kit(visitor=True)
    sealed = sealed_value(kit_plain)
    session_name = kit_plain.session_spec.name
    _require(kit_visitor.visitor_spec is not None, "visitor cookie is off")
    assert kit_visitor.visitor_spec is not None  # for type checkers
    visitor_name = kit_visitor.visitor_spec.name
    visitor_value = kit_visitor.visitors.sign(kit_visitor.visitors.mint(), visitor_name)
    starlette_value = StarletteCodec(STARLETTE_SECRET).encode(SESSION_DATA)

    sk_cookie = OTHER_COOKIE
    # The bare app gets a plain dict as its session (shared by every call: the app only
    # bumps "n" in it), so it runs the same code as behind a middleware.
    bare_scope = _scope(f"{sk_cookie}; {session_name}={sealed}")
    bare_scope["session"] = dict(SESSION_DATA)
    return [
        AsgiVariant("bare app", inner, bare_scope),
        AsgiVariant(
            "sessionkit, visitor off",
            SessionKitMiddleware(inner, kit=kit_plain),
            _scope(f"{sk_cookie}; {session_name}={sealed}"),
        ),
        AsgiVariant(
            "sessionkit, visitor on",
            SessionKitMiddleware(inner, kit=kit_visitor),
            _scope(f"{sk_cookie}; {session_name}={sealed}; {visitor_name}={visitor_value}"),
        ),
        AsgiVariant(
            "starlette",
            StarletteSessionMiddleware(inner, secret_key=STARLETTE_SECRET),
            _scope(f"{sk_cookie}; session={starlette_value}"),
        ),
    ]


# ---------------------------------------------------------------------------- driver


def measure(
    runners: dict[str, Callable[[int], int]], mode: Mode, repeats: int | None = None
) -> tuple[dict[str, list[float]], int]:
    """Interleave the variants over ``mode.repeats``; return ns per call for each repeat."""
    repeats = mode.repeats if repeats is None else repeats
    sizes = {}
    for label, run in runners.items():  # warm-up + calibration
        run(64)
        sizes[label] = _calibrate(run, mode.batch_seconds)
    n = min(sizes.values())  # the same batch size for every variant keeps them comparable
    for run in runners.values():
        run(n)
    labels = list(runners)
    per_call: dict[str, list[float]] = {label: [] for label in labels}
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(repeats):
            order = labels[r % len(labels) :] + labels[: r % len(labels)]  # rotate the order
            for label in order:
                per_call[label].append(runners[label](n) / n)
            gc.collect()  # outside the timed blocks
    finally:
        if gc_was_enabled:
            gc.enable()
    return per_call, n


def ratios(values: list[float], against: list[float]) -> list[float]:
    """Per-repeat ratios ``values[i] / against[i]``."""
    return [a / b for a, b in zip(values, against, strict=True)]


def minus(values: list[float], against: list[float]) -> list[float]:
    """Per-repeat differences ``values[i] - against[i]``."""
    return [a - b for a, b in zip(values, against, strict=True)]


def us(values: list[float]) -> list[float]:
    """ns to µs."""
    return [v / 1000 for v in values]
