"""The FastAPI demo's "Where you're signed in" page, over real HTTP on 127.0.0.1.

The example runs under uvicorn in a subprocess, started with its documented command, with
its state in a temporary directory. Two clients with different User-Agents are two
devices of the demo user: one lists both and signs the other out; the password is asked
again (``/app/reauth``) when the login is not fresh, and its ``next`` never leaves the site.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support import running_fastapi_demo

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0
PASSWORD = "correct horse"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
_CSRF = re.compile(r'<input type=hidden name=csrf_token value="([^"]*)">')
# One row of the list: the device label, the address, then "this browser" or a form.
_ROW = re.compile(
    r"<li><span><b class=device>([^<]*)</b>, from ([^<]*)<br>.*?</span></span>(.*?)</li>"
)
_HANDLE = re.compile(r'<input type=hidden name=handle value="([^"]*)">')


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_fastapi_demo(tmp_path_factory.mktemp("example-fastapi-sessions")) as url:
        yield url


@contextlib.contextmanager
def device(base: str, agent: str) -> Iterator[httpx.Client]:
    """A client that keeps cookies and sends ``agent``, past the cookies-required check."""
    with httpx.Client(
        base_url=base, timeout=TIMEOUT, follow_redirects=False, headers={"User-Agent": agent}
    ) as http:
        check = http.get("/app")
        http.get(check.headers["location"])
        yield http


def token(page: str) -> str:
    match = _CSRF.search(page)
    assert match is not None, page
    return match.group(1)


def log_in(http: httpx.Client) -> None:
    form = http.get("/login").text
    answer = http.post(
        "/login", data={"csrf_token": token(form), "username": "demo", "password": PASSWORD}
    )
    assert answer.headers["location"] == "/app"


def test_one_device_lists_both_and_signs_the_other_out(base: str) -> None:
    with device(base, FIREFOX) as laptop, device(base, SAFARI) as phone:
        log_in(laptop)
        log_in(phone)
        page = laptop.get("/app/sessions")
        assert page.status_code == 200
        rows = {device: (address, action) for device, address, action in _ROW.findall(page.text)}
        assert sorted(rows) == ["Firefox on Windows", "Mobile Safari on iOS"]
        assert rows["Firefox on Windows"][1] == "<span class='badge ok'>this browser</span>"
        address, action = rows["Mobile Safari on iOS"]
        assert address == "127.0.0.0"
        assert action.startswith('<form method=post action="/app/sessions/end">')
        [handle] = _HANDLE.findall(page.text)
        ended = laptop.post(
            "/app/sessions/end", data={"csrf_token": token(page.text), "handle": handle}
        )
        assert ended.headers["location"] == "/app/sessions"
        assert phone.get("/app").headers["location"] == "/login"
        assert [row[0] for row in _ROW.findall(laptop.get("/app/sessions").text)] == [
            "Firefox on Windows"
        ]
        assert laptop.get("/app").status_code == 200


def test_the_password_is_asked_again_and_next_stays_on_the_site(base: str) -> None:
    with device(base, FIREFOX) as http:
        anonymous = http.get("/app/sessions")
        assert anonymous.headers["location"] == "/app/reauth?next=%2Fapp%2Fsessions"
        assert http.get(anonymous.headers["location"]).headers["location"] == "/login"
        log_in(http)
        form = http.get("/app/reauth?next=/app/sessions")
        assert "type your password again" in form.text
        wrong = http.post(
            "/app/reauth?next=/app/sessions",
            data={"csrf_token": token(form.text), "password": "wrong horse"},
        )
        assert "Wrong user or password" in wrong.text
        right = http.post(
            "/app/reauth?next=/app/sessions",
            data={"csrf_token": token(form.text), "password": PASSWORD},
        )
        assert right.headers["location"] == "/app/sessions"
        for hostile in ["//evil.example", "https://evil.example/", "/\\evil.example"]:
            # Each confirmation rotates the session: its form tokens are new ones.
            fresh = http.get("/app/reauth")
            answer = http.post(
                "/app/reauth",
                params={"next": hostile},
                data={"csrf_token": token(fresh.text), "password": PASSWORD},
            )
            assert answer.headers["location"] == "/app"
