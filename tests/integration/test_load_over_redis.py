"""Load through real servers: three tabs per user on two uvicorn workers sharing Redis.

Every user has one cookie jar shared by three tabs, as a browser has; each tab sends
requests one after another to either worker at random, with whatever cookie the jar
holds when it sends, and the jar takes each response's cookies when it arrives (so a
slower response may bring back an older id). Ids rotate on a timer (``rotate_every=1``,
the smallest setting: a rotation as soon as the last one's grace window is over) and on
explicit ``session.rotate()`` calls (a privilege change every few seconds per user), and a
quarter of the requests write the session. Nobody is ever logged out wrongly, no worker
raises a theft alarm, no request gets a 500 or a 503.
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import sessionkit
from support import (
    SharedJar,
    free_port,
    load_module,
    start_uvicorn_process,
    stop_process,
    wait_for_port,
)

HERE = Path(__file__).resolve().parent
worker_app = load_module("sessionkit_load_worker_app", HERE / "worker_app.py")

USERS = 6
TABS = 3
SECONDS = 6.0
ROTATE_EVERY = 1
ROTATION_GRACE = 2
EXPLICIT_EVERY = 2.5  # seconds between two explicit rotations (privilege changes) of a user
SESSION = "session"  # the session cookie's name with insecure_development=True


@dataclass
class Worker:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture
def redis_workers(redis_server: Any, tmp_path: Path) -> Iterator[list[Worker]]:
    """Two uvicorn worker processes sharing one Redis and one key ring, rotating every second."""
    env = {
        **os.environ,
        "SESSIONKIT_SECRET_KEYS": sessionkit.generate_key(),
        worker_app.REDIS_ENV: redis_server.url,
        worker_app.ROTATE_EVERY_ENV: str(ROTATE_EVERY),
        worker_app.ROTATION_GRACE_ENV: str(ROTATION_GRACE),
        "PYTHONUNBUFFERED": "1",
    }
    workers: list[Worker] = []
    try:
        for name in ("A", "B"):
            port = free_port()
            log = tmp_path / f"worker-{name}.log"
            process = start_uvicorn_process("worker_app:create_app", HERE, port, log, env)
            workers.append(Worker(f"http://127.0.0.1:{port}", process, log))
        for worker in workers:
            port = int(worker.url.rsplit(":", 1)[1])
            if not wait_for_port(port, worker.process, 30.0):
                pytest.fail(f"a worker did not start serving; its log:\n{worker.log.read_text()}")
        yield workers
    finally:
        for worker in workers:
            stop_process(worker.process)


@dataclass
class Tally:
    """What the tabs saw, added up under a lock."""

    statuses: Counter[int] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    wrongful_logouts: list[tuple[str, str, str]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def tab(
    user: str, jar: SharedJar, workers: list[Worker], until: float, seed: int, tally: Tally
) -> None:
    """One tab's requests until ``until``; the first tab of each user rotates explicitly."""
    chance = random.Random(seed)
    next_rotation = time.monotonic() + chance.uniform(0, EXPLICIT_EVERY)
    rotates = seed % TABS == 0
    with httpx.Client(trust_env=False, timeout=15) as client:
        while time.monotonic() < until:
            base = chance.choice(workers).url
            roll = chance.random()
            if rotates and time.monotonic() >= next_rotation:
                next_rotation += EXPLICIT_EVERY
                kind, method, path, body = "rotate", "POST", "/rotate", None
            elif roll < 0.25:
                kind, method, path, body = "write", "POST", "/note", {"note": roll}
            else:
                kind, method, path, body = "read", "GET", "/app/inbox", None
            try:
                response = client.request(method, base + path, headers=jar.header(), json=body)
                client.cookies.clear()  # the jar is the browser's, not the client's
                jar.take(response)
            except BaseException as exc:  # pragma: no cover - reported by the test
                with tally.lock:
                    tally.errors.append(exc)
                return
            with tally.lock:
                tally.statuses[response.status_code] += 1
                tally.kinds[kind] += 1
                if response.status_code == 200 and response.json()["user"] != user:
                    tally.wrongful_logouts.append((user, kind, base))


def test_three_tabs_per_user_on_two_workers_rotating_every_second(
    redis_workers: list[Worker],
) -> None:
    users = [f"user-{n}" for n in range(USERS)]
    jars = {user: SharedJar() for user in users}
    with httpx.Client(trust_env=False, timeout=15) as client:
        for n, user in enumerate(users):
            response = client.post(f"{redis_workers[n % 2].url}/login", json={"user": user})
            client.cookies.clear()
            jars[user].take(response)
            assert response.json()["user"] == user
    tally = Tally()
    until = time.monotonic() + SECONDS
    tabs = [
        threading.Thread(target=tab, args=(user, jars[user], redis_workers, until, seed, tally))
        for seed, user in enumerate(user for user in users for _ in range(TABS))
    ]
    for thread in tabs:
        thread.start()
    for thread in tabs:
        thread.join()

    assert tally.errors == []
    total = sum(tally.statuses.values())
    assert total > 1000, f"only {total} requests: not a load test"
    assert tally.kinds["rotate"] >= USERS * int(SECONDS // EXPLICIT_EVERY)
    assert tally.wrongful_logouts == []
    store_errors = [
        line
        for worker in redis_workers
        for line in worker.log.read_text(errors="replace").splitlines()
        if "session store unavailable" in line
    ]
    assert store_errors == [], "every 503 would be one of these"
    assert tally.statuses == Counter({200: total}), "no 500s, no 503s, nothing but 200s"
    for worker in redis_workers:
        assert worker.process.poll() is None
    events = [
        line.removeprefix(worker_app.EVENT_LINE)
        for worker in redis_workers
        for line in worker.log.read_text(errors="replace").splitlines()
        if line.startswith(worker_app.EVENT_LINE)
    ]
    assert "replayed_id" not in events
    assert events == [], "honest browsers set off no security event at all"
    for worker in redis_workers:
        text = worker.log.read_text(errors="replace")
        assert "Traceback" not in text
        assert "ERROR" not in text
    # every user is still logged in, on both workers
    with httpx.Client(trust_env=False, timeout=15) as client:
        for user, jar in jars.items():
            for worker in redis_workers:
                response = client.get(f"{worker.url}/me", headers=jar.header())
                client.cookies.clear()
                jar.take(response)
                assert response.json()["user"] == user
