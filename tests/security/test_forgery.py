"""Cross-site request forgery, attacked: forged origins, stolen and altered tokens, hijacked
WebSockets, hostile headers. Every request goes through the raw ASGI front end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sksec import ORIGIN, call_asgi

import sessionkit.asgi
from sessionkit import ForgeryPolicy, SecurityEvent, SessionKit
from sessionkit.forgery import origin_of

pytestmark = pytest.mark.security

MakeKit = Callable[..., SessionKit]
HOST = ORIGIN.split("://", 1)[1]
KEY = sessionkit.generate_key()
UNSAFE = ["POST", "PUT", "PATCH", "DELETE", "PROPFIND", "X-CUSTOM"]


def make_app(kit: SessionKit, calls: list[str]) -> Any:
    """An app that records every call that reaches it and changes the session."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["method"] if scope["type"] == "http" else "websocket")
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})
            return
        session = sessionkit.asgi.session_of(scope)
        session["changed"] = True
        body = sessionkit.asgi.csrf_token(scope).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return sessionkit.asgi.SessionMiddleware(app, kit=kit)


def headers(**named: str) -> list[tuple[bytes, bytes]]:
    return [(b"host", HOST.encode())] + [
        (name.replace("_", "-").encode(), value.encode()) for name, value in named.items()
    ]


@pytest.mark.asvs("3.5.1")
@pytest.mark.parametrize("method", UNSAFE)
@pytest.mark.parametrize(
    "forged",
    [
        {"sec_fetch_site": "cross-site", "origin": "https://evil.example"},
        {"sec_fetch_site": "same-site", "origin": "https://blog.site.example"},
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"origin": "http://site.example"},
        {"origin": "https://site.example.evil.example"},
        {"origin": "https://site.example:444"},
        {"referer": "https://evil.example/?https://site.example/"},
    ],
)
def test_a_forged_unsafe_request_never_reaches_the_app(
    make_kit: MakeKit, method: str, forged: dict[str, str]
) -> None:
    calls: list[str] = []
    app = make_app(make_kit(), calls)
    status, sent, _body = call_asgi(app, method=method, path="/transfer", headers=headers(**forged))
    assert status == 403
    assert calls == []
    assert not any(name == b"set-cookie" for name, _ in sent)


@pytest.mark.asvs("3.5.1")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(UNSAFE),
    st.from_regex(r"https?://[a-z0-9.-]{1,30}(:[0-9]{1,5})?", fullmatch=True),
)
def test_no_other_origin_gets_an_unsafe_request_through(method: str, origin: str) -> None:
    kit = SessionKit(secret_keys=[KEY])
    calls: list[str] = []
    app = make_app(kit, calls)
    status, _, _ = call_asgi(app, method=method, headers=headers(origin=origin))
    own = origin_of(origin) == ORIGIN
    assert (status == 200) == own
    assert (calls == [method]) == own


@pytest.mark.asvs("3.5.1", "SK-HOSTILE-INPUT")
@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["GET", "POST", "DELETE"]),
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    b"origin",
                    b"referer",
                    b"sec-fetch-site",
                    b"host",
                    b"x-forwarded-host",
                    b"x-forwarded-proto",
                    b"x-csrf-token",
                    b"content-type",
                ]
            ),
            st.binary(max_size=80),
        ),
        max_size=8,
    ),
)
def test_hostile_origin_headers_never_give_a_5xx(
    method: str, raw: list[tuple[bytes, bytes]]
) -> None:
    kit = SessionKit(
        secret_keys=[KEY], trusted_proxy_hops=1, forgery=ForgeryPolicy(token_paths=["/app"])
    )
    for path in ("/", "/app/x"):
        status, _, _ = call_asgi(make_app(kit, []), method=method, path=path, headers=raw)
        assert status in (200, 403)


@pytest.mark.asvs("3.5.1")
def test_a_cross_site_websocket_is_closed_before_the_app_runs(make_kit: MakeKit) -> None:
    import asyncio

    from support import run_websocket

    calls: list[str] = []
    app = make_app(make_kit(), calls)
    refused = asyncio.run(run_websocket(app, [(b"origin", b"https://evil.example")]))
    assert refused == [{"type": "websocket.close", "code": 1008}]
    assert calls == []
    accepted = asyncio.run(run_websocket(app, [(b"origin", b"https://testserver")]))
    assert accepted[0]["type"] == "websocket.accept"
    assert calls == ["websocket"]


def _session_and_token(app: Any) -> tuple[bytes, str]:
    status, sent, body = call_asgi(app, headers=headers())
    assert status == 200
    cookie = next(v for n, v in sent if n == b"set-cookie").split(b";", 1)[0]
    return cookie, body.decode()


def _post_token(app: Any, cookie: bytes, token: str) -> int:
    sent = [*headers(origin=ORIGIN), (b"cookie", cookie), (b"x-csrf-token", token.encode())]
    status, _, _ = call_asgi(app, method="POST", headers=sent)
    return status


@pytest.mark.asvs("3.5.1")
def test_a_token_works_only_with_its_own_session(make_kit: MakeKit) -> None:
    kit = make_kit(forgery=ForgeryPolicy(token_paths=["/"]))
    app = make_app(kit, [])
    alice, alice_token = _session_and_token(app)
    mallory, mallory_token = _session_and_token(app)
    assert _post_token(app, alice, alice_token) == 200
    assert _post_token(app, alice, mallory_token) == 403
    assert _post_token(app, mallory, alice_token) == 403
    other_kit = make_app(make_kit(forgery=ForgeryPolicy(token_paths=["/"]), secret_keys=[KEY]), [])
    assert _post_token(other_kit, alice, alice_token) == 403


@pytest.mark.asvs("3.5.1")
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_altered_token_is_refused(data: st.DataObject) -> None:
    kit = SessionKit(secret_keys=[KEY], forgery=ForgeryPolicy(token_paths=["/"]))
    app = make_app(kit, [])
    cookie, token = _session_and_token(app)
    index = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.sampled_from("AQgwBCDabc019-_"))
    altered = token[:index] + char + token[index + 1 :]
    if altered != token:
        assert _post_token(app, cookie, altered) == 403


@pytest.mark.asvs("16.3.3", "16.4.1", "16.2.5")
def test_every_refusal_is_logged_with_its_reason_and_nothing_injected(
    make_kit: MakeKit, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[SecurityEvent] = []
    kit = make_kit(on_security_event=events.append, forgery=ForgeryPolicy(token_paths=["/app"]))
    app = make_app(kit, [])
    caplog.set_level(logging.WARNING, "sessionkit.security")
    call_asgi(app, method="POST", path="/x\r\nforged: line", headers=headers(origin="null"))
    call_asgi(app, method="POST", headers=headers(sec_fetch_site="cross-site"))
    secret = "s3cr3t-token-value"
    call_asgi(app, method="POST", path="/app/a", headers=headers(x_csrf_token=secret))
    call_asgi(app, method="POST", path="/app/a", headers=headers())
    assert [e.reason for e in events] == [
        "origin_mismatch",
        "cross_site",
        "token_invalid",
        "token_missing",
    ]
    lines = caplog.text.splitlines()
    assert len(lines) == 4
    assert all(line.count("refused request as forged: ") == 1 for line in lines)
    assert "\\x0d\\x0aforged: line" in lines[0]
    assert secret not in caplog.text


@pytest.mark.asvs("16.5.1")
def test_the_refusal_reflects_nothing_of_the_request(make_kit: MakeKit) -> None:
    app = make_app(make_kit(), [])
    marker = "<script>alert(1)</script>"
    for accept in (b"text/html", b"application/json"):
        _, _, body = call_asgi(
            app,
            method="POST",
            path="/" + marker,
            headers=[*headers(origin="https://evil.example/" + marker), (b"accept", accept)],
        )
        assert b"script" not in body
        assert b"evil" not in body
