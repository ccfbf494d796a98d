"""Fresh logins and the list of sessions through Flask, FastAPI and Starlette.

Each framework gets a real app: ``POST /login`` signs in, ``/sensitive`` needs a login at
most five minutes old (``require_fresh_login(300)``), ``POST /reauth`` stands for the
password form (``confirm_login()``, then back to ``safe_next``), ``GET /sessions`` lists
the user's sessions and ``POST /sessions/end`` ends one by its handle. (Django's are at
the end of tests/integrations/test_django.py, which configures Django for the session.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import flask
import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, Response
from starlette.responses import RedirectResponse as StarletteRedirect
from starlette.routing import Route

import sessionkit
from sessionkit.access import fresh_login_location
from sessionkit.asgi import SessionMiddleware
from sessionkit.devices import NewDevice, safe_next
from sessionkit.integrations import fastapi as fastapi_integration
from sessionkit.integrations import flask as flask_integration
from sessionkit.integrations.fastapi import SessionDep
from sessionkit.stores import MemoryStore

KitFactory = Callable[..., sessionkit.SessionKit]
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def kit(make_kit: KitFactory) -> sessionkit.SessionKit:
    return make_kit(store=MemoryStore(), reauth_path="/reauth")


def _next(location: str) -> str:
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path) == ("", "", "/reauth")
    [value] = parse_qs(parts.query)["next"]
    return value


# ------------------------------------------------------------------------------ Flask


def flask_app(kit: sessionkit.SessionKit) -> flask.Flask:
    app = flask.Flask(__name__)
    app.testing = True
    flask_integration.init_app(app, kit)
    current = flask_integration.current_session

    @app.post("/login")
    def login() -> str:
        current().login(flask.request.form["user"])
        return "in"

    @app.route("/sensitive", methods=["GET", "POST"])
    @flask_integration.require_fresh_login(300)
    def sensitive() -> str:
        """A sensitive action."""
        return f"done for {current().user_id}"

    @app.get("/elsewhere")
    @flask_integration.require_fresh_login(60, reauth_path="/password-again")
    def elsewhere() -> str:
        return "done"

    @app.post("/reauth")
    def reauth() -> flask.Response:
        current().confirm_login()
        return flask.redirect(safe_next(flask.request.args.get("next")), 303)

    @app.get("/sessions")
    def sessions() -> list[dict[str, Any]]:
        session = current()
        listed = kit.sessions_of(session.user_id, current=session)  # type: ignore[arg-type]
        return [{"handle": i.handle, "device": i.device, "current": i.current} for i in listed]

    @app.post("/sessions/end")
    def end() -> dict[str, bool]:
        user = current().user_id
        ended = kit.revoke_session(
            user,  # type: ignore[arg-type]
            flask.request.form["handle"],
            client=flask.request.remote_addr,
        )
        return {"ended": ended}

    return app


def test_flask_a_stale_login_goes_to_reauth_and_comes_back(
    kit: sessionkit.SessionKit, clock: Any
) -> None:
    client = flask_app(kit).test_client()
    client.post("/login", data={"user": "alice"})
    assert client.get("/sensitive?tab=keys").text == "done for alice"
    clock.advance(301)
    stale = client.get("/sensitive?tab=keys")
    assert stale.status_code == 303
    assert _next(stale.headers["Location"]) == "/sensitive?tab=keys"
    assert client.post("/sensitive").status_code == 303  # a POST is refused alike
    back = client.post(stale.headers["Location"])
    assert back.status_code == 303
    assert back.headers["Location"] == "/sensitive?tab=keys"
    assert client.get(back.headers["Location"]).text == "done for alice"


def test_flask_no_login_is_never_fresh_and_the_page_can_be_chosen(
    kit: sessionkit.SessionKit,
) -> None:
    client = flask_app(kit).test_client()
    assert client.get("/sensitive").status_code == 303
    other = client.get("/elsewhere")
    assert other.status_code == 303
    assert other.headers["Location"] == "/password-again?next=%2Felsewhere"


def test_flask_a_hostile_next_is_never_followed(kit: sessionkit.SessionKit) -> None:
    client = flask_app(kit).test_client()
    client.post("/login", data={"user": "alice"})
    for hostile in ["//evil.example", "https://evil.example/", "/\\evil.example", "/a\r\nX: y"]:
        back = client.post("/reauth", query_string={"next": hostile})
        assert back.headers["Location"] == "/"


def test_flask_list_and_end_one_session(kit: sessionkit.SessionKit) -> None:
    app = flask_app(kit)
    laptop, phone, other = app.test_client(), app.test_client(), app.test_client()
    laptop.post("/login", data={"user": "alice"}, headers={"User-Agent": FIREFOX})
    phone.post("/login", data={"user": "alice"}, headers={"User-Agent": SAFARI})
    other.post("/login", data={"user": "bob"}, headers={"User-Agent": SAFARI})
    listed = laptop.get("/sessions").json
    assert [(i["device"], i["current"]) for i in listed] == [
        ("Firefox on Windows", True),
        ("Mobile Safari on iOS", False),
    ]
    [bobs] = other.get("/sessions").json
    assert laptop.post("/sessions/end", data={"handle": bobs["handle"]}).json == {"ended": False}
    assert other.get("/sessions").status_code == 200
    assert laptop.post("/sessions/end", data={"handle": listed[1]["handle"]}).json == {
        "ended": True
    }
    assert [i["device"] for i in laptop.get("/sessions").json] == ["Firefox on Windows"]


def test_flask_bad_max_age_fails_at_decoration() -> None:
    with pytest.raises(sessionkit.ConfigurationError, match="max_age"):
        flask_integration.require_fresh_login(0)
    with pytest.raises(sessionkit.ConfigurationError, match="reauth_path"):
        flask_integration.require_fresh_login(60, reauth_path="https://evil.example/")


# ---------------------------------------------------------------------------- FastAPI


def fastapi_app(kit: sessionkit.SessionKit) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, kit=kit)
    fresh = Depends(fastapi_integration.require_fresh_login(300))

    @app.post("/login/{user}")
    async def login(user: str, session: SessionDep) -> str:
        session.login(user)
        return "in"

    @app.get("/sensitive", dependencies=[fresh])
    async def sensitive(session: SessionDep) -> str:
        return f"done for {session.user_id}"

    @app.post("/reauth")
    async def reauth(session: SessionDep, request: Request) -> RedirectResponse:
        session.confirm_login()
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)

    @app.get("/sessions")
    async def sessions(session: SessionDep) -> list[dict[str, Any]]:
        listed = await kit.asessions_of(session.user_id, current=session)  # type: ignore[arg-type]
        return [{"handle": i.handle, "device": i.device, "current": i.current} for i in listed]

    @app.post("/sessions/end/{handle}")
    async def end(handle: str, session: SessionDep) -> dict[str, bool]:
        return {"ended": await kit.arevoke_session(session.user_id, handle)}  # type: ignore[arg-type]

    return app


def _http(app: Any, agent: str = FIREFOX) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://testserver",
        headers={"User-Agent": agent},
    )


@pytest.mark.anyio
async def test_fastapi_a_stale_login_goes_to_reauth_and_comes_back(
    kit: sessionkit.SessionKit, clock: Any
) -> None:
    async with _http(fastapi_app(kit)) as http:
        assert (await http.get("/sensitive")).status_code == 303
        await http.post("/login/alice")
        assert (await http.get("/sensitive?x=1")).json() == "done for alice"
        clock.advance(301)
        stale = await http.get("/sensitive?x=1")
        assert stale.status_code == 303
        assert _next(stale.headers["Location"]) == "/sensitive?x=1"
        back = await http.post(stale.headers["Location"])
        assert back.headers["Location"] == "/sensitive?x=1"
        assert (await http.get("/sensitive?x=1")).json() == "done for alice"


@pytest.mark.anyio
async def test_fastapi_list_and_end_one_session(kit: sessionkit.SessionKit) -> None:
    app = fastapi_app(kit)
    async with _http(app) as laptop, _http(app, SAFARI) as phone, _http(app, SAFARI) as bob:
        await laptop.post("/login/alice")
        await phone.post("/login/alice")
        await bob.post("/login/bob")
        listed = (await laptop.get("/sessions")).json()
        assert [(i["device"], i["current"]) for i in listed] == [
            ("Firefox on Windows", True),
            ("Mobile Safari on iOS", False),
        ]
        [bobs] = (await bob.get("/sessions")).json()
        refused = await laptop.post(f"/sessions/end/{bobs['handle']}")
        assert refused.json() == {"ended": False}
        ended = await laptop.post(f"/sessions/end/{listed[1]['handle']}")
        assert ended.json() == {"ended": True}
        assert (await phone.get("/sessions")).json() == []
        assert len((await bob.get("/sessions")).json()) == 1


def test_fastapi_bad_max_age_fails_when_the_dependency_is_made() -> None:
    with pytest.raises(sessionkit.ConfigurationError, match="max_age"):
        fastapi_integration.require_fresh_login(-1)


# -------------------------------------------------------------------------- Starlette


def starlette_app(kit: sessionkit.SessionKit) -> Starlette:
    async def login(request: StarletteRequest) -> Response:
        request.session.login("alice")
        return Response("in")

    async def sensitive(request: StarletteRequest) -> Response:
        location = fresh_login_location(request.scope, 300)
        if location is not None:
            return StarletteRedirect(location, status_code=303)
        return JSONResponse({"user": request.session.user_id})

    app = Starlette(routes=[Route("/login", login, methods=["POST"]), Route("/s", sensitive)])
    app.add_middleware(SessionMiddleware, kit=kit)
    return app


@pytest.mark.anyio
async def test_starlette_endpoint_helper(kit: sessionkit.SessionKit, clock: Any) -> None:
    async with _http(starlette_app(kit)) as http:
        first = await http.get("/s?a=%2F%2Fevil.example")
        assert first.status_code == 303
        assert _next(first.headers["Location"]) == "/s?a=%2F%2Fevil.example"
        await http.post("/login")
        assert (await http.get("/s")).json() == {"user": "alice"}
        clock.advance(301)
        assert (await http.get("/s")).status_code == 303


@pytest.mark.anyio
async def test_fastapi_the_new_device_hook_runs_under_asgi(make_kit: KitFactory) -> None:
    notices: list[NewDevice] = []
    kit = make_kit(store=MemoryStore(), on_new_device=notices.append)
    app = fastapi_app(kit)
    async with _http(app) as laptop, _http(app, SAFARI) as phone, _http(app) as again:
        await laptop.post("/login/alice")
        await phone.post("/login/alice")
        await again.post("/login/alice")
    assert [(n.device, n.known) for n in notices] == [
        ("Firefox on Windows", ()),
        ("Mobile Safari on iOS", ("Firefox on Windows",)),
    ]
