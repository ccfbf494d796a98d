"""In-process ASGI: the middleware stacks called directly, with no server.

Two kinds of app: a raw ASGI app, and a Starlette app (routing, ``Request``,
``PlainTextResponse``, the middleware added with ``Starlette(middleware=[...])``). Three
workloads: the request reads and writes the session, only reads it, or never touches it.
Every variant gets its cookie the way a browser would: one request to a seeding app behind
the same middleware writes the session and the cookies it sets are sent back. Before
timing, one request per variant is checked: the app must see the seeded session and the
response must carry the cookies that workload should (never a deleting one).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import sessionkit
from sessionkit.asgi import SessionMiddleware as SessionKitMiddleware
from sessionkit.asgi import visitor_of

from . import core
from .core import OTHER_COOKIE, SESSION_DATA, Mode, Summary, measure, minus, ratios, us
from .peers import starsessions_layers
from .report import Headline, Row, Section, Table, Target

PATH = "/app/projects"
#: Scope key the benchmark sets for variants whose app asks for the visitor id.
READS_VISITOR = "bench.reads_visitor"
Layers = list[tuple[type, dict[str, Any]]]


# ---------------------------------------------------------------------------- apps


class Probe:
    """Records what the app saw, only while ``on`` (the check request)."""

    on = False
    seen: dict[str, Any] | None = None
    visitor: Any = None

    def record(self, scope: Any) -> None:
        self.seen = dict(scope["session"])
        self.visitor = visitor_of(scope) if scope.get(READS_VISITOR) else None


PROBE = Probe()


def _start() -> dict[str, Any]:
    # A fresh message per response: middlewares edit the headers in place.
    return {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
    }


def _body() -> dict[str, Any]:
    return {"type": "http.response.body", "body": b"ok"}


async def raw_rw(scope: Any, receive: Any, send: Any) -> None:
    session = scope["session"]
    if scope.get(READS_VISITOR):
        visitor_of(scope)
    if PROBE.on:
        PROBE.record(scope)
    session["n"] = session.get("n", 0) + 1
    await send(_start())
    await send(_body())


async def raw_ro(scope: Any, receive: Any, send: Any) -> None:
    session = scope["session"]
    if scope.get(READS_VISITOR):
        visitor_of(scope)
    if PROBE.on:
        PROBE.record(scope)
    if session.get("user") is None:
        raise RuntimeError("no user in the session")
    await send(_start())
    await send(_body())


async def raw_untouched(scope: Any, receive: Any, send: Any) -> None:
    if PROBE.on:
        PROBE.record(scope)
    await send(_start())
    await send(_body())


def raw_seed(data: dict[str, Any]) -> Any:
    async def seed(scope: Any, receive: Any, send: Any) -> None:
        if scope.get(READS_VISITOR):
            visitor_of(scope)
        scope["session"].update(data)
        await send(_start())
        await send(_body())

    return seed


async def st_rw(request: Request) -> PlainTextResponse:
    session = request.session
    if PROBE.on:
        PROBE.record(request.scope)
    session["n"] = session.get("n", 0) + 1
    return PlainTextResponse("ok")


async def st_ro(request: Request) -> PlainTextResponse:
    session = request.session
    if PROBE.on:
        PROBE.record(request.scope)
    if session.get("user") is None:
        raise RuntimeError("no user in the session")
    return PlainTextResponse("ok")


async def st_untouched(request: Request) -> PlainTextResponse:
    if PROBE.on:
        PROBE.record(request.scope)
    return PlainTextResponse("ok")


def st_seed(data: dict[str, Any]) -> Any:
    async def seed(request: Request) -> PlainTextResponse:
        request.session.update(data)
        return PlainTextResponse("ok")

    return seed


RAW = {"rw": raw_rw, "ro": raw_ro, "untouched": raw_untouched}
STARLETTE_APP = {"rw": st_rw, "ro": st_ro, "untouched": st_untouched}
WORKLOADS = {"rw": "read+write", "ro": "read-only", "untouched": "session untouched"}


# ---------------------------------------------------------------------------- variants


@dataclass
class Spec:
    """One middleware stack (outermost first); no layers is the bare app."""

    label: str
    layers: Layers
    #: the peer sends its cookie on every response, whatever the app did
    always_sets_cookie: bool = False
    #: the value the check compares the app's session with
    data: dict[str, Any] = field(default_factory=lambda: dict(SESSION_DATA))
    #: a read+write request re-issues the session cookie (with a store, only the record
    #: changes: the cookie points at it)
    cookie_on_write: bool = True
    #: the seeding request asks for sessionkit's visitor id, so requests carry its cookie
    visitor_cookie: bool = False
    #: the raw app asks for sessionkit's visitor id (``visitor_of(scope)``)
    reads_visitor: bool = False

    @property
    def bare(self) -> bool:
        return not self.layers


def sessionkit_layers(kit: sessionkit.SessionKit) -> Layers:
    return [(SessionKitMiddleware, {"kit": kit})]


def starlette_layers() -> Layers:
    return [(StarletteSessionMiddleware, {"secret_key": core.STARLETTE_SECRET})]


def build(spec: Spec, flavor: str, app: Any) -> Any:
    """The app behind the spec's middleware: ``flavor`` "raw" or "starlette"."""
    if flavor == "raw":
        for cls, kwargs in reversed(spec.layers):
            app = cls(app, **kwargs)
        return app
    return Starlette(
        routes=[Route(PATH, app)],
        middleware=[Middleware(cls, **kwargs) for cls, kwargs in spec.layers],
    )


def scope_with(cookie_header: str) -> dict[str, Any]:
    scope = core._scope(cookie_header)
    scope["path"] = PATH
    scope["raw_path"] = PATH.encode()
    return scope


async def call(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def keep(message: Any) -> None:
        sent.append(message)

    await app(dict(scope), core._receive, keep)
    return sent


def set_cookies(messages: list[dict[str, Any]]) -> list[str]:
    start = next(m for m in messages if m["type"] == "http.response.start")
    return [v.decode("latin-1") for n, v in start.get("headers", []) if n.lower() == b"set-cookie"]


def is_deletion(set_cookie: str) -> bool:
    lowered = set_cookie.lower()
    value = set_cookie.split(";", 1)[0].split("=", 1)[1] if "=" in set_cookie else ""
    return "max-age=0" in lowered or "01 jan 1970" in lowered or value in ("", "''", '""', "null")


def seed(spec: Spec, flavor: str, loop: asyncio.AbstractEventLoop) -> str:
    """Write ``spec.data`` through the variant's middleware; return the Cookie header to send."""
    seeder = (raw_seed if flavor == "raw" else st_seed)(spec.data)
    scope = scope_with(OTHER_COOKIE)
    scope[READS_VISITOR] = spec.visitor_cookie
    messages = loop.run_until_complete(call(build(spec, flavor, seeder), scope))
    cookies = set_cookies(messages)
    core._require(bool(cookies), f"{spec.label}: seeding set no cookie")
    core._require(
        not any(is_deletion(c) for c in cookies), f"{spec.label}: seeding deleted a cookie"
    )
    pairs = [c.split(";", 1)[0] for c in cookies]
    return "; ".join([OTHER_COOKIE, *pairs])


def check(
    spec: Spec, app: Any, scope: dict[str, Any], workload: str, loop: asyncio.AbstractEventLoop
) -> None:
    """One request with the probe on: the session was accepted and the cookies are right."""
    PROBE.on, PROBE.seen = True, None
    try:
        messages = loop.run_until_complete(call(app, scope))
    finally:
        PROBE.on = False
    start = next(m for m in messages if m["type"] == "http.response.start")
    label = spec.label
    core._require(start["status"] == 200, f"{label}: status {start['status']}")
    core._require(PROBE.seen is not None, f"{label}: the app did not run")
    if not spec.bare:
        core._require(PROBE.seen == spec.data, f"{label}: the session cookie was not accepted")
    cookies = set_cookies(messages)
    core._require(not any(is_deletion(c) for c in cookies), f"{label}: deleting cookie {cookies}")
    if spec.bare:
        return
    if spec.reads_visitor:
        core._require(PROBE.visitor is not None, f"{label}: the app got no visitor id")
    if spec.always_sets_cookie:
        core._require(len(cookies) >= 1, f"{label}: expected its cookie, got none")
    elif workload == "rw" and spec.cookie_on_write:
        core._require(len(cookies) == 1, f"{label}: expected one Set-Cookie, got {cookies}")
    else:
        core._require(not cookies, f"{label}: {workload} request set cookies: {cookies}")


@dataclass
class Group:
    """Checked, timed-ready variants of one (flavor, workload)."""

    runners: dict[str, Callable[[int], int]]
    loop: asyncio.AbstractEventLoop
    cookies: dict[str, str]  # the Cookie header each non-bare variant sends

    def close(self) -> None:
        loop = self.loop
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def group(
    specs: list[Spec],
    flavor: str,
    workload: str,
    *,
    bare_cookie_from: Spec | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    wall_clock: bool = False,
) -> Group:
    """Seed, build and check every spec; return runners timing ``n`` requests each.

    The bare app gets a plain dict holding the data as its session (so it runs the same
    code) and the cookie header of ``bare_cookie_from`` (by default the second spec).
    ``wall_clock`` times with wall time whatever clock was chosen (stores wait for I/O).
    """
    now_ns = time.perf_counter_ns if wall_clock else core.clock()
    loop = loop or asyncio.new_event_loop()
    endpoints = RAW if flavor == "raw" else STARLETTE_APP
    inner = endpoints[workload]
    cookies: dict[str, str] = {}
    for spec in specs:
        if not spec.bare:
            cookies[spec.label] = seed(spec, flavor, loop)
    donor = bare_cookie_from or next(s for s in specs if not s.bare)
    runners: dict[str, Callable[[int], int]] = {}
    for spec in specs:
        if spec.bare:
            scope = scope_with(cookies[donor.label])
            scope["session"] = dict(spec.data)
        else:
            scope = scope_with(cookies[spec.label])
            scope[READS_VISITOR] = spec.reads_visitor
        app = build(spec, flavor, inner)
        check(spec, app, scope, workload, loop)
        runners[spec.label] = _runner(app, scope, loop, now_ns)
    return Group(runners, loop, cookies)


def _runner(
    app: Any,
    template: dict[str, Any],
    loop: asyncio.AbstractEventLoop,
    now_ns: Callable[[], int],
) -> Callable[[int], int]:
    async def batch(n: int) -> int:
        receive, send, copy = core._receive, core._discard, dict
        start = now_ns()
        for _ in range(n):
            await app(copy(template), receive, send)
        return now_ns() - start

    return lambda n: loop.run_until_complete(batch(n))


# ---------------------------------------------------------------------------- section

BARE = "bare app"
SK = "sessionkit"
SK_VISITOR = "sessionkit, visitor cookie on"
SK_VISITOR_READ = "sessionkit, visitor cookie on, app reads the visitor id"
STARLETTE = "starlette SessionMiddleware"
STARSESSIONS = "starsessions + Fernet"


def specs(flavor: str, workload: str) -> list[Spec]:
    out = [
        Spec(BARE, []),
        Spec(SK, sessionkit_layers(core.make_kit(visitor=False))),
    ]
    if flavor == "raw":
        reads = workload != "untouched"
        out.append(
            Spec(
                SK_VISITOR_READ if reads else SK_VISITOR,
                sessionkit_layers(core.make_kit(visitor=True)),
                visitor_cookie=True,
                reads_visitor=reads,
            )
        )
    out += [
        Spec(STARLETTE, starlette_layers()),
        Spec(STARSESSIONS, starsessions_layers(core.STARLETTE_SECRET), always_sets_cookie=True),
    ]
    return out


def overhead_rows(
    per_call: dict[str, list[float]], vs: str
) -> tuple[list[Row], dict[str, list[float]]]:
    """Rows with µs, overhead over the bare app and overhead ratio against ``vs``."""
    bare = per_call[BARE]
    overhead = {k: minus(v, bare) for k, v in per_call.items() if k != BARE}
    rows = [Row(BARE, Summary.of(us(bare)))]
    for label, times in per_call.items():
        if label == BARE:
            continue
        ratio = None if label == vs else Summary.of(ratios(overhead[label], overhead[vs]))
        rows.append(Row(label, Summary.of(us(times)), Summary.of(us(overhead[label])), ratio))
    return rows, overhead


TARGETS = {("raw", "rw"): Target(0.45), ("raw", "untouched"): Target(0.15)}


def run(mode: Mode) -> Section:
    t0 = time.perf_counter()
    section = Section("asgi", "In-process ASGI: overhead per request over the bare app")
    section.lines = [
        "The middleware stack is called directly (no server, no sockets): the scope is copied "
        "per call, `receive` returns an empty body, `send` discards. Every request carries a "
        "valid session cookie obtained from a seeding request through the same stack, and one "
        "unrelated cookie. sessionkit runs on a fixed clock, so no touch or rotation happens; "
        "its visitor cookie is off unless the row says otherwise (Starlette has none). "
        "starsessions has no encryption of its own: it runs with its `CookieStore` and a "
        "Fernet-encrypting serializer, loading the session on every request "
        "(`SessionAutoloadMiddleware`), and it re-sends its cookie on every response.",
    ]
    for flavor, flavor_label in (("raw", "raw ASGI app"), ("starlette", "Starlette app")):
        for workload in ("rw", "ro", "untouched"):
            g = group(specs(flavor, workload), flavor, workload)
            try:
                per_call, n = measure(g.runners, mode)
            finally:
                g.close()
            rows, overhead = overhead_rows(per_call, STARLETTE)
            title = f"{flavor_label}, {WORKLOADS[workload]}"
            short = f"ASGI {'raw' if flavor == 'raw' else 'Starlette app'}, {WORKLOADS[workload]}"
            section.tables.append(
                Table(
                    f"{title}: µs per request",
                    "µs/request",
                    "overhead ÷ starlette's",
                    rows,
                    notes=[f"{n} requests per timed batch, {mode.repeats} interleaved repeats"],
                )
            )
            section.headlines.append(
                Headline(
                    f"{short}: overhead ÷ Starlette's",
                    Summary.of(ratios(overhead[SK], overhead[STARLETTE])),
                    "cost",
                    TARGETS.get((flavor, workload)),
                )
            )
            if flavor == "raw" and workload == "rw":
                section.headlines.append(
                    Headline(
                        f"{short}: overhead ÷ starsessions+Fernet's",
                        Summary.of(ratios(overhead[SK], overhead[STARSESSIONS])),
                        "cost",
                    )
                )
            print(f"  asgi {title} ({time.perf_counter() - t0:.0f} s)", flush=True)
    section.seconds = time.perf_counter() - t0
    return section
