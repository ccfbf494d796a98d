"""Zero-logout migration (sessionkit.migrate): cookies made by the real frameworks' code.

Starlette's and Flask's cookies come from their own apps through their test clients;
Django's from ``django.core.signing`` exactly as its ``signed_cookies`` backend calls it
(``TimestampSigner.sign_object``, given its keys, so no Django settings are needed).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import flask
import pytest
from django.core import signing
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sessionkit import ConfigurationError, SessionKit
from sessionkit.events import LifecycleEvent, SecurityEvent
from sessionkit.exchange import HeaderChanges
from sessionkit.migrate import (
    DjangoSignedCookie,
    FlaskCookie,
    Migrated,
    Migration,
    Refused,
    StarletteCookie,
)
from sessionkit.privacy import SensitiveDataGuard
from sessionkit.stores import MemoryStore

MakeKit = Callable[..., SessionKit]
OLD_KEY = "the-old-frameworks-secret-key-0123456789"
UNTIL = datetime(2030, 1, 1, tzinfo=timezone.utc)
GUARD = SensitiveDataGuard()
DJANGO_SALT = "django.contrib.sessions.backends.signed_cookies"


def starlette_cookie(session: dict[str, Any], key: str = OLD_KEY) -> str:
    async def login(request: Request) -> PlainTextResponse:
        request.session.update(session)
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[Route("/login", login)],
        middleware=[Middleware(SessionMiddleware, secret_key=key)],
    )
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/login", "headers": [], "query_string": b""}
    asyncio.run(app(scope, receive, send))
    (header,) = [v for n, v in sent[0]["headers"] if n == b"set-cookie"]
    return str(header.decode().split(";", 1)[0].split("=", 1)[1])


def flask_cookie(fill: Callable[[Any], None], key: str = OLD_KEY) -> str:
    app = flask.Flask("old")
    app.secret_key = key

    @app.route("/login")
    def login() -> str:
        fill(flask.session)
        return "ok"

    response = app.test_client().get("/login")
    header = response.headers["Set-Cookie"]
    return header.split(";", 1)[0].split("=", 1)[1]


def django_cookie(session: dict[str, Any], key: str = OLD_KEY) -> str:
    signer = signing.TimestampSigner(key=key, salt=DJANGO_SALT, fallback_keys=[])
    return str(signer.sign_object(session, serializer=signing.JSONSerializer, compress=True))


def now() -> float:
    return datetime.now(timezone.utc).timestamp()


def migrate(reader: Any, value: str, when: float | None = None) -> Migrated | Refused | None:
    migration = Migration([reader], until=UNTIL)
    return migration.migrate({reader.cookie_name: [value]}, now() if when is None else when, GUARD)


# ------------------------------------------------------------------ the three readers


def test_a_starlette_cookie_is_read() -> None:
    value = starlette_cookie({"user": "alice", "cart": [1, 2], "n": 1.5})
    result = migrate(StarletteCookie(OLD_KEY, user_key="user"), value)
    assert isinstance(result, Migrated)
    assert result.data == {"user": "alice", "cart": [1, 2], "n": 1.5}
    assert result.user_id == "alice"
    assert (result.reader, result.cookie_name) == ("starlette", "session")
    assert result.expire.startswith("session=; Max-Age=0; ")
    assert "Path=/" in result.expire
    assert "Secure" not in result.expire, "a deletion without Secure works over http too"


def test_a_flask_cookie_is_read_with_its_tags() -> None:
    marker = uuid.uuid4()

    def fill(session: Any) -> None:
        session.permanent = True
        session["_user_id"] = "7"
        session["pair"] = (1, 2)
        session["html"] = Markup("<b>hi</b>")
        session["ref"] = marker
        session[" t"] = "a key that looks like a tag"

    result = migrate(FlaskCookie(OLD_KEY, user_key="_user_id"), flask_cookie(fill))
    assert isinstance(result, Migrated)
    assert result.data == {
        "_user_id": "7",
        "pair": [1, 2],
        "html": "<b>hi</b>",
        "ref": str(marker),
        " t": "a key that looks like a tag",
    }, "Flask's own _permanent mark is dropped"
    assert result.user_id == "7"


def test_a_compressed_flask_cookie_is_read() -> None:
    value = flask_cookie(lambda s: s.update(notes=["same words again"] * 40))
    assert value.startswith("."), "Flask compressed it"
    result = migrate(FlaskCookie(OLD_KEY), value)
    assert isinstance(result, Migrated)
    assert result.data == {"notes": ["same words again"] * 40}
    assert result.user_id is None


def test_flask_values_json_cannot_hold_are_refused() -> None:
    for value in (b"raw bytes", datetime(2026, 1, 1, tzinfo=timezone.utc)):
        cookie = flask_cookie(lambda s, v=value: s.update(v=v))  # type: ignore[misc]
        result = migrate(FlaskCookie(OLD_KEY), cookie)
        assert isinstance(result, Refused)
        assert result.reason == "old_cookie_refused"


def test_flask_fallback_keys_are_tried() -> None:
    value = flask_cookie(lambda s: s.update(a=1), key="previous-flask-key")
    assert isinstance(migrate(FlaskCookie(OLD_KEY), value), Refused)
    reader = FlaskCookie(OLD_KEY, fallback_keys=["previous-flask-key"])
    assert isinstance(migrate(reader, value), Migrated)


@pytest.mark.parametrize("size", [1, 40], ids=["plain", "compressed"])
def test_a_django_signed_cookie_is_read(size: int) -> None:
    session: dict[str, Any] = {"_auth_user_id": "42"}
    if size > 1:
        session |= {"_auth_user_backend": "b", "notes": ["n"] * size}
    value = django_cookie({**session, "_session_expiry": 600})
    assert value.startswith(".") == (size > 1)
    result = migrate(DjangoSignedCookie(OLD_KEY), value)
    assert isinstance(result, Migrated)
    assert result.data == session, "Django's own _session_expiry is dropped"
    assert result.user_id == "42"
    assert result.cookie_name == "sessionid"


# ------------------------------------------------------------------ refusals


def _forge(value: str, sep: str) -> str:
    head, _, signature = value.rpartition(sep)
    return f"{head}{sep}{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


@pytest.mark.parametrize(
    ("reader", "value", "sep"),
    [
        (StarletteCookie(OLD_KEY), lambda: starlette_cookie({"user": "alice"}), "."),
        (FlaskCookie(OLD_KEY), lambda: flask_cookie(lambda s: s.update(user="alice")), "."),
        (DjangoSignedCookie(OLD_KEY), lambda: django_cookie({"user": "alice"}), ":"),
    ],
    ids=["starlette", "flask", "django"],
)
def test_forged_expired_and_late_cookies_are_refused(reader: Any, value: Any, sep: str) -> None:
    good = value()
    assert isinstance(migrate(reader, good), Migrated)
    forged = migrate(reader, _forge(good, sep))
    assert isinstance(forged, Refused)
    assert forged.reason == "old_cookie_forged"
    assert forged.expire.startswith(f"{reader.cookie_name}=; Max-Age=0")
    other_key = type(reader)("another-secret-key-altogether")
    assert migrate(other_key, good) == Refused(
        "old_cookie_forged", reader.name, reader.cookie_name, reader.expire()
    )
    late = migrate(reader, good, now() + reader.max_age + 1)
    assert isinstance(late, Refused)
    assert late.reason == "old_cookie_expired"
    ended = Migration([reader], until=datetime.now(timezone.utc) - timedelta(seconds=1))
    result = ended.migrate({reader.cookie_name: [good]}, now(), GUARD)
    assert isinstance(result, Refused)
    assert result.reason == "migration_ended"


def test_data_the_privacy_guard_refuses_is_not_migrated() -> None:
    value = starlette_cookie({"user": "alice", "password": "hunter2"})
    result = migrate(StarletteCookie(OLD_KEY), value)
    assert isinstance(result, Refused)
    assert result.reason == "old_cookie_refused"


def test_duplicates_and_absent_cookies() -> None:
    value = starlette_cookie({"a": 1})
    migration = Migration([StarletteCookie(OLD_KEY)], until=UNTIL)
    assert migration.migrate({}, now(), GUARD) is None
    twice = migration.migrate({"session": [value, value]}, now(), GUARD)
    assert isinstance(twice, Refused)
    assert twice.reason == "old_cookie_malformed"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["starlette", "flask", "django"]))
def test_no_input_raises(value: str, which: str) -> None:
    reader = {
        "starlette": StarletteCookie(OLD_KEY),
        "flask": FlaskCookie(OLD_KEY),
        "django": DjangoSignedCookie(OLD_KEY),
    }[which]
    result = migrate(reader, value)
    assert isinstance(result, Refused)


# ------------------------------------------------------------------ configuration


def test_settings_are_checked_at_start_up(make_kit: MakeKit) -> None:
    with pytest.raises(ConfigurationError, match="at least one reader"):
        Migration([], until=UNTIL)
    with pytest.raises(ConfigurationError, match="datetime"):
        Migration([StarletteCookie(OLD_KEY)], until="2030-01-01")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="same cookie name"):
        Migration([StarletteCookie(OLD_KEY), FlaskCookie(OLD_KEY)], until=UNTIL)
    with pytest.raises(ConfigurationError, match="not a migration reader"):
        Migration([object()], until=UNTIL)  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        StarletteCookie("")
    with pytest.raises(ConfigurationError, match="max_age"):
        FlaskCookie(OLD_KEY, max_age=-1)
    with pytest.raises(ConfigurationError, match="Migration"):
        make_kit(migrate=[StarletteCookie(OLD_KEY)])
    naive = Migration([StarletteCookie(OLD_KEY)], until=datetime(2030, 1, 1))
    assert naive.until == UNTIL, "a naive end date is read as UTC"


def test_a_cookie_name_shared_with_sessionkit_is_refused_naming_the_fix(
    make_kit: MakeKit,
) -> None:
    migration = Migration([StarletteCookie(OLD_KEY)], until=UNTIL)
    with pytest.raises(ConfigurationError, match=r"both named 'session'.*session_cookie="):
        make_kit(insecure_development=True, migrate=migration)
    assert make_kit(insecure_development=True, session_cookie="sk", migrate=migration)


# ------------------------------------------------------------------ through the kit


def finish(kit: SessionKit, cookie: str | None) -> tuple[Any, dict[str, str]]:
    ex = kit.open(cookie)
    if ex.pending is not None:
        assert ex.load_record() is None
    state = {"user": ex.session.user_id, "data": dict(ex.session)}
    changes = ex.finish([], [])
    assert isinstance(changes, HeaderChanges)
    cookies = {v.split("=", 1)[0]: v for n, v in changes.add if n == "Set-Cookie"}
    return state, cookies


@pytest.mark.parametrize("stored", [False, True], ids=["cookie", "store"])
def test_the_kit_migrates_once_and_deletes_the_old_cookie(make_kit: MakeKit, stored: bool) -> None:
    events: list[Any] = []
    kit = make_kit(
        migrate=Migration([StarletteCookie(OLD_KEY, user_key="user")], until=UNTIL),
        store=MemoryStore() if stored else None,
        on_lifecycle_event=events.append,
        clock=now,
    )
    old = starlette_cookie({"user": "alice", "cart": [3]})
    state, cookies = finish(kit, f"session={old}")
    assert state == {"user": "alice", "data": {"user": "alice", "cart": [3]}}
    assert cookies["session"].startswith("session=; Max-Age=0")
    new = cookies["__Host-session"].split(";", 1)[0]
    assert [(e.name, e.detail) for e in events] == [("migrated", "starlette")]
    assert isinstance(events[0], LifecycleEvent)
    state, cookies = finish(kit, new)
    assert state == {"user": "alice", "data": {"user": "alice", "cart": [3]}}
    assert "session" not in cookies
    state, cookies = finish(kit, f"{new}; session={old}")
    assert state["user"] == "alice"
    assert "session" not in cookies, "a valid sessionkit session wins; nothing migrates"


def test_a_forged_old_cookie_is_a_security_event_and_an_empty_session(
    make_kit: MakeKit,
) -> None:
    events: list[Any] = []
    kit = make_kit(
        migrate=Migration([StarletteCookie(OLD_KEY)], until=UNTIL),
        on_security_event=events.append,
        clock=now,
    )
    old = starlette_cookie({"user": "admin"}, key="an-attackers-guess-at-the-key")
    state, cookies = finish(kit, f"session={old}")
    assert state == {"user": None, "data": {}}
    assert cookies["session"].startswith("session=; Max-Age=0")
    assert "__Host-session" not in cookies
    assert [(e.reason, e.cookie) for e in events] == [("old_cookie_forged", "session")]
    assert isinstance(events[0], SecurityEvent)
