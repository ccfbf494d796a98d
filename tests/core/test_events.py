"""Events an operator can use (sessionkit.events): fields, lifecycle, rate limit, JSON lines."""

from __future__ import annotations

import json
import logging
import logging.config
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from sessionkit import ConfigurationError, SessionKit, generate_key
from sessionkit.events import (
    CREATED,
    GATE_BLOCKED,
    KEY_REISSUED,
    LOGIN,
    LOGOUT,
    ROTATED,
    SESSION_REVOKED,
    USER_REVOKED,
    JSONFormatter,
    LifecycleEvent,
    RateLimit,
    SecurityEvent,
    user_agent_family,
)
from sessionkit.exchange import Exchange, HeaderChanges
from sessionkit.stores import MemoryStore
from support import Events

MakeKit = Callable[..., SessionKit]
SESSION = "__Host-session"
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def cookie_of(ex: Exchange) -> str:
    """Finish ``ex`` (store writes included); the ``Cookie`` header a browser sends next."""
    changes = ex.finish([], [])
    assert isinstance(changes, HeaderChanges)
    pairs = [v.split(";", 1)[0] for n, v in changes.add if n == "Set-Cookie"]
    return "; ".join(p for p in pairs if not p.endswith("="))


@pytest.fixture
def recorder() -> Events:
    return Events()


# ------------------------------------------------------------------ request fields


def test_a_refusal_carries_the_request_fields(make_kit: MakeKit, recorder: Events) -> None:
    kit = make_kit(**recorder.settings(), visitor_cookie=None)
    kit.open(
        f"{SESSION}=not-a-token",
        client="203.0.113.77",
        method="POST",
        path="/account/email",
        user_agent=CHROME,
        request_id="req-7f3a",
    ).session.get("x")
    (event,) = recorder.all
    assert isinstance(event, SecurityEvent)
    assert (event.reason, event.cookie) == ("malformed", SESSION)
    assert event.client == "203.0.113.0"
    assert (event.method, event.path) == ("POST", "/account/email")
    assert event.user_agent == "Chrome"
    assert event.request_id == "req-7f3a"
    assert event.family is None, "nothing authentic was presented, so no family is known"


def test_a_request_without_an_id_gets_one_shared_by_its_events(
    make_kit: MakeKit, recorder: Events
) -> None:
    kit = make_kit(**recorder.settings())
    ex = kit.open(f"{SESSION}=junk; __Host-visitor=junk")
    ex.session.get("x")
    assert ex.visitor is not None
    first, second = recorder.all
    assert isinstance(first, SecurityEvent)
    assert isinstance(second, SecurityEvent)
    assert re.fullmatch(r"[0-9a-f]{16}", first.request_id or "")
    assert first.request_id == second.request_id


@pytest.mark.parametrize("given", ["a b", "line\nbreak", "x" * 129, "", "caf\u00e9"])
def test_a_request_id_that_could_forge_a_log_line_is_replaced(
    make_kit: MakeKit, recorder: Events, given: str
) -> None:
    kit = make_kit(**recorder.settings())
    kit.open(f"{SESSION}=junk", request_id=given).session.get("x")
    (event,) = recorder.all
    assert isinstance(event, SecurityEvent)
    assert re.fullmatch(r"[0-9a-f]{16}", event.request_id or "")


def test_a_path_with_control_characters_is_escaped_and_cut(
    make_kit: MakeKit, recorder: Events
) -> None:
    kit = make_kit(**recorder.settings())
    kit.open(f"{SESSION}=junk", path="/a\nWARNING forged\r" + "z" * 500).session.get("x")
    (event,) = recorder.all
    assert isinstance(event, SecurityEvent)
    assert event.path is not None
    assert "\n" not in event.path
    assert "\r" not in event.path
    assert event.path.startswith("/a\\x0aWARNING forged\\x0d")
    assert len(event.path) <= 200 + 6


def test_the_request_id_header_is_a_setting(make_kit: MakeKit) -> None:
    assert make_kit().events.request_id_header == "x-request-id"
    kit = make_kit(request_id_header="X-Amzn-Trace-Id")
    assert kit.events.request_id_header == "x-amzn-trace-id"
    assert kit.events.request_id_environ == "HTTP_X_AMZN_TRACE_ID"
    assert make_kit(request_id_header=None).events.request_id_environ is None
    with pytest.raises(ConfigurationError, match="header name"):
        make_kit(request_id_header="X Request\nId")
    with pytest.raises(ConfigurationError, match="log_rate_limit"):
        make_kit(log_rate_limit=0)


@pytest.mark.parametrize(
    ("agent", "family"),
    [
        (CHROME, "Chrome"),
        ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/131 Safari/537 Edg/131", "Edge"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox"),
        ("Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Version/18.1 Safari/605.1.15", "Safari"),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"),
        ("curl/8.11.0", "curl"),
        ("python-httpx/0.28.1", "python-httpx"),
        ("\n<script>", "other"),
        (None, None),
    ],
)
def test_user_agent_family(agent: str | None, family: str | None) -> None:
    assert user_agent_family(agent) == family


# ------------------------------------------------------------------ family tags


def test_a_replayed_id_names_its_family_by_a_keyed_tag(
    make_kit: MakeKit, recorder: Events, clock: Any
) -> None:
    kit = make_kit(**recorder.settings(), store=MemoryStore(), visitor_cookie=None)
    ex = kit.open(None)
    ex.session.login("alice")
    first = cookie_of(ex)
    family = ex.session.family
    ex = kit.open(first)
    assert ex.load_record() is None
    ex.session.rotate()
    second = cookie_of(ex)
    ex = kit.open(second)
    assert ex.load_record() is None
    ex.session.get("x")
    cookie_of(ex)
    clock.advance(kit.rotation_grace + 1)
    ex = kit.open(first)
    assert ex.load_record() is None
    refused = [e for e in recorder.all if isinstance(e, SecurityEvent)]
    assert [e.reason for e in refused] == ["replayed_id"]
    tag = refused[0].family
    assert tag is not None
    assert re.fullmatch(r"[0-9a-f]{12}", tag)
    assert family not in tag
    assert tag == kit.reporter.tag(family)
    logins = [e for e in recorder.all if isinstance(e, LifecycleEvent) and e.name == LOGIN]
    assert [e.family for e in logins] == [tag], "one tag follows the family across rotations"


def test_tags_depend_on_the_key(make_kit: MakeKit) -> None:
    one, other = make_kit(), make_kit(secret_keys=[generate_key()])
    assert one.reporter.tag("family") == one.reporter.tag("family")
    assert one.reporter.tag("family") != other.reporter.tag("family")


# ------------------------------------------------------------------ lifecycle


@pytest.mark.parametrize("stored", [False, True], ids=["cookie", "store"])
def test_login_rotation_and_logout_are_events(
    make_kit: MakeKit, recorder: Events, stored: bool
) -> None:
    kit = make_kit(**recorder.settings(), store=MemoryStore() if stored else None)

    def request(cookie: str | None, act: Callable[[Any], Any]) -> str:
        ex = kit.open(cookie, path="/r", user_agent="curl/8")
        if ex.pending is not None:
            assert ex.load_record() is None
        act(ex.session)
        return cookie_of(ex)

    cookie = request(None, lambda s: s.update(cart=[1]))
    cookie = request(cookie, lambda s: s.login("alice"))
    cookie = request(cookie, lambda s: s.rotate())
    request(cookie, lambda s: s.invalidate())
    assert recorder.names == [CREATED, LOGIN, ROTATED, LOGOUT]
    created, login, rotated, logout = recorder.all
    assert isinstance(rotated, LifecycleEvent)
    assert rotated.detail == "explicit"
    assert isinstance(login, LifecycleEvent)
    assert isinstance(logout, LifecycleEvent)
    assert login.family == rotated.family == logout.family != created.family
    assert all(e.path == "/r" and e.user_agent == "curl" for e in recorder.all)


def test_a_timed_rotation_and_a_key_reissue_are_events(
    make_kit: MakeKit, recorder: Events, clock: Any, key: str
) -> None:
    kit = make_kit(**recorder.settings())
    ex = kit.open(None)
    ex.session.login("alice")
    cookie = cookie_of(ex)
    clock.advance(kit.rotate_every or 0)
    ex = kit.open(cookie)
    ex.session.get("x")
    cookie = cookie_of(ex)
    newer = make_kit(**recorder.settings(), secret_keys=[generate_key(), key])
    ex = newer.open(cookie)
    ex.session.get("x")
    cookie_of(ex)
    assert recorder.names == [LOGIN, ROTATED, KEY_REISSUED]
    assert isinstance(recorder.all[1], LifecycleEvent)
    assert recorder.all[1].detail == "timed"


def test_an_unchanged_session_is_no_event(make_kit: MakeKit, recorder: Events) -> None:
    kit = make_kit(**recorder.settings())
    ex = kit.open(None)
    ex.session["a"] = 1
    cookie = cookie_of(ex)
    recorder.all.clear()
    ex = kit.open(cookie)
    ex.session.get("a")
    cookie_of(ex)
    ex = kit.open(None)
    cookie_of(ex)
    assert recorder.all == []


def test_a_gate_block_and_a_user_revocation_are_events(make_kit: MakeKit, recorder: Events) -> None:
    kit = make_kit(**recorder.settings(), store=MemoryStore(), require_cookies=["/app"])
    assert kit.open(None, path="/app/pay", method="POST").early is not None
    ex = kit.open(None, path="/app/pay")
    assert ex.early is not None
    assert ex.early.status == 303, "the test redirect is no block"
    ex = kit.open(None)
    ex.session.login("alice@example.com")
    cookie_of(ex)
    assert kit.revoke_user("alice@example.com") == 1
    assert recorder.names == [GATE_BLOCKED, LOGIN, USER_REVOKED]
    blocked, _, revoked = recorder.all
    assert isinstance(blocked, LifecycleEvent)
    assert blocked.method == "POST"
    assert isinstance(revoked, LifecycleEvent)
    assert revoked.detail == "1"
    assert revoked.path is None, "no request did it"
    assert revoked.family == kit.reporter.tag("alice@example.com")
    assert "alice" not in repr(revoked)


def test_ending_one_session_of_a_user_is_an_event(make_kit: MakeKit, recorder: Events) -> None:
    kit = make_kit(**recorder.settings(), store=MemoryStore())
    ex = kit.open(None)
    ex.session.login("alice")
    cookie_of(ex)
    (info,) = kit.sessions_of("alice")
    assert kit.revoke_session("alice", info.handle, client="198.51.100.7")
    assert recorder.names == [LOGIN, SESSION_REVOKED]
    revoked = recorder.all[1]
    assert isinstance(revoked, LifecycleEvent)
    assert revoked.family == kit.reporter.tag("alice")
    assert revoked.client == "198.51.100.0"


# ------------------------------------------------------------------ logging


def test_events_are_logged_on_their_loggers(
    make_kit: MakeKit, caplog: pytest.LogCaptureFixture
) -> None:
    kit = make_kit(require_cookies=["/app"])
    with caplog.at_level(logging.INFO, logger="sessionkit"):
        kit.open(f"{SESSION}=junk", request_id="r1").session.get("x")
        ex = kit.open(None)
        ex.session.login("alice")
        cookie_of(ex)
        kit.open(None, path="/app", method="POST")
    by_logger = [(r.name, r.levelname) for r in caplog.records]
    assert by_logger == [
        ("sessionkit.security", "WARNING"),
        ("sessionkit.lifecycle", "INFO"),
        ("sessionkit.lifecycle", "INFO"),
    ]
    message = caplog.records[0].getMessage()
    assert message.startswith(f"rejected cookie {SESSION}: malformed")
    assert "request_id=r1" in message
    assert "path=/" in message


def test_repeats_of_a_reason_are_rate_limited_and_counted(
    make_kit: MakeKit, recorder: Events, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    kit = make_kit(on_security_event=recorder, log_rate_limit=3)
    with caplog.at_level(logging.INFO, logger="sessionkit.security"):
        for _ in range(8):
            kit.open(f"{SESSION}=junk").session.get("x")
        kit.open(f"{SESSION}={'A' * 5000}").session.get("x")
        clock.advance(60)
        kit.open(f"{SESSION}=junk").session.get("x")
    logged = [r.sessionkit_event for r in caplog.records]  # type: ignore[attr-defined]
    assert [e.reason for e in logged] == ["malformed"] * 3 + ["oversized", "malformed"]
    assert [e.suppressed for e in logged] == [0, 0, 0, 0, 5]
    assert "5 more left out" in caplog.records[-1].getMessage()
    assert len(recorder.all) == 10, "the hook sees every event"


def test_logins_are_an_audit_trail_never_rate_limited(
    make_kit: MakeKit, caplog: pytest.LogCaptureFixture
) -> None:
    kit = make_kit(log_rate_limit=2, require_cookies=["/app"])
    with caplog.at_level(logging.INFO, logger="sessionkit.lifecycle"):
        for n in range(5):
            ex = kit.open(None)
            ex.session.login(f"user{n}")
            cookie_of(ex)
            kit.open(None, path="/app", method="POST")
    names = [r.sessionkit_event.name for r in caplog.records]  # type: ignore[attr-defined]
    assert names.count(LOGIN) == 5
    assert names.count(GATE_BLOCKED) == 2, "blocks are anyone's to repeat: rate limited"


def test_rate_limit_windows() -> None:
    limit = RateLimit(60)
    assert [limit.admit("k", 0.0, 2) for _ in range(4)] == [0, 0, None, None]
    assert limit.admit("other", 1.0, 2) == 0
    assert limit.admit("k", 59.9, 2) is None
    assert limit.admit("k", 60.0, 2) == 3
    assert limit.admit("k", 10.0, 2) == 0, "a clock that went back starts a new window"


def test_insecure_development_warns_at_start_up(
    make_kit: MakeKit, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        make_kit()
        assert caplog.records == []
        make_kit(insecure_development=True)
    (record,) = caplog.records
    assert record.name == "sessionkit.settings"
    assert "insecure_development=True" in record.getMessage()
    assert "production" in record.getMessage()


def test_json_lines_formatter(make_kit: MakeKit, caplog: pytest.LogCaptureFixture) -> None:
    kit = make_kit()
    with caplog.at_level(logging.INFO, logger="sessionkit"):
        kit.open(f"{SESSION}=junk", client="2001:db8:1:2::9", user_agent=CHROME).session.get("")
        logging.getLogger("sessionkit.other").info("plain\nrecord")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("sessionkit.other").exception("failed")
    formatter = JSONFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    assert all("\n" not in line for line in lines)
    event, plain, failed = (json.loads(line) for line in lines)
    assert event["event"] == "security"
    assert event["reason"] == "malformed"
    assert event["cookie"] == SESSION
    assert event["client"] == "2001:db8:1::"
    assert event["user_agent"] == "Chrome"
    assert event["level"] == "WARNING"
    assert event["logger"] == "sessionkit.security"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["time"])
    assert plain["message"] == "plain\nrecord"
    assert "event" not in plain
    assert "ValueError: boom" in failed["exception"]


def test_json_formatter_plugs_into_dict_config() -> None:
    # The part of dictConfig that builds a formatter (dictConfig itself would close the
    # handlers pytest captures logs with).
    configurator = logging.config.DictConfigurator({"version": 1})
    formatter = configurator.configure_formatter({"()": "sessionkit.events.JSONFormatter"})
    assert isinstance(formatter, JSONFormatter)


def test_with_no_logging_configured_warnings_reach_stderr_once_per_reason() -> None:
    script = textwrap.dedent(
        f"""
        import sessionkit
        kit = sessionkit.SessionKit(
            secret_keys=[{generate_key()!r}], insecure_development=True,
        )
        for _ in range(5):
            kit.open("session=junk").session.get("x")
        kit.open("session=" + "A" * 5000).session.get("x")
        ex = kit.open(None)
        ex.session.login("alice")
        ex.response_headers([])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    lines = done.stderr.splitlines()
    assert len(lines) == 3, done.stderr
    assert "insecure_development=True" in lines[0]
    assert lines[1].startswith("rejected cookie session: malformed")
    assert lines[2].startswith("rejected cookie session: oversized")
