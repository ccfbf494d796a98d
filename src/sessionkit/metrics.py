"""Metrics through OpenTelemetry's API (the optional ``otel`` extra).

``pip install "sessionkit-secure[otel]"`` brings ``opentelemetry-api``; the application's
own SDK set-up (a ``MeterProvider`` with a reader or exporter, Prometheus for instance)
decides where the numbers go. Without the API installed every call here does nothing,
and without an SDK the API's own meter does nothing either.

Instruments (all attribute values come from fixed sets, never from a request):

=============================== ========= ===================================================
``sessionkit.sessions.opened``  counter   a request brought a valid session cookie
``sessionkit.sessions.created`` counter   a new session got its first cookie
``sessionkit.sessions.rotated`` counter   an id was replaced (``cause``: explicit, timed, key)
``sessionkit.sessions.logins``  counter   ``session.login()``: a session bound to a user
``sessionkit.sessions.ended``   counter   a family ended by a logout (``reason``: logout)
``sessionkit.sessions.revoked`` counter   sessions ended by ``revoke_user``/``revoke_session``
``sessionkit.sessions.migrated`` counter  previous-framework cookies turned into sessions
``sessionkit.rejections``       counter   refused cookies (``reason``, ``cookie_kind``)
``sessionkit.gate.blocks``      counter   block pages sent by the cookies-required gate
``sessionkit.store.errors``     counter   store calls that failed (``operation``)
``sessionkit.store.duration``   histogram seconds per store call (``operation``)
=============================== ========= ===================================================
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigurationError

__all__ = ["Metrics", "otel_available"]

try:
    from opentelemetry import metrics as _otel
except ImportError:  # pragma: no cover - where the extra is not installed
    _otel = None  # type: ignore[assignment]

_ROTATION_CAUSES = frozenset({"explicit", "timed"})


def otel_available() -> bool:
    """Whether ``opentelemetry-api`` is installed."""
    return _otel is not None


class Metrics:
    """The kit's instruments on one meter, or nothing at all.

    ``meter_provider`` is an OpenTelemetry ``MeterProvider``; None takes the global one
    (``opentelemetry.metrics.set_meter_provider``), which is a no-op until the
    application sets one. ``enabled=False`` records nothing.
    """

    def __init__(self, meter_provider: Any = None, *, enabled: bool = True) -> None:
        if _otel is None:
            if meter_provider is not None:
                raise ConfigurationError(
                    "meter_provider= needs OpenTelemetry's API: "
                    'pip install "sessionkit-secure[otel]"'
                )
            enabled = False
        #: Whether anything is recorded.
        self.enabled = enabled
        if not enabled or _otel is None:
            return
        from . import __version__

        provider = meter_provider if meter_provider is not None else _otel.get_meter_provider()
        meter = provider.get_meter("sessionkit", __version__)
        session = "{session}"
        self._opened = meter.create_counter(
            "sessionkit.sessions.opened", unit=session, description="Valid session cookies read"
        )
        self._created = meter.create_counter(
            "sessionkit.sessions.created", unit=session, description="New sessions issued"
        )
        self._rotated = meter.create_counter(
            "sessionkit.sessions.rotated", unit=session, description="Session ids replaced"
        )
        self._logins = meter.create_counter(
            "sessionkit.sessions.logins", unit=session, description="Sessions bound to a user"
        )
        self._ended = meter.create_counter(
            "sessionkit.sessions.ended", unit=session, description="Session families ended"
        )
        self._revoked = meter.create_counter(
            "sessionkit.sessions.revoked",
            unit=session,
            description="Sessions ended by revoke_user or revoke_session",
        )
        self._migrated = meter.create_counter(
            "sessionkit.sessions.migrated",
            unit=session,
            description="Previous-framework session cookies turned into sessionkit sessions",
        )
        self._rejections = meter.create_counter(
            "sessionkit.rejections", unit="{cookie}", description="Cookies refused, by reason"
        )
        self._blocks = meter.create_counter(
            "sessionkit.gate.blocks",
            unit="{request}",
            description="Requests answered with the cookies-required page",
        )
        self._store_errors = meter.create_counter(
            "sessionkit.store.errors", unit="{call}", description="Store calls that failed"
        )
        self._store_duration = meter.create_histogram(
            "sessionkit.store.duration", unit="s", description="Duration of store calls"
        )

    def opened(self) -> None:
        """Count a request that brought a valid session cookie."""
        if self.enabled:
            self._opened.add(1)

    def rejected(self, reason: str, cookie: str) -> None:
        """Count a refused cookie (``cookie_kind`` keeps the name's last word only)."""
        if self.enabled:
            kind = cookie.rsplit("-", 1)[-1] if cookie else "-"
            self._rejections.add(1, {"reason": reason, "cookie_kind": kind})

    def lifecycle(self, name: str, detail: str | None) -> None:
        """Count a lifecycle event by its name (see :mod:`sessionkit.events`)."""
        if not self.enabled:
            return
        if name == "created":
            self._created.add(1)
        elif name == "login":
            self._logins.add(1)
        elif name == "logout":
            self._ended.add(1, {"reason": name})
        elif name == "rotated":
            cause = detail if detail in _ROTATION_CAUSES else "timed"
            self._rotated.add(1, {"cause": cause})
        elif name == "key_reissued":
            self._rotated.add(1, {"cause": "key"})
        elif name == "user_revoked":
            self._revoked.add(int(detail) if detail and detail.isdigit() else 0)
        elif name == "session_revoked":
            self._revoked.add(1)
        elif name == "migrated":
            self._migrated.add(1, {"reader": detail or "-"})
        elif name == "gate_blocked":
            self._blocks.add(1)

    def store_call(self, operation: str, seconds: float, failed: bool) -> None:
        """Record one store call's duration, and its failure."""
        if not self.enabled:
            return
        attributes = {"operation": operation}
        self._store_duration.record(seconds, attributes)
        if failed:
            self._store_errors.add(1, attributes)
