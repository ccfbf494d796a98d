"""A Flask session interface that names another session cookie for some requests.

Flask's idiom is to override ``SessionInterface.get_cookie_name(app)``; sessionkit asks
it on every request and seals that request's session under the name it returns. Driven
by Flask's test client and by a real werkzeug server on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flask
import httpx
import pytest

import sessionkit
from sessionkit.forgery import ForgeryPolicy
from sessionkit.integrations.flask import (
    SessionKitInterface,
    current_csrf_token,
    current_visitor,
    init_app,
)
from sessionkit.naming import MAX_COOKIE_NAMES
from sessionkit.stores import MemoryStore
from support import running_werkzeug, set_cookies

SESSION = "__Host-session"
SIDE = "__Host-side"
VISITOR = "__Host-visitor"

KitFactory = Callable[..., sessionkit.SessionKit]
#: What a namer returns for the kit's own name.
OWN: Any = object()
Namer = Callable[[flask.Request], Any]


def by_path(request: flask.Request) -> Any:
    """The side of the site under /side has a session cookie of its own."""
    return SIDE if request.path.startswith("/side") else OWN


def make_app(kit: sessionkit.SessionKit, namer: Namer = by_path) -> flask.Flask:
    """An app whose interface names the cookie ``namer`` gives (``OWN``: the kit's own)."""

    class Named(SessionKitInterface):
        def get_cookie_name(self, app: flask.Flask) -> str:
            name = namer(flask.request)
            return super().get_cookie_name(app) if name is OWN else name  # type: ignore[no-any-return]

    app = flask.Flask(__name__)
    app.testing = True  # exceptions reach the test
    app.session_interface = Named()
    init_app(app, kit)

    def state() -> dict[str, Any]:
        exchange = flask.request.environ["sessionkit.exchange"]
        return {
            "data": dict(flask.session),
            "new": flask.session.new,
            "cookie": exchange.kit.session_spec.name,
            "visitor": current_visitor(),
        }

    for prefix in ("", "/side"):

        def read() -> dict[str, Any]:
            return state()

        def write() -> dict[str, Any]:
            flask.session.update(flask.request.get_json())
            return state()

        app.add_url_rule(f"{prefix}/", f"read{prefix}", read)
        app.add_url_rule(f"{prefix}/write", f"write{prefix}", write, methods=["POST"])
    return app


@pytest.fixture
def events() -> list[sessionkit.SecurityEvent]:
    return []


@pytest.fixture
def kit(make_kit: KitFactory, events: list[sessionkit.SecurityEvent]) -> sessionkit.SessionKit:
    return make_kit(on_security_event=events.append)


def test_each_part_of_the_site_has_its_own_session_cookie(kit: sessionkit.SessionKit) -> None:
    client = make_app(kit).test_client()

    main = client.post("/write", json={"where": "main"})
    assert set(set_cookies(main)) == {SESSION, VISITOR}
    side = client.post("/side/write", json={"where": "side"})
    side_cookies = set_cookies(side)
    assert set(side_cookies) == {SIDE}  # the visitor cookie was set already
    _, attrs = side_cookies[SIDE]
    assert attrs.keys() >= {"path", "secure", "httponly", "samesite"}
    assert attrs["path"] == "/"
    assert attrs["samesite"] == "Lax"
    assert side.get_json()["cookie"] == SIDE

    assert client.get("/").get_json()["data"] == {"where": "main"}
    back = client.get("/side/").get_json()
    assert back["data"] == {"where": "side"}
    assert back["new"] is False
    # One visitor, whichever session cookie the request uses.
    assert back["visitor"] == client.get("/").get_json()["visitor"] is not None


def test_the_kit_s_own_name_keeps_the_kit(kit: sessionkit.SessionKit) -> None:
    app = make_app(kit)
    client = app.test_client()
    seen: list[sessionkit.SessionKit] = []

    @app.get("/which")
    def which() -> str:
        seen.append(flask.request.environ["sessionkit.exchange"].kit)
        return ""

    client.get("/which")
    client.get("/which")
    assert seen == [kit, kit]


def test_a_cookie_sealed_under_one_name_does_not_open_under_the_other(
    kit: sessionkit.SessionKit, events: list[sessionkit.SecurityEvent]
) -> None:
    client = make_app(kit).test_client()
    main_value, _ = set_cookies(client.post("/write", json={"value": 1}))[SESSION]
    side_value, _ = set_cookies(client.post("/side/write", json={"value": 2}))[SIDE]
    events.clear()

    stranger = make_app(kit).test_client()
    stranger.set_cookie(SIDE, main_value)
    moved = stranger.get("/side/")
    assert moved.status_code == 200
    assert moved.get_json()["data"] == {}
    value, attrs = set_cookies(moved)[SIDE]
    assert (value, attrs["max-age"]) == ("", "0")
    assert [(e.reason, e.cookie) for e in events] == [("tampered", SIDE)]

    events.clear()
    other = make_app(kit).test_client()
    other.set_cookie(SESSION, side_value)
    back = other.get("/")
    assert back.status_code == 200
    assert back.get_json()["data"] == {}
    assert set_cookies(back)[SESSION][0] == ""
    assert [(e.reason, e.cookie) for e in events] == [("tampered", SESSION)]


def test_a_session_transaction_uses_the_name_of_its_path(kit: sessionkit.SessionKit) -> None:
    client = make_app(kit).test_client()
    with client.session_transaction("/side/") as session:
        session["made"] = "in a transaction"
    assert client.get("/side/").get_json()["data"] == {"made": "in a transaction"}
    assert client.get("/").get_json()["data"] == {}
    with client.session_transaction("/side/") as session:
        assert dict(session) == {"made": "in a transaction"}


def test_a_store_keeps_each_name_s_session_apart(make_kit: KitFactory) -> None:
    app = make_app(make_kit(store=MemoryStore()))
    client = app.test_client()
    client.post("/write", json={"where": "main"})
    first = set_cookies(client.post("/side/write", json={"where": "side"}))[SIDE][0]
    client.post("/side/write", json={"more": True})
    assert client.get("/side/").get_json()["data"] == {"where": "side", "more": True}
    assert client.get("/").get_json()["data"] == {"where": "main"}

    moved = app.test_client()
    moved.set_cookie(SESSION, first)
    refused = moved.get("/")
    assert refused.get_json()["data"] == {}
    assert set_cookies(refused)[SESSION][0] == ""


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("side;session", "not a valid cookie name token: use letters"),
        ("side session", "not a valid cookie name token"),
        ("side\r\nSet-Cookie: x=1", "not a valid cookie name token"),
        ("", "not a valid cookie name token"),
        (None, "return a str"),
        (VISITOR, "already names another cookie"),
        ("__Host-cookie-check", "already names another cookie"),
    ],
)
def test_a_bad_name_fails_with_its_fix(
    kit: sessionkit.SessionKit, name: str | None, message: str
) -> None:
    client = make_app(kit, lambda request: name if request.path == "/side/" else OWN).test_client()
    with pytest.raises(sessionkit.ConfigurationError, match=message) as raised:
        client.get("/side/")
    assert "Named.get_cookie_name" in str(raised.value)
    assert client.get("/").status_code == 200


def test_a_host_prefix_the_kit_s_settings_break_fails_with_its_fix(make_kit: KitFactory) -> None:
    app = make_app(make_kit(path="/side"), lambda request: "__Host-side")
    with pytest.raises(sessionkit.ConfigurationError, match="__Host- prefix needs Path=/"):
        app.test_client().get("/side/")
    insecure = make_kit(insecure_development=True)
    app = make_app(insecure, lambda request: "__Secure-side")
    with pytest.raises(sessionkit.ConfigurationError, match="not Secure, which its prefix"):
        app.test_client().get("/side/")


def test_the_number_of_names_is_bounded(kit: sessionkit.SessionKit) -> None:
    app = make_app(kit, lambda request: request.args.get("name", OWN))
    client = app.test_client()
    with pytest.raises(sessionkit.ConfigurationError, match="not a valid cookie name"):
        client.get("/", query_string={"name": "bad name"})  # refused: it takes no place
    names = [f"side-{n}" for n in range(MAX_COOKIE_NAMES)]
    for name in names:
        response = client.post("/write", query_string={"name": name}, json={"name": name})
        assert set(set_cookies(response)) >= {name}
    with pytest.raises(sessionkit.ConfigurationError, match=f"past the {MAX_COOKIE_NAMES}"):
        client.get("/", query_string={"name": "one-too-many"})
    for name in (*names, None):
        query = {} if name is None else {"name": name}
        data = client.get("/", query_string=query).get_json()["data"]
        assert data == ({} if name is None else {"name": name})


def test_names_per_path_through_a_real_server(kit: sessionkit.SessionKit) -> None:
    app = make_app(kit)
    app.testing = False
    jar: dict[str, str] = {}

    def send(method: str, path: str, **kwargs: Any) -> httpx.Response:
        header = "; ".join(f"{name}={value}" for name, value in jar.items())
        response = httpx.request(
            method, url + path, headers={"Cookie": header} if header else {}, **kwargs
        )
        for name, (value, attrs) in set_cookies(response).items():
            if attrs.get("max-age") == "0":
                jar.pop(name, None)
            else:
                jar[name] = value
        return response

    with running_werkzeug(app) as url:
        assert send("POST", "/write", json={"where": "main"}).status_code == 200
        side = send("POST", "/side/write", json={"where": "side"})
        assert side.status_code == 200
        assert SIDE in set_cookies(side)
        assert set(jar) == {SESSION, SIDE, VISITOR}
        assert send("GET", "/").json()["data"] == {"where": "main"}
        assert send("GET", "/side/").json()["data"] == {"where": "side"}

        jar[SIDE] = jar[SESSION]  # the main cookie moved to the side's name
        moved = send("GET", "/side/")
        assert moved.status_code == 200
        assert moved.json()["data"] == {}
        assert SIDE not in jar
        assert send("GET", "/").json()["data"] == {"where": "main"}


def test_a_token_path_of_a_renamed_part_fails_closed(make_kit: KitFactory) -> None:
    # The middleware checks tokens against the kit's own cookie, before Flask names the
    # request's; a token of the renamed session is refused (docs/frameworks.md).
    kit = make_kit(forgery=ForgeryPolicy(token_paths=["/side"]))
    app = make_app(kit)

    @app.get("/side/form")
    def form() -> str:
        return current_csrf_token()

    client = app.test_client()
    token = client.get("/side/form").get_data(as_text=True)
    refused = client.post("/side/write", json={"x": 1}, headers={"X-CSRF-Token": token})
    assert refused.status_code == 403
    assert "x" not in client.get("/side/").get_json()["data"]
