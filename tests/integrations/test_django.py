"""The Django integration: the session engine and SessionKitMiddleware.

Django is configured once for the test session (``settings.configure``) with
``django.contrib.auth`` on an SQLite file in a temporary directory; each test then picks
its kit with ``override_settings(SESSIONKIT=kit)``. The same views run under Django's
test client (sync and async), and under real servers on 127.0.0.1: werkzeug serving
Django's WSGI handler and uvicorn serving its ASGI handler.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
import types
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.contrib.auth import alogin, authenticate, login, logout, update_session_auth_hash
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.test import AsyncClient, Client, override_settings
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

import sessionkit
from sessionkit.forgery import ForgeryPolicy
from sessionkit.integrations import django as integration
from sessionkit.integrations.django import (
    SessionKitMiddleware,
    SessionStore,
    get_kit,
    opt_out,
    revoke_user,
    session_of,
    visitor_of,
)
from sessionkit.stores import MemoryStore
from sessionkit.stores.base import StoreUnavailable
from support import running_uvicorn, running_werkzeug

SESSION = "__Host-session"
VISITOR = "__Host-visitor"
MARKER = "sessionkit-cookie-check"
ENGINE = "sessionkit.integrations.django"
MIDDLEWARE = "sessionkit.integrations.django.SessionKitMiddleware"
PASSWORD = "correct horse"  # a test credential
# With this SECRET_KEY and this fixed password hash, Django's session auth hash does not
# look like a card number to the sensitive-data guard (see the xfail test at the end).
SECRET_KEY = "sessionkit-tests-" + "k" * 40
FIXED_SALT = "sessionkitTestSaltOfEnoughEntropy"  # 128 bits: never rehashed

KitFactory = Callable[..., sessionkit.SessionKit]


# --------------------------------------------------------------------------- views


def _state(request: HttpRequest) -> dict[str, Any]:
    session = session_of(request)
    return {
        "key": request.session.session_key,
        "id": session.id,
        "user": session.user_id,
        "auth": request.user.is_authenticated,
        "username": request.user.get_username(),
        "data": dict(session),
        "visitor": visitor_of(request),
    }


def _body(request: HttpRequest) -> Any:
    return json.loads(request.body or b"{}")


def state_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse(_state(request))


@csrf_exempt
def write_view(request: HttpRequest) -> HttpResponse:
    request.session.update(_body(request))
    return JsonResponse(_state(request))


@csrf_exempt
def login_view(request: HttpRequest) -> HttpResponse:
    body = _body(request)
    user = authenticate(request, username=body["username"], password=body["password"])
    if user is None:
        return JsonResponse({"error": "wrong"}, status=403)
    login(request, user)
    return JsonResponse(_state(request))


@csrf_exempt
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return JsonResponse(_state(request))


@csrf_exempt
def remember_view(request: HttpRequest) -> HttpResponse:
    # What django-allauth does on a "remember me" login: a lifetime of its own.
    request.session.set_expiry(_body(request)["expiry"])
    return JsonResponse({**_state(request), "age": request.session.get_expiry_age()})


@csrf_exempt
def failing_write_view(request: HttpRequest) -> HttpResponse:
    request.session["written"] = True
    return JsonResponse({"error": "later"}, status=500)


@csrf_exempt
def reset_token_view(request: HttpRequest) -> HttpResponse:
    # What PasswordResetConfirmView keeps in the session between its two requests.
    request.session["_password_reset_token"] = "c2b-9d1f5d2b3e3c4a1f8e7d"
    return JsonResponse(_state(request))


@csrf_exempt
def password_view(request: HttpRequest) -> HttpResponse:
    update_session_auth_hash(request, request.user)
    return JsonResponse(_state(request))


@csrf_exempt
def revoke_view(request: HttpRequest) -> HttpResponse:
    ended = revoke_user(request.user)
    logout(request)
    return JsonResponse({"ended": ended})


def cached_view(request: HttpRequest) -> HttpResponse:
    request.session["cached"] = True
    response = JsonResponse(_state(request))
    response["Cache-Control"] = "public, max-age=60"
    response["Vary"] = "Accept"
    return response


def opt_out_view(request: HttpRequest) -> HttpResponse:
    opt_out(request)
    return JsonResponse(_state(request))


def form_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"token": get_token(request)})


def form_post_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ok": True, "data": dict(session_of(request))})


def sk_form_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"token": integration.csrf_token(request, "/form-post")})


@csrf_exempt
async def alogin_view(request: HttpRequest) -> HttpResponse:
    from django.contrib.auth import aauthenticate

    body = _body(request)
    user = await aauthenticate(request, username=body["username"], password=body["password"])
    assert user is not None
    await alogin(request, user)
    await request.session.aset("async", True)
    return JsonResponse({"id": session_of(request).id, "user": session_of(request).user_id})


async def astate_view(request: HttpRequest) -> HttpResponse:
    user = await request.auser()
    return JsonResponse(
        {
            "id": session_of(request).id,
            "async": await request.session.aget("async"),
            "username": user.get_username(),
        }
    )


URLS = types.ModuleType("sessionkit_django_test_urls")
URLS.urlpatterns = [  # type: ignore[attr-defined]
    path("state", state_view),
    path("write", write_view),
    path("login", login_view),
    path("logout", logout_view),
    path("password", password_view),
    path("remember", remember_view),
    path("failing-write", failing_write_view),
    path("reset-token", reset_token_view),
    path("revoke", revoke_view),
    path("cached", cached_view),
    path("opt-out", opt_out_view),
    path("form", form_view),
    path("form-post", form_post_view),
    path("sk-form", sk_form_view),
    path("alogin", alogin_view),
    path("astate", astate_view),
    path("app/page", state_view),
]
sys.modules[URLS.__name__] = URLS


# --------------------------------------------------------------------------- set-up


@pytest.fixture(scope="session")
def django_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Configure Django once: contrib.auth on an SQLite file, sessionkit as the engine."""
    if settings.configured:
        pytest.fail("Django was configured elsewhere in this test process")
    directory = tmp_path_factory.mktemp("django")
    settings.configure(
        DEBUG=False,
        SECRET_KEY=SECRET_KEY,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=URLS.__name__,
        USE_TZ=True,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(directory / "db.sqlite3"),
            }
        },
        MIDDLEWARE=[
            MIDDLEWARE,
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        SESSION_ENGINE=ENGINE,
        SESSION_COOKIE_NAME=SESSION,
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    return directory


@pytest.fixture
def use_kit(django_project: Path) -> Iterator[Callable[[sessionkit.SessionKit], None]]:
    """``use_kit(kit)``: run the rest of the test with ``SESSIONKIT = kit``."""
    with contextlib.ExitStack() as stack:
        yield lambda kit: stack.enter_context(override_settings(SESSIONKIT=kit))


@pytest.fixture
def kit(make_kit: KitFactory, use_kit: Callable[[sessionkit.SessionKit], None]) -> Any:
    made = make_kit(require_cookies=["/app"], store=MemoryStore())
    use_kit(made)
    return made


def make_user(name: str | None = None) -> Any:
    """A user whose password hash, and so whose session auth hash, is always the same."""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User

    user = User(username=name or f"user-{uuid.uuid4().hex[:12]}")
    user.password = make_password(PASSWORD, salt=FIXED_SALT)
    user.save()
    return user


def login_body(user: Any) -> dict[str, str]:
    return {"username": user.get_username(), "password": PASSWORD}


def post_json(client: Client, url: str, body: Any = None) -> Any:
    return client.post(url, data=json.dumps(body or {}), content_type="application/json")


def cookie_value(client: Client, name: str = SESSION) -> str | None:
    morsel = client.cookies.get(name)
    return None if morsel is None or not morsel.value else morsel.value


# --------------------------------------------------------------------------- request.session


def test_request_session_keeps_djangos_api(kit: sessionkit.SessionKit) -> None:
    client = Client()
    assert client.get("/state").json()["key"] is None, "no key before anything is saved"
    first = post_json(client, "/write", {"cart": [1, 2], "theme": "dark"}).json()
    assert first["data"] == {"cart": [1, 2], "theme": "dark"}
    assert first["key"]
    assert first["id"] not in first["key"]
    again = client.get("/state").json()
    assert again["id"] == first["id"]
    assert again["key"] == first["key"]
    assert again["data"] == first["data"]
    assert again["auth"] is False
    assert again["visitor"] == first["visitor"]


def test_session_key_is_stable_across_timed_rotation_and_changes_at_login(
    make_kit: KitFactory, use_kit: Callable[[sessionkit.SessionKit], None], clock: Any
) -> None:
    use_kit(make_kit(rotate_every=60))
    client = Client()
    first = post_json(client, "/write", {"a": 1}).json()
    clock.advance(61)
    client.get("/state")  # its response carries the rotated id
    rotated = client.get("/state").json()
    assert rotated["data"] == {"a": 1}, rotated
    assert rotated["id"] != first["id"]
    assert rotated["key"] == first["key"]
    user = make_user()
    logged_in = post_json(client, "/login", login_body(user)).json()
    assert logged_in["key"] not in (None, first["key"])


def test_session_store_methods_in_a_view(kit: sessionkit.SessionKit) -> None:
    store = SessionStore(exchange=kit.open(None))
    assert store.is_empty()
    assert store.modified is False
    store["a"] = 1
    assert store.modified is True
    assert "a" in store
    assert store.get("a") == 1
    assert store.setdefault("b", 2) == 2
    assert sorted(store.keys()) == ["a", "b"]
    assert store.pop("a") == 1
    assert store.pop("missing", None) is None
    store.update({"c": 3})
    assert dict(store.items()) == {"b": 2, "c": 3}
    store.set_test_cookie()
    assert store.test_cookie_worked()
    store.delete_test_cookie()
    store.clear()
    assert store.is_empty()
    assert store.exists(store.session_key) is False


# --------------------------------------------------------------------------- auth


def test_auth_login_rotates_the_id_and_binds_the_user(kit: sessionkit.SessionKit) -> None:
    user = make_user()
    client = Client()
    before = post_json(client, "/write", {"cart": ["book"]}).json()
    after = post_json(client, "/login", login_body(user)).json()
    assert after["id"] != before["id"]
    assert after["user"] == str(user.pk)
    assert after["auth"] is True
    assert after["data"]["cart"] == ["book"]
    assert after["data"]["_auth_user_id"] == str(user.pk)
    following = client.get("/state").json()
    assert following["id"] == after["id"]
    assert following["username"] == user.get_username()


def test_a_pre_login_cookie_is_refused_after_login(kit: sessionkit.SessionKit) -> None:
    client = Client()
    post_json(client, "/write", {"cart": ["book"]})
    planted = cookie_value(client)
    post_json(client, "/login", login_body(make_user()))
    attacker = Client()
    attacker.cookies[SESSION] = planted
    state = attacker.get("/state").json()
    assert state["data"] == {}
    assert state["auth"] is False


def test_logout_invalidates_and_a_replayed_cookie_is_refused(kit: sessionkit.SessionKit) -> None:
    client = Client()
    logged_in = post_json(client, "/login", login_body(make_user())).json()
    stolen = cookie_value(client)
    response = post_json(client, "/logout")
    out = response.json()
    assert out["auth"] is False
    assert out["data"] == {}
    assert out["id"] != logged_in["id"]
    assert response.cookies[SESSION]["max-age"] == "0"
    replay = Client()
    replay.cookies[SESSION] = stolen
    state = replay.get("/state").json()
    assert state["auth"] is False
    assert state["data"] == {}


def test_login_as_another_user_starts_a_new_session(kit: sessionkit.SessionKit) -> None:
    client = Client()
    post_json(client, "/write", {"cart": ["book"]})
    first = post_json(client, "/login", login_body(make_user())).json()
    other = make_user()
    second = post_json(client, "/login", login_body(other)).json()
    assert second["id"] != first["id"]
    assert second["user"] == str(other.pk)
    assert "cart" not in second["data"]


def test_password_change_rotates_the_id_and_keeps_the_login(kit: sessionkit.SessionKit) -> None:
    client = Client()
    before = post_json(client, "/login", login_body(make_user())).json()
    after = post_json(client, "/password").json()
    assert after["id"] != before["id"]
    assert after["auth"] is True
    assert client.get("/state").json()["auth"] is True


def test_revoke_user_logs_out_everywhere(kit: sessionkit.SessionKit) -> None:
    user = make_user()
    laptop, phone = Client(), Client()
    post_json(laptop, "/login", login_body(user))
    post_json(phone, "/login", login_body(user))
    assert phone.get("/state").json()["auth"] is True
    assert post_json(laptop, "/revoke").json() == {"ended": 2}
    assert phone.get("/state").json()["auth"] is False
    assert laptop.get("/state").json()["auth"] is False


def test_test_client_login_and_force_login(kit: sessionkit.SessionKit) -> None:
    user = make_user()
    client = Client()
    assert client.login(username=user.get_username(), password=PASSWORD)
    state = client.get("/state").json()
    assert state["auth"] is True
    assert state["user"] == str(user.pk)
    forced = Client()
    forced.force_login(user)
    assert forced.get("/app/page").json()["username"] == user.get_username()
    assert client.session["_auth_user_id"] == str(user.pk)
    client.logout()
    assert client.get("/state").json()["auth"] is False


def test_async_views_under_the_async_client(kit: sessionkit.SessionKit) -> None:
    import asyncio

    user = make_user()

    async def scenario() -> tuple[Any, Any]:
        client = AsyncClient()
        logged_in = (
            await client.post(
                "/alogin", data=json.dumps(login_body(user)), content_type="application/json"
            )
        ).json()
        state = (await client.get("/astate")).json()
        return logged_in, state

    logged_in, state = asyncio.run(scenario())
    assert logged_in["user"] == str(user.pk)
    assert state == {"id": logged_in["id"], "async": True, "username": user.get_username()}


# --------------------------------------------------------------------------- expiry


def test_expiry_reports_the_kit_policy(kit: sessionkit.SessionKit, clock: Any) -> None:
    store = SessionStore(exchange=kit.open(None))
    assert store.get_expiry_age() == kit.idle_timeout
    assert store.get_session_cookie_age() == kit.idle_timeout
    expected = datetime.fromtimestamp(clock() + kit.idle_timeout, tz=dt_timezone.utc)
    assert store.get_expiry_date() == expected
    assert store.get_expire_at_browser_close() is False
    client = Client()
    post_json(client, "/write", {"a": 1})
    for _ in range(kit.absolute_timeout // (kit.idle_timeout - 60)):
        clock.advance(kit.idle_timeout - 60)
        client.get("/state")
    late = post_json(client, "/remember", {"expiry": None}).json()
    assert late["data"] == {"a": 1}
    assert 0 < late["age"] < kit.idle_timeout, "the absolute timeout comes first"


@pytest.mark.parametrize("expiry", [7 * 24 * 3600, 600])
def test_set_expiry_gives_a_session_its_own_lifetime(
    kit: sessionkit.SessionKit, clock: Any, expiry: int
) -> None:
    client = Client()
    user = make_user()
    post_json(client, "/login", login_body(user))
    remembered = post_json(client, "/remember", {"expiry": expiry})
    assert remembered.json()["age"] == expiry
    assert f"Max-Age={expiry}" in remembered.cookies[SESSION].OutputString()
    clock.advance(expiry - 5)
    assert client.get("/state").json()["auth"] is True, "alive inside its own idle bound"
    clock.advance(expiry + 5)
    assert client.get("/state").json()["auth"] is False, "ended on the server after it"


def test_set_expiry_zero_gives_a_browser_session_cookie(kit: sessionkit.SessionKit) -> None:
    client = Client()
    post_json(client, "/write", {"a": 1})
    closed = post_json(client, "/remember", {"expiry": 0})
    assert "Max-Age" not in closed.cookies[SESSION].OutputString()
    store = SessionStore(exchange=kit.open(None))
    store.set_expiry(0)
    assert store.get_expire_at_browser_close() is True
    store.set_expiry(None)
    assert store.get_expire_at_browser_close() is False


def test_a_server_error_saves_no_session_change(kit: sessionkit.SessionKit) -> None:
    client = Client(raise_request_exception=False)
    post_json(client, "/write", {"a": 1})
    failed = post_json(client, "/failing-write")
    assert failed.status_code == 500
    assert SESSION not in failed.cookies
    assert client.get("/state").json()["data"] == {"a": 1}


def test_a_server_error_keeps_a_cookie_only_session_as_it_was(
    make_kit: KitFactory, use_kit: Callable[[sessionkit.SessionKit], None]
) -> None:
    """Regression: without a store, a 5xx after a write deleted the session cookie."""
    use_kit(make_kit(require_cookies=["/app"]))
    client = Client(raise_request_exception=False)
    post_json(client, "/write", {"a": 1})
    failed = post_json(client, "/failing-write")
    assert failed.status_code == 500
    assert SESSION not in failed.cookies, "no Set-Cookie at all: not even a deletion"
    assert client.get("/state").json()["data"] == {"a": 1}


def test_djangos_own_session_keys_pass_the_privacy_guard(kit: sessionkit.SessionKit) -> None:
    client = Client()
    assert post_json(client, "/reset-token").status_code == 200
    assert client.get("/state").json()["data"] == {
        "_password_reset_token": "c2b-9d1f5d2b3e3c4a1f8e7d"
    }


def test_honoured_django_settings_reach_the_cookie(django_project: Path, key: str) -> None:
    overrides = {
        "SESSIONKIT": {"secret_keys": [key]},
        "SESSION_COOKIE_SAMESITE": "Strict",
        "SESSION_COOKIE_AGE": 3600,
        "SESSION_COOKIE_HTTPONLY": False,
    }
    with override_settings(**overrides):
        client = Client()
        header = post_json(client, "/write", {"a": 1}).cookies[SESSION].OutputString()
        assert "SameSite=Strict" in header
        assert "Max-Age=3600" in header
        assert "HttpOnly" not in header
        assert SessionStore(exchange=integration.get_kit().open(None)).get_expiry_age() == 3600


def test_refusals_are_reported_as_suspicious_sessions(
    django_project: Path, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    with override_settings(SESSIONKIT={"secret_keys": [key]}):
        client = Client()
        client.cookies[SESSION] = "tampered"
        with caplog.at_level(logging.WARNING, logger="django.security.SuspiciousSession"):
            assert client.get("/state").json()["data"] == {}
        assert any(
            r.name == "django.security.SuspiciousSession" and "corrupted" in r.getMessage()
            for r in caplog.records
        )


def test_set_expiry_zero_fits_a_browser_session_kit(
    make_kit: KitFactory, use_kit: Callable[[sessionkit.SessionKit], None]
) -> None:
    kit = make_kit(persistent_cookie=False)
    use_kit(kit)
    store = SessionStore(exchange=kit.open(None))
    store.set_expiry(0)
    assert store.get_expire_at_browser_close() is True


def test_clear_expired_purges_an_sqlite_store(
    make_kit: KitFactory,
    use_kit: Callable[[sessionkit.SessionKit], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: Any,
) -> None:
    from sessionkit.stores import SQLiteStore

    use_kit(make_kit())
    SessionStore.clear_expired()  # cookie mode: nothing to do
    store = SQLiteStore(tmp_path / "s.db")
    purged: list[float] = []
    monkeypatch.setattr(store, "purge", purged.append)
    use_kit(make_kit(store=store))
    SessionStore.clear_expired()
    assert purged == [clock()]


# --------------------------------------------------------------------------- by hand


def test_a_store_built_by_hand_opens_and_seals_cookie_values(kit: sessionkit.SessionKit) -> None:
    store = SessionStore()
    assert store.session_key is None
    store["a"] = 1
    store.save()
    value = store.session_key
    assert value
    reopened = SessionStore(value)
    assert reopened["a"] == 1
    reopened.cycle_key()
    assert reopened.session_key not in (None, value)
    assert reopened["a"] == 1
    reopened.flush()
    assert reopened.session_key is None
    assert SessionStore("not a sealed value").load() == {}
    assert SessionStore(reopened.encode({"b": 2})).load() == {"b": 2}
    assert reopened.decode("garbage") == {}


def test_engine_without_the_middleware_fails_clearly(django_project: Path) -> None:
    with (
        override_settings(MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"]),
        pytest.raises(ImproperlyConfigured, match="SessionKitMiddleware"),
    ):
        SessionStore()


# --------------------------------------------------------------------------- gate, visitor


def test_gate_answers_before_any_view(kit: sessionkit.SessionKit) -> None:
    client = Client(HTTP_ACCEPT="text/html")
    first = client.get("/app/page")
    assert first.status_code == 303
    assert first["Location"] == f"/app/page?{MARKER}=1"
    client.cookies.clear()
    blocked = client.get(first["Location"])
    assert blocked.status_code == 403
    assert b"Cookies are required" in blocked.content
    assert blocked["Cache-Control"] == "no-store"
    keeper = Client()
    assert keeper.get("/app/page", follow=True).status_code == 200


def test_visitor_id_and_opt_out(kit: sessionkit.SessionKit) -> None:
    client = Client()
    first = client.get("/state").json()
    assert first["visitor"]
    assert client.get("/state").json()["visitor"] == first["visitor"]
    assert client.get("/state", HTTP_SEC_GPC="1").json()["visitor"] is None
    out = client.get("/opt-out")
    assert out.json()["visitor"] is None
    assert out.cookies[VISITOR]["max-age"] == "0"


def test_cache_headers_are_fixed_for_a_response_with_a_cookie(kit: sessionkit.SessionKit) -> None:
    response = Client().get("/cached")
    assert response["Cache-Control"] == "no-store"
    assert response["Vary"] == "Accept, Cookie"
    assert SESSION in response.cookies


def test_a_tampered_cookie_gives_an_empty_session(kit: sessionkit.SessionKit) -> None:
    client = Client()
    post_json(client, "/write", {"a": 1})
    value = cookie_value(client)
    assert value is not None
    client.cookies[SESSION] = value[:-4] + "AAAA"
    response = client.get("/state")
    assert response.json()["data"] == {}
    assert response.cookies[SESSION]["max-age"] == "0"


def test_csrf_tokens_can_live_in_the_session(kit: sessionkit.SessionKit) -> None:
    with override_settings(CSRF_USE_SESSIONS=True):
        client = Client(enforce_csrf_checks=True)
        token = client.get("/form").json()["token"]
        assert client.post("/form-post").status_code == 403
        accepted = client.post("/form-post", HTTP_X_CSRFTOKEN=token)
        assert accepted.status_code == 200
        assert "_csrftoken" in accepted.json()["data"]


class FlakyStore(MemoryStore):
    """A memory store that can be switched off."""

    down = False

    def load(self, *args: Any) -> Any:
        if self.down:
            raise StoreUnavailable("down")
        return super().load(*args)

    def save(self, *args: Any) -> Any:
        if self.down:
            raise StoreUnavailable("down")
        return super().save(*args)


def test_store_outage_answers_503_and_never_guesses(
    make_kit: KitFactory, use_kit: Callable[[sessionkit.SessionKit], None]
) -> None:
    store = FlakyStore()
    use_kit(make_kit(require_cookies=["/app"], store=store))
    client = Client()
    post_json(client, "/write", {"a": 1})
    store.down = True
    protected = client.get("/app/page")
    assert protected.status_code == 503
    assert protected["Retry-After"]
    public = client.get("/state")
    assert public.status_code == 200
    assert public.json()["data"] == {}
    assert post_json(client, "/write", {"b": 2}).status_code == 503
    store.down = False
    assert client.get("/state").json()["data"] == {"a": 1}


# --------------------------------------------------------------------------- settings


def test_middleware_is_a_django_session_middleware() -> None:
    from django.contrib.sessions.middleware import SessionMiddleware

    assert issubclass(SessionKitMiddleware, SessionMiddleware)
    assert integration.AUTH_USER_KEY == __import__("django.contrib.auth").contrib.auth.SESSION_KEY


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SESSION_ENGINE": "django.contrib.sessions.backends.db"}, "SESSION_ENGINE"),
        (
            {
                "MIDDLEWARE": [
                    "django.contrib.sessions.middleware.SessionMiddleware",
                    MIDDLEWARE,
                ]
            },
            "takes the place of",
        ),
        ({"SESSION_COOKIE_NAME": "sessionid"}, "SESSION_COOKIE_NAME = '__Host-session'"),
        ({"SESSION_EXPIRE_AT_BROWSER_CLOSE": True}, "persistent_cookie=False"),
        ({"SESSION_COOKIE_SAMESITE": "Strict"}, "same_site='strict'"),
        ({"SESSIONKIT": ["not", "a", "dict"]}, "dict of SessionKit keyword arguments"),
        ({"SESSIONKIT": {"secret_keys": ["short"]}}, "settings.SESSIONKIT"),
        ({"SESSIONKIT": {"secret_keys": ["k"], "no_such_setting": 1}}, "no_such_setting"),
    ],
)
def test_misconfiguration_fails_at_start_up(
    kit: sessionkit.SessionKit, overrides: dict[str, Any], message: str
) -> None:
    with override_settings(**overrides), pytest.raises(ImproperlyConfigured, match=message):
        SessionKitMiddleware(lambda request: HttpResponse())


def test_keys_come_from_the_environment(
    django_project: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv("SESSIONKIT_SECRET_KEYS", key)
    with override_settings(SESSIONKIT={"require_cookies": ["/app"]}):
        kit = get_kit()
        assert repr(kit.keys) == repr(sessionkit.SessionKit(secret_keys=[key]).keys)
        assert kit.gate
    monkeypatch.delenv("SESSIONKIT_SECRET_KEYS")
    with (
        override_settings(SESSIONKIT={}),
        pytest.raises(ImproperlyConfigured, match="SESSIONKIT_SECRET_KEYS"),
    ):
        get_kit()


# --------------------------------------------------------------------------- real servers


@pytest.mark.parametrize("server", ["werkzeug", "uvicorn"])
def test_real_server_login_logout_and_replay(
    make_kit: KitFactory, use_kit: Callable[[sessionkit.SessionKit], None], server: str
) -> None:
    from django.core.asgi import get_asgi_application
    from django.core.wsgi import get_wsgi_application

    use_kit(
        make_kit(
            require_cookies=["/app"],
            store=MemoryStore(),
            insecure_development=True,
            clock=time.time,
        )
    )
    user = make_user()
    with override_settings(SESSION_COOKIE_NAME="session"):
        serve = running_werkzeug if server == "werkzeug" else running_uvicorn
        app = get_wsgi_application() if server == "werkzeug" else get_asgi_application()
        with serve(app) as base, httpx.Client(base_url=base, timeout=10) as http:
            blocked = httpx.get(f"{base}/app/page?{MARKER}=1", timeout=10)
            assert blocked.status_code == 403
            before = http.post("/write", json={"cart": ["book"]}).json()
            after = http.post("/login", json=login_body(user)).json()
            assert after["id"] != before["id"]
            assert after["auth"] is True
            stolen = http.cookies["session"]
            private = http.get("/app/page")
            assert private.status_code == 200
            assert private.json()["username"] == user.get_username()
            assert http.post("/logout").json()["auth"] is False
            with httpx.Client(base_url=base, timeout=10) as replay:
                replay.cookies.set("session", stolen)
                refused = replay.get("/app/page").json()
                assert refused["auth"] is False
                assert refused["data"] == {}


# --------------------------------------------------------------------------- guard and hashes


def test_a_hex_auth_hash_is_not_mistaken_for_a_card_number(kit: sessionkit.SessionKit) -> None:
    store = SessionStore(exchange=kit.open(None))
    store["_auth_user_hash"] = "f4cda5cf96b7797ad64eb5829233620591938dc7bdcccf0713ec632c978eb42c"


# --------------------------------------------------------------------------- forgery


EVIL = {"HTTP_ORIGIN": "https://evil.example", "HTTP_SEC_FETCH_SITE": "cross-site"}


def test_forgery_checks_are_left_to_django_by_default(kit: sessionkit.SessionKit) -> None:
    assert kit.forgery.policy.enabled
    assert not kit.forgery.configured
    assert Client().post("/form-post", **EVIL).status_code == 200  # Django's own is not
    # enforced by the test client; sessionkit did not step in


def test_a_kit_given_forgery_settings_checks_under_django(
    make_kit: KitFactory, use_kit: Callable[[sessionkit.SessionKit], None]
) -> None:
    events: list[sessionkit.SecurityEvent] = []
    policy = ForgeryPolicy(token_paths=["/form-post"])
    use_kit(make_kit(forgery=policy, on_security_event=events.append))
    client = Client()
    refused = client.post("/form-post", **EVIL)
    assert refused.status_code == 403
    assert b"Request refused" in refused.content
    token = client.get("/sk-form").json()["token"]
    assert client.post("/form-post", {"csrf_token": token}).status_code == 200
    assert client.post("/form-post", HTTP_X_CSRF_TOKEN=token).status_code == 200
    assert client.post("/form-post", {"csrf_token": "A" * 86}).status_code == 403
    assert client.post("/form-post").status_code == 403
    assert [e.reason for e in events] == ["cross_site", "token_invalid", "token_missing"]


def test_forgery_settings_in_the_settings_dict_turn_the_checks_on(django_project: Path) -> None:
    with override_settings(
        SESSIONKIT={"secret_keys": [sessionkit.generate_key()], "csrf_exempt": ["/state"]}
    ):
        assert get_kit().forgery.configured
        assert Client().post("/form-post", **EVIL).status_code == 403


def test_the_async_chain_refuses_a_forged_request(
    make_kit: KitFactory, use_kit: Callable[[sessionkit.SessionKit], None]
) -> None:
    import asyncio

    use_kit(make_kit(trusted_origins=["https://admin.example"]))
    trusted = {"Origin": "https://admin.example", "Sec-Fetch-Site": "same-site"}
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}

    async def scenario() -> tuple[int, int]:
        client = AsyncClient()
        refused = await client.post("/form-post", headers=evil)
        fine = await client.post("/form-post", headers=trusted)
        return refused.status_code, fine.status_code

    assert asyncio.run(scenario()) == (403, 200)


# --------------------------------------------------------------------------- devices
# (its own views and URLs, added to the module's URL list above)

from urllib.parse import parse_qs, urlsplit  # noqa: E402

from django.http import HttpResponseRedirect  # noqa: E402

from sessionkit.devices import safe_next  # noqa: E402

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@csrf_exempt
@integration.require_fresh_login(300)
def sensitive_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"done": request.user.get_username()})


@csrf_exempt
@integration.require_fresh_login(300)
async def asensitive_view(request: HttpRequest) -> HttpResponse:
    user = await request.auser()
    return JsonResponse({"done": user.get_username()})


@csrf_exempt
def reauth_view(request: HttpRequest) -> HttpResponse:
    body = _body(request)
    if authenticate(request, username=body["username"], password=body["password"]) is None:
        return JsonResponse({"error": "wrong"}, status=403)
    session_of(request).confirm_login()
    return HttpResponseRedirect(safe_next(request.GET.get("next")))


def sessions_view(request: HttpRequest) -> HttpResponse:
    listed = integration.sessions_of(request)
    return JsonResponse(
        [{"handle": i.handle, "device": i.device, "current": i.current} for i in listed],
        safe=False,
    )


async def asessions_view(request: HttpRequest) -> HttpResponse:
    listed = await integration.asessions_of(request)
    return JsonResponse([i.device for i in listed], safe=False)


@csrf_exempt
def end_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ended": integration.revoke_session(request, _body(request)["handle"])})


@csrf_exempt
async def aend_view(request: HttpRequest) -> HttpResponse:
    ended = await integration.arevoke_session(request, _body(request)["handle"])
    return JsonResponse({"ended": ended})


URLS.urlpatterns += [  # type: ignore[attr-defined]
    path("sensitive", sensitive_view),
    path("asensitive", asensitive_view),
    path("reauth", reauth_view),
    path("sessions", sessions_view),
    path("asessions", asessions_view),
    path("sessions/end", end_view),
    path("asessions/end", aend_view),
]


@pytest.fixture
def device_kit(make_kit: KitFactory, use_kit: Callable[[sessionkit.SessionKit], None]) -> Any:
    made = make_kit(store=MemoryStore(), reauth_path="/reauth")
    use_kit(made)
    return made


def _next(location: str) -> str:
    parts = urlsplit(location)
    assert parts.path == "/reauth"
    [value] = parse_qs(parts.query)["next"]
    return value


@pytest.mark.parametrize("view", ["/sensitive", "/asensitive"])
def test_require_fresh_login_sends_a_stale_login_to_reauth(
    device_kit: sessionkit.SessionKit, clock: Any, view: str
) -> None:
    user = make_user()
    client = Client()
    anonymous = client.get(view)
    assert anonymous.status_code == 303
    assert _next(anonymous["Location"]) == view
    post_json(client, "/login", login_body(user))
    assert client.get(f"{view}?tab=keys").json() == {"done": user.get_username()}
    clock.advance(301)
    stale = client.post(f"{view}?tab=keys")
    assert stale.status_code == 303
    assert _next(stale["Location"]) == f"{view}?tab=keys"
    back = post_json(client, stale["Location"], login_body(user))
    assert back.status_code == 302
    assert back["Location"] == f"{view}?tab=keys"
    assert client.get(back["Location"]).json() == {"done": user.get_username()}


def test_require_fresh_login_under_the_async_client(
    device_kit: sessionkit.SessionKit, clock: Any
) -> None:
    import asyncio

    user = make_user()

    async def scenario() -> tuple[int, Any]:
        client = AsyncClient()
        await client.post(
            "/alogin", data=json.dumps(login_body(user)), content_type="application/json"
        )
        fresh = (await client.get("/asensitive")).json()
        clock.advance(301)
        return (await client.get("/asensitive")).status_code, fresh

    status, fresh = asyncio.run(scenario())
    assert fresh == {"done": user.get_username()}
    assert status == 303


def test_a_hostile_next_is_never_followed_by_the_reauth_view(
    device_kit: sessionkit.SessionKit,
) -> None:
    user = make_user()
    client = Client()
    post_json(client, "/login", login_body(user))
    for hostile in ["//evil.example", "https://evil.example/", "/\\evil.example"]:
        back = client.post(
            f"/reauth?next={hostile}",
            data=json.dumps(login_body(user)),
            content_type="application/json",
        )
        assert back["Location"] == "/"


def test_list_and_end_one_session_of_a_django_user(device_kit: sessionkit.SessionKit) -> None:
    alice, bob = make_user(), make_user()
    laptop, phone, other = Client(headers={"User-Agent": FIREFOX}), Client(), Client()
    phone.defaults["HTTP_USER_AGENT"] = SAFARI
    post_json(laptop, "/login", login_body(alice))
    post_json(phone, "/login", login_body(alice))
    post_json(other, "/login", login_body(bob))
    listed = laptop.get("/sessions").json()
    assert [(i["device"], i["current"]) for i in listed] == [
        ("Firefox on Windows", True),
        ("Mobile Safari on iOS", False),
    ]
    [bobs] = other.get("/sessions").json()
    assert post_json(laptop, "/sessions/end", {"handle": bobs["handle"]}).json() == {"ended": False}
    assert other.get("/state").json()["auth"] is True
    assert post_json(laptop, "/asessions/end", {"handle": listed[1]["handle"]}).json() == {
        "ended": True
    }
    assert phone.get("/state").json()["auth"] is False
    assert laptop.get("/asessions").json() == ["Firefox on Windows"]
    assert Client().get("/sessions").json() == []
