"""Coverage-guided fuzz target: raw request bytes through sessionkit's header-to-session path.

Run by ``test_fuzz.py`` in a subprocess for a bounded time, or by hand::

    python tests/security/fuzz_headers.py -max_total_time=60 /tmp/corpus

One input is split into a request: the first byte chooses the method, ``Accept``, the
opt-out header and what the application does with the session (nothing, read, write,
log in, rotate, log out), the second whether the path is under ``/app`` and how the
server decoded it; the rest, split on ``\\n``, gives two ``Cookie`` header lines, the
path, the query and ``X-Forwarded-For``, all as raw bytes. The request goes through
the real ASGI middleware with a real :class:`SessionKit` (fixed key and clock, the
cookies-required gate on ``/app``), and every answer is checked:

- nothing raises; the status is one the gate or the app gives (200, 303, 403);
- no header holds a control character, every ``Set-Cookie`` is ``name=base64url`` with
  sessionkit's attributes, every ``Location`` is a same-origin path;
- the app never sees a session the server did not issue: a logged-in session appears
  only when the request carried exactly one of the tokens issued at start-up, unaltered.

With ``atheris`` missing, ``test_fuzz.py`` feeds the same :func:`one_input` from
hypothesis instead, and says so in the report.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

try:
    import atheris
except ImportError:  # the hypothesis stand-in in test_fuzz.py uses one_input only
    atheris = None

if atheris is not None and __name__ == "__main__":
    with atheris.instrument_imports(include=["sessionkit"]):
        import sessionkit
        import sessionkit.asgi
else:
    import sessionkit
    import sessionkit.asgi

#: A fixed test key (never used anywhere else), so seeded tokens stay valid across runs.
KEY = "q0m5Xl3Jr8E9o1xYb2N4V6c7Z8aB0dF1gH2iJ3kL4mN"
NOW = 1_800_000_000.0
USERS = ["alice", "bob", 7]
SESSION = "__Host-session"
VISITOR = "__Host-visitor"
ORIGIN = "https://site.example"

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SET_COOKIE = re.compile(
    r"(__Host-session|__Host-visitor|__Host-cookie-check|__Host-opt-out)=([A-Za-z0-9_-]*)"
    r"(; Max-Age=\d+)?(; Expires=[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT)?"
    r"; Path=/; Secure; HttpOnly; SameSite=Lax"
)
_METHODS = ["GET", "HEAD", "POST", "PUT"]
_ACCEPT = [None, "text/html", "application/json", "*/*"]


def _kit() -> sessionkit.SessionKit:
    return sessionkit.SessionKit(
        secret_keys=[KEY], require_cookies=["/app"], clock=lambda: NOW, trusted_proxy_hops=1
    )


KIT = _kit()


def _issue() -> dict[str, Any]:
    """Log each user in once; token -> user."""
    issued: dict[str, Any] = {}
    for user in USERS:
        ex = KIT.open(None, now=NOW)
        ex.session.login(user)
        ex.session["n"] = 1
        for name, value in ex.response_headers([]):
            if name == "Set-Cookie" and value.startswith(SESSION + "="):
                issued[value.split(";", 1)[0].split("=", 1)[1]] = user
    return issued


ISSUED = _issue()
_NAME = SESSION.encode()


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def _app_for(action: int, seen: list[Any]) -> Callable[..., Coroutine[Any, Any, None]]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        session = scope["session"]
        seen.append((session.user_id, dict(session), session.is_new))
        if action == 1:
            session.get("n")
        elif action == 2:
            session["n"] = session.get("n", 0) + 1 if isinstance(session.get("n"), int) else 1
        elif action == 3:
            session.login("mallory")
        elif action == 4:
            session.rotate()
        elif action == 5:
            session.invalidate()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"cache-control", b"public")],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Drive a coroutine that never waits on anything (no store, in-memory send)."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    raise AssertionError("the middleware waited on something without a store")


def one_input(data: bytes) -> None:
    """Run one fuzzed request and check every invariant; raise on any violation."""
    if not data:
        return
    flags, extra, rest = data[0], data[1] if len(data) > 1 else 0, data[2:]
    fields = rest.split(b"\n", 4) + [b""] * 5
    cookie1, cookie2, path, query, forwarded = fields[:5]
    headers: list[tuple[bytes, bytes]] = []
    for line in (cookie1, cookie2):
        if line:
            headers.append((b"cookie", line))
    if forwarded:
        headers.append((b"x-forwarded-for", forwarded))
    accept = _ACCEPT[(flags >> 2) & 3]
    if accept is not None:
        headers.append((b"accept", accept.encode()))
    if flags & 0x80:
        headers.append((b"sec-gpc", b"1"))
    if extra & 2:
        # as a server that decodes raw bytes with surrogateescape would
        text_path = "/" + path.decode("utf-8", "surrogateescape").lstrip("/")
    else:
        # as uvicorn does: percent-escapes as UTF-8 (errors replaced)
        text_path = "/" + unquote(path.decode("latin-1")).lstrip("/")
    if extra & 1:
        text_path = "/app" + text_path
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": _METHODS[flags & 3],
        "scheme": "https",
        "path": text_path,
        "raw_path": (b"/app/" if extra & 1 else b"/") + path.lstrip(b"/"),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("203.0.113.7", 50000),
        "server": ("site.example", 443),
    }
    seen: list[Any] = []
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    action = ((flags >> 4) & 7) % 6
    middleware = sessionkit.asgi.SessionMiddleware(_app_for(action, seen), kit=KIT)
    _run(middleware(scope, _receive, send))
    start = sent[0]
    assert start["type"] == "http.response.start"
    status = start["status"]
    assert status in (200, 303, 403), status
    for raw_name, raw_value in start["headers"]:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        assert not _CONTROL.search(value), (name, value)
        if name == "set-cookie":
            assert _SET_COOKIE.fullmatch(value), value
        elif name == "location":
            assert value.startswith("/"), value
            assert not value.startswith(("//", "/\\")), value
            assert all(0x21 <= ord(c) <= 0x7E for c in value), value
            target = urlsplit(urljoin(ORIGIN + "/app/x", value.replace("\\", "/")))
            assert f"{target.scheme}://{target.netloc}" == ORIGIN, value
    if status != 200:
        assert not seen, "the app is never called while the gate answers"
        return
    user, data, is_new = seen[0]
    if user is not None or not is_new:
        # exactly one pair named exactly ours, holding exactly a token issued at start-up
        cookie_text = b"; ".join(line for line in (cookie1, cookie2) if line)
        pairs = [pair.partition(b"=") for pair in cookie_text.split(b";")]
        ours = [v.strip(b" \t") for n, eq, v in pairs if eq and n.strip(b" \t") == _NAME]
        assert len(ours) == 1, "a session appeared that the server did not issue"
        token = ours[0].decode("latin-1")
        assert token in ISSUED, "a session appeared that the server did not issue"
        assert user == ISSUED[token]
        assert data == {"n": 1}


def seeds() -> list[bytes]:
    """Starting inputs: genuine tokens in various places, duplicates, gate paths."""
    tokens = list(ISSUED)
    good = tokens[0].encode()
    return [
        b"\x00\x00__Host-session=" + good + b"\n\n/\n\n",
        b"\x10\x00__Host-session=" + good + b"; a=b\n\n/me\nx=1\n10.0.0.1",
        b"\x20\x00a=b, __Host-session=" + good + b"\n__Host-session=" + good + b"\n/\n\n",
        b"\x01\x01\n\n/inbox\nsessionkit-cookie-check=1\n",
        b"\x00\x01__Host-cookie-check=1\n\n/inbox\na=1&sessionkit-cookie-check=1\n",
        b"\x30\x01__Host-session="
        + tokens[1].encode()
        + b"\n__Host-visitor=x\n/app\n\n1.2.3.4, 5.6.7.8",
        b"\x10\x01__Host-session=" + good[:-3] + b"AAA\n\n//evil.example\n\n",
        b"\x02\x00\n\n/\\evil\n\n",
        b"\x00\x03\n\n/\xff\xfe\xed\xa0\x80\n\n",
    ]


DICTIONARY = [
    b"__Host-session=",
    b"__Host-visitor=",
    b"__Host-cookie-check=1",
    b"__Host-opt-out=1",
    b"sessionkit-cookie-check=1",
    b"; ",
    b", ",
    b'"',
    b"/app",
    b"/../",
    b"//",
    b"\\",
    b"%2F",
    b"\x00",
    b"\xff",
]


def write_dictionary(path: Path) -> None:
    """Write :data:`DICTIONARY` in libFuzzer's format (every byte hex-escaped)."""
    lines = ['"' + "".join(f"\\x{b:02x}" for b in entry) + '"' for entry in DICTIONARY]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> None:
    if atheris is None:
        raise SystemExit("atheris is not installed: pip install atheris")
    corpus = [a for a in argv[1:] if not a.startswith("-")]
    for directory in corpus[:1]:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(seeds()):
            (path / f"seed-{i}").write_bytes(seed)
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
