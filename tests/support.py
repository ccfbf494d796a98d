"""Plumbing the test modules share: free ports, real servers, processes, Set-Cookie parsing.

Importable as ``support`` from any test module or conftest (``pythonpath = ["tests"]`` in
pyproject.toml); the test directories are not packages (``--import-mode=importlib``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import httpx
import pytest
import uvicorn
from werkzeug.serving import make_server

import sessionkit
from sessionkit.events import (
    STORE_RECOVERED,
    STORE_UNAVAILABLE,
    LifecycleEvent,
    SecurityEvent,
)

STARTUP_TIMEOUT = 30.0

CookieAttrs = dict[str, str | None]

# ---------------------------------------------------------------- shared inputs

#: Request targets that must never lead off the site (path, query), for every test of a
#: redirect sessionkit builds from a request: the gate's and the fresh-login rule's.
HOSTILE_TARGETS = [
    ("//evil.example", ""),
    ("//evil.example/app", ""),
    ("///evil.example", ""),
    ("/\\evil.example", ""),
    ("/\\/evil.example", ""),
    ("\\\\evil.example", ""),
    ("/app/\\\\evil.example", ""),
    ("/\t/evil.example", ""),
    ("/\n/evil.example", ""),
    ("/\r\nSet-Cookie: x=1", ""),
    ("/%2F%2Fevil.example", ""),
    ("/%5Cevil.example", ""),
    ("/%09/evil.example", ""),
    ("http://evil.example/app", ""),
    ("https:evil.example", ""),
    ("/app", "next=//evil.example"),
    ("/app", "a=\r\nLocation: //evil.example"),
    ("/app", "x=\\\\evil.example"),
    ("/app", "#frag"),
    ("/app/ünïcödé", "q=ü"),
    ("/app/\x00", "\x00"),
    ("/app/..//evil.example", ""),
    (" //evil.example", ""),
    ("/\u3000/evil.example", ""),
    ("/%E3%80%80/evil.example", ""),
]

#: Real browsers' User-Agent strings, for the device labels.
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)


class Events:
    """Both hooks of a kit: every security and lifecycle event, in order."""

    def __init__(self) -> None:
        self.all: list[SecurityEvent | LifecycleEvent] = []

    def __call__(self, event: SecurityEvent | LifecycleEvent) -> None:
        self.all.append(event)

    @property
    def names(self) -> list[str]:
        """Each event's name: a lifecycle event's name, a security event's reason."""
        return [e.name if isinstance(e, LifecycleEvent) else e.reason for e in self.all]

    @property
    def outages(self) -> list[LifecycleEvent]:
        """The store's events: unavailable and recovered."""
        return [
            e
            for e in self.all
            if isinstance(e, LifecycleEvent) and e.name in (STORE_UNAVAILABLE, STORE_RECOVERED)
        ]

    def settings(self) -> dict[str, Any]:
        """The kit settings that send both hooks here."""
        return {"on_security_event": self, "on_lifecycle_event": self}


# ---------------------------------------------------------------- modules, ports, processes


def load_module(name: str, path: Path) -> ModuleType:
    """Import the file ``path`` as a module called ``name`` (test directories are no packages)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait until 127.0.0.1:``port`` accepts; False if ``process`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop_process(
    process: subprocess.Popen[bytes],
    *,
    sig: int = signal.SIGTERM,
    timeout: float = 10.0,
    kill_timeout: float | None = None,
) -> None:
    """Send ``sig`` to a running ``process``, wait ``timeout``, then kill it and wait."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(kill_timeout)


@contextlib.contextmanager
def running_example(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log: Path,
    url: str,
    what: str,
    timeout: float = STARTUP_TIMEOUT,
    stop_timeout: float = 10.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run an example server's command line until ``url`` answers ``GET /`` with 200.

    Its console output goes to ``log``; a server that exits or never answers fails the
    test with the end of that output. Stopped with SIGINT, as a terminal would.
    """
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not answer in time:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield process
    finally:
        stop_process(process, sig=signal.SIGINT, timeout=stop_timeout, kill_timeout=stop_timeout)


@contextlib.contextmanager
def running_fastapi_demo(state: Path, *, timeout: float = 60.0) -> Iterator[str]:
    """The FastAPI demo under uvicorn, as ``./scripts/demo`` starts it; yields its base URL.

    Its SQLite file and console log go to ``state``; it gets a fresh key.
    """
    env = {
        **os.environ,
        "SESSIONKIT_DEMO_DIR": str(state),
        "SESSIONKIT_SECRET_KEYS": sessionkit.generate_key(),
        "PYTHONUNBUFFERED": "1",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "uvicorn", "examples.fastapi_app:app", "--host", "127.0.0.1"]
    with running_example(
        [*argv, "--port", str(port)],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        log=state / "console.log",
        url=url,
        what="the FastAPI demo",
        timeout=timeout,
    ):
        yield url


def start_uvicorn_process(
    factory: str, app_dir: Path, port: int, log: Path, env: dict[str, str], *extra: str
) -> subprocess.Popen[bytes]:
    """Start ``uvicorn --factory`` on 127.0.0.1:``port`` in a process logging to ``log``."""
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--app-dir",
        str(app_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--lifespan",
        "off",
        *extra,
    ]
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )


# ---------------------------------------------------------------- servers in threads


@contextlib.contextmanager
def running_uvicorn(
    app: Any,
    *,
    lifespan: Literal["auto", "on", "off"] = "off",
    timeout: float = STARTUP_TIMEOUT,
    ws: Literal["none", "websockets-sansio"] = "none",
) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yield its base URL; stop it cleanly.

    ``ws="websockets-sansio"`` serves WebSockets too.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan=lifespan, log_level="warning", http="h11", ws=ws, loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn exited before it started serving")
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start serving in time")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not shut down"


@contextlib.contextmanager
def running_werkzeug(app: Any, *, timeout: float = STARTUP_TIMEOUT) -> Iterator[str]:
    """Serve ``app`` with werkzeug's threaded server in a thread; yield its base URL; stop it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout)
        assert not thread.is_alive(), "werkzeug did not shut down"


# ---------------------------------------------------------------- Set-Cookie


def parse_set_cookie(header: str) -> tuple[str, str, CookieAttrs]:
    """``name=value; Attr=x; Flag`` -> (name, value, {lower-cased attribute: value or None})."""
    first, *rest = header.split(";")
    name, _, value = first.strip().partition("=")
    attrs: CookieAttrs = {}
    for part in rest:
        attr, sep, attr_value = part.strip().partition("=")
        attrs[attr.lower()] = attr_value if sep else None
    return name, value, attrs


def cookies_by_name(headers: Iterable[str]) -> dict[str, tuple[str, CookieAttrs]]:
    """Set-Cookie values by cookie name: name -> (value, attributes); each name only once."""
    out: dict[str, tuple[str, CookieAttrs]] = {}
    for header in headers:
        name, value, attrs = parse_set_cookie(header)
        assert name not in out, f"{name} set twice in one response"
        out[name] = (value, attrs)
    return out


def set_cookies(response: Any) -> dict[str, tuple[str, CookieAttrs]]:
    """An httpx or werkzeug response's Set-Cookie headers by cookie name."""
    headers = response.headers
    if hasattr(headers, "get_list"):  # httpx
        return cookies_by_name(headers.get_list("set-cookie"))
    return cookies_by_name(headers.getlist("Set-Cookie"))  # werkzeug


class SharedJar:
    """One browser's cookies, shared by its tabs (threads), as a browser keeps them.

    A tab takes ``header()`` when it sends and gives the response to ``take()`` when it
    arrives, so a response that arrives late may bring back an older cookie, as in a
    browser.
    """

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}
        self._lock = threading.Lock()

    def header(self) -> dict[str, str]:
        """The ``Cookie`` header to send now ({} when the jar is empty)."""
        with self._lock:
            if not self.cookies:
                return {}
            return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def take(self, response: Any) -> None:
        """Keep the response's cookies; a ``Max-Age=0`` one is dropped."""
        with self._lock:
            for name, (value, attrs) in set_cookies(response).items():
                if attrs.get("max-age") == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = value


# ---------------------------------------------------------------- ASGI WebSocket


async def run_websocket(
    app: Any, headers: list[tuple[bytes, bytes]], path: str = "/ws"
) -> list[dict[str, Any]]:
    """Connect to ``path`` as an ASGI server would; return the messages the app sent."""
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "wss",
        "server": ("testserver", 443),
        "client": ("127.0.0.1", 51000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "subprotocols": [],
        "state": {},
    }
    incoming = [{"type": "websocket.connect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await app(scope, receive, send)
    return sent
