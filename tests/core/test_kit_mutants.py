"""SessionKit settings and plumbing, each checked by what a request or the logs show."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from sessionkit import ConfigurationError, SecurityEvent, SessionKit, generate_key
from sessionkit.exchange import Exchange
from sessionkit.keys import KeyRing
from sessionkit.seal import Sealer
from sessionkit.session import State, encode_payload
from sessionkit.stores import MemoryStore
from sessionkit.stores.base import StoreUnavailable

MakeKit = Callable[..., SessionKit]


def set_cookies(ex: Exchange) -> dict[str, str]:
    return {v.split("=", 1)[0]: v for n, v in ex.response_headers([]) if n == "Set-Cookie"}


def written(kit: SessionKit, **request: Any) -> dict[str, str]:
    """The cookies of a first response whose app wrote the session and used the visitor id."""
    ex = kit.open(None, **request)
    ex.session["a"] = 1
    assert ex.visitor is not None
    return set_cookies(ex)


def test_every_timeout_setting_reads_back(make_kit: MakeKit) -> None:
    kit = make_kit(
        idle_timeout=600,
        absolute_timeout=7200,
        max_lifetime=86400,
        touch_interval=30,
        rotate_every=900,
        rotation_grace=20,
        max_clock_skew=15,
        persistent_cookie=False,
    )
    assert (kit.idle_timeout, kit.absolute_timeout, kit.max_lifetime) == (600, 7200, 86400)
    assert (kit.touch_interval, kit.rotate_every, kit.rotation_grace) == (30, 900, 20)
    assert kit.max_clock_skew == 15
    assert kit.persistent_cookie is False
    assert make_kit().persistent_cookie is True
    assert make_kit(rotate_every=None).rotate_every is None


def test_the_visitor_cookie_lasts_a_year_by_default_and_at_most_400_days(
    make_kit: MakeKit,
) -> None:
    ex = make_kit().open(None)
    assert ex.visitor is not None
    cookie = set_cookies(ex)["__Host-visitor"]
    assert "; Max-Age=31536000;" in cookie
    assert make_kit(visitor_max_age=400 * 86400).visitor_max_age == 34560000
    with pytest.raises(ConfigurationError, match="over the 400 days"):
        make_kit(visitor_max_age=400 * 86400 + 1)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "60", True, None])
def test_visitor_max_age_must_be_a_positive_whole_number(make_kit: MakeKit, bad: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        make_kit(visitor_max_age=bad)
    assert str(caught.value) == (
        f"visitor_max_age must be a positive whole number of seconds, not {bad!r}"
    )


def test_one_second_is_a_valid_visitor_max_age(make_kit: MakeKit) -> None:
    assert make_kit(visitor_max_age=1).visitor_max_age == 1


def test_secure_true_is_the_default_said_out_loud(make_kit: MakeKit) -> None:
    assert "; Secure" in written(make_kit(secure=True))["__Host-session"]


def test_the_session_cookie_attributes_follow_the_settings(make_kit: MakeKit) -> None:
    default = written(make_kit())["__Host-session"]
    assert "; HttpOnly" in default
    assert "; SameSite=Lax" in default
    cookie = written(
        make_kit(path="/app", http_only=False, same_site="strict", partitioned=True),
        path="/app",
    )["__Secure-session"]
    assert "; Path=/app;" in cookie
    assert "HttpOnly" not in cookie
    assert "; SameSite=Strict" in cookie
    assert cookie.endswith("; Partitioned")


def test_the_visitor_cookie_stays_lax_whatever_the_session_cookie_says(
    make_kit: MakeKit,
) -> None:
    cookies = written(make_kit(same_site="strict"))
    assert "; SameSite=Lax" in cookies["__Host-visitor"]
    assert "; SameSite=Strict" in cookies["__Host-session"]


def test_insecure_development_drops_secure_from_every_cookie(make_kit: MakeKit) -> None:
    kit = make_kit(insecure_development=True, require_cookies=["/app"])
    assert kit.insecure_development is True
    assert make_kit().insecure_development is False
    test_cookie = dict(kit.open(None, path="/app").early.headers)["Set-Cookie"]
    assert test_cookie.startswith("cookie-check=1; Max-Age=300; Path=/;")
    assert "Secure" not in test_cookie
    ex = kit.open("session=x; visitor=y")
    ex.opt_out()
    opt_out = set_cookies(ex)["opt-out"]
    assert opt_out.startswith("opt-out=1;")
    assert "Secure" not in opt_out


def test_opt_out_cookie_name(make_kit: MakeKit) -> None:
    ex = make_kit().open(None)
    ex.opt_out()
    assert set_cookies(ex)["__Host-opt-out"].startswith("__Host-opt-out=1;")


def test_a_store_must_be_a_sessionkit_store(make_kit: MakeKit) -> None:
    with pytest.raises(ConfigurationError, match="is not a sessionkit store"):
        make_kit(store={"a": "dict"})
    assert make_kit(store=MemoryStore()).store is not None


@pytest.mark.parametrize("bad", ["", "a" * 65, "has space", "semi;colon", "ünï", 12])
def test_store_namespace_is_a_short_plain_name(make_kit: MakeKit, bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="must be 1 to 64 letters"):
        make_kit(store_namespace=bad)


def test_records_live_in_the_configured_namespace_or_one_per_key(key: str) -> None:
    assert SessionKit(secret_keys=[key], store_namespace="shop.v2-a_b").namespaces == (
        "shop.v2-a_b",
    )
    assert SessionKit(secret_keys=[key], store_namespace="x" * 64).namespaces == ("x" * 64,)
    older = generate_key()
    ring = KeyRing([key, older])
    assert SessionKit(secret_keys=[key, older]).namespaces == tuple(k.hex() for k in ring.key_ids)


def test_a_cookie_sealed_for_the_session_purpose_opens(make_kit: MakeKit, key: str) -> None:
    """The kit seals under the ring's "session" purpose and the cookie's own name."""
    kit = make_kit(visitor_cookie=None)
    now = kit.clock()
    state = State.fresh(now)
    sealer = Sealer(
        KeyRing([key]), "session", "__Host-session", max_age=kit.max_lifetime, max_skew=60
    )
    token = sealer.seal(encode_payload(state, {"from": "outside"}), now)
    ex = kit.open(f"__Host-session={token}")
    assert ex.session == {"from": "outside"}
    assert ex.session.id == state.id


def test_request_defaults_are_a_get_of_the_root_without_a_query(make_kit: MakeKit) -> None:
    kit = make_kit(require_cookies=["/"])
    early = kit.open(None).early
    assert early is not None
    assert early.status == 303
    assert dict(early.headers)["Location"] == "/?sessionkit-cookie-check=1"


@pytest.mark.parametrize(
    ("gpc", "dnt", "opted_out"),
    [
        ("1", None, True),
        (None, "1", True),
        (" 1 ", None, True),
        ("0", "0", False),
        (None, None, False),
    ],
)
def test_either_privacy_signal_opts_out(
    make_kit: MakeKit, gpc: str | None, dnt: str | None, opted_out: bool
) -> None:
    ex = make_kit().open(None, sec_gpc=gpc, dnt=dnt)
    assert (ex.visitor is None) == opted_out


def test_without_trusted_proxies_the_peer_is_the_client(make_kit: MakeKit) -> None:
    events: list[SecurityEvent] = []
    kit = make_kit(visitor_cookie=None, client_address="full", on_security_event=events.append)
    kit.open("__Host-session=x", client="198.51.100.7", forwarded_for="203.0.113.9").session.get(
        "a"
    )
    assert [e.client for e in events] == ["198.51.100.7"]


def test_events_are_logged_with_a_dash_for_an_unknown_client(
    make_kit: MakeKit, caplog: pytest.LogCaptureFixture
) -> None:
    kit = make_kit(visitor_cookie=None)
    with caplog.at_level(logging.INFO, logger="sessionkit.security"):
        kit.open("__Host-session=x").session.get("a")
    [message] = [r.getMessage() for r in caplog.records]
    assert message.startswith("rejected cookie __Host-session: malformed method=GET path=/ ")
    assert " client=- " in message


def test_a_failing_hook_is_logged_with_its_traceback(
    make_kit: MakeKit, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(event: SecurityEvent) -> None:
        raise RuntimeError("hook broke")

    kit = make_kit(visitor_cookie=None, on_security_event=hook)
    with caplog.at_level(logging.INFO, logger="sessionkit.security"):
        kit.open("__Host-session=x").session.get("a")
    failure = caplog.records[-1]
    assert failure.getMessage() == "on_security_event raised; the request goes on"
    assert failure.levelno == logging.ERROR
    assert failure.exc_info is not None


def test_a_store_failure_is_logged_on_the_stores_logger(
    make_kit: MakeKit, caplog: pytest.LogCaptureFixture
) -> None:
    kit = make_kit()
    ex = kit.open(None)
    with caplog.at_level(logging.WARNING, logger="sessionkit.stores"):
        kit.store_error(StoreUnavailable("connection refused"), ex.request)
    [(name, level, message)] = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert (name, level) == ("sessionkit.stores", logging.WARNING)
    assert message.startswith("store unavailable (StoreUnavailable: connection refused) ")


def test_store_calls_return_what_the_store_returned(make_kit: MakeKit) -> None:
    kit = make_kit()

    async def double(value: int) -> int:
        return value * 2

    assert kit.timed("load", lambda value: value + 1, (1,)) == 2
    assert asyncio.run(kit.atimed("load", double, (21,))) == 42


def test_seconds_left_counts_down_the_idle_timeout(make_kit: MakeKit, clock: Any) -> None:
    kit = make_kit(idle_timeout=600)
    ex = kit.open(None)
    ex.session["a"] = 1
    assert kit.seconds_left(ex.session, clock.now) == 600
    assert kit.seconds_left(ex.session, clock.now + 100) == 500


def test_revoking_a_user_needs_a_store(make_kit: MakeKit) -> None:
    kit = make_kit()
    with pytest.raises(ConfigurationError) as caught:
        kit.revoke_user("alice")
    assert str(caught.value).startswith("revoke_user needs a server-side store")
    with pytest.raises(ConfigurationError) as acaught:
        asyncio.run(kit.arevoke_user("alice"))
    assert str(acaught.value).startswith("arevoke_user needs a server-side store")


def test_revoking_a_user_counts_the_sessions_ended(make_kit: MakeKit) -> None:
    kit = make_kit(store=MemoryStore())
    ex = kit.open(None)
    ex.session.login("alice")
    ex.finish([], [])
    assert kit.revoke_user("nobody") == 0
    assert kit.revoke_user("alice") == 1
    assert asyncio.run(kit.arevoke_user("alice")) == 0


def test_repr_names_the_cookie_and_timeouts_never_a_key(make_kit: MakeKit, key: str) -> None:
    kit = make_kit(idle_timeout=600, absolute_timeout=7200)
    text = repr(kit)
    assert text.startswith("SessionKit(session_cookie='__Host-session', keys=KeyRing(key_ids=[")
    assert text.endswith("idle_timeout=600, absolute_timeout=7200)")
    assert key not in text


def test_from_env_needs_the_variable(make_kit: MakeKit, key: str) -> None:
    with pytest.raises(ConfigurationError, match="SESSIONKIT_SECRET_KEYS is not set"):
        SessionKit.from_env({"SESSIONKIT_SECRET_KEYS": " , "})
    kit = SessionKit.from_env({"SESSIONKIT_SECRET_KEYS": f" {key} "}, idle_timeout=600)
    assert kit.idle_timeout == 600
    assert kit.primary_kid == KeyRing([key]).key_ids[0]
