"""Cross-site request forgery through the WSGI front end: a plain WSGI app, werkzeug's Client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode
from wsgiref.validate import validator

import pytest
from werkzeug.test import Client, EnvironBuilder, TestResponse, run_wsgi_app

import sessionkit
from sessionkit.forgery import MAX_FORM_PREFIX, ForgeryPolicy
from sessionkit.wsgi import SessionMiddleware, csrf_token, session_of

APP = "https://app.example"
EVIL = "https://evil.example"
KitFactory = Callable[..., sessionkit.SessionKit]
StartResponse = Callable[..., Any]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    session = session_of(environ)
    path = environ["PATH_INFO"]
    payload: dict[str, Any]
    if environ["REQUEST_METHOD"] == "GET" and path.endswith("/form"):
        session.setdefault("balance", 100)
        payload = {"token": csrf_token(environ)}
    elif environ["REQUEST_METHOD"] == "POST":
        stream = environ["wsgi.input"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if environ.get("QUERY_STRING") == "lines":
            body = b"".join(stream.readlines())
        else:
            first = stream.readline(10)
            body = first + stream.read(length - len(first))
        session["balance"] = session.get("balance", 100) - 10
        payload = {"balance": session["balance"], "length": len(body), "head": body[:60].decode()}
    else:
        payload = {"balance": session.get("balance")}
    data = json.dumps(payload).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]


@pytest.fixture
def events() -> list[sessionkit.SecurityEvent]:
    return []


@pytest.fixture
def client(make_kit: KitFactory, events: list[sessionkit.SecurityEvent]) -> Callable[..., Client]:
    def make(**settings: Any) -> Client:
        kit = make_kit(on_security_event=events.append, **settings)
        # The validator checks both sides: what the middleware gives the app, the
        # re-joined body stream included, and what it answers.
        return Client(validator(SessionMiddleware(validator(app), kit)), response_wrapper=_Closed)

    return make


class _Closed(TestResponse):
    """A test response closed as soon as it is read, as a WSGI server closes it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.get_data()
        self.close()


def _post(c: Client, path: str = "/transfer", **kwargs: Any) -> Any:
    return c.post(path, base_url=APP, **kwargs)


HEADER_SETS = [
    ({"Sec-Fetch-Site": "same-origin", "Origin": APP}, None),
    ({"Sec-Fetch-Site": "cross-site", "Origin": EVIL}, "cross_site"),
    ({"Sec-Fetch-Site": "same-site", "Origin": "https://blog.app.example"}, "cross_site"),
    ({"Origin": APP}, None),
    ({"Origin": EVIL}, "origin_mismatch"),
    ({"Origin": "null"}, "origin_mismatch"),
    ({"Referer": f"{APP}/page"}, None),
    ({"Referer": f"{EVIL}/page"}, "origin_mismatch"),
    ({}, None),
]


@pytest.mark.parametrize(("headers", "reason"), HEADER_SETS)
def test_header_sets_get_the_documented_answer(
    client: Callable[..., Client],
    events: list[sessionkit.SecurityEvent],
    headers: dict[str, str],
    reason: str | None,
) -> None:
    c = client()
    c.get("/form", base_url=APP)
    response = _post(c, data="amount=10", headers=headers)
    balance = c.get("/balance", base_url=APP).json["balance"]
    if reason is None:
        assert response.status_code == 200
        assert balance == 90
        assert events == []
    else:
        assert response.status_code == 403
        assert b"Request refused" in response.data
        assert balance == 100
        assert [e.reason for e in events] == [reason]


def test_the_host_comes_from_server_name_without_a_host_header(make_kit: KitFactory) -> None:
    middleware = SessionMiddleware(app, make_kit())
    for origin, status in ((APP, "200 OK"), (EVIL, "403 Forbidden")):
        environ = EnvironBuilder("/transfer", base_url=APP, method="POST").get_environ()
        del environ["HTTP_HOST"]
        environ["HTTP_ORIGIN"] = origin
        _, answer, _ = run_wsgi_app(middleware, environ, buffered=True)
        assert answer == status


def test_a_refused_request_never_reaches_the_app(client: Callable[..., Client]) -> None:
    c = client(require_cookies=["/"])
    response = _post(c, headers={"Origin": EVIL, "Accept": "application/json"})
    assert response.status_code == 403
    assert response.json["reason"] == "origin_mismatch"


def test_exempt_prefixes(client: Callable[..., Client]) -> None:
    c = client(csrf_exempt=["/hooks"])
    evil = {"Sec-Fetch-Site": "cross-site", "Origin": EVIL}
    assert _post(c, "/hooks/pay", headers=evil).status_code == 200
    assert _post(c, "/hooks/../transfer", headers=evil).status_code == 403


@pytest.fixture
def tokens(client: Callable[..., Client]) -> tuple[Client, str]:
    c = client(forgery=ForgeryPolicy(token_paths=["/"]))
    token = c.get("/form", base_url=APP).json["token"]
    return c, token


def test_a_token_in_the_form_or_the_header(
    tokens: tuple[Client, str], events: list[sessionkit.SecurityEvent]
) -> None:
    c, token = tokens
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    ok = _post(c, data=urlencode({"amount": "5", "csrf_token": token}), headers=form)
    assert ok.status_code == 200
    assert dict(parse_qsl(ok.json["head"]))["amount"] == "5"
    assert _post(c, data="{}", headers={"X-CSRF-Token": token}).status_code == 200
    assert _post(c, data="amount=5", headers=form).status_code == 403
    assert _post(c, data="csrf_token=" + "B" * 86, headers=form).status_code == 403
    assert [e.reason for e in events] == ["token_missing", "token_invalid"]


@pytest.mark.parametrize("read", ["", "lines"])
def test_a_large_form_reaches_the_app_whole(tokens: tuple[Client, str], read: str) -> None:
    c, token = tokens
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = urlencode({"csrf_token": token}) + "&big=" + ("line\n" * (MAX_FORM_PREFIX // 2))
    response = _post(c, f"/transfer?{read}", data=body, headers=form)
    assert response.status_code == 200
    assert response.json["length"] == len(body)
    assert response.json["head"] == body[:60]
    late = "big=" + "x" * MAX_FORM_PREFIX + "&" + urlencode({"csrf_token": token})
    assert _post(c, data=late, headers=form).status_code == 403


def test_a_small_form_body_is_handed_on(tokens: tuple[Client, str]) -> None:
    c, token = tokens
    body = urlencode({"csrf_token": token, "note": "hi"})
    response = _post(c, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.json["length"] == len(body)
