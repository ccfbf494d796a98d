"""Load and faults against a real server: uvicorn + RedisStore on 127.0.0.1, bounded in time.

- 32 concurrent clients for 10 s: no 5xx, no session lost, none crossed (each client only
  ever sees its own user, secret and counter), no write lost, every id distinct;
- Redis killed mid-run: the application answers 503, public pages are served with an
  empty session and no cookie change, writes and logins are refused; nobody is served as
  logged in without the store's word. Redis restarted (empty: the test server keeps no
  data): every client finds itself logged out, logs in again, and full service returns;
- the key ring rotated mid-run ([new, old]), then the old key removed: nobody is logged
  out, and every cookie ends up sealed under the new key.

The server is a uvicorn process (``load_app.py``); the clients are asyncio tasks in this
process, each with its own httpx connection and a cookie jar kept by hand.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import sessionkit
from sessionkit.keys import KeyRing
from sessionkit.seal import b64decode
from support import free_port, start_uvicorn_process, stop_process, wait_for_port

pytestmark = pytest.mark.security

HERE = Path(__file__).resolve().parent
CLIENTS = 32
LOAD_SECONDS = 10.0
STARTUP_TIMEOUT = 30.0
SESSION = "session"  # the session cookie's name with insecure_development=True


# ---------------------------------------------------------------- the server


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    admin: str

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_server(redis_up: Any, tmp_path: Path) -> Iterator[Callable[[list[str]], Server]]:
    """``start_server(keys)``: a uvicorn process serving load_app on the session's Redis."""
    started: list[Server] = []

    def start(keys: list[str]) -> Server:
        port = free_port()
        admin = secrets.token_urlsafe(16)
        log = tmp_path / f"uvicorn-{port}.log"
        env = {
            **os.environ,
            "SK_LOAD_KEYS": ",".join(keys),
            "SK_LOAD_REDIS": redis_up.url,
            "SK_LOAD_PREFIX": f"load:{uuid.uuid4().hex}:",
            "SK_LOAD_ADMIN": admin,
            "PYTHONUNBUFFERED": "1",
        }
        process = start_uvicorn_process(
            "load_app:create_app", HERE, port, log, env, "--no-access-log"
        )
        server = Server(f"http://127.0.0.1:{port}", process, log, admin)
        started.append(server)
        if not wait_for_port(port, process, STARTUP_TIMEOUT):
            pytest.fail(f"uvicorn did not start; its log:\n{server.log_text()}")
        return server

    try:
        yield start
    finally:
        for server in started:
            stop_process(server.process)
    for server in started:
        text = server.log_text()
        assert "Traceback" not in text, text[-4000:]


# ---------------------------------------------------------------- the clients


@dataclass
class Record:
    """One request as the client saw it."""

    client: int
    method: str
    path: str
    sent: float
    done: float
    status: int
    body: dict[str, Any] | None
    session_cookie: str | None  # "" when the response expired it, None when untouched
    believed: bool  # whether the client believed it was logged in when it sent this
    as_user: str  # the user the client was (or was becoming) when it sent this


@dataclass
class Client:
    index: int
    http: httpx.AsyncClient
    records: list[Record] = field(default_factory=list)
    jar: dict[str, str] = field(default_factory=dict)
    user: str = ""
    secret: str = ""
    n: int = 0
    logged_in: bool = False
    logins: int = 0
    problems: list[str] = field(default_factory=list)

    async def request(self, method: str, path: str, json: Any = None) -> Record:
        headers = {"Accept": "application/json"}
        if self.jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        sent = time.monotonic()
        believed, as_user = self.logged_in, self.user
        response = await self.http.request(method, path, json=json, headers=headers)
        done = time.monotonic()
        self.http.cookies.clear()  # the jar is ours
        cookie = None
        for header in response.headers.get_list("set-cookie"):
            pair, _, attrs = header.partition(";")
            name, _, value = pair.strip().partition("=")
            if "max-age=0" in attrs.lower():
                self.jar.pop(name, None)
                value = ""
            else:
                self.jar[name] = value
            if name == SESSION:
                cookie = value
        body = None
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
        record = Record(
            self.index,
            method,
            path,
            sent,
            done,
            response.status_code,
            body,
            cookie,
            believed,
            as_user,
        )
        self.records.append(record)
        self._check(record)
        return record

    def _check(self, record: Record) -> None:
        """What every answer must satisfy, whatever the phase: never someone else's data."""
        if record.status >= 500 and record.status != 503:
            self.problems.append(f"{record.status} on {record.method} {record.path}")
        body = record.body
        if (
            record.status == 200
            and body is not None
            and body.get("user") is not None
            and (body["user"] != self.user or body["secret"] != self.secret)
        ):
            self.problems.append(f"crossed: saw {body['user']} as {self.user}")

    async def login(self) -> bool:
        self.user = f"user{self.index}-{secrets.token_hex(4)}"
        self.secret = secrets.token_urlsafe(12)
        record = await self.request("POST", "/login", {"user": self.user, "secret": self.secret})
        if record.status == 200:
            self.logged_in, self.n = True, 0
            self.logins += 1
            return True
        return False

    async def run(self, stop_at: float) -> None:
        """Log in, then read, write and read again until ``stop_at``; re-login when out."""
        while time.monotonic() < stop_at:
            if not self.logged_in:
                if not await self.login():
                    await asyncio.sleep(0.05)
                continue
            me = await self.request("GET", "/app/me")
            if me.status == 503:
                await asyncio.sleep(0.05)
                continue
            if me.status != 200 or me.body is None:
                continue
            if me.body["user"] is None:
                self.logged_in = False  # the checks decide whether that was allowed
                continue
            if me.body["n"] != self.n:
                self.problems.append(f"lost write: n={me.body['n']}, expected {self.n}")
            bump = await self.request("POST", "/app/bump", {"n": self.n + 1})
            if bump.status == 200 and bump.body is not None and bump.body["user"] == self.user:
                self.n += 1
            await self.request("GET", "/me")
            if self.n % 5 == 0:
                await self.request("POST", "/note", {"note": f"n{self.n}"})


async def _run_clients(
    url: str, seconds: float, during: Callable[[], Any] | None = None
) -> list[Client]:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    https = [
        httpx.AsyncClient(base_url=url, timeout=15, limits=limits, trust_env=False)
        for _ in range(CLIENTS)
    ]
    clients = [Client(i, http) for i, http in enumerate(https)]
    stop_at = time.monotonic() + seconds
    try:
        tasks = [asyncio.create_task(c.run(stop_at)) for c in clients]
        if during is not None:
            await during()
        await asyncio.gather(*tasks)
    finally:
        for http in https:
            await http.aclose()
    return clients


def _summary(clients: list[Client], seconds: float) -> str:
    records = [r for c in clients for r in c.records]
    latencies = sorted(r.done - r.sent for r in records)
    p99 = latencies[int(len(latencies) * 0.99)] if latencies else 0.0
    return (
        f"{CLIENTS} clients, {len(records)} requests in {seconds:.0f}s "
        f"({len(records) / seconds:.0f}/s), median {statistics.median(latencies) * 1e3:.1f} ms, "
        f"p99 {p99 * 1e3:.1f} ms"
    )


def _ids(clients: list[Client]) -> dict[int, set[str]]:
    return {
        c.index: {r.body["id"] for r in c.records if r.body and r.body.get("user") == c.user}
        for c in clients
    }


# ---------------------------------------------------------------- the tests


@pytest.mark.asvs("SK-LOAD", "7.2.3", "11.5.2")
def test_32_clients_for_10_seconds_see_only_their_own_sessions(
    start_server: Callable[[list[str]], Server], record_property: pytest.RecordProperty
) -> None:
    server = start_server([sessionkit.generate_key()])
    clients = asyncio.run(_run_clients(server.url, LOAD_SECONDS))
    record_property("security_note", _summary(clients, LOAD_SECONDS))
    problems = [p for c in clients for p in c.problems]
    assert problems == []
    records = [r for c in clients for r in c.records]
    assert [r for r in records if r.status != 200] == []
    assert all(c.logins == 1 for c in clients), "nobody was logged out"
    lost = [r for r in records if r.body is not None and r.body["user"] is None]
    assert lost == []
    assert len(records) >= CLIENTS * 20, "the load was real"
    # every client's ids (rotated every 2 s) are its own: no id was ever handed out twice
    ids = _ids(clients)
    all_ids = [i for s in ids.values() for i in s]
    assert len(all_ids) == len(set(all_ids))
    assert all(len(s) >= 2 for s in ids.values()), "ids rotated under load"


@pytest.mark.asvs("16.5.2", "16.5.3", "SK-LOAD", "7.2.1")
def test_redis_killed_mid_run_fails_closed_and_service_returns(
    start_server: Callable[[list[str]], Server],
    redis_up: Any,
    record_property: pytest.RecordProperty,
) -> None:
    server = start_server([sessionkit.generate_key()])
    times: dict[str, float] = {}
    strangers: list[Record] = []

    async def outage() -> None:
        await asyncio.sleep(2.5)
        times["down_called"] = time.monotonic()
        await asyncio.to_thread(redis_up.stop)
        times["down"] = time.monotonic()
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
            stranger = Client(-1, http, user="stranger")
            for _ in range(3):  # nobody can log in while the store is down
                strangers.append(
                    await stranger.request("POST", "/login", {"user": "m", "secret": "s"})
                )
                strangers.append(await stranger.request("GET", "/me"))
                await asyncio.sleep(0.5)
        await asyncio.sleep(max(0.0, times["down"] + 3.0 - time.monotonic()))
        times["up_called"] = time.monotonic()
        await asyncio.to_thread(redis_up.start)
        times["up"] = time.monotonic()

    seconds = 11.0
    clients = asyncio.run(_run_clients(server.url, seconds, outage))
    record_property("security_note", _summary(clients, seconds))
    down, up_called = times["down"], times["up_called"]
    assert [p for c in clients for p in c.problems] == []

    in_outage = [r for c in clients for r in c.records if r.sent > down and r.done < up_called]
    assert len(in_outage) > CLIENTS, "the clients kept asking during the outage"
    for r in in_outage + strangers:
        if r.path == "/me" and r.method == "GET":
            # a public page: served, but as nobody, and no session cookie changes
            assert r.status == 200, r
            assert r.body is not None, r
            assert r.body["user"] is None, r
            assert r.body["secret"] is None, r
            assert r.session_cookie is None, r
        else:
            # the application, any write, any login: refused, never a success
            assert r.status == 503, r
    for client in clients:
        before = [r for r in client.records if r.done < times["down_called"]]
        assert before, client.index
        assert all(r.status == 200 for r in before), client.index
        assert all(r.body["user"] == r.as_user for r in before if r.body), client.index
        after = [r for r in client.records if r.sent > up_called]
        # the store came back empty: the old session is gone (refused, never adopted),
        # the client logs in again, and full service returns
        assert client.logins == 2, (client.index, client.logins)
        relogin = next(i for i, r in enumerate(after) if r.path == "/login" and r.status == 200)
        settled = after[relogin:]
        assert len(settled) >= 6, client.index
        assert all(r.status == 200 for r in settled), [r for r in settled if r.status != 200]
        for r in settled:
            assert r.body is not None, r
            assert r.body["user"] == client.user, r
        for r in after[:relogin]:
            assert r.status in (200, 503), r
            if r.status == 200 and r.body is not None:
                assert r.body["user"] is None, "the pre-outage session was not adopted"


@pytest.mark.asvs("SK-KEY-ROTATION-LIVE", "11.2.2")
def test_rotating_the_key_under_load_logs_nobody_out(
    start_server: Callable[[list[str]], Server], record_property: pytest.RecordProperty
) -> None:
    old, new = sessionkit.generate_key(), sessionkit.generate_key()
    new_kid = KeyRing([new]).key_ids[0]
    server = start_server([old])
    times: dict[str, float] = {}
    holder: dict[str, list[Client]] = {}

    async def admin(keys: list[str]) -> None:
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
            response = await http.post("/_admin/keys", json={"token": server.admin, "keys": keys})
            assert response.status_code == 204

    async def rotate() -> None:
        await asyncio.sleep(2.5)
        await admin([new, old])
        times["rotated"] = time.monotonic()
        # once every client has made two requests since, no cookie under the old key is left
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            clients = holder.get("clients", [])
            if clients and all(
                sum(r.sent > times["rotated"] for r in c.records) >= 2 for c in clients
            ):
                break
        await admin([new])
        times["removed"] = time.monotonic()

    async def main() -> list[Client]:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        https = [
            httpx.AsyncClient(base_url=server.url, timeout=15, limits=limits, trust_env=False)
            for _ in range(CLIENTS)
        ]
        clients = [Client(i, http) for i, http in enumerate(https)]
        holder["clients"] = clients
        stop_at = time.monotonic() + 8.0
        try:
            tasks = [asyncio.create_task(c.run(stop_at)) for c in clients]
            await rotate()
            await asyncio.gather(*tasks)
        finally:
            for http in https:
                await http.aclose()
        return clients

    clients = asyncio.run(main())
    record_property("security_note", _summary(clients, 8.0))
    assert "removed" in times, "every client made two requests after the rotation"
    assert [p for c in clients for p in c.problems] == []
    records = [r for c in clients for r in c.records]
    assert [r for r in records if r.status != 200] == []
    assert all(c.logins == 1 for c in clients), "nobody was logged out"
    assert [r for r in records if r.body is not None and r.body["user"] is None] == []
    for client in clients:
        assert sum(r.sent > times["removed"] for r in client.records) >= 2, client.index
        assert b64decode(client.jar[SESSION])[1:5] == new_kid
        assert b64decode(client.jar["visitor"])[1:5] == new_kid
