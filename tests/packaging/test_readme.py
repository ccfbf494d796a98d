"""Every Python code block of the README runs as written, and the apps it builds serve.

The blocks of one section (a ``##`` or ``###`` heading) run in order in one namespace, a
fresh one for each section, with ``SESSIONKIT_SECRET_KEYS`` set and an empty working
folder, as a reader would paste them. A block that defines an application is then served
by a real server on 127.0.0.1 and driven over HTTP (its WebSocket endpoint through the
ASGI interface itself): the story for each such block is in ``STORIES``, keyed by its
section and its place there, and a block that builds an app with no story fails, so a new
example cannot go untested.

A block that is only an illustration (a fragment that cannot run alone) is marked by the
line ``<!-- readme: not run -->`` right above its opening fence; the marker is invisible
where the README is rendered. The Django block is a settings module: it is loaded as the
settings of a Django process of its own (Django is configured once per process) and
served from there.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import sessionkit
from support import cookies_by_name, run_websocket, running_uvicorn, running_werkzeug

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
NOT_RUN = "<!-- readme: not run -->"
SESSION = "__Host-session"


@dataclass(frozen=True)
class Block:
    """One ```python block: the section it is in, its place there, its first line, its code."""

    section: str
    index: int
    line: int
    code: str
    run: bool

    @property
    def name(self) -> str:
        return f"{self.section} #{self.index} (README.md line {self.line})"


def readme_blocks(text: str) -> list[Block]:
    """The python blocks of a Markdown text, each with its section and place in it."""
    blocks: list[Block] = []
    section, counts = "", {"": 0}
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        heading = re.match(r"#{2,3} (.+)", line)
        if heading:
            section = heading.group(1).strip()
            counts.setdefault(section, 0)
            continue
        if line.strip() != "```python":
            if line.startswith("```"):  # another language: skip to its end
                while number < len(lines) and lines[number].strip() != "```":
                    number += 1
                number += 1
            continue
        start = number
        while lines[number].strip() != "```":
            number += 1
        marked = start >= 2 and lines[start - 2].strip() == NOT_RUN
        blocks.append(
            Block(section, counts[section], start, "\n".join(lines[start:number]), not marked)
        )
        counts[section] += 1
        number += 1
    return blocks


BLOCKS = readme_blocks(README.read_text())


def sections() -> dict[str, list[Block]]:
    found: dict[str, list[Block]] = {}
    for block in BLOCKS:
        found.setdefault(block.section, []).append(block)
    return found


# ---------------------------------------------------------------- the stories


def same_origin(url: str) -> dict[str, str]:
    """The headers a browser sends with a form posted from the site itself."""
    return {"origin": url, "sec-fetch-site": "same-origin", "accept": "text/html"}


def session_cookie(response: httpx.Response) -> str:
    cookies = cookies_by_name(response.headers.get_list("set-cookie"))
    assert SESSION in cookies, response.headers
    value, attrs = cookies[SESSION]
    assert {"secure", "httponly"} <= set(attrs)
    return f"{SESSION}={value}"


def logs_in_then_opens_the_app(url: str, app: Any) -> str:
    """POST /login binds the session to alice; /app needs cookies and then shows her."""
    with httpx.Client(base_url=url, timeout=10) as client:
        login = client.post("/login", headers=same_origin(url))
        assert login.status_code in (200, 303), login.text
        cookie = session_cookie(login)
        private = client.get("/app", headers={"cookie": cookie})
        assert private.status_code == 200, private.text
        assert private.json()["user"] == "alice"
        blocked = client.get("/app")
        assert blocked.status_code == 303
        assert "sessionkit-cookie-check=1" in blocked.headers["location"]
    return cookie


def logs_in_and_the_websocket_reads_the_session(url: str, app: Any) -> None:
    """As above; then the WebSocket endpoint, given the same cookie, sees alice too."""
    cookie = logs_in_then_opens_the_app(url, app)
    sent = asyncio.run(run_websocket(app, [(b"cookie", cookie.encode())], path="/app/ws"))
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert json.loads(sent[1]["text"]) == {"user": "alice"}


def logs_in(url: str, app: Any) -> None:
    """POST /login answers with the user and a new session cookie."""
    with httpx.Client(base_url=url, timeout=10) as client:
        login = client.post("/login", headers=same_origin(url))
        assert login.status_code == 200, login.text
        assert login.json() == {"user": "alice"}
        session_cookie(login)


def counts_visits(url: str, app: Any) -> None:
    """The session keeps the count from one request to the next."""
    with httpx.Client(base_url=url, timeout=10) as client:
        first = client.get("/")
        assert first.text == "1"
        again = client.get("/", headers={"cookie": session_cookie(first)})
        assert again.text == "2"


Story = Callable[[str, Any], object]
#: What each block that builds an app must do, served: (section, place) -> (server, story).
STORIES: dict[tuple[str, int], tuple[str, Story]] = {
    ("Quick start", 1): ("asgi", logs_in),
    ("Quick start", 2): ("wsgi", counts_visits),
    ("FastAPI (and Starlette)", 0): ("asgi", logs_in_and_the_websocket_reads_the_session),
    ("Flask", 0): ("wsgi", logs_in_then_opens_the_app),
}


def serve(kind: str, app: Any) -> Any:
    return running_uvicorn(app) if kind == "asgi" else running_werkzeug(app)


@pytest.fixture
def reader(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The environment a reader runs the README in: a key set, an empty working folder."""
    monkeypatch.setenv("SESSIONKIT_SECRET_KEYS", sessionkit.generate_key())
    monkeypatch.chdir(tmp_path)


def test_the_readme_has_python_blocks_and_no_stale_marker() -> None:
    assert len(BLOCKS) >= 6
    text = README.read_text()
    for match in re.finditer(re.escape(NOT_RUN), text):
        following = text[match.end() :].lstrip("\n")
        assert following.startswith("```python"), "the marker must sit right above a block"


@pytest.mark.parametrize(
    "section",
    [s for s, blocks in sections().items() if s != "Django" and any(b.run for b in blocks)],
)
@pytest.mark.usefixtures("reader")
def test_each_section_runs_and_its_apps_serve(section: str) -> None:
    namespace: dict[str, Any] = {"__name__": "readme"}
    app = None
    for block in sections()[section]:
        if not block.run:
            continue
        exec(compile(block.code, block.name, "exec"), namespace)
        if namespace.get("app") is not app:
            app = namespace["app"]
            assert (block.section, block.index) in STORIES, f"{block.name} builds an untested app"
            kind, story = STORIES[block.section, block.index]
            with serve(kind, app) as url:
                story(url, app)


DJANGO_RUN = """
import json, sys, threading, http.client
from pathlib import Path

import django
from django.conf import settings

readme = {}
exec(Path(sys.argv[1]).read_text(), readme)
settings.configure(
    **{name: value for name, value in readme.items() if name.isupper()},
    SECRET_KEY="only-for-this-test-process",
    DEBUG=False,
    ALLOWED_HOSTS=["127.0.0.1"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
)
django.setup()

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from werkzeug.serving import make_server
from django.core.wsgi import get_wsgi_application


def visit(request):
    request.session["visits"] = request.session.get("visits", 0) + 1
    return JsonResponse({"visits": request.session["visits"]})


urlpatterns = [path("app/", visit), path("", visit)]

server = make_server("127.0.0.1", 0, get_wsgi_application())
threading.Thread(target=server.serve_forever, daemon=True).start()


def get(target, cookie=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
    conn.request("GET", target, headers={"Cookie": cookie} if cookie else {})
    response = conn.getresponse()
    return {
        "status": response.status,
        "location": response.getheader("Location"),
        "set_cookie": response.headers.get_all("Set-Cookie") or [],
        "body": response.read().decode(),
    }


first = get("/")
cookie = "; ".join(c.split(";")[0] for c in first["set_cookie"])
print(json.dumps({"home": first, "again": get("/", cookie), "blocked": get("/app/")}))
server.shutdown()
"""


def test_the_django_settings_serve_a_django_project(tmp_path: Path) -> None:
    (block,) = sections()["Django"]
    assert block.run
    (tmp_path / "readme_settings.py").write_text(block.code)
    (tmp_path / "run.py").write_text(textwrap.dedent(DJANGO_RUN))
    done = subprocess.run(
        [sys.executable, str(tmp_path / "run.py"), str(tmp_path / "readme_settings.py")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"SESSIONKIT_SECRET_KEYS": sessionkit.generate_key(), "PATH": ""},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["home"]["status"] == 200
    assert json.loads(seen["home"]["body"]) == {"visits": 1}
    assert any(c.startswith(f"{SESSION}=") for c in seen["home"]["set_cookie"])
    assert json.loads(seen["again"]["body"]) == {"visits": 2}
    assert seen["blocked"]["status"] == 303
    assert "sessionkit-cookie-check=1" in seen["blocked"]["location"]


def test_every_link_of_the_readme_is_absolute() -> None:
    """The README is the package index's page too, where a relative link leads nowhere."""
    text = README.read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links
    assert [link for link in links if not link.startswith(("https://", "#"))] == []
