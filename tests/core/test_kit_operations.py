"""The kit's operations and plumbing, each checked by what a caller, a hook or a meter sees.

Hooks set after start-up, a store outage and its recovery, the timing of store calls, the
new-device hook, a user's sessions listed and ended (blocking and awaited), the forgery
settings handed on and the keyed tags of the events.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)

from sessionkit import ConfigurationError, ForgeryPolicy, LifecycleEvent, SecurityEvent, SessionKit
from sessionkit.devices import FOREIGN_HANDLE, NewDevice
from sessionkit.events import (
    INSECURE_TRANSPORT,
    STORE_RECOVERED,
    STORE_UNAVAILABLE,
    TAG_CHARS,
    USER_REVOKED,
)
from sessionkit.exchange import Exchange, HeaderChanges, RequestInfo
from sessionkit.gate import CHECK_MARKER
from sessionkit.keys import KeyRing
from sessionkit.stores import MemoryStore, SQLiteStore
from sessionkit.stores.base import StoreUnavailable
from support import Events

MakeKit = Callable[..., SessionKit]
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.fixture
def events() -> Events:
    return Events()


def cookie_of(ex: Exchange) -> str:
    """Finish ``ex`` (store writes included); the ``Cookie`` header a browser sends next."""
    changes = ex.finish([], [])
    assert isinstance(changes, HeaderChanges)
    pairs = [v.split(";", 1)[0] for n, v in changes.add if n == "Set-Cookie"]
    return "; ".join(p for p in pairs if not p.endswith("="))


def login(kit: SessionKit, user: str, *, user_agent: str | None = None) -> tuple[str, Exchange]:
    """A first request that logs ``user`` in; the cookie it sets and its exchange."""
    ex = kit.open(None, user_agent=user_agent, client="198.51.100.7")
    ex.session.login(user)
    return cookie_of(ex), ex


def store_calls(reader: InMemoryMetricReader) -> dict[tuple[str, str], tuple[int, float]]:
    """``{(metric, operation): (count, sum)}`` of the store metrics read so far."""
    data = reader.get_metrics_data()
    out: dict[tuple[str, str], tuple[int, float]] = {}
    if data is None:
        return out
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if not metric.name.startswith("sessionkit.store."):
                    continue
                for point in metric.data.data_points:
                    operation = str((point.attributes or {})["operation"])
                    if isinstance(point, HistogramDataPoint):
                        out[metric.name, operation] = (point.count, point.sum)
                    else:
                        assert isinstance(point, NumberDataPoint)
                        out[metric.name, operation] = (int(point.value), float(point.value))
    return out


# ------------------------------------------------------------------ hooks


def test_the_security_hook_reads_back_and_can_be_replaced(make_kit: MakeKit) -> None:
    first: list[SecurityEvent] = []
    second: list[SecurityEvent] = []

    def to_first(event: SecurityEvent) -> None:
        first.append(event)

    def to_second(event: SecurityEvent) -> None:
        second.append(event)

    kit = make_kit(visitor_cookie=None, on_security_event=to_first)
    assert kit.on_security_event is to_first
    kit.on_security_event = to_second
    assert kit.on_security_event is to_second
    kit.open("__Host-session=x").session.get("a")
    assert first == []
    assert [e.reason for e in second] == ["malformed"]
    kit.on_security_event = None
    assert kit.on_security_event is None
    kit.open("__Host-session=x").session.get("a")
    assert len(second) == 1


# ------------------------------------------------------------------ reports


def test_plain_http_to_a_real_host_is_a_security_event(make_kit: MakeKit, events: Events) -> None:
    kit = make_kit(**events.settings(), require_cookies=["/app"], client_address="full")
    ex = kit.open(
        None,
        path="/app/pay",
        query=f"{CHECK_MARKER}=1",
        scheme="http",
        host="shop.example",
        client="198.51.100.7",
    )
    assert ex.early is not None
    assert ex.early.status == 403
    [event] = events.all
    assert isinstance(event, SecurityEvent)
    assert (event.reason, event.cookie) == (INSECURE_TRANSPORT, "__Host-session")
    assert (event.path, event.client) == ("/app/pay", "198.51.100.7")


def test_insecure_development_says_so_at_start_up_in_full(
    make_kit: MakeKit, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sessionkit.settings"):
        make_kit(insecure_development=True)
    assert [r.getMessage() for r in caplog.records] == [
        "sessionkit: insecure_development=True: session cookies go over plain http without "
        "Secure or the __Host- prefix. Never use this setting in production"
    ]


# ------------------------------------------------------------------ store outage


def test_an_outage_is_reported_once_and_the_next_answer_is_a_recovery(
    make_kit: MakeKit, events: Events
) -> None:
    kit = make_kit(**events.settings(), store=MemoryStore())
    ex = kit.open(None)
    ex.session["a"] = 1
    cookie_of(ex)
    assert events.outages == [], "no outage yet: an answer is no recovery"
    ex = kit.open(None, path="/pay")
    kit.store_error(StoreUnavailable("connection refused\nby 127.0.0.1:6379"), ex.request)
    [down] = events.outages
    assert down.name == STORE_UNAVAILABLE
    assert down.path == "/pay"
    assert down.detail == "StoreUnavailable: connection refused by 127.0.0.1:6379"
    with pytest.raises(StoreUnavailable):
        kit.timed("load", _failing, ())
    assert events.outages == [down], "a failed call is no recovery"
    ex = kit.open(None)
    ex.session["a"] = 1
    cookie_of(ex)
    [_, recovered] = events.outages
    assert recovered.name == STORE_RECOVERED
    assert recovered.path is None, "no request's doing"
    ex = kit.open(None)
    ex.session["b"] = 2
    cookie_of(ex)
    assert events.outages == [down, recovered], "recovered once"


def test_a_long_store_error_is_cut_to_200_characters(make_kit: MakeKit, events: Events) -> None:
    kit = make_kit(**events.settings(), store=MemoryStore())
    kit.store_error(StoreUnavailable("x" * 300), RequestInfo(None))
    [down] = events.outages
    assert down.detail == "StoreUnavailable: " + "x" * (200 - len("StoreUnavailable: "))


def test_an_awaited_store_call_after_an_outage_is_a_recovery(
    make_kit: MakeKit, events: Events
) -> None:
    store = MemoryStore()
    kit = make_kit(**events.settings(), store=store)
    kit.store_error(StoreUnavailable("down"), RequestInfo(None))

    async def outage_then_answer() -> list[Any]:
        with pytest.raises(StoreUnavailable):
            await kit.atimed("load", _afailing, ())
        assert [e.name for e in events.outages] == [STORE_UNAVAILABLE]
        return await kit.atimed("families_of", store.afamilies_of, ("alice", kit.namespaces, 0))

    assert asyncio.run(outage_then_answer()) == []
    assert [e.name for e in events.outages] == [STORE_UNAVAILABLE, STORE_RECOVERED]


def _failing() -> None:
    raise StoreUnavailable("connection refused")


async def _afailing() -> None:
    raise StoreUnavailable("connection refused")


# ------------------------------------------------------------------ store-call timing


def test_store_calls_are_timed_and_failures_counted(make_kit: MakeKit) -> None:
    reader = InMemoryMetricReader()
    kit = make_kit(meter_provider=MeterProvider(metric_readers=[reader]))

    def slow(value: int) -> int:
        time.sleep(0.02)
        return value

    before = time.perf_counter()
    assert kit.timed("load", slow, (7,)) == 7
    with pytest.raises(StoreUnavailable):
        kit.timed("save", _failing, ())
    spent = time.perf_counter() - before
    got = store_calls(reader)
    load_count, load_seconds = got["sessionkit.store.duration", "load"]
    assert load_count == 1
    assert 0.02 <= load_seconds <= spent
    assert got["sessionkit.store.duration", "save"][0] == 1
    assert got["sessionkit.store.errors", "save"][0] == 1
    assert ("sessionkit.store.errors", "load") not in got


def test_awaited_store_calls_are_timed_and_failures_counted(make_kit: MakeKit) -> None:
    reader = InMemoryMetricReader()
    kit = make_kit(meter_provider=MeterProvider(metric_readers=[reader]))

    async def slow(value: int) -> int:
        await asyncio.sleep(0.02)
        return value

    async def calls() -> int:
        result = await kit.atimed("load", slow, (7,))
        with pytest.raises(StoreUnavailable):
            await kit.atimed("save", _afailing, ())
        return result

    before = time.perf_counter()
    assert asyncio.run(calls()) == 7
    spent = time.perf_counter() - before
    got = store_calls(reader)
    load_count, load_seconds = got["sessionkit.store.duration", "load"]
    assert load_count == 1
    assert 0.02 <= load_seconds <= spent
    assert got["sessionkit.store.duration", "save"][0] == 1
    assert got["sessionkit.store.errors", "save"][0] == 1
    assert ("sessionkit.store.errors", "load") not in got


def test_store_calls_work_without_opentelemetry(
    monkeypatch: pytest.MonkeyPatch, make_kit: MakeKit, events: Events
) -> None:
    import sessionkit.metrics as metrics

    monkeypatch.setattr(metrics, "_otel", None)
    kit = make_kit(**events.settings(), store=MemoryStore())
    assert not kit.metrics.enabled
    kit.store_error(StoreUnavailable("down"), RequestInfo(None))
    assert kit.timed("load", lambda value: value, (3,)) == 3
    assert [e.name for e in events.outages] == [STORE_UNAVAILABLE, STORE_RECOVERED]


# ------------------------------------------------------------------ new devices


def test_a_login_from_a_new_device_calls_the_hook(make_kit: MakeKit) -> None:
    seen: list[NewDevice] = []
    kit = make_kit(store=MemoryStore(), on_new_device=seen.append, client_address="full")
    login(kit, "alice", user_agent=CHROME)
    assert [(d.device, d.known) for d in seen] == [("Chrome on Linux", ())]
    login(kit, "alice", user_agent=CHROME)
    assert len(seen) == 1, "a device the user already signed in from is no news"
    login(kit, "alice", user_agent=FIREFOX)
    [_, news] = seen
    assert news.user_id == "alice"
    assert news.device == "Firefox on Windows"
    assert news.known == ("Chrome on Linux",)
    assert news.address == "198.51.100.7"
    assert news.at == int(kit.clock())


def test_a_failing_new_device_hook_is_logged_and_the_login_goes_on(
    make_kit: MakeKit, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(event: NewDevice) -> None:
        raise RuntimeError("mail server down")

    kit = make_kit(store=MemoryStore(), on_new_device=hook)
    with caplog.at_level(logging.ERROR, logger="sessionkit.security"):
        cookie, _ = login(kit, "alice", user_agent=CHROME)
    assert "__Host-session=" in cookie
    [failure] = caplog.records
    assert failure.getMessage() == "on_new_device raised; the request goes on"
    assert failure.exc_info is not None
    assert [s.device for s in kit.sessions_of("alice")] == ["Chrome on Linux"]


def test_without_a_new_device_hook_telling_of_one_does_nothing(
    make_kit: MakeKit, caplog: pytest.LogCaptureFixture
) -> None:
    kit = make_kit(store=MemoryStore())
    with caplog.at_level(logging.DEBUG, logger="sessionkit"):
        kit.new_device(NewDevice("alice", "Chrome on Linux", None, 0, ()))
    assert caplog.records == []


# ------------------------------------------------------------------ a user's sessions


def test_revoking_all_of_a_users_sessions_is_an_event_awaited_too(
    make_kit: MakeKit, events: Events
) -> None:
    kit = make_kit(**events.settings(), store=MemoryStore())
    login(kit, "alice")
    login(kit, "alice")
    events.all.clear()
    assert asyncio.run(kit.arevoke_user("alice")) == 2
    [revoked] = events.all
    assert isinstance(revoked, LifecycleEvent)
    assert revoked.name == USER_REVOKED
    assert revoked.detail == "2"
    assert revoked.family == kit.reporter.tag("alice")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_the_current_session_comes_first_in_the_list(
    make_kit: MakeKit, clock: Any, tmp_path: Any, kind: str
) -> None:
    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "sessions.db")
    kit = make_kit(store=store)
    _, first = login(kit, "alice")
    clock.advance(10)
    login(kit, "alice")
    newest, older = kit.sessions_of("alice")
    assert not newest.current
    assert not older.current
    assert older.created_at == int(clock.now) - 10
    current, other = kit.sessions_of("alice", current=first.session)
    assert current.current
    assert not other.current
    assert current.handle == older.handle
    acurrent, aother = asyncio.run(kit.asessions_of("alice", current=first.session))
    assert (acurrent, aother) == (current, other)
    assert [s.current for s in asyncio.run(kit.asessions_of("alice"))] == [False, False]


def test_listing_sessions_is_timed_as_families_of(make_kit: MakeKit) -> None:
    reader = InMemoryMetricReader()
    kit = make_kit(store=MemoryStore(), meter_provider=MeterProvider(metric_readers=[reader]))
    kit.sessions_of("alice")
    asyncio.run(kit.asessions_of("alice"))
    assert store_calls(reader)["sessionkit.store.duration", "families_of"][0] == 2


def test_the_awaited_forms_need_a_store_and_say_which(make_kit: MakeKit) -> None:
    kit = make_kit()
    with pytest.raises(ConfigurationError, match=r"^asessions_of needs a server-side store"):
        asyncio.run(kit.asessions_of("alice"))
    with pytest.raises(ConfigurationError, match=r"^arevoke_session needs a server-side store"):
        asyncio.run(kit.arevoke_session("alice", "A" * 22))


def test_ending_one_session_awaited_is_an_event(make_kit: MakeKit, events: Events) -> None:
    kit = make_kit(**events.settings(), store=MemoryStore(), client_address="full")
    cookie, _ = login(kit, "alice")
    (info,) = kit.sessions_of("alice")
    events.all.clear()
    assert asyncio.run(kit.arevoke_session("alice", info.handle, client="203.0.113.5")) is True
    [revoked] = events.all
    assert isinstance(revoked, LifecycleEvent)
    assert revoked.name == "session_revoked"
    assert revoked.client == "203.0.113.5"
    assert revoked.family == kit.reporter.tag("alice")
    assert kit.sessions_of("alice") == []
    ex = kit.open(cookie)
    assert ex.load_record() is None
    assert ex.session.user_id is None


def test_a_handle_of_another_users_session_is_a_security_event(
    make_kit: MakeKit, events: Events
) -> None:
    kit = make_kit(**events.settings(), store=MemoryStore(), client_address="full")
    login(kit, "alice")
    login(kit, "mallory")
    (alices,) = kit.sessions_of("alice")
    events.all.clear()
    assert kit.revoke_session("mallory", alices.handle, client="203.0.113.66") is False
    assert asyncio.run(kit.arevoke_session("mallory", alices.handle)) is False
    [blocking, awaited] = events.all
    assert isinstance(blocking, SecurityEvent)
    assert blocking.reason == FOREIGN_HANDLE
    assert blocking.cookie == "__Host-session"
    assert blocking.client == "203.0.113.66"
    assert isinstance(awaited, SecurityEvent)
    assert awaited.reason == FOREIGN_HANDLE
    assert [s.handle for s in kit.sessions_of("alice")] == [alices.handle], "still live"


# ------------------------------------------------------------------ settings handed on


def test_forgery_settings_count_as_configured_only_when_given(make_kit: MakeKit) -> None:
    assert make_kit().forgery.configured is False
    assert make_kit(trusted_origins=["https://admin.example.com"]).forgery.configured is True
    assert make_kit(csrf_exempt=["/hooks"]).forgery.configured is True
    assert make_kit(forgery=ForgeryPolicy()).forgery.configured is True


def test_event_tags_are_keyed_by_the_rings_event_tag_subkey(make_kit: MakeKit, key: str) -> None:
    """Logged tags stay comparable across releases: HMAC-SHA256 under one fixed subkey."""
    kit = make_kit()
    subkey = KeyRing([key]).subkeys("event-tag")[kit.primary_kid]
    expected = hmac.new(subkey, b"alice", hashlib.sha256).hexdigest()[:TAG_CHARS]
    assert kit.reporter.tag("alice") == expected


@pytest.mark.parametrize("spelling", ["standard", "starlette"])
def test_every_cookie_of_a_kit_is_written_in_its_spelling(make_kit: MakeKit, spelling: str) -> None:
    kit = make_kit(cookie_spelling=spelling)
    specs = [kit.session_spec, kit.visitor_spec, kit.check_spec, kit.opt_out_spec]
    assert [spec.spelling for spec in specs if spec is not None] == [spelling] * 4
    attribute = "httponly" if spelling == "starlette" else "HttpOnly"
    assert all(attribute in spec.set("v", 60) for spec in specs if spec is not None)
