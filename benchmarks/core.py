"""sessionkit vs Starlette's SessionMiddleware: codec round trip and raw ASGI overhead.

Every number is the median over interleaved repeats of one timed batch per variant, so
machine noise (frequency changes, other processes) hits every variant alike. Ratios are
computed per repeat (sessionkit / Starlette, from the same repeat) and then summarised;
they are the headline, absolute times depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
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
from sessionkit.session import Session

RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"

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
        f"sessionkit: {_version('sessionkit')}, starlette: {_version('starlette')}, "
        f"itsdangerous: {_version('itsdangerous')}",
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
    repeats: int
    batch_seconds: float  # wall time one timed batch of one variant aims at


QUICK = Mode("quick", repeats=21, batch_seconds=0.040)
FULL = Mode("full", repeats=61, batch_seconds=0.120)


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


def filled_session(now: float) -> Session:
    session = Session(now)
    session.update(SESSION_DATA)
    return session


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
        return json.loads(base64.b64decode(data))


def sealed_value(kit: sessionkit.SessionKit, session: Session) -> str:
    """The cookie value ``kit.seal_session`` makes for ``session`` at ``NOW``."""
    return kit.seal_session(session, NOW)[0]


def codec_runners() -> dict[str, Callable[[int], int]]:
    kit = make_kit(visitor=False)
    session = filled_session(NOW)
    value = sealed_value(kit, session)
    opened, reissue, *_ = kit.open_session(value, NOW)
    _require(dict(opened) == SESSION_DATA, "sessionkit codec: data did not round-trip")
    _require(not reissue and opened.id == session.id, "sessionkit codec: cookie re-issued")

    codec = StarletteCodec(STARLETTE_SECRET)
    plain = dict(SESSION_DATA)
    _require(codec.decode(codec.encode(plain)) == SESSION_DATA, "starlette codec: no round trip")

    def sessionkit_run(n: int) -> int:
        seal, open_ = kit.seal_session, kit.open_session
        now = NOW
        start = time.perf_counter_ns()
        for _ in range(n):
            open_(seal(session, now)[0], now)
        return time.perf_counter_ns() - start

    def starlette_run(n: int) -> int:
        encode, decode = codec.encode, codec.decode
        start = time.perf_counter_ns()
        for _ in range(n):
            decode(encode(plain))
        return time.perf_counter_ns() - start

    return {"sessionkit": sessionkit_run, "starlette": starlette_run}


def codec_sizes() -> dict[str, int]:
    kit = make_kit(visitor=False)
    session = filled_session(NOW)
    return {
        "data_json": len(json.dumps(SESSION_DATA).encode()),
        "sessionkit_plaintext": len(session.payload()),
        "sessionkit_cookie": len(sealed_value(kit, session)),
        "starlette_cookie": len(StarletteCodec(STARLETTE_SECRET).encode(SESSION_DATA)),
    }


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
    sealed = sealed_value(kit_plain, filled_session(NOW))
    session_name = kit_plain.session_spec.name
    _require(kit_visitor.visitor_spec is not None, "visitor cookie is off")
    assert kit_visitor.visitor_spec is not None  # for type checkers
    visitor_name = kit_visitor.visitor_spec.name
    visitor_value = kit_visitor._visitors.sign(kit_visitor._visitors.mint(), visitor_name)
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


async def _check_variant(variant: AsgiVariant, inner: ASGIApp, writes: bool) -> None:
    """Run one request and check that the variant takes the intended (valid cookie) path."""
    seen: dict[str, Any] = {}

    async def spy(scope: Scope, receive: Any, send: Any) -> None:
        seen["session"] = dict(scope.get("session", {}))
        seen["visitor"] = scope.get("sessionkit.visitor")
        await inner(scope, receive, send)

    sent: list[Any] = []

    async def keep(message: Any) -> None:
        sent.append(message)

    app = variant.app
    if app is inner:
        await spy(dict(variant.scope), _receive, keep)
    else:
        original = app.app  # type: ignore[attr-defined]
        app.app = spy  # type: ignore[attr-defined]
        try:
            await app(dict(variant.scope), _receive, keep)
        finally:
            app.app = original  # type: ignore[attr-defined]
    headers = [(n.lower(), v) for n, v in sent[0]["headers"]]
    set_cookies = [v.decode() for n, v in headers if n == b"set-cookie"]
    label = variant.label
    if app is inner:
        return
    _require(seen["session"] == SESSION_DATA, f"{label}: session cookie was not accepted")
    if writes:
        _require(len(set_cookies) == 1, f"{label}: expected one Set-Cookie, got {set_cookies}")
    else:
        _require(not set_cookies, f"{label}: untouched session re-issued a cookie: {set_cookies}")
    if "visitor on" in label:
        _require(seen["visitor"] is not None, f"{label}: no visitor id")
        _require(
            not any(c.startswith("__Host-visitor=") for c in set_cookies),
            f"{label}: visitor cookie was not accepted",
        )


def asgi_runners(inner: ASGIApp, writes: bool) -> dict[str, Callable[[int], int]]:
    variants = asgi_variants(inner)
    loop = asyncio.new_event_loop()
    for v in variants:
        loop.run_until_complete(_check_variant(v, inner, writes))

    def runner(variant: AsgiVariant) -> Callable[[int], int]:
        app, template = variant.app, variant.scope

        async def batch(n: int) -> int:
            receive, send, copy = _receive, _discard, dict
            start = time.perf_counter_ns()
            for _ in range(n):
                await app(copy(template), receive, send)
            return time.perf_counter_ns() - start

        return lambda n: loop.run_until_complete(batch(n))

    return {v.label: runner(v) for v in variants}


# ---------------------------------------------------------------------------- driver


def measure(
    runners: dict[str, Callable[[int], int]], mode: Mode
) -> tuple[dict[str, list[float]], int]:
    """Interleave the variants over ``mode.repeats``; return ns per call for each repeat."""
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
        for r in range(mode.repeats):
            order = labels[r % len(labels) :] + labels[: r % len(labels)]  # rotate the order
            for label in order:
                per_call[label].append(runners[label](n) / n)
            gc.collect()  # outside the timed blocks
    finally:
        if gc_was_enabled:
            gc.enable()
    return per_call, n


@dataclass
class Row:
    bench: str
    variant: str
    time_us: Summary
    overhead_us: Summary | None = None
    ratio: Summary | None = None
    target: float | None = None


def _us(values: list[float]) -> list[float]:
    return [v / 1000 for v in values]


def run_codec(mode: Mode) -> tuple[list[Row], int]:
    per_call, n = measure(codec_runners(), mode)
    sk, st = per_call["sessionkit"], per_call["starlette"]
    ratios = [a / b for a, b in zip(sk, st, strict=True)]
    return [
        Row("codec round trip", "starlette", Summary.of(_us(st))),
        Row(
            "codec round trip",
            "sessionkit",
            Summary.of(_us(sk)),
            ratio=Summary.of(ratios),
            target=0.35,
        ),
    ], n


def run_asgi(
    mode: Mode, bench: str, inner: ASGIApp, writes: bool, target: float
) -> tuple[list[Row], int]:
    per_call, n = measure(asgi_runners(inner, writes), mode)
    bare = per_call["bare app"]
    overhead = {
        label: [t - b for t, b in zip(times, bare, strict=True)]
        for label, times in per_call.items()
        if label != "bare app"
    }
    st = overhead["starlette"]
    rows = [Row(bench, "bare app", Summary.of(_us(bare)))]
    rows.append(
        Row(bench, "starlette", Summary.of(_us(per_call["starlette"])), Summary.of(_us(st)))
    )
    for label in ("sessionkit, visitor off", "sessionkit, visitor on"):
        ratios = [a / b for a, b in zip(overhead[label], st, strict=True)]
        rows.append(
            Row(
                bench,
                label,
                Summary.of(_us(per_call[label])),
                Summary.of(_us(overhead[label])),
                Summary.of(ratios),
                # the target applies to the configuration the brief names: visitor off
                target if label.endswith("visitor off") else None,
            )
        )
    return rows, n


def _fmt(s: Summary | None, digits: int = 2) -> str:
    if s is None:
        return ""
    return f"{s.median:.{digits}f} [{s.q1:.{digits}f}..{s.q3:.{digits}f}]"


def render(rows: list[Row], header: list[str], notes: list[str]) -> str:
    out = ["# sessionkit benchmark", ""]
    out += [f"- {line}" for line in header]
    out += [
        "",
        "Medians over interleaved repeats, [IQR] in brackets. Ratio = sessionkit / Starlette, "
        "computed per repeat (ASGI: on overhead = middleware - bare app).",
        "",
        "| benchmark | variant | µs/call | overhead µs | ratio vs starlette | target | met |",
        "|---|---|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        target = "" if r.target is None else f"≤ {r.target:.2f}x"
        met = ""
        if r.target is not None and r.ratio is not None:
            met = "yes" if r.ratio.median <= r.target else "**NO**"
        ratio = "" if r.ratio is None else f"{_fmt(r.ratio, 3)}x"
        out.append(
            f"| {r.bench} | {r.variant} | {_fmt(r.time_us)} | {_fmt(r.overhead_us)} | "
            f"{ratio} | {target} | {met} |"
        )
    out += ["", *notes, ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="fewer, shorter repeats (~10 s instead of ~1.5 min)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="markdown file to write")
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL

    header = machine_lines()
    for line in header:
        print(line)
    header.append(f"mode: {mode.name}, {mode.repeats} repeats per variant")
    print(header[-1], flush=True)

    t0 = time.perf_counter()
    rows: list[Row] = []
    notes: list[str] = []
    sizes = codec_sizes()
    codec_rows, n = run_codec(mode)
    rows += codec_rows
    notes.append(
        f"- codec: {n} round trips per timed batch; session data {sizes['data_json']} B JSON "
        f"(sessionkit plaintext {sizes['sessionkit_plaintext']} B with its metadata); cookie "
        f"value sessionkit {sizes['sessionkit_cookie']} chars, starlette "
        f"{sizes['starlette_cookie']} chars."
    )
    print(f"codec done ({time.perf_counter() - t0:.1f} s)", flush=True)
    for bench, inner, writes, target in (
        ("ASGI read+write", app_read_write, True, 0.35),
        ("ASGI untouched", app_untouched, False, 0.15),
    ):
        asgi_rows, n = run_asgi(mode, bench, inner, writes, target)
        rows += asgi_rows
        notes.append(f"- {bench}: {n} requests per timed batch.")
        print(f"{bench} done ({time.perf_counter() - t0:.1f} s)", flush=True)
    notes.append(
        "- ASGI: middleware called directly (no server), scope copied per call, receive "
        "returns an empty body, send discards; every request carries a valid session cookie "
        "(sessionkit: sealed at the kits' fixed clock, so no touch or rotation; visitor on: "
        "also a valid visitor cookie) and one unrelated cookie."
    )
    notes.append(f"- total run time {time.perf_counter() - t0:.1f} s.")

    table = render(rows, header, notes)
    print()
    print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table, encoding="utf-8")
    print(f"written to {args.output}")
    return 0
