"""What an operator sees, through real servers: events, metrics, stderr, a store outage.

- events carry the request's path, method, client, user-agent family and request id,
  under uvicorn (ASGI) and werkzeug (WSGI), and Flask's ``app.logger`` gets the warnings;
- the metrics count them (OpenTelemetry SDK, in-memory reader);
- an app that configured no logging shows the warnings on stderr under uvicorn, gunicorn
  and ``flask run`` (Python's last-resort handler; Flask's own logger under Flask);
- a Redis outage is a warning, and the recovery an event.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flask
import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import sessionkit
from sessionkit.events import LifecycleEvent, SecurityEvent
from sessionkit.integrations.flask import init_app
from sessionkit.stores.redis import RedisStore
from support import free_port, running_werkzeug, stop_process, wait_for_port

ServerFactory = Callable[[sessionkit.SessionKit], str]
APPS = Path(__file__).with_name("ops_apps.py")
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


class Events:
    def __init__(self) -> None:
        self.seen: list[SecurityEvent | LifecycleEvent] = []

    def __call__(self, event: SecurityEvent | LifecycleEvent) -> None:
        self.seen.append(event)

    def named(self, name: str) -> list[Any]:
        return [
            e for e in self.seen if (e.name if isinstance(e, LifecycleEvent) else e.reason) == name
        ]


def counters(reader: InMemoryMetricReader) -> dict[tuple[str, frozenset[Any]], Any]:
    data = reader.get_metrics_data()
    assert data is not None
    out = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    key = (metric.name, frozenset((point.attributes or {}).items()))
                    out[key] = getattr(point, "value", None)
    return out


def test_events_and_metrics_through_a_real_server(serve: ServerFactory) -> None:
    events = Events()
    reader = InMemoryMetricReader()
    kit = sessionkit.SessionKit(
        secret_keys=[sessionkit.generate_key()],
        insecure_development=True,
        on_security_event=events,
        on_lifecycle_event=events,
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    base = serve(kit)
    headers = {"User-Agent": FIREFOX, "X-Request-ID": "edge-4f1c"}
    with httpx.Client(base_url=base, headers=headers) as client:
        assert client.post("/login", json={"user": "alice"}).status_code == 200
        assert client.post("/logout").status_code == 200
        client.cookies.clear()
        client.cookies.set("session", "forged-value", domain="127.0.0.1")
        assert client.get("/me", headers={"X-Request-ID": "bad id"}).status_code == 200
    (login,) = events.named("login")
    (logout,) = events.named("logout")
    (refused,) = events.named("malformed")
    for event in (login, logout):
        assert event.client == "127.0.0.0", "truncated to its /24"
        assert event.user_agent == "Firefox"
        assert event.request_id == "edge-4f1c"
        assert event.method == "POST"
    assert (login.path, logout.path) == ("/login", "/logout")
    assert login.family == logout.family
    assert login.family is not None
    assert len(login.family) == 12
    assert (refused.cookie, refused.path, refused.method) == ("session", "/me", "GET")
    assert refused.request_id != "bad id", "a request id that could forge a line is replaced"
    got = counters(reader)
    assert got[("sessionkit.sessions.logins", frozenset())] == 1
    assert got[("sessionkit.sessions.ended", frozenset({("reason", "logout")}))] == 1
    malformed = frozenset({("reason", "malformed"), ("cookie_kind", "session")})
    assert got[("sessionkit.rejections", malformed)] == 1


def test_flask_app_logger_gets_the_warnings_and_the_metrics_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = flask.Flask("shop")

    @app.route("/me")
    def me() -> Any:
        return {"session": dict(flask.session)}

    reader = InMemoryMetricReader()
    kit = sessionkit.SessionKit(
        secret_keys=[sessionkit.generate_key()],
        insecure_development=True,
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    init_app(app, kit)
    with caplog.at_level(logging.INFO), running_werkzeug(app) as base:
        response = httpx.get(f"{base}/me", headers={"Cookie": "session=forged; x=1"})
        assert response.status_code == 200
    ours = [r for r in caplog.records if r.name == "shop"]
    assert len(ours) == 1
    assert ours[0].getMessage().startswith("sessionkit: rejected cookie session: malformed")
    assert ours[0].sessionkit_event.path == "/me"  # type: ignore[attr-defined]
    assert [r.name for r in caplog.records if "rejected cookie" in r.getMessage()] == [
        "sessionkit.security",
        "shop",
    ]
    malformed = frozenset({("reason", "malformed"), ("cookie_kind", "session")})
    assert counters(reader)[("sessionkit.rejections", malformed)] == 1


# --------------------------------------------------------------------------- stderr

SERVERS = {
    "uvicorn": (
        ["-m", "uvicorn", "--factory", "ops_apps:asgi_factory", "--host", "127.0.0.1"],
        "--port",
        "asgi",
    ),
    "gunicorn": (["-m", "gunicorn", "--workers", "1", "ops_apps:wsgi"], "--bind", "wsgi"),
    "flask run": (["-m", "flask", "--app", "ops_apps:flask_app", "run"], "--port", "flask"),
}


@pytest.mark.parametrize("server", list(SERVERS))
def test_warnings_reach_stderr_when_the_app_configured_no_logging(
    server: str, tmp_path: Path
) -> None:
    argv, port_option, kind = SERVERS[server]
    port = free_port()
    where = f"127.0.0.1:{port}" if server == "gunicorn" else str(port)
    env = {
        **os.environ,
        "SESSIONKIT_SECRET_KEYS": sessionkit.generate_key(),
        "OPS_APP": kind,
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "stderr.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *argv, port_option, where],
            cwd=APPS.parent,
            stdout=subprocess.DEVNULL,
            stderr=out,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    try:
        assert wait_for_port(port, process, 30.0), log.read_text()
        for _ in range(3):
            response = httpx.get(f"http://127.0.0.1:{port}/me", headers={"Cookie": "session=junk"})
            assert response.status_code == 200
    finally:
        stop_process(process)
    lines = log.read_text().splitlines()
    warned = [line for line in lines if "insecure_development=True" in line]
    refused = [line for line in lines if "rejected cookie session: malformed" in line]
    assert len(warned) == 1, lines
    if server == "flask run":
        assert len(refused) == 3, "Flask's logger shows each one, and only it does"
        assert all("sessionkit: rejected cookie" in line for line in refused)
    else:
        assert len(refused) == 1, "once per reason a minute on the last-resort handler"
    assert "path=/me" in refused[0]


# --------------------------------------------------------------------------- the store


def test_a_store_outage_and_its_recovery_are_reported(
    serve_uvicorn: ServerFactory, redis_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    events = Events()
    kit = sessionkit.SessionKit(
        secret_keys=[sessionkit.generate_key()],
        insecure_development=True,
        store=RedisStore(redis_server.url, socket_timeout=0.5),
        on_lifecycle_event=events,
    )
    base = serve_uvicorn(kit)
    with httpx.Client(base_url=base) as client:
        assert client.post("/login", json={"user": "alice"}).status_code == 200
        redis_server.stop()
        try:
            with caplog.at_level(logging.INFO, logger="sessionkit"):
                assert client.post("/logout").status_code == 503
        finally:
            redis_server.start()
        with caplog.at_level(logging.INFO, logger="sessionkit"):
            assert client.get("/me").status_code == 200
    (down,) = events.named("store_unavailable")
    assert down.path == "/logout"
    assert down.detail is not None
    assert events.named("store_recovered")
    stores = [
        (r.levelname, r.sessionkit_event.name)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "sessionkit.stores"
    ]
    assert stores == [("WARNING", "store_unavailable"), ("INFO", "store_recovered")]
