"""Streaming responses while other tabs rotate the id, through real servers and Redis.

A streaming response is saved when it starts (ASGI: at ``http.response.start``; WSGI: in
``start_response``), then its body takes a while; meanwhile the browser's other tabs
rotate the id (on the timer, every second, and explicitly) and write the session. Served
by uvicorn (ASGI) and by werkzeug's threaded server (WSGI), with the real middleware and
a real Redis: every stream arrives whole, nobody is logged out, no theft alarm is raised.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import sessionkit
import sessionkit.wsgi
from sessionkit.stores.redis import RedisStore
from support import SharedJar, load_module, running_uvicorn, running_werkzeug

HERE = Path(__file__).resolve().parent
worker_app = load_module("sessionkit_streaming_worker_app", HERE / "worker_app.py")
STREAM = b"".join(worker_app.STREAM_CHUNKS)
SECONDS = 2.5
ROTATE_EVERY = 1
ROTATION_GRACE = 2
EXPLICIT_EVERY = 1.2


def make_wsgi_app(kit: sessionkit.SessionKit) -> Callable[..., Iterable[bytes]]:
    """The WSGI twin of ``worker_app``'s routes used here, its ``/stream`` as slow."""

    def stream(pause: float) -> Iterator[bytes]:
        for chunk in worker_app.STREAM_CHUNKS:
            time.sleep(pause)
            yield chunk

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        session = sessionkit.wsgi.session_of(environ)
        path = environ["PATH_INFO"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length)) if length else {}
        if path == "/stream":
            session["streamed"] = session.get("streamed", 0) + 1
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return stream(float(environ.get("QUERY_STRING", "").partition("=")[2] or 0.05))
        if path == "/login":
            session.login(body["user"])
        elif path == "/note":
            session["note"] = body["note"]
        elif path == "/rotate":
            session.rotate()
        payload = json.dumps({"user": session.user_id}).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    return sessionkit.wsgi.SessionMiddleware(app, kit=kit)


@pytest.fixture(params=["uvicorn", "werkzeug"])
def site(request: pytest.FixtureRequest, redis_server: Any) -> Iterator[tuple[str, list[str]]]:
    """The app on a RedisStore, rotating every second, served by uvicorn or werkzeug."""
    events: list[str] = []
    store = RedisStore(redis_server.url, prefix=f"stream:{uuid.uuid4().hex}:")
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
        if request.param == "uvicorn":
            served = running_uvicorn(worker_app.build_app(kit))
        else:
            served = running_werkzeug(make_wsgi_app(kit))
        with served as url:
            yield url, events
    finally:
        store.close()


def test_streams_with_parallel_rotations_log_nobody_out(site: tuple[str, list[str]]) -> None:
    url, events = site
    jar = SharedJar()
    with httpx.Client(trust_env=False, timeout=15) as client:
        response = client.post(f"{url}/login", json={"user": "alice"})
        client.cookies.clear()
        jar.take(response)
    assert response.json()["user"] == "alice"
    seen: Counter[str] = Counter()
    problems: list[str] = []
    lock = threading.Lock()
    until = time.monotonic() + SECONDS

    def streaming_tab(pause: float) -> None:
        with httpx.Client(trust_env=False, timeout=15) as client:
            while time.monotonic() < until:
                response = client.get(f"{url}/stream?pause={pause}", headers=jar.header())
                client.cookies.clear()
                jar.take(response)
                with lock:
                    seen["stream"] += 1
                    if response.status_code != 200 or response.content != STREAM:
                        problems.append(f"stream: {response.status_code}")

    def rotating_tab(seed: int) -> None:
        chance = random.Random(seed)
        next_rotation = time.monotonic() + EXPLICIT_EVERY
        with httpx.Client(trust_env=False, timeout=15) as client:
            while time.monotonic() < until:
                if time.monotonic() >= next_rotation:
                    next_rotation += EXPLICIT_EVERY
                    kind, method, path, body = "rotate", "POST", "/rotate", None
                elif chance.random() < 0.3:
                    kind, method, path, body = "write", "POST", "/note", {"note": seed}
                else:
                    kind, method, path, body = "read", "GET", "/me", None
                response = client.request(method, url + path, headers=jar.header(), json=body)
                client.cookies.clear()
                jar.take(response)
                with lock:
                    seen[kind] += 1
                    if response.status_code != 200 or response.json()["user"] != "alice":
                        problems.append(f"{kind}: {response.status_code} {response.text[:80]}")

    tabs = [
        threading.Thread(target=streaming_tab, args=(0.05,)),
        threading.Thread(target=streaming_tab, args=(0.2,)),
        threading.Thread(target=rotating_tab, args=(1,)),
    ]
    for thread in tabs:
        thread.start()
    for thread in tabs:
        thread.join()

    assert problems == []
    assert events == [], "no replayed_id, no revoked: not one security event"
    assert seen["stream"] >= 10
    assert seen["rotate"] >= 2
    with httpx.Client(trust_env=False, timeout=15) as client:
        final = client.get(f"{url}/me", headers=jar.header())
    assert final.json()["user"] == "alice"
