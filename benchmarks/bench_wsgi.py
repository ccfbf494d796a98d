"""WSGI: a Flask app and a Django view, each with its own session and with sessionkit's.

The WSGI callables are called directly (no server): environ copied per call, the
response iterated and closed. sessionkit runs as ``sessionkit.wsgi.SessionMiddleware``
around the framework's WSGI app, and through ``sessionkit.integrations.flask`` /
``sessionkit.integrations.django`` when those modules can be imported (otherwise the
output says "not available"). Cookies come from a seeding request through the same
stack; each variant is checked once before timing, as in the ASGI section.
"""

from __future__ import annotations

import importlib
import io
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sessionkit.wsgi import SessionMiddleware as SessionKitWSGI

from . import core
from .core import OTHER_COOKIE, SESSION_DATA, Mode, Summary, measure, minus, ratios, us
from .peers import FLASK_SECRET, django_setup
from .report import Headline, Row, Section, Table, Target

WORKLOADS = {"rw": "read+write", "ro": "read-only"}
BARE = "bare app"
SK_WSGI = "sessionkit.wsgi.SessionMiddleware"
FLASK_OWN = "flask's own session (SecureCookieSession)"
SK_FLASK = "sessionkit.integrations.flask"
DJANGO_OWN = "django signed_cookies + SessionMiddleware"
SK_DJANGO = "sessionkit.integrations.django"

PROBE: dict[str, Any] = {"on": False, "seen": None}
BARE_SESSION: dict[str, Any] = dict(SESSION_DATA)


def environ_for(path: str, cookie: str, kind: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "example.org",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "REMOTE_PORT": "51234",
        "HTTP_HOST": "example.org",
        "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101",
        "HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8",
        "HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.5",
        "HTTP_COOKIE": cookie,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "bench.kind": kind,
    }


def _write(data: bytes) -> None:
    return None


def _start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
    return _write


def call(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        seen["status"], seen["headers"] = status, list(headers)
        return _write

    result = app(dict(environ), start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return seen["status"], seen["headers"], body


def _set_cookies(headers: list[tuple[str, str]]) -> list[str]:
    return [v for n, v in headers if n.lower() == "set-cookie"]


def _deleting(cookie: str) -> bool:
    lowered = cookie.lower()
    value = cookie.split(";", 1)[0].split("=", 1)[-1]
    return "max-age=0" in lowered or "01 jan 1970" in lowered or value in ("", '""')


def wsgi_runner(app: Any, environ: dict[str, Any]) -> Callable[[int], int]:
    def run(n: int) -> int:
        copy, start_response, now_ns = environ.copy, _start_response, core.clock()
        start = now_ns()
        for _ in range(n):
            result = app(copy(), start_response)
            for _chunk in result:
                pass
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return now_ns() - start

    return run


@dataclass
class Variant:
    label: str
    app: Any  # WSGI callable
    kind: str  # where the view finds the session (Django: environ["bench.kind"])
    bare: bool = False
    optional: bool = False  # an integration: a failed check drops it instead of stopping


def prepare(
    variants: list[Variant], workload: str, paths: dict[str, str], probe: dict[str, Any]
) -> tuple[dict[str, Callable[[int], int]], list[str]]:
    """Seed, check and wrap every variant; the bare one borrows the second one's cookie.

    A failed check stops the run, except for an optional variant (an integration being
    written): that one is left out and the returned notes say why.
    """
    cookies: dict[str, str] = {}
    runners: dict[str, Callable[[int], int]] = {}
    failed: list[str] = []
    for v in variants:
        if v.bare:
            continue
        try:
            cookies[v.label] = _seed(v, paths, probe)
        except Exception as exc:
            if not v.optional:
                raise
            failed.append(f"{v.label}: failed its check ({type(exc).__name__}: {exc}); not timed")
    donor = next(v for v in variants if not v.bare)
    for v in variants:
        if not v.bare and v.label not in cookies:
            continue
        environ = environ_for(paths[workload], cookies[donor.label if v.bare else v.label], v.kind)
        try:
            _check(v, environ, workload, probe)
        except Exception as exc:
            if not v.optional:
                raise
            failed.append(f"{v.label}: failed its check ({type(exc).__name__}: {exc}); not timed")
            continue
        runners[v.label] = wsgi_runner(v.app, environ)
    return runners, failed


def _seed(v: Variant, paths: dict[str, str], probe: dict[str, Any]) -> str:
    status, headers, _ = call(v.app, environ_for(paths["seed"], OTHER_COOKIE, v.kind))
    set_cookies = _set_cookies(headers)
    core._require(status.startswith("200"), f"{v.label}: seeding answered {status}")
    core._require(bool(set_cookies), f"{v.label}: seeding set no cookie")
    core._require(not any(map(_deleting, set_cookies)), f"{v.label}: seeding deleted")
    return "; ".join([OTHER_COOKIE, *(c.split(";", 1)[0] for c in set_cookies)])


def _check(v: Variant, environ: dict[str, Any], workload: str, probe: dict[str, Any]) -> None:
    probe["on"], probe["seen"] = True, None
    try:
        status, headers, _ = call(v.app, environ)
    finally:
        probe["on"] = False
    set_cookies = _set_cookies(headers)
    core._require(status.startswith("200"), f"{v.label}: status {status}")
    core._require(probe["seen"] is not None, f"{v.label}: the view did not run")
    if not v.bare:
        core._require(probe["seen"] == SESSION_DATA, f"{v.label}: cookie not accepted")
        want = 1 if workload == "rw" else 0
        core._require(
            len(set_cookies) == want and not any(map(_deleting, set_cookies)),
            f"{v.label}: {workload} request set {set_cookies}",
        )


# ---------------------------------------------------------------------------- Flask


def flask_app(kind: str, *, secret: str | None = None, setup: Any = None) -> Any:
    import flask

    app = flask.Flask(f"bench_{kind}")
    if secret is not None:
        app.secret_key = secret
    if setup is not None:
        setup(app)
    request = flask.request

    if kind == "flask":

        def get() -> Any:
            return flask.session

    elif kind == "sessionkit":

        def get() -> Any:
            return request.environ["sessionkit.session"]

    else:

        def get() -> Any:
            return BARE_SESSION

    @app.route("/app/rw")
    def rw() -> str:
        session = get()
        if PROBE["on"]:
            PROBE["seen"] = dict(session)
        session["n"] = session.get("n", 0) + 1
        return "ok"

    @app.route("/app/ro")
    def ro() -> Any:
        session = get()
        if PROBE["on"]:
            PROBE["seen"] = dict(session)
        if session.get("user") is None:
            return "no user", 409
        return "ok"

    @app.route("/seed")
    def seed() -> str:
        get().update(SESSION_DATA)
        return "ok"

    return app


def flask_variants() -> tuple[list[Variant], list[str]]:
    variants = [
        Variant(BARE, flask_app("bare"), "bare", bare=True),
        Variant(SK_WSGI, SessionKitWSGI(flask_app("sessionkit"), core.make_kit(visitor=False)), ""),
        Variant(FLASK_OWN, flask_app("flask", secret=FLASK_SECRET), ""),
    ]
    missing = []
    try:
        integration = importlib.import_module(SK_FLASK)
        kit = core.make_kit(visitor=False)
        variants.append(
            Variant(
                SK_FLASK + " (flask.session)",
                flask_app("flask", setup=lambda app: integration.init_app(app, kit)),
                "",
                optional=True,
            )
        )
    except Exception as exc:  # an integration being written may fail in any way
        missing.append(f"{SK_FLASK}: not available ({type(exc).__name__}: {exc})")
    return variants, missing


# ---------------------------------------------------------------------------- Django


def django_handler(middleware: list[str], **overrides: Any) -> Any:
    """A Django WSGI handler whose middleware is built under ``overrides`` of the settings.

    Middleware reads most settings when it is built, so one process can hold handlers of
    several configurations; the settings are restored afterwards.
    """
    django_setup()
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler

    overrides["MIDDLEWARE"] = middleware
    old = {name: getattr(settings, name) for name in overrides}
    for name, value in overrides.items():
        setattr(settings, name, value)
    try:
        return WSGIHandler()
    finally:
        for name, value in old.items():
            setattr(settings, name, value)


def django_variants() -> tuple[list[Variant], list[str]]:
    django_setup()
    from django.conf import settings

    variants = [
        Variant(BARE, django_handler([]), "bare", bare=True),
        Variant(
            SK_WSGI, SessionKitWSGI(django_handler([]), core.make_kit(visitor=False)), "sessionkit"
        ),
        Variant(
            DJANGO_OWN,
            django_handler(["django.contrib.sessions.middleware.SessionMiddleware"]),
            "django",
        ),
    ]
    missing = []
    try:
        integration = importlib.import_module(SK_DJANGO)
        kit = core.make_kit(visitor=False)
        settings.SESSIONKIT = kit
        handler = django_handler(
            [f"{SK_DJANGO}.SessionKitMiddleware"],
            SESSION_ENGINE=SK_DJANGO,
            SESSION_COOKIE_NAME=kit.session_spec.name,
        )
        core._require(integration.get_kit() is kit, f"{SK_DJANGO} did not take the kit")
        variants.append(Variant(SK_DJANGO + " (request.session)", handler, "django", optional=True))
    except Exception as exc:  # an integration being written may fail in any way
        missing.append(f"{SK_DJANGO}: not available ({type(exc).__name__}: {exc})")
    return variants, missing


# ---------------------------------------------------------------------------- section


def _group(
    section: Section,
    mode: Mode,
    framework: str,
    own: str,
    integration: str,
    make: Callable[[], tuple[list[Variant], list[str]]],
    paths: dict[str, str],
    probe: dict[str, Any],
    target: Target | None,
) -> None:
    variants, missing = make()  # once: an integration may build its kit only once
    for workload in ("rw", "ro"):
        runners, failed = prepare(variants, workload, paths, probe)
        per_call, n = measure(runners, mode)
        bare = per_call[BARE]
        overhead = {k: minus(v, bare) for k, v in per_call.items() if k != BARE}
        rows = [Row(BARE, Summary.of(us(bare)))]
        for label, times in per_call.items():
            if label == BARE:
                continue
            ratio = None if label == own else Summary.of(ratios(overhead[label], overhead[own]))
            rows.append(Row(label, Summary.of(us(times)), Summary.of(us(overhead[label])), ratio))
        title = f"{framework}, {WORKLOADS[workload]}"
        section.tables.append(
            Table(
                f"{title}: µs per request",
                "µs/request",
                f"overhead ÷ {own.split(' (')[0]}'s",
                rows,
                notes=[
                    f"{n} requests per timed batch, {mode.repeats} interleaved repeats",
                    *missing,
                    *failed,
                ],
            )
        )
        short_own = "Flask's session" if framework == "Flask" else "signed_cookies"
        short_integration = integration.removeprefix("sessionkit.")
        section.headlines.append(
            Headline(
                f"{title}: sessionkit.wsgi ÷ {short_own}",
                Summary.of(ratios(overhead[SK_WSGI], overhead[own])),
                "cost",
                target if workload == "rw" else None,
            )
        )
        label = next((k for k in overhead if k.startswith(integration)), None)
        if label is not None:
            section.headlines.append(
                Headline(
                    f"{title}: {short_integration} ÷ {short_own}",
                    Summary.of(ratios(overhead[label], overhead[own])),
                    "cost",
                    target if workload == "rw" else None,
                )
            )
        elif workload == "rw":
            section.headlines.append(
                Headline(
                    f"{title}: {short_integration} ÷ {short_own}",
                    None,
                    "cost",
                    target,
                    status="; ".join([*missing, *failed]) or "not available",
                )
            )
        print(f"  wsgi {title}", flush=True)


def run(mode: Mode) -> Section:
    t0 = time.perf_counter()
    section = Section("wsgi", "WSGI: Flask and Django, overhead per request over the bare app")
    section.lines = [
        "The WSGI app is called directly (no server): environ copied per call, the body "
        "iterated and closed. The bare Flask app has no secret key (Flask's null session); "
        "the bare Django handler has no middleware. sessionkit's visitor cookie is off and "
        "its clock fixed, as in the ASGI section.",
    ]
    _group(
        section,
        mode,
        "Flask",
        FLASK_OWN,
        SK_FLASK,
        flask_variants,
        {"rw": "/app/rw", "ro": "/app/ro", "seed": "/seed"},
        PROBE,
        Target(0.25),
    )
    from . import django_app

    _group(
        section,
        mode,
        "Django",
        DJANGO_OWN,
        SK_DJANGO,
        django_variants,
        {"rw": "/app/rw", "ro": "/app/ro", "seed": "/seed"},
        django_app.PROBE,
        None,
    )
    section.seconds = time.perf_counter() - t0
    return section
