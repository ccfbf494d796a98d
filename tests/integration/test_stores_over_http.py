"""Server-side stores over real HTTP: worker processes, store outages, timed rotation.

- two uvicorn worker *processes* share one SQLite file: a session made on one is seen,
  ended and refused on the other; "log out everywhere" reaches the other worker;
- a Redis outage through uvicorn (ASGI, asyncio client) and werkzeug (WSGI, blocking
  client): the application answers 503, public pages work with an empty session, a
  session written while the store is down is never reported as saved, and service comes
  back when Redis does, without restarting the app;
- timed rotation with a grace window and replay detection, in real time, on SQLite.

Every browser here is a hand-kept cookie jar (``Browser``), so a test can copy a cookie
the way a thief would and send it to any server.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import sessionkit
import sessionkit.wsgi
from sessionkit.gate import RETRY_AFTER, UNAVAILABLE_PAGE
from sessionkit.stores import SQLiteStore
from sessionkit.stores.redis import RedisStore
from support import (
    free_port,
    load_module,
    running_uvicorn,
    running_werkzeug,
    set_cookies,
    start_uvicorn_process,
    stop_process,
    wait_for_port,
)

HERE = Path(__file__).resolve().parent
ROTATE_EVERY = 2
ROTATION_GRACE = 1
STARTUP_TIMEOUT = 30.0
SESSION = "session"  # the session cookie's name with insecure_development=True
VISITOR = "visitor"


# The test directories are not packages (pytest runs with --import-mode=importlib), so the
# app module is loaded from its file; the worker processes find it through uvicorn's --app-dir.
worker_app = load_module("sessionkit_integration_worker_app", HERE / "worker_app.py")


# ---------------------------------------------------------------- browsers


class Browser:
    """A cookie jar kept by hand: sends its cookies to any URL, keeps what comes back.

    Every response must be below 500 unless the call says which status it expects.
    """

    def __init__(self, client: httpx.Client, jar: dict[str, str] | None = None) -> None:
        self.client = client
        self.jar = dict(jar or {})

    def copy(self) -> Browser:
        """Another browser holding copies of this one's cookies (a stolen cookie)."""
        return Browser(self.client, self.jar)

    def request(
        self, method: str, url: str, *, expect: int | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        response = self.client.request(method, url, headers=headers, **kwargs)
        self.client.cookies.clear()  # the jar is this object's, not the client's
        if expect is None:
            assert response.status_code < 500, (method, url, response.status_code, response.text)
        else:
            assert response.status_code == expect, (method, url, response.text)
        for name, (value, attrs) in set_cookies(response).items():
            if attrs.get("max-age") == "0":
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=15) as client:
        yield client


@pytest.fixture
def events() -> list[str]:
    """Reasons of the security events the in-process kits report."""
    return []


def sleep_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)


# ---------------------------------------------------------------- in-process servers


STREAM_CHUNKS = [b"first chunk\n", b"x" * 50_000, b"\nlast chunk\n"]


def make_wsgi_app(kit: sessionkit.SessionKit) -> Callable[..., Iterable[bytes]]:
    """The WSGI twin of ``worker_app.build_app`` (no logout-everywhere), plus ``/stream``."""

    def stream(start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        yield from STREAM_CHUNKS

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        session = sessionkit.wsgi.session_of(environ)
        path = environ["PATH_INFO"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length)) if length else {}
        if path == "/login":
            session.login(body["user"])
            session["name"] = body["user"].title()
        elif path == "/note":
            session["note"] = body["note"]
        elif path == "/logout":
            session.invalidate()
        elif path == "/stream":
            session["streamed"] = True
            return stream(start_response)
        elif path not in ("/", "/me") and not path.startswith("/app/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        payload = json.dumps(
            {"user": session.user_id, "session": dict(session), "id": session.id}
        ).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    return sessionkit.wsgi.SessionMiddleware(app, kit=kit)


# ---------------------------------------------------------------- worker processes


@dataclass
class Worker:
    """One uvicorn process serving ``worker_app:create_app``."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _start_worker(name: str, directory: Path, env: dict[str, str]) -> Worker:
    port = free_port()
    log = directory / f"worker-{name}.log"
    process = start_uvicorn_process("worker_app:create_app", HERE, port, log, env)
    return Worker(name, f"http://127.0.0.1:{port}", process, log)


def _wait_ready(worker: Worker) -> None:
    port = int(worker.url.rsplit(":", 1)[1])
    if not wait_for_port(port, worker.process, STARTUP_TIMEOUT):
        pytest.fail(f"worker {worker.name} did not start serving; its log:\n{worker.log_text()}")


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Worker, Worker]]:
    """Two uvicorn worker processes, started at once, sharing one SQLite file and key ring."""
    directory = tmp_path_factory.mktemp("workers")
    env = {
        **os.environ,
        "SESSIONKIT_SECRET_KEYS": sessionkit.generate_key(),
        worker_app.SQLITE_ENV: str(directory / "sessions.db"),
        "PYTHONUNBUFFERED": "1",
    }
    started: list[Worker] = []
    try:
        for name in ("A", "B"):
            started.append(_start_worker(name, directory, env))
        for worker in started:
            _wait_ready(worker)
        yield started[0], started[1]
        for worker in started:
            assert worker.process.poll() is None, f"worker {worker.name} died:\n{worker.log_text()}"
    finally:
        for worker in started:
            stop_process(worker.process)
    for worker in started:
        text = worker.log_text()
        assert "Traceback" not in text, f"worker {worker.name} logged an error:\n{text}"
        assert "ERROR" not in text, f"worker {worker.name} logged an error:\n{text}"


# ---------------------------------------------------------------- 1. two worker processes


def test_two_workers_share_sessions_and_logout(
    workers: tuple[Worker, Worker], http: httpx.Client
) -> None:
    a, b = workers
    browser = Browser(http)
    login = browser.post(f"{a.url}/login", json={"user": "alice"}).json()
    assert login["user"] == "alice"
    on_b = browser.get(f"{b.url}/me").json()
    assert on_b["pid"] != login["pid"], "the two URLs are two processes"
    assert on_b["user"] == "alice"
    assert on_b["session"] == {"name": "Alice"}
    assert browser.get(f"{b.url}/app/inbox").json()["user"] == "alice"

    stolen = browser.copy()  # copied before logout
    logout = browser.post(f"{b.url}/logout")
    assert logout.json()["user"] is None
    assert set_cookies(logout)[SESSION][1]["max-age"] == "0"
    assert SESSION not in browser.jar

    for path in ("/app/inbox", "/me"):
        thief = stolen.copy()
        replayed = thief.get(f"{a.url}{path}")
        assert replayed.status_code == 200, path
        assert replayed.json()["user"] is None, path
        assert replayed.json()["session"] == {}, path
        # seconds after a logout a copy is answered as nobody and its cookie left alone
        # (a parallel tab may hold a newer one); later it is expired with an event
        assert SESSION not in set_cookies(replayed), path
    # and on the worker that logged out too
    assert stolen.copy().get(f"{b.url}/me").json()["user"] is None


def test_login_on_one_worker_starts_a_new_family(
    workers: tuple[Worker, Worker], http: httpx.Client
) -> None:
    a, b = workers
    victim = Browser(http)
    before = victim.post(f"{b.url}/note", json={"note": "pre-login"}).json()
    assert before["session"] == {"note": "pre-login"}
    planted = victim.copy()  # a fixated pre-login cookie
    assert planted.copy().get(f"{a.url}/me").json()["session"] == {"note": "pre-login"}

    after = victim.post(f"{a.url}/login", json={"user": "erin"}).json()
    assert after["id"] != before["id"]
    assert after["session"] == {"note": "pre-login", "name": "Erin"}
    assert victim.get(f"{b.url}/me").json()["user"] == "erin"

    attacker = planted.get(f"{b.url}/me").json()
    assert attacker["user"] is None
    assert attacker["session"] == {}, "the pre-login record is gone on every worker"


def test_log_out_everywhere_reaches_the_other_worker(
    workers: tuple[Worker, Worker], http: httpx.Client
) -> None:
    a, b = workers
    laptop, phone, other = Browser(http), Browser(http), Browser(http)
    laptop.post(f"{a.url}/login", json={"user": "carol"})
    phone.post(f"{b.url}/login", json={"user": "carol"})
    other.post(f"{b.url}/login", json={"user": "dave"})
    assert phone.get(f"{a.url}/me").json()["user"] == "carol"

    ended = laptop.post(f"{a.url}/logout-everywhere").json()
    assert ended["ended"] == 2

    gone = phone.get(f"{b.url}/app/settings")
    assert gone.json()["user"] is None
    assert gone.json()["session"] == {}
    assert set_cookies(gone)[SESSION][1]["max-age"] == "0"
    assert laptop.get(f"{b.url}/me").json()["user"] is None
    assert other.get(f"{a.url}/me").json()["user"] == "dave", "other users keep their sessions"
    # a fresh login after logging out everywhere works on both workers
    laptop.post(f"{b.url}/login", json={"user": "carol"})
    assert laptop.get(f"{a.url}/app/settings").json()["user"] == "carol"


# ---------------------------------------------------------------- 2./3. Redis outage


@pytest.fixture(params=["uvicorn", "werkzeug"])
def front(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def redis_site(
    redis_server: Any, front: str, events: list[str]
) -> Iterator[tuple[str, sessionkit.SessionKit]]:
    """The app with ``require_cookies=["/app"]`` on a RedisStore, served by ``front``."""
    store = RedisStore(redis_server.url, prefix=f"it:{uuid.uuid4().hex}:", socket_timeout=0.5)
    kit = sessionkit.SessionKit(
        secret_keys=[sessionkit.generate_key()],
        store=store,
        require_cookies=["/app"],
        insecure_development=True,
        on_security_event=lambda event: events.append(event.reason),
    )
    try:
        if front == "uvicorn":
            served = running_uvicorn(worker_app.build_app(kit))
        else:
            served = running_werkzeug(make_wsgi_app(kit))
        with served as url:
            yield url, kit
    finally:
        store.close()
        if not redis_server.running:  # a failed test must not leave Redis down for others
            redis_server.start()


def assert_unavailable(response: httpx.Response, *, json_body: bool = False) -> None:
    """The complete 503 page (or JSON document), with Retry-After and no cookie."""
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(RETRY_AFTER)
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers
    assert response.headers["content-length"] == str(len(response.content))
    if json_body:
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"] == "session_store_unavailable"
    else:
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.text == UNAVAILABLE_PAGE, "exactly the page: nothing of the app's body"


def assert_served_during_outage(browser: Browser, url: str) -> None:
    """What every request gets while Redis does not answer (``browser`` is logged in)."""
    jar = dict(browser.jar)
    # the application: 503, HTML or JSON by Accept, never the logged-in page
    assert_unavailable(browser.get(f"{url}/app/inbox", expect=503))
    assert_unavailable(
        browser.get(f"{url}/app/inbox", expect=503, headers={"Accept": "application/json"}),
        json_body=True,
    )
    # a public page: served, with an empty session and no cookie change
    public = browser.get(f"{url}/me", expect=200)
    assert public.json()["user"] is None
    assert public.json()["session"] == {}
    assert "set-cookie" not in public.headers
    # writing the session on a public page: the response is replaced by a 503
    assert_unavailable(browser.post(f"{url}/note", json={"note": "lost"}, expect=503))
    assert_unavailable(
        browser.post(
            f"{url}/note",
            json={"note": "lost"},
            expect=503,
            headers={"Accept": "application/json"},
        ),
        json_body=True,
    )
    # a logout that cannot delete the record is not confirmed
    assert_unavailable(browser.post(f"{url}/logout", expect=503))
    assert browser.jar == jar, "no cookie changed during the outage"
    # a visitor without a session cookie: the public page works, a login is refused
    stranger = Browser(browser.client)
    home = stranger.get(f"{url}/", expect=200)
    assert home.json()["user"] is None
    assert SESSION not in set_cookies(home)
    assert_unavailable(stranger.post(f"{url}/login", json={"user": "mallory"}, expect=503))
    assert SESSION not in stranger.jar


def test_redis_outage_and_restart(
    redis_site: tuple[str, sessionkit.SessionKit],
    redis_server: Any,
    http: httpx.Client,
    events: list[str],
) -> None:
    url, _ = redis_site
    browser = Browser(http)
    browser.post(f"{url}/login", json={"user": "alice"}, expect=200)
    assert browser.get(f"{url}/app/inbox", expect=200).json()["user"] == "alice"
    before = dict(browser.jar)

    redis_server.stop()
    try:
        assert_served_during_outage(browser, url)
    finally:
        redis_server.start()
    assert events == []

    # Redis came back empty (no persistence): the record is gone, so the same cookie is
    # an ended session: an anonymous page and a deleted cookie, never a 5xx and never
    # logged in without a record.
    assert browser.jar == before
    back = browser.get(f"{url}/app/inbox", expect=200)
    assert back.json()["user"] is None
    assert back.json()["session"] == {}
    assert set_cookies(back)[SESSION][1]["max-age"] == "0"
    assert events == ["revoked"]
    # a fresh login works without restarting the app
    browser.post(f"{url}/login", json={"user": "alice"}, expect=200)
    again = browser.get(f"{url}/app/inbox", expect=200).json()
    assert again["user"] == "alice"
    assert again["session"] == {"name": "Alice"}
    browser.post(f"{url}/note", json={"note": "kept"}, expect=200)
    assert browser.get(f"{url}/me").json()["session"] == {"name": "Alice", "note": "kept"}


def test_redis_hang_and_resume_keeps_the_session(
    redis_site: tuple[str, sessionkit.SessionKit],
    redis_server: Any,
    http: httpx.Client,
    events: list[str],
) -> None:
    """A frozen Redis (calls time out) loses no data: the same cookie works afterwards."""
    url, _ = redis_site
    browser = Browser(http)
    browser.post(f"{url}/login", json={"user": "bob"}, expect=200)
    before = dict(browser.jar)

    redis_server.pause()
    try:
        started = time.monotonic()
        assert_unavailable(browser.get(f"{url}/app/inbox", expect=503))
        public = browser.get(f"{url}/me", expect=200)
        assert public.json()["user"] is None
        assert "set-cookie" not in public.headers
        assert_unavailable(browser.post(f"{url}/note", json={"note": "lost"}, expect=503))
        assert time.monotonic() - started < 5, "socket_timeout bounds each request"
    finally:
        redis_server.resume()

    assert browser.jar == before
    back = browser.get(f"{url}/app/inbox", expect=200).json()
    assert back["user"] == "bob"
    assert back["session"] == {"name": "Bob"}, "the note written during the hang was not kept"
    browser.post(f"{url}/note", json={"note": "kept"}, expect=200)
    assert browser.get(f"{url}/app/inbox").json()["session"] == {"name": "Bob", "note": "kept"}
    assert events == []


def test_wsgi_streamed_write_during_outage_is_a_clean_503(
    redis_server: Any, http: httpx.Client
) -> None:
    """A streamed body whose session write fails is replaced whole: no app chunk leaks."""
    store = RedisStore(redis_server.url, prefix=f"it:{uuid.uuid4().hex}:", socket_timeout=0.5)
    kit = sessionkit.SessionKit(
        secret_keys=[sessionkit.generate_key()],
        store=store,
        require_cookies=["/app"],
        insecure_development=True,
    )
    try:
        with running_werkzeug(make_wsgi_app(kit)) as url:
            browser = Browser(http)
            browser.post(f"{url}/login", json={"user": "alice"}, expect=200)
            ok = browser.get(f"{url}/stream", expect=200)
            assert ok.content == b"".join(STREAM_CHUNKS)
            redis_server.stop()
            try:
                for who in (browser.copy(), Browser(http)):  # with and without a session
                    assert_unavailable(who.get(f"{url}/stream", expect=503))
                    json_503 = who.get(
                        f"{url}/stream", expect=503, headers={"Accept": "application/json"}
                    )
                    assert_unavailable(json_503, json_body=True)
            finally:
                redis_server.start()
            fresh = Browser(http)
            assert fresh.get(f"{url}/stream", expect=200).content == b"".join(STREAM_CHUNKS)
            assert fresh.get(f"{url}/me").json()["session"] == {"streamed": True}
    finally:
        store.close()
        if not redis_server.running:
            redis_server.start()


# ---------------------------------------------------------------- 4. timed rotation


def test_timed_rotation_grace_and_replay_over_http(
    tmp_path: Path, http: httpx.Client, events: list[str]
) -> None:
    store = SQLiteStore(tmp_path / "sessions.db")
    kit = sessionkit.SessionKit(
        secret_keys=[sessionkit.generate_key()],
        store=store,
        rotate_every=ROTATE_EVERY,
        rotation_grace=ROTATION_GRACE,
        visitor_cookie=None,
        insecure_development=True,
        on_security_event=lambda event: events.append(event.reason),
    )
    try:
        with running_uvicorn(worker_app.build_app(kit)) as url:
            browser = Browser(http)
            first = browser.post(f"{url}/login", json={"user": "alice"}).json()
            logged_in = time.time()
            stale = browser.copy()

            # The session times are whole seconds: past this moment the id is due.
            sleep_until(math.floor(logged_in) + ROTATE_EVERY + 0.05)
            rotated = browser.get(f"{url}/me")  # its response carries the new id
            assert rotated.json()["user"] == "alice"
            assert browser.jar[SESSION] != stale.jar[SESSION]
            current = browser.get(f"{url}/me")  # the browser presents it: confirmed
            confirmed = time.time()
            assert current.json()["id"] != first["id"]

            # within the grace window, the old cookie continues as the current id and
            # nothing is re-issued to it
            in_grace = stale.copy().get(f"{url}/me")
            assert time.time() < confirmed + ROTATION_GRACE, "too slow for the window"
            assert in_grace.json()["user"] == "alice"
            assert in_grace.json()["id"] == current.json()["id"]
            assert SESSION not in set_cookies(in_grace)
            assert events == []

            # after the grace window (whole seconds on the server), the old id is a
            # replayed copy: the whole session ends
            sleep_until(math.floor(confirmed) + ROTATION_GRACE + 1.1)
            replayed = stale.get(f"{url}/me")
            assert replayed.json()["user"] is None
            assert replayed.json()["session"] == {}
            assert set_cookies(replayed)[SESSION][1]["max-age"] == "0"
            assert events == ["replayed_id"]
            ended = browser.get(f"{url}/app/inbox")
            assert ended.json()["user"] is None, "the current cookie is dead too"
            assert ended.json()["session"] == {}
            assert SESSION not in browser.jar
            assert events == ["replayed_id", "revoked"]
    finally:
        store.close()
