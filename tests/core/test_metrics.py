"""Metrics through OpenTelemetry (sessionkit.metrics), read with the SDK's in-memory reader."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from sessionkit import ConfigurationError, SessionKit, generate_key
from sessionkit.exchange import Exchange, HeaderChanges
from sessionkit.metrics import Metrics
from sessionkit.stores import MemoryStore
from sessionkit.stores.redis import RedisStore
from support import free_port

MakeKit = Callable[..., SessionKit]
SESSION = "__Host-session"


class Readings:
    """The kit's metrics as ``{(name, attributes): value}``; histograms give their count."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])

    def __call__(self) -> dict[tuple[str, frozenset[tuple[str, Any]]], Any]:
        data = self.reader.get_metrics_data()
        out: dict[tuple[str, frozenset[tuple[str, Any]]], Any] = {}
        if data is None:
            return out
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                assert scope.scope.name == "sessionkit"
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        key = (metric.name, frozenset((point.attributes or {}).items()))
                        out[key] = getattr(point, "value", None)
                        if out[key] is None:
                            out[key] = point.count
        return out


@pytest.fixture
def readings() -> Readings:
    return Readings()


def finish(ex: Exchange) -> str:
    changes = ex.finish([], [])
    assert isinstance(changes, HeaderChanges)
    pairs = [v.split(";", 1)[0] for n, v in changes.add if n == "Set-Cookie"]
    return "; ".join(p for p in pairs if not p.endswith("="))


def request(kit: SessionKit, cookie: str | None, act: Callable[[Any], Any], **kw: Any) -> str:
    ex = kit.open(cookie, **kw)
    if ex.early is not None:
        return ""
    if ex.pending is not None:
        assert ex.load_record() is None
    act(ex.session)
    return finish(ex)


def test_sessions_are_counted_through_their_lifecycle(
    make_kit: MakeKit, readings: Readings, clock: Any
) -> None:
    kit = make_kit(meter_provider=readings.provider, store=MemoryStore())
    cookie = request(kit, None, lambda s: s.update(a=1))
    cookie = request(kit, cookie, lambda s: s.login("alice"))
    cookie = request(kit, cookie, lambda s: s.rotate())
    request(kit, cookie, lambda s: s.invalidate())
    request(kit, f"{SESSION}=junk", lambda s: s.get("x"))
    request(kit, f"{SESSION}=junk", lambda s: s.get("x"))
    other = request(kit, None, lambda s: s.login("bob"))
    assert kit.revoke_user("bob") == 1
    request(kit, other, lambda s: s.get("x"))
    got = readings()
    assert got[("sessionkit.sessions.created", frozenset())] == 1
    assert got[("sessionkit.sessions.opened", frozenset())] == 3
    assert got[("sessionkit.sessions.logins", frozenset())] == 2
    assert got[("sessionkit.sessions.ended", frozenset({("reason", "logout")}))] == 1
    assert got[("sessionkit.sessions.rotated", frozenset({("cause", "explicit")}))] == 1
    assert got[("sessionkit.sessions.revoked", frozenset())] == 1
    malformed = frozenset({("reason", "malformed"), ("cookie_kind", "session")})
    revoked = frozenset({("reason", "revoked"), ("cookie_kind", "session")})
    assert got[("sessionkit.rejections", malformed)] == 2
    assert got[("sessionkit.rejections", revoked)] == 1
    load = frozenset({("operation", "load")})
    save = frozenset({("operation", "save")})
    assert got[("sessionkit.store.duration", load)] >= 3
    assert got[("sessionkit.store.duration", save)] >= 4
    assert ("sessionkit.store.errors", load) not in got


def test_gate_blocks_and_key_rotations_are_counted(
    make_kit: MakeKit, readings: Readings, key: str
) -> None:
    kit = make_kit(meter_provider=readings.provider, require_cookies=["/app"])
    request(kit, None, lambda s: None, path="/app/x", method="POST")
    cookie = request(kit, None, lambda s: s.login("alice"))
    newer = make_kit(meter_provider=readings.provider, secret_keys=[generate_key(), key])
    request(newer, cookie, lambda s: s.get("x"))
    got = readings()
    assert got[("sessionkit.gate.blocks", frozenset())] == 1
    assert got[("sessionkit.sessions.rotated", frozenset({("cause", "key")}))] == 1


def test_store_errors_are_counted(make_kit: MakeKit, readings: Readings) -> None:
    cookie = request(make_kit(store=MemoryStore()), None, lambda s: s.login("alice"))
    # Nothing listens on this port: every call fails as in a real outage.
    down = RedisStore(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.5)
    kit = make_kit(meter_provider=readings.provider, store=down)
    ex = kit.open(cookie)
    assert ex.load_record() is None, "not a protected path: served with an empty session"
    got = readings()
    assert got[("sessionkit.store.errors", frozenset({("operation", "load")}))] == 1
    assert got[("sessionkit.store.duration", frozenset({("operation", "load")}))] == 1


def test_without_a_provider_or_with_it_off_nothing_is_recorded(make_kit: MakeKit) -> None:
    assert make_kit().metrics.enabled, "the global provider: a no-op until the app sets one"
    off = Metrics(enabled=False)
    off.rejected("tampered", SESSION)
    off.store_call("load", 0.1, failed=True)
    assert not off.enabled


def test_a_meter_provider_needs_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    import sessionkit.metrics as metrics

    monkeypatch.setattr(metrics, "_otel", None)
    assert not metrics.otel_available()
    assert not metrics.Metrics().enabled
    with pytest.raises(ConfigurationError, match=r"sessionkit-secure\[otel\]"):
        SessionKit(secret_keys=[generate_key()], meter_provider=MeterProvider())
