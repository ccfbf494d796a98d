"""Each example app over real HTTP on 127.0.0.1, started with its documented command.

FastAPI under uvicorn, Flask under its werkzeug server, the Django project under uvicorn
(ASGI) and under werkzeug (WSGI). The same story for each: the public home works without
cookies, ``/app`` needs them, logging in changes the session id, log-out revokes the old
cookie (a replayed copy is refused), and "log out everywhere" ends the other sessions.
The pages show the session as the kit sees it (its id, the time left, the visitor id and
the privacy signal), "remember me" lets a session idle for a week, the security events
page lists refused cookies, and a log-in form posted with cookies off says so.

Each server runs in a subprocess (the Django project configures Django for its whole
process) with its state in a temporary directory and a fresh key, and is stopped at the
end of the module; everything waits with a deadline.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import sessionkit
from support import free_port, running_example, set_cookies

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0

_WERKZEUG = (
    "import sys; from werkzeug.serving import run_simple; "
    "from examples.django_project.wsgi import application; "
    "run_simple('127.0.0.1', int(sys.argv[1]), application, threaded=True)"
)

#: The command each example is started with (``{port}`` filled in).
COMMANDS: dict[str, list[str]] = {
    "fastapi": ["-m", "uvicorn", "examples.fastapi_app:app", "--host", "127.0.0.1"],
    "flask": ["-m", "flask", "--app", "examples.flask_app", "run", "--host", "127.0.0.1"],
    "django-asgi": [
        "-m",
        "uvicorn",
        "examples.django_project.asgi:application",
        "--host",
        "127.0.0.1",
    ],
    "django-wsgi": ["-c", _WERKZEUG],
}


@dataclass
class Server:
    """A running example: its base URL and the file its console output goes to."""

    name: str
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _argv(name: str, port: int) -> list[str]:
    args = COMMANDS[name]
    if name == "django-wsgi":
        return [sys.executable, *args, str(port)]
    return [sys.executable, *args, "--port", str(port)]


@pytest.fixture(scope="module", params=sorted(COMMANDS))
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One example server (each in turn) for the tests of a module."""
    name = str(request.param)
    state = tmp_path_factory.mktemp(f"example-{name}")
    log = state / "console.log"
    env = {
        **os.environ,
        "SESSIONKIT_DEMO_DIR": str(state),
        "SESSIONKIT_SECRET_KEYS": sessionkit.generate_key(),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running_example(
        _argv(name, port),
        cwd=REPO,
        env=env,
        log=log,
        url=url,
        what=name,
        timeout=STARTUP_TIMEOUT,
        stop_timeout=STOP_TIMEOUT,
    ):
        yield Server(name, url, log)


# --------------------------------------------------------------------------- the story

DEMO_USER = "demo"
DEMO_PASSWORD = "correct horse"
MARKER = "sessionkit-cookie-check"
SESSION = "session"  # the kit's session cookie name over plain http
TIMEOUT = 30.0

_HIDDEN = re.compile(r'<input type=hidden name=(\w+) value="([^"]*)">')
_SESSION_ID = re.compile(r"<code id=session-id>([^<]+)</code>")


def browser(server: Server) -> httpx.Client:
    """A client that keeps cookies, as a browser does, and shows every redirect."""
    return httpx.Client(base_url=server.url, timeout=TIMEOUT, follow_redirects=False)


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden fields of the first form on the page (the anti-forgery token)."""
    match = _HIDDEN.search(page)
    assert match is not None, page
    return {match.group(1): match.group(2)}


def session_id(page: str) -> str:
    match = _SESSION_ID.search(page)
    assert match is not None, page
    return match.group(1)


def log_in(http: httpx.Client, password: str = DEMO_PASSWORD) -> tuple[str, httpx.Response]:
    """Fill in the log-in form; return the session id the form page showed and the answer."""
    form = http.get("/login")
    assert form.status_code == 200
    fields = {**hidden_fields(form.text), "username": DEMO_USER, "password": password}
    return session_id(form.text), http.post("/login", data=fields)


def through_gate(http: httpx.Client, path: str) -> httpx.Response:
    """GET ``path`` as a browser would: follow the cookies-required gate's test redirect.

    A client holding none of the site's cookies (say, right after logout) is first sent
    to ``path?<marker>=1`` with a test cookie; coming back with it, it is sent on to
    ``path``, and passes the gate.
    """
    response = http.get(path)
    if response.status_code == 303 and f"{MARKER}=1" in response.headers["location"]:
        back = http.get(response.headers["location"])
        assert back.status_code == 303, "the test cookie came back: the gate sends it on"
        response = http.get(back.headers["location"])
    return response


def is_sent_to_login(response: httpx.Response) -> bool:
    return response.status_code in (302, 303) and response.headers["location"].startswith("/login")


def test_public_home_needs_no_cookies(server: Server) -> None:
    response = httpx.get(f"{server.url}/", timeout=TIMEOUT)
    assert response.status_code == 200
    assert "Not logged in." in response.text


def test_app_needs_cookies(server: Server) -> None:
    # A client that never keeps a cookie: one test redirect, then the explanation.
    first = httpx.get(f"{server.url}/app", timeout=TIMEOUT, headers={"Accept": "text/html"})
    assert first.status_code == 303
    assert first.headers["location"] == f"/app?{MARKER}=1"
    second = httpx.get(
        f"{server.url}{first.headers['location']}",
        timeout=TIMEOUT,
        headers={"Accept": "text/html"},
    )
    assert second.status_code == 403
    assert "Cookies are required" in second.text
    # A client that keeps cookies passes the gate, and is asked to log in.
    with browser(server) as http:
        check = http.get("/app")
        assert check.status_code == 303
        back = http.get(check.headers["location"])
        assert back.status_code == 303
        assert back.headers["location"] == "/app"
        assert is_sent_to_login(through_gate(http, "/app"))


def test_wrong_password_is_refused(server: Server) -> None:
    with browser(server) as http:
        _, answer = log_in(http, password="wrong horse")
        assert "Wrong user or password" in answer.text
        assert is_sent_to_login(through_gate(http, "/app"))


def test_a_forged_form_logs_nobody_in(server: Server) -> None:
    # Another site's page posts the log-in form in the visitor's browser: the browser
    # sends the visitor's cookies, and an Origin naming that site.
    with browser(server) as http:
        http.get("/login")
        answer = http.post(
            "/login",
            data={"username": DEMO_USER, "password": DEMO_PASSWORD, "csrf_token": "x"},
            headers={"Origin": "http://evil.example"},
        )
        assert answer.status_code == 403
        # Django's own CsrfViewMiddleware answers there; sessionkit's checks elsewhere.
        expected = "The form expired." if server.name.startswith("django") else "another site"
        assert expected in answer.text
        assert is_sent_to_login(through_gate(http, "/app"))


def test_logging_in_with_cookies_off_explains_cookies(server: Server) -> None:
    # A browser that keeps no cookie gets the form, then posts it back with no cookie.
    form = httpx.get(f"{server.url}/login", timeout=TIMEOUT)
    fields = {**hidden_fields(form.text), "username": DEMO_USER, "password": DEMO_PASSWORD}
    answer = httpx.post(f"{server.url}/login", data=fields, timeout=TIMEOUT)
    assert answer.status_code == 403
    assert "Logging in needs cookies" in answer.text
    assert "How to enable cookies" in answer.text
    assert "expired" not in answer.text
    assert SESSION not in set_cookies(answer)


def test_remember_me_lets_the_session_idle_for_a_week(server: Server) -> None:
    week = 7 * 24 * 3600
    with browser(server) as http:
        form = http.get("/login")
        fields = {**hidden_fields(form.text), "username": DEMO_USER, "password": DEMO_PASSWORD}
        plain = http.post("/login", data=fields)
        assert int(set_cookies(plain)[SESSION][1]["max-age"] or 0) <= 30 * 60
    with browser(server) as http:
        form = http.get("/login")
        assert "name=remember value=1" in form.text
        fields = {**hidden_fields(form.text), "username": DEMO_USER, "password": DEMO_PASSWORD}
        remembered = http.post("/login", data={**fields, "remember": "1"})
        assert remembered.status_code == 303
        assert week - 60 <= int(set_cookies(remembered)[SESSION][1]["max-age"] or 0) <= week
        private = http.get("/app")
        assert "<dd id=remember>yes: it may idle for 7 days</dd>" in private.text
        assert re.search(r"<dd id=idle-left>(6 days 23 h|7 days) ", private.text)


def test_the_private_page_shows_the_session(server: Server) -> None:
    with browser(server) as http:
        _, answer = log_in(http)
        assert answer.status_code == 303
        private = http.get("/app").text
        assert re.search(r"<dd id=idle-left>(29|30) min ", private)
        assert re.search(r"<dd id=absolute-end>\d{4}-\d\d-\d\d \d\d:\d\d UTC", private)
        assert re.search(r"\(in (11 h 59 min|12 h), however active you are\)", private)
        assert re.search(r"<dd id=auth-age>\d+ s ago</dd>", private)
        assert "<dd id=remember>no</dd>" in private
        visitor = re.search(r"<code id=visitor-id>([^<]+)</code>", private)
        assert visitor is not None
        assert "visitor" in http.cookies
        assert f"<code id=visitor-id>{visitor.group(1)}</code>" in http.get("/").text, "stable"
        assert "<span class=badge>not sent</span>" in private
        # The id the log-in form showed is listed as an earlier id of this session.
        earlier = private.split("Earlier:", 1)[1]
        assert session_id(private) not in earlier


def test_global_privacy_control_means_no_visitor_id(server: Server) -> None:
    home = httpx.get(f"{server.url}/", headers={"Sec-GPC": "1"}, timeout=TIMEOUT)
    assert "<span class='badge ok'>Sec-GPC: 1</span>" in home.text
    assert "id=visitor-id" not in home.text
    assert "visitor" not in set_cookies(home)
    plain = httpx.get(f"{server.url}/", timeout=TIMEOUT)
    assert "<code id=visitor-id>" in plain.text
    assert "<span class=badge>not sent</span>" in plain.text
    assert "visitor" in set_cookies(plain)


def test_the_events_page_lists_refused_cookies(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as forger:
        forger.cookies.set(SESSION, "A" * 60)
        forger.get("/app")
    with browser(server) as laptop, browser(server) as phone:
        for http in (laptop, phone):
            _, answer = log_in(http)
            assert answer.status_code == 303
        page = laptop.get("/app")
        laptop.post("/logout-everywhere", data=hidden_fields(page.text))
        assert is_sent_to_login(through_gate(phone, "/app"))
    events = httpx.get(f"{server.url}/events", timeout=TIMEOUT).text
    rows = re.findall(
        r"<span class='badge warn'>(\w+)</span><br>[^<]*</td><td><code>(\w+)</code></td>"
        r"<td>([^<]*)</td>",
        events,
    )
    assert ("revoked", SESSION, "127.0.0.0") in rows
    assert ("malformed", SESSION, "127.0.0.0") in rows
    assert rows.index(("revoked", SESSION, "127.0.0.0")) < rows.index(
        ("malformed", SESSION, "127.0.0.0")
    ), "newest first"


def test_login_changes_the_id_and_logout_revokes_the_cookie(server: Server) -> None:
    with browser(server) as http:
        before, answer = log_in(http)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/app"
        private = http.get("/app")
        assert private.status_code == 200
        assert "Hello demo: visit 1" in private.text
        after = session_id(private.text)
        assert after != before
        again = http.get("/app")
        assert "visit 2" in again.text
        assert session_id(again.text) == after
        copied = http.cookies[SESSION]

        out = http.post("/logout", data=hidden_fields(again.text))
        assert out.status_code == 303
        assert out.headers["location"] == "/"
        assert SESSION not in http.cookies
        assert is_sent_to_login(through_gate(http, "/app"))

    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as replay:
        replay.cookies.set(SESSION, copied)
        # Within the rotation grace window the copy is answered quietly (a request of
        # the same browser may still be in flight); it never reaches the application.
        assert is_sent_to_login(through_gate(replay, "/app"))


def test_log_out_everywhere_ends_the_other_sessions(server: Server) -> None:
    with browser(server) as laptop, browser(server) as phone:
        for http in (laptop, phone):
            _, answer = log_in(http)
            assert answer.status_code == 303
            assert http.get("/app").status_code == 200
        page = laptop.get("/app")
        out = laptop.post("/logout-everywhere", data=hidden_fields(page.text))
        assert out.status_code == 303
        assert is_sent_to_login(through_gate(phone, "/app"))
        assert is_sent_to_login(through_gate(laptop, "/app"))


@pytest.mark.parametrize("path", ["/logout", "/logout-everywhere"])
def test_logging_out_needs_the_form(server: Server, path: str) -> None:
    with browser(server) as http:
        _, answer = log_in(http)
        assert answer.status_code == 303
        http.post(path, data={"csrf_token": "forged", "csrfmiddlewaretoken": "forged"})
        assert http.get("/app").status_code == 200
