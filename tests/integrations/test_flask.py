"""The Flask integration, driven by Flask's own test client (a real WSGI caller)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flask
import pytest
from flask.sessions import SessionMixin
from flask.testing import FlaskClient

import sessionkit
from sessionkit.integrations.flask import (
    FlaskSession,
    SessionKitInterface,
    current_session,
    current_visitor,
    init_app,
)
from sessionkit.stores import MemoryStore

SESSION = "__Host-session"
VISITOR = "__Host-visitor"
MARKER = "sessionkit-cookie-check"

KitFactory = Callable[..., sessionkit.SessionKit]


def make_app(kit: sessionkit.SessionKit) -> flask.Flask:
    app = flask.Flask(__name__)
    app.testing = True  # exceptions reach the test
    init_app(app, kit)
    app.config["hooks"] = []

    @app.before_request
    def before() -> None:
        app.config["hooks"].append(flask.request.path)

    @app.after_request
    def after(response: flask.Response) -> flask.Response:
        if flask.request.args.get("late"):
            flask.session["late"] = flask.request.args["late"]
        return response

    def state() -> dict[str, Any]:
        session = current_session()
        return {
            "id": session.id,
            "user": session.user_id,
            "data": dict(flask.session),
            "new": flask.session.new,
            "visitor": current_visitor(),
            "same": session is flask.session._get_current_object(),  # type: ignore[attr-defined]
        }

    @app.get("/")
    def home() -> dict[str, Any]:
        return state()

    @app.post("/write")
    def write() -> dict[str, Any]:
        flask.session.update(flask.request.get_json())
        return state()

    @app.post("/login")
    def login() -> dict[str, Any]:
        current_session().login(flask.request.get_json()["user"])
        return state()

    @app.post("/rotate")
    def rotate() -> dict[str, Any]:
        current_session().rotate()
        return state()

    @app.post("/logout")
    def logout() -> dict[str, Any]:
        current_session().invalidate()
        return state()

    @app.post("/flash")
    def flash() -> str:
        flask.flash("saved", "info")
        return "ok"

    @app.get("/flashes")
    def flashes() -> dict[str, Any]:
        return {"flashes": flask.get_flashed_messages(with_categories=True)}

    @app.post("/permanent/<value>")
    def permanent(value: str) -> dict[str, Any]:
        flask.session.permanent = value == "yes"
        return {"permanent": flask.session.permanent}

    @app.get("/app/page")
    def private() -> dict[str, Any]:
        return state()

    return app


@pytest.fixture
def kit(make_kit: KitFactory) -> sessionkit.SessionKit:
    return make_kit(require_cookies=["/app"])


@pytest.fixture
def client(kit: sessionkit.SessionKit) -> FlaskClient:
    return make_app(kit).test_client()


def set_cookie_names(response: Any) -> list[str]:
    return [h.split("=", 1)[0] for h in response.headers.getlist("Set-Cookie")]


def cookie(client: FlaskClient, name: str = SESSION) -> str | None:
    found = client.get_cookie(name)
    return None if found is None else found.value


# --------------------------------------------------------------------------- the session


def test_flask_session_is_the_sessionkit_session(client: FlaskClient) -> None:
    written = client.post("/write", json={"cart": [1, 2]}).json
    assert written is not None
    assert written["data"] == {"cart": [1, 2]}
    assert written["same"] is True
    assert written["new"] is True
    again = client.get("/").json
    assert again is not None
    assert again["data"] == {"cart": [1, 2]}
    assert again["id"] == written["id"]
    assert again["new"] is False


def test_session_type_meets_flask_and_sessionkit(kit: sessionkit.SessionKit) -> None:
    app = make_app(kit)
    seen: list[object] = []

    @app.get("/type")
    def kind() -> str:
        seen.append(flask.session._get_current_object())  # type: ignore[attr-defined]
        return "ok"

    app.test_client().get("/type")
    [session] = seen
    assert isinstance(session, FlaskSession)
    assert isinstance(session, sessionkit.Session)
    assert isinstance(session, SessionMixin)
    assert isinstance(session, dict)


def test_login_rotates_the_id_and_binds_the_user(client: FlaskClient) -> None:
    before = client.post("/write", json={"cart": ["book"]}).json
    assert before is not None
    after = client.post("/login", json={"user": "alice"}).json
    assert after is not None
    assert after["id"] != before["id"]
    assert after["user"] == "alice"
    assert after["data"] == {"cart": ["book"]}
    assert client.get("/").json == {**after, "new": False}


def test_rotate_keeps_data_under_a_new_id(client: FlaskClient) -> None:
    before = client.post("/write", json={"a": 1}).json
    after = client.post("/rotate").json
    assert before is not None
    assert after is not None
    assert after["id"] != before["id"]
    assert after["data"] == {"a": 1}


def test_invalidate_drops_everything_and_expires_the_cookie(client: FlaskClient) -> None:
    client.post("/login", json={"user": "alice"})
    response = client.post("/logout")
    assert response.json is not None
    assert response.json["user"] is None
    assert response.json["data"] == {}
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(SESSION)]
    assert "Max-Age=0" in header
    assert cookie(client) is None


def test_changes_in_after_request_hooks_are_saved(client: FlaskClient) -> None:
    client.get("/?late=yes")
    data = client.get("/").json
    assert data is not None
    assert data["data"] == {"late": "yes"}


def test_reads_set_no_session_cookie_and_vary_comes_from_sessionkit(client: FlaskClient) -> None:
    response = client.get("/")
    assert SESSION not in set_cookie_names(response)
    client.post("/write", json={"a": 1})
    response = client.get("/")
    assert SESSION not in set_cookie_names(response)
    assert response.headers.get("Vary") == "Cookie"


def test_flash_messages_survive_the_round_trip(client: FlaskClient) -> None:
    client.post("/flash")
    assert client.get("/flashes").json == {"flashes": [["info", "saved"]]}
    assert client.get("/flashes").json == {"flashes": []}


def test_a_tampered_cookie_gives_an_empty_session(client: FlaskClient) -> None:
    client.post("/write", json={"a": 1})
    value = cookie(client)
    assert value is not None
    client.set_cookie(SESSION, value[:-4] + "AAAA")
    response = client.get("/")
    assert response.json is not None
    assert response.json["data"] == {}
    assert cookie(client) is None


def test_store_revokes_a_replayed_cookie_after_logout(make_kit: KitFactory) -> None:
    client = make_app(make_kit(store=MemoryStore())).test_client()
    client.post("/login", json={"user": "alice"})
    stolen = cookie(client)
    assert stolen is not None
    client.post("/logout")
    client.set_cookie(SESSION, stolen)
    replay = client.get("/").json
    assert replay is not None
    assert replay["user"] is None


# --------------------------------------------------------------------------- permanent


def test_permanent_reports_the_kit_policy(client: FlaskClient) -> None:
    assert client.post("/permanent/yes").json == {"permanent": True}
    with pytest.raises(sessionkit.ConfigurationError, match="persistent_cookie=False"):
        client.post("/permanent/no")


def test_browser_session_kit_makes_permanent_false(make_kit: KitFactory) -> None:
    client = make_app(make_kit(persistent_cookie=False)).test_client()
    assert client.post("/permanent/no").json == {"permanent": False}
    response = client.post("/write", json={"a": 1})
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(SESSION)]
    assert "Max-Age" not in header
    with pytest.raises(sessionkit.ConfigurationError, match="persistent_cookie=True"):
        client.post("/permanent/yes")


# --------------------------------------------------------------------------- gate, visitor


def test_gate_answers_before_flask_runs(kit: sessionkit.SessionKit) -> None:
    app = make_app(kit)
    client = app.test_client(use_cookies=False)
    first = client.get("/app/page")
    assert first.status_code == 303
    assert first.headers["Location"] == f"/app/page?{MARKER}=1"
    blocked = client.get(first.headers["Location"], headers={"Accept": "text/html"})
    assert blocked.status_code == 403
    assert b"Cookies are required" in blocked.data
    assert app.config["hooks"] == []


def test_gate_lets_a_cookie_keeping_client_in(client: FlaskClient) -> None:
    response = client.get("/app/page", follow_redirects=True)
    assert response.status_code == 200
    assert response.request.path == "/app/page"
    assert response.json is not None
    assert response.json["visitor"]


def test_public_pages_need_no_cookies(kit: sessionkit.SessionKit) -> None:
    client = make_app(kit).test_client(use_cookies=False)
    assert client.get("/").status_code == 200


def test_visitor_cookie_and_opt_out(client: FlaskClient) -> None:
    first = client.get("/").json
    assert first is not None
    assert first["visitor"]
    assert cookie(client, VISITOR) is not None
    again = client.get("/").json
    assert again is not None
    assert again["visitor"] == first["visitor"]
    opted = client.get("/", headers={"Sec-GPC": "1"}).json
    assert opted is not None
    assert opted["visitor"] is None
    assert cookie(client, VISITOR) is None


# --------------------------------------------------------------------------- set-up


def test_outside_the_middleware_the_session_is_read_only(kit: sessionkit.SessionKit) -> None:
    app = make_app(kit)
    with app.test_request_context("/"):
        assert dict(flask.session) == {}
        with pytest.raises(RuntimeError, match="test_client"):
            flask.session["a"] = 1
        with pytest.raises(RuntimeError, match="test_client"):
            flask.session.login("alice")  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError, match="test_client"):
            current_session()
        with pytest.raises(RuntimeError, match="test_client"):
            current_visitor()
    with app.test_client().session_transaction() as session, pytest.raises(RuntimeError):
        session["a"] = 1


def test_init_app_checks_its_arguments(kit: sessionkit.SessionKit) -> None:
    app = flask.Flask(__name__)
    with pytest.raises(sessionkit.ConfigurationError, match="SessionKit"):
        init_app(app, "not a kit")  # type: ignore[arg-type]
    init_app(app, kit)
    assert app.extensions["sessionkit"] is kit
    with pytest.raises(sessionkit.ConfigurationError, match="already"):
        init_app(app, kit)


def test_cookie_attributes_reported_to_flask_are_the_kits(make_kit: KitFactory) -> None:
    kit = make_kit(insecure_development=True, same_site="strict", path="/shop")
    app = flask.Flask(__name__)
    init_app(app, kit)
    interface = app.session_interface
    assert isinstance(interface, SessionKitInterface)
    assert interface.get_cookie_name(app) == "session"
    assert interface.get_cookie_path(app) == "/shop"
    assert interface.get_cookie_domain(app) is None
    assert interface.get_cookie_secure(app) is False
    assert interface.get_cookie_httponly(app) is True
    assert interface.get_cookie_samesite(app) == "Strict"
