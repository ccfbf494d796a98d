"""The Flask integration, driven by Flask's own test client (a real WSGI caller)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import flask
import flask_login
import pytest
from flask.globals import request_ctx
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask.testing import FlaskClient
from markupsafe import Markup

import sessionkit
from sessionkit.integrations.flask import (
    CONFIG_KEYS,
    CONFIG_SETTINGS,
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


class Clock(Protocol):
    """The conftest's movable clock."""

    def __call__(self) -> float: ...

    def advance(self, seconds: float) -> None: ...


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


def test_init_app_checks_its_arguments(kit: sessionkit.SessionKit) -> None:
    app = flask.Flask(__name__)
    with pytest.raises(sessionkit.ConfigurationError, match="SessionKit"):
        init_app(app, "not a kit")  # type: ignore[arg-type]
    init_app(app, kit)
    assert app.extensions["sessionkit"] is kit
    with pytest.raises(sessionkit.ConfigurationError, match="already"):
        init_app(app, kit)
    with pytest.raises(sessionkit.ConfigurationError, match="already"):
        init_app(app)


def test_init_app_refuses_an_app_with_its_own_session_interface(key: str) -> None:
    class OwnInterface(SecureCookieSessionInterface):
        pass

    class OwnFlask(flask.Flask):
        session_interface = OwnInterface()

    app = OwnFlask(__name__)
    app.config[CONFIG_KEYS] = [key]
    with pytest.raises(sessionkit.ConfigurationError, match="OwnInterface, not Flask's default"):
        init_app(app)
    assert type(app.session_interface) is OwnInterface  # kept, not discarded
    assert "sessionkit" not in app.extensions


class RecordingInterface(SessionKitInterface):
    """An application's own subclass: it records the endpoint each session opens for."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[str | None] = []

    def open_session(self, app: flask.Flask, request: flask.Request) -> SessionMixin | None:
        request_ctx.match_request()
        self.opened.append(request.endpoint)
        return super().open_session(app, request)


def test_init_app_keeps_a_session_kit_interface_set_on_the_app_class(key: str) -> None:
    class OwnFlask(flask.Flask):
        session_interface = RecordingInterface()

    app = OwnFlask(__name__)
    app.config[CONFIG_KEYS] = [key]
    init_app(app)
    interface = app.session_interface
    assert interface is OwnFlask.session_interface

    @app.post("/write")
    def write() -> str:
        flask.session["a"] = 1
        return "ok"

    @app.get("/read")
    def read() -> dict[str, Any]:
        return {"data": dict(flask.session), "id": current_session().id}

    client = app.test_client()
    written = client.post("/write")
    assert SESSION in session_header(written)
    assert client.get("/read").json["data"] == {"a": 1}  # type: ignore[index]
    assert interface.opened == ["write", "read"]  # type: ignore[attr-defined]
    assert app.extensions["sessionkit"] is interface.kit  # type: ignore[attr-defined]
    # One interface serves one app: a second app of the class must get its own.
    second = OwnFlask(__name__)
    with pytest.raises(sessionkit.ConfigurationError, match="already serves the app"):
        init_app(second)
    with pytest.raises(sessionkit.ConfigurationError, match="already"):
        init_app(app)


def test_a_kit_given_twice_to_an_app_class_interface_is_refused(make_kit: KitFactory) -> None:
    kit = make_kit()

    class OwnFlask(flask.Flask):
        session_interface = SessionKitInterface(kit)

    with pytest.raises(sessionkit.ConfigurationError, match="has a kit already"):
        init_app(OwnFlask(__name__), make_kit())
    app = OwnFlask(__name__)
    init_app(app, kit)
    assert app.extensions["sessionkit"] is kit


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


# --------------------------------------------------------------------------- kit from app.config


def config_app(key: str, clock: Clock, **config: Any) -> flask.Flask:
    """An app whose kit init_app builds from ``app.config`` at the first request."""
    app = flask.Flask(__name__)
    app.testing = True
    init_app(app)
    app.config[CONFIG_KEYS] = [key]
    app.config[CONFIG_SETTINGS] = {"clock": clock, **config.pop("SESSIONKIT", {})}
    app.config.update(config)

    @app.get("/")
    def read() -> dict[str, Any]:
        return {"data": dict(flask.session), "permanent": flask.session.permanent}

    @app.get("/untouched")
    def untouched() -> str:
        return "nothing"

    @app.post("/write")
    def write() -> str:
        flask.session.update(flask.request.get_json())
        return "ok"

    @app.post("/remember/<value>")
    def remember(value: str) -> str:
        flask.session["user"] = "alice"
        flask.session.permanent = value == "yes"
        return "ok"

    return app


def session_header(response: Any, name: str = SESSION) -> str:
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "=")]
    return str(header)


def test_init_app_without_a_kit_builds_it_from_app_config(key: str, clock: Clock) -> None:
    app = config_app(key, clock, SESSIONKIT={"idle_timeout": 600})
    assert "sessionkit" not in app.extensions
    client = app.test_client()
    response = client.post("/write", json={"a": 1})
    kit = app.extensions["sessionkit"]
    assert isinstance(kit, sessionkit.SessionKit)
    assert kit.idle_timeout == 600
    assert kit.session_spec.name == SESSION
    # Flask's default: a session is not permanent, so its cookie ends with the browser.
    assert "Max-Age" not in session_header(response)
    assert client.get("/").json == {"data": {"a": 1}, "permanent": False}


def test_keys_from_the_environment_or_a_string(
    key: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONFIG_KEYS, key)
    app = config_app(key, clock)
    del app.config[CONFIG_KEYS]
    app.test_client().post("/write", json={"a": 1})
    assert app.extensions["sessionkit"].keys.key_ids == make_ring([key])
    other = sessionkit.generate_key()
    app = config_app(key, clock)
    app.config[CONFIG_KEYS] = f"{other}, {key}"
    app.test_client().post("/write", json={"a": 1})
    assert app.extensions["sessionkit"].keys.key_ids == make_ring([other, key])


def make_ring(keys: list[str]) -> Any:
    return sessionkit.SessionKit(secret_keys=keys).keys.key_ids


def test_missing_keys_fail_the_first_request_naming_the_fix(
    key: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CONFIG_KEYS, raising=False)
    app = config_app(key, clock)
    del app.config[CONFIG_KEYS]
    with pytest.raises(sessionkit.ConfigurationError, match="SESSIONKIT_SECRET_KEYS"):
        app.test_client().get("/")
    app.config[CONFIG_SETTINGS] = {"no_such_setting": 1}
    app.config[CONFIG_KEYS] = [key]
    with pytest.raises(sessionkit.ConfigurationError, match="no_such_setting"):
        app.test_client().get("/")
    # Nothing was kept from the failed starts: a fixed config starts the app.
    app.config[CONFIG_SETTINGS] = {}
    assert app.test_client().get("/").status_code == 200


def test_flask_cookie_settings_are_honoured(key: str, clock: Clock) -> None:
    app = config_app(
        key,
        clock,
        SESSION_COOKIE_NAME="shop",
        SESSION_COOKIE_DOMAIN=".example.com",
        APPLICATION_ROOT="/store",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PARTITIONED=True,
    )
    client = app.test_client()
    header = session_header(client.post("/write", json={"a": 1}), "shop")
    attributes = header.split("; ")[1:]
    assert attributes == [
        "Path=/store",
        "Domain=.example.com",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Partitioned",
    ]
    interface = app.session_interface
    assert interface.get_cookie_name(app) == "shop"
    assert interface.get_cookie_partitioned(app) is True


def test_session_cookie_path_wins_over_application_root(key: str, clock: Clock) -> None:
    app = config_app(key, clock, APPLICATION_ROOT="/store", SESSION_COOKIE_PATH="/")
    header = session_header(app.test_client().post("/write", json={"a": 1}))
    assert "Path=/;" in header


@pytest.mark.parametrize(
    ("setting", "value", "fix"),
    [
        ("SESSION_COOKIE_HTTPONLY", False, "http_only=False"),
        ("SESSION_COOKIE_SAMESITE", "None", "same_site='none'"),
        ("SESSION_COOKIE_SAMESITE", "sometimes", "'Strict', 'Lax', 'None' or None"),
        ("PERMANENT_SESSION_LIFETIME", timedelta(days=90), "max_lifetime"),
        ("PERMANENT_SESSION_LIFETIME", 0, "must be positive"),
    ],
)
def test_weakening_flask_settings_are_refused_with_the_fix(
    key: str, clock: Clock, setting: str, value: object, fix: str
) -> None:
    app = config_app(key, clock, **{setting: value})
    with pytest.raises(sessionkit.ConfigurationError, match=re.escape(fix)):
        app.test_client().get("/")
    with (
        pytest.raises(sessionkit.ConfigurationError, match=re.escape(fix)),
        app.test_request_context("/"),
    ):
        pass


def test_a_weakening_setting_said_to_the_kit_too_is_honoured(key: str, clock: Clock) -> None:
    app = config_app(
        key,
        clock,
        SESSION_COOKIE_HTTPONLY=False,
        PERMANENT_SESSION_LIFETIME=timedelta(days=90),
        SESSIONKIT={"http_only": False, "max_lifetime": 90 * 24 * 3600},
    )
    client = app.test_client()
    header = session_header(client.post("/remember/yes"))
    assert "HttpOnly" not in header
    assert f"Max-Age={90 * 24 * 3600};" in header


def test_settings_contradicting_an_explicit_kit_are_refused_at_the_first_request(
    make_kit: KitFactory,
) -> None:
    app = make_app(make_kit())
    app.config.update(APPLICATION_ROOT="/store", SESSION_COOKIE_SAMESITE="Strict")
    with pytest.raises(sessionkit.ConfigurationError) as refused:
        app.test_client().get("/")
    message = str(refused.value)
    assert "SessionKit(path='/store')" in message
    assert "SESSION_COOKIE_PATH='/'" in message
    assert "SessionKit(same_site='strict')" in message
    agreeing = make_app(make_kit(path="/store", same_site="strict"))
    agreeing.config.update(APPLICATION_ROOT="/store", SESSION_COOKIE_SAMESITE="Strict")
    assert agreeing.test_client().get("/").status_code == 200


def test_an_explicit_insecure_kit_refuses_session_cookie_secure(make_kit: KitFactory) -> None:
    app = make_app(make_kit(insecure_development=True))
    app.config["SESSION_COOKIE_SECURE"] = True
    with pytest.raises(sessionkit.ConfigurationError, match="insecure_development"):
        app.test_client().get("/")


# --------------------------------------------------------------------------- permanent


def test_permanent_true_remembers_the_session_past_the_idle_timeout(key: str, clock: Clock) -> None:
    app = config_app(key, clock, PERMANENT_SESSION_LIFETIME=timedelta(days=7))
    remembered = app.test_client()
    header = session_header(remembered.post("/remember/yes"))
    assert f"Max-Age={7 * 24 * 3600};" in header
    forgotten = app.test_client()
    assert "Max-Age" not in session_header(forgotten.post("/remember/no"))
    clock.advance(2 * 24 * 3600)  # far past the kit's 30-minute idle timeout
    assert remembered.get("/").json == {"data": {"user": "alice"}, "permanent": True}
    assert forgotten.get("/").json == {"data": {}, "permanent": False}


def test_permanent_false_turns_a_remembered_session_into_a_browser_session(
    key: str, clock: Clock
) -> None:
    client = config_app(key, clock).test_client()
    client.post("/remember/yes")
    assert "Max-Age" not in session_header(client.post("/remember/no"))
    assert client.get("/").json == {"data": {"user": "alice"}, "permanent": False}


def test_permanent_on_a_kit_with_persistent_cookies(make_kit: KitFactory) -> None:
    app = make_app(make_kit())
    client = app.test_client()
    assert client.post("/permanent/yes").json == {"permanent": True}
    response = client.post("/permanent/no")
    assert response.json == {"permanent": False}
    client.post("/write", json={"a": 1})
    assert client.post("/permanent/no").json == {"permanent": False}


@pytest.mark.parametrize("refresh", [True, False])
def test_refresh_each_request_reissues_a_permanent_cookie(
    key: str, clock: Clock, refresh: bool
) -> None:
    app = config_app(key, clock, SESSION_REFRESH_EACH_REQUEST=refresh)
    client = app.test_client()
    client.post("/remember/yes")
    response = client.get("/untouched")
    assert (SESSION in set_cookie_names(response)) is refresh
    assert (response.headers.get("Vary") == "Cookie") is refresh
    client.post("/remember/no")
    response = client.get("/untouched")
    assert set_cookie_names(response) == []
    assert "Vary" not in response.headers


# --------------------------------------------------------------------------- values


def test_values_round_trip_as_through_flasks_serializer(key: str, clock: Clock) -> None:
    app = config_app(key, clock)
    moment = datetime(2026, 12, 3, 8, 30, tzinfo=timezone.utc)
    ident = uuid.uuid4()
    stored = {
        "tuple": (1, "two", (3,)),
        "bytes": b"\xff\x00",
        "markup": Markup("<em>hi</em>"),
        "uuid": ident,
        "when": moment,
        "nested": {"list": [(1, 2), b"x"], "plain": [1, 2]},
        "tag_lookalike": {" t": "not a tuple"},
        "tag_lookalike_2": {" di": {" t__": "deeper"}},
    }
    seen: list[dict[str, Any]] = []

    @app.post("/values")
    def values() -> str:
        flask.session.update(stored)
        return "ok"

    @app.get("/values")
    def read_values() -> str:
        session = flask.session
        seen.append({name: session[name] for name in stored})
        seen.append(dict(session.items()))
        seen.append(current_session().copy())
        return "ok"

    client = app.test_client()
    client.post("/values")
    client.get("/values")
    for found in seen:
        assert found == stored
        assert {k: type(v) for k, v in found.items()} == {k: type(v) for k, v in stored.items()}
        assert type(found["nested"]["list"][0]) is tuple
        assert type(found["nested"]["list"][1]) is bytes


def test_a_plain_value_is_the_object_stored(key: str, clock: Clock) -> None:
    app = config_app(key, clock)

    @app.post("/cart")
    def cart() -> str:
        flask.session.setdefault("cart", []).append("book")
        flask.session["cart"].append("pen")
        flask.session.modified = True
        return "ok"

    client = app.test_client()
    client.post("/cart")
    assert client.get("/").json == {"data": {"cart": ["book", "pen"]}, "permanent": False}


def test_a_value_the_serializer_cannot_keep_is_refused_at_assignment(
    key: str, clock: Clock
) -> None:
    app = config_app(key, clock)
    with app.test_request_context("/"):
        with pytest.raises(sessionkit.UnserializableValue):
            flask.session["thing"] = object()
        with pytest.raises(sessionkit.UnserializableValue):
            flask.session["set"] = {1, 2}
        assert "thing" not in flask.session


def test_flashed_markup_renders_unescaped_on_the_next_request(key: str, clock: Clock) -> None:
    app = config_app(key, clock)

    @app.post("/flash")
    def flash() -> str:
        flask.flash(Markup("<em>saved</em>"), "info")
        flask.flash("<b>plain</b>")
        return "ok"

    @app.get("/page")
    def page() -> str:
        return flask.render_template_string(
            "{% for c, m in get_flashed_messages(with_categories=true) %}{{ c }}:{{ m }} "
            "{% endfor %}"
        )

    client = app.test_client()
    client.post("/flash")
    assert client.get("/page").text == "info:<em>saved</em> message:&lt;b&gt;plain&lt;/b&gt; "
    assert client.get("/page").text == ""


def test_values_round_trip_through_a_store(make_kit: KitFactory) -> None:
    app = make_app(make_kit(store=MemoryStore()))

    @app.post("/typed")
    def typed() -> str:
        flask.session["pair"] = (1, 2)
        flask.session["raw"] = b"\x01"
        return "ok"

    @app.get("/typed")
    def read_typed() -> str:
        return repr((flask.session["pair"], flask.session["raw"]))

    client = app.test_client()
    client.post("/typed")
    assert client.get("/typed").text == repr(((1, 2), b"\x01"))


# --------------------------------------------------------------------------- test tooling


def test_session_transaction_writes_and_persists(key: str, clock: Clock) -> None:
    app = config_app(key, clock)
    client = app.test_client()
    with client.session_transaction() as session:
        assert len(session) == 0
        session["pair"] = (1, 2)
        session.permanent = True
    assert client.get("/").json == {"data": {"pair": [1, 2]}, "permanent": True}
    with client.session_transaction() as session:
        assert session["pair"] == (1, 2)
        del session["pair"]
    assert client.get("/").json == {"data": {}, "permanent": False}


def test_session_transaction_with_a_store(make_kit: KitFactory) -> None:
    client = make_app(make_kit(store=MemoryStore())).test_client()
    with client.session_transaction() as session:
        session["a"] = 1
    data = client.get("/").json
    assert data is not None
    assert data["data"] == {"a": 1}


def test_test_request_context_gives_a_writable_session(kit: sessionkit.SessionKit) -> None:
    app = make_app(kit)
    with app.test_request_context("/"):
        assert not flask.session.modified
        flask.flash("Zap")
        assert flask.session.modified
        assert flask.get_flashed_messages() == ["Zap"]
        session = current_session()
        session.login("alice")
        assert session.user_id == "alice"
        assert current_visitor()
        response = app.make_response("ok")
        app.session_interface.save_session(app, flask.session, response)
    assert SESSION in set_cookie_names(response)
    assert response.headers.getlist("Vary") == ["Cookie"]


def test_test_request_context_opens_the_cookie_it_is_given(kit: sessionkit.SessionKit) -> None:
    app = make_app(kit)
    client = app.test_client()
    client.post("/write", json={"a": 1})
    value = cookie(client)
    with app.test_request_context("/", headers={"Cookie": f"{SESSION}={value}"}):
        assert dict(flask.session) == {"a": 1}
        assert not flask.session.new
    with app.test_request_context("/", headers={"Cookie": f"{SESSION}=tampered"}):
        assert dict(flask.session) == {}
        assert flask.session.new


def test_the_interface_alone_opens_and_saves_real_requests(kit: sessionkit.SessionKit) -> None:
    # Installed without init_app's middleware (so without the gate), the interface opens
    # each request's cookie through the kit and save_session writes the cookies.
    app = flask.Flask(__name__)
    app.session_interface = SessionKitInterface(kit)

    @app.post("/write")
    def write() -> str:
        flask.session["pair"] = (1, 2)
        return "ok"

    @app.get("/")
    def read() -> str:
        return repr(flask.session.get("pair"))

    client = app.test_client()
    response = client.post("/write")
    assert SESSION in set_cookie_names(response)
    assert response.headers.getlist("Vary") == ["Cookie"]
    assert client.get("/").text == "(1, 2)"


# --------------------------------------------------------------------------- Vary


def test_vary_exactly_when_the_session_was_accessed(key: str, clock: Clock) -> None:
    app = config_app(key, clock)

    @app.get("/own-vary")
    def own_vary() -> flask.Response:
        response = flask.Response(str(flask.session.get("a")))
        response.vary.add("Accept-Language")
        return response

    client = app.test_client()
    client.post("/write", json={"a": 1})
    untouched = client.get("/untouched")
    assert "Vary" not in untouched.headers
    assert set_cookie_names(untouched) == []
    assert untouched.headers.getlist("Vary") == []
    read = client.get("/own-vary")
    assert read.headers.getlist("Vary") == ["Accept-Language, Cookie"]


# --------------------------------------------------------------------------- Flask-Login


class User(flask_login.UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def login_app(kit: sessionkit.SessionKit) -> flask.Flask:
    app = flask.Flask(__name__)
    app.testing = True
    init_app(app, kit)
    manager = flask_login.LoginManager(app)
    manager.user_loader(User)

    @app.post("/login/<name>")
    def login(name: str) -> str:
        flask_login.login_user(User(name))
        return "ok"

    @app.post("/logout")
    def logout() -> str:
        flask_login.logout_user()
        return "ok"

    @app.post("/note")
    def note() -> str:
        flask.session["note"] = flask.request.get_data(as_text=True)
        return "ok"

    @app.get("/me")
    def me() -> dict[str, Any]:
        user = flask_login.current_user
        session = current_session()
        return {
            "user": user.get_id() if user.is_authenticated else None,
            "bound": session.user_id,
            "id": session.id,
            "note": flask.session.get("note"),
        }

    return app


def test_flask_login_login_user_binds_and_rotates(make_kit: KitFactory) -> None:
    client = login_app(make_kit()).test_client()
    client.post("/note", data="cart")
    before = client.get("/me").json
    assert before is not None
    assert before["user"] is None
    client.post("/login/alice")
    after = client.get("/me").json
    assert after is not None
    assert after["user"] == after["bound"] == "alice"
    assert after["id"] != before["id"]
    assert after["note"] == "cart"  # an anonymous session's data is kept on login


def test_flask_login_logout_user_logs_out(make_kit: KitFactory) -> None:
    client = login_app(make_kit(store=MemoryStore())).test_client()
    client.post("/login/alice")
    client.post("/note", data="second factor done")
    stolen = cookie(client)
    client.post("/logout")
    assert client.get("/me").json == {
        "user": None,
        "bound": None,
        "id": ANY_STR,
        "note": None,
    }
    client.set_cookie(SESSION, str(stolen))
    replay = client.get("/me").json
    assert replay is not None
    assert replay["user"] is None


def test_flask_login_another_user_starts_empty(make_kit: KitFactory) -> None:
    client = login_app(make_kit()).test_client()
    client.post("/login/alice")
    client.post("/note", data="alice's cart")
    client.post("/login/bob")
    data = client.get("/me").json
    assert data is not None
    assert data["user"] == data["bound"] == "bob"
    assert data["note"] is None


def test_flask_login_in_a_session_transaction(make_kit: KitFactory) -> None:
    client = login_app(make_kit()).test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "carol"
    data = client.get("/me").json
    assert data is not None
    assert data["user"] == data["bound"] == "carol"


class _AnyStr:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)


ANY_STR: Any = _AnyStr()
