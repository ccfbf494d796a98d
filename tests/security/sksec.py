"""Helpers of the security suite: a cookie-keeping client for the core, an ASGI caller.

``CoreBrowser`` drives :meth:`SessionKit.open` the way a front end does (open, load the
store record, run the app's code, finish) and keeps cookies like a browser, so a test can
copy its jar the way a thief would. ``call_asgi`` runs one request through an ASGI app
with raw header bytes, for inputs an HTTP client library would refuse to send.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from sessionkit import Session, SessionKit
from sessionkit.gate import EarlyResponse
from sessionkit.seal import b64decode
from support import CookieAttrs, cookies_by_name

# RFC 6265bis cookie-octet: %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
COOKIE_OCTETS = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
ORIGIN = "https://site.example"


@dataclass
class Response:
    """What the core decided for one request."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    session: Session | None = None
    visitor: str | None = None

    def get_all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def get(self, name: str) -> str | None:
        values = self.get_all(name)
        return values[0] if values else None

    @property
    def cookies(self) -> dict[str, tuple[str, CookieAttrs]]:
        return cookies_by_name(self.get_all("Set-Cookie"))


@dataclass
class CoreBrowser:
    """A browser's cookie jar in front of the framework-free core (no HTTP)."""

    kit: SessionKit
    jar: dict[str, str] = field(default_factory=dict)

    def cookie_header(self) -> str | None:
        return "; ".join(f"{k}={v}" for k, v in self.jar.items()) or None

    def copy(self) -> CoreBrowser:
        return CoreBrowser(self.kit, dict(self.jar))

    def request(
        self,
        app: Callable[[Session], Any] | None = None,
        *,
        path: str = "/",
        method: str = "GET",
        query: str = "",
        accept: str | None = "text/html",
        app_headers: list[tuple[str, str]] | None = None,
        cookie: str | None = None,
        now: float | None = None,
        client: str | None = "203.0.113.7",
    ) -> Response:
        """Run one request; ``app`` is the application code, given the session.

        The application reads the session and the visitor id on every request (so every
        cookie is opened and judged), then runs ``app``.
        """
        header = self.cookie_header() if cookie is None else cookie
        ex = self.kit.open(
            header, path=path, method=method, query=query, accept=accept, now=now, client=client
        )
        early = ex.early
        if early is None and ex.pending is not None:
            early = ex.load_record()
        if early is not None:
            response = Response(early.status, list(early.headers), early.body)
        else:
            ex.session.get("")
            visitor = ex.visitor
            if app is not None:
                app(ex.session)
            headers = list(app_headers or [("Content-Type", "text/plain")])
            vary = [v for n, v in headers if n.lower() == "vary"]
            cache_control = [v for n, v in headers if n.lower() == "cache-control"]
            changes = ex.finish(vary, cache_control)
            if isinstance(changes, EarlyResponse):
                response = Response(changes.status, list(changes.headers), changes.body)
            else:
                if changes.drop_cache_control:
                    headers = [h for h in headers if h[0].lower() != "cache-control"]
                response = Response(200, headers + changes.add, b"app", ex.session, visitor)
        for name, (value, attrs) in response.cookies.items():
            if attrs.get("max-age") == "0":
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        return response


def call_asgi(
    app: Any,
    *,
    method: str = "GET",
    path: str = "/",
    raw_path: bytes | None = None,
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    client: tuple[str, int] | None = ("203.0.113.7", 50000),
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Send one http request through an ASGI app; return status, headers and body."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape") if raw_path is None else raw_path,
        "query_string": query,
        "root_path": "",
        "headers": list(headers or []),
        "client": client,
        "server": ("site.example", 443),
    }
    sent: list[Mapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], list(start.get("headers", [])), body


def browser_resolve(location: str, base: str = ORIGIN + "/app/page") -> str:
    """Resolve a Location roughly as a WHATWG URL parser in a browser would.

    Browsers drop ASCII tab and newline characters anywhere in a URL, strip leading and
    trailing C0 controls and spaces, and treat a backslash as a slash in http(s) URLs.
    """
    cleaned = re.sub(r"[\t\n\r]", "", location).strip("\x00- ").replace("\\", "/")
    return urljoin(base, cleaned)


def same_origin(location: str) -> bool:
    """Whether a browser following ``location`` stays on :data:`ORIGIN`."""
    target = urlsplit(browser_resolve(location))
    return f"{target.scheme}://{target.netloc}" == ORIGIN


def token_header(value: str) -> bytes:
    """The first 9 bytes of a sealed token: version, key id, hour."""
    return b64decode(value)[:9]
