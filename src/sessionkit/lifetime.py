"""How long a session lives: the kit's timeouts and the per-session lifetime.

Every session has two bounds, both enforced on the server when its cookie is opened:

- an **idle** bound: the session ends when no request came for that many seconds;
- an **end**: the moment the session ends however active it is (the absolute timeout,
  counted from login, or from creation for an anonymous session).

By default both come from the kit (:class:`Timeouts`). A session may carry its own
(:meth:`sessionkit.Session.set_expiry`, with Django's meanings), sealed in its payload:
a "remember me" session idles for days instead of minutes. Whatever a session asks for,
:attr:`Timeouts.max_lifetime` caps it, so a payload can never outlive the kit's longest
allowed session. Lowering a kit timeout applies at once to every session that uses the
kit's defaults, and ``max_lifetime`` to every session.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from .errors import ConfigurationError

__all__ = [
    "DEFAULT_ABSOLUTE_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CLOCK_SKEW",
    "DEFAULT_MAX_LIFETIME",
    "DEFAULT_ROTATE_EVERY",
    "DEFAULT_ROTATION_GRACE",
    "DEFAULT_TOUCH_INTERVAL",
    "MAX_ROTATION_GRACE",
    "Expiry",
    "Lifetime",
    "Timeouts",
]

#: Seconds without a request after which a session ends (OWASP ASVS level 2: 30 min).
DEFAULT_IDLE_TIMEOUT = 30 * 60
#: Seconds after login (or creation) at which a session ends however active it is (12 h).
DEFAULT_ABSOLUTE_TIMEOUT = 12 * 60 * 60
#: The longest any session may live, "remember me" sessions included (30 days).
DEFAULT_MAX_LIFETIME = 30 * 24 * 60 * 60
#: Least seconds between two refreshes of ``last_seen`` for an unchanged session.
DEFAULT_TOUCH_INTERVAL = 60
#: Seconds after which a session id is replaced on the next request.
DEFAULT_ROTATE_EVERY = 15 * 60
#: Seconds a payload's timestamps may lie ahead of the server clock.
DEFAULT_MAX_CLOCK_SKEW = 60
#: Seconds an id stays usable after the browser has shown it holds its successor.
DEFAULT_ROTATION_GRACE = 10
#: The grace window covers requests already in flight: seconds, never minutes.
MAX_ROTATION_GRACE = 60

#: What :meth:`sessionkit.Session.set_expiry` accepts (Django's meanings).
Expiry = int | float | timedelta | datetime | None


class Lifetime(NamedTuple):
    """A session's own bounds, sealed in its payload (None there means the kit's defaults).

    ``idle`` is seconds of inactivity (0: the kit's idle timeout), ``end`` the absolute
    end in seconds since the epoch (0: login + the kit's absolute timeout), and
    ``persistent`` whether the cookie outlives the browser.
    """

    idle: int
    end: int
    persistent: bool


def _positive(name: str, value: object) -> int:
    if type(value) is not int or value <= 0:
        raise ConfigurationError(
            f"{name} must be a positive whole number of seconds, not {value!r}"
        )
    return value


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The kit's session timeouts, checked once at start-up.

    ``persistent`` says whether session cookies carry ``Max-Age`` (outlive the browser)
    unless a session says otherwise.
    """

    #: Seconds of inactivity after which a session ends (``idle_timeout``).
    idle: int = DEFAULT_IDLE_TIMEOUT
    #: Seconds after login at which a session ends however active (``absolute_timeout``).
    absolute: int = DEFAULT_ABSOLUTE_TIMEOUT
    #: The longest any session may live, its own lifetime included (``max_lifetime``).
    max_lifetime: int = DEFAULT_MAX_LIFETIME
    #: Least seconds between two refreshes of an unchanged session (``touch_interval``).
    touch: int = DEFAULT_TOUCH_INTERVAL
    #: Seconds after which a session id is replaced, or None (``rotate_every``).
    rotate_every: int | None = DEFAULT_ROTATE_EVERY
    #: Seconds a replaced id still works once its successor was seen (``rotation_grace``).
    grace: int = DEFAULT_ROTATION_GRACE
    #: Seconds a payload's timestamps may lie ahead of the clock (``max_clock_skew``).
    max_skew: int = DEFAULT_MAX_CLOCK_SKEW
    #: Whether session cookies carry ``Max-Age`` (``persistent_cookie``).
    persistent: bool = True

    def __post_init__(self) -> None:
        _positive("idle_timeout", self.idle)
        _positive("absolute_timeout", self.absolute)
        _positive("max_lifetime", self.max_lifetime)
        if type(self.touch) is not int or self.touch < 0:
            raise ConfigurationError(
                "touch_interval must be a whole number of seconds (0: refresh the session "
                f"on every request), not {self.touch!r}"
            )
        _positive("max_clock_skew", self.max_skew)
        _positive("rotation_grace", self.grace)
        if self.rotate_every is not None:
            _positive("rotate_every", self.rotate_every)
        if self.absolute < self.idle:
            raise ConfigurationError(
                f"absolute_timeout ({self.absolute}s) is shorter than idle_timeout "
                f"({self.idle}s): raise absolute_timeout or lower idle_timeout"
            )
        if self.max_lifetime < self.absolute:
            raise ConfigurationError(
                f"max_lifetime ({self.max_lifetime}s) is shorter than absolute_timeout "
                f"({self.absolute}s): raise max_lifetime or lower absolute_timeout"
            )
        if self.touch * 2 > self.idle:
            raise ConfigurationError(
                f"touch_interval ({self.touch}s) must be at most half of idle_timeout "
                f"({self.idle}s), or active sessions would time out between refreshes"
            )
        if self.grace > MAX_ROTATION_GRACE:
            raise ConfigurationError(
                f"rotation_grace ({self.grace}s) is over a minute: the grace window "
                "covers requests already in flight and is meant to be seconds"
            )

    # -- the bounds of one session -------------------------------------------------

    def idle_of(self, lifetime: Lifetime | None) -> int:
        """Seconds of inactivity after which a session with ``lifetime`` ends."""
        if lifetime is None or not lifetime.idle:
            return self.idle
        return min(lifetime.idle, self.max_lifetime)

    def end_of(self, lifetime: Lifetime | None, created_at: int) -> int:
        """When a session created (or logged in) at ``created_at`` ends, however active."""
        cap = created_at + self.max_lifetime
        if lifetime is None or not lifetime.end:
            return min(created_at + self.absolute, cap)
        return min(lifetime.end, cap)

    def persistent_of(self, lifetime: Lifetime | None) -> bool:
        """Whether the session cookie carries ``Max-Age``."""
        return self.persistent if lifetime is None else lifetime.persistent

    def seconds_left(
        self, lifetime: Lifetime | None, created_at: int, last_seen: int, now: float
    ) -> int:
        """Seconds from ``now`` until the session ends if no other request comes (0: over)."""
        ends = min(self.end_of(lifetime, created_at), last_seen + self.idle_of(lifetime))
        return max(0, ends - int(now))

    def max_age(
        self, lifetime: Lifetime | None, created_at: int, last_seen: int, now: float
    ) -> int | None:
        """``Max-Age`` for a session cookie issued at ``now``; None for a browser-session cookie."""
        if lifetime is None:
            # The kit's bounds (absolute is at most max_lifetime, checked at start-up).
            if not self.persistent:
                return None
            return max(1, min(created_at + self.absolute, last_seen + self.idle) - int(now))
        if not lifetime.persistent:
            return None
        return max(1, self.seconds_left(lifetime, created_at, last_seen, now))

    def lifetime_for(self, value: Expiry, created_at: int, now: float) -> Lifetime | None:
        """The lifetime :meth:`sessionkit.Session.set_expiry` seals for ``value``.

        - ``None``: the kit's defaults;
        - ``0``: the kit's timeouts, with a cookie that ends when the browser closes;
        - seconds (``int``, ``float``) or a ``timedelta``: ends after that much
          inactivity, and at the latest that long from now or the kit's absolute
          timeout, whichever is later;
        - a ``datetime`` (naive ones are UTC): ends at that moment.

        Every bound is capped by ``max_lifetime`` counted from ``created_at``. A negative
        number or a moment in the past ends the session on its next request.
        """
        if value is None:
            return None
        if isinstance(value, datetime):
            moment = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
            end = math.floor(moment.timestamp())
            return Lifetime(max(1, end - created_at), max(1, end), True)
        if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
            raise TypeError(
                "set_expiry takes seconds (int or float), a timedelta, a datetime, 0 "
                f"or None, not {type(value).__name__}"
            )
        seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
        if math.isnan(seconds):
            raise ValueError("set_expiry(nan): give a number of seconds")
        if seconds == 0:
            return Lifetime(0, 0, False)
        if seconds < 0:
            # Already over: the next request finds the session ended.
            return Lifetime(1, max(1, int(now) - 1), True)
        idle = min(math.ceil(seconds), self.max_lifetime)
        end = max(created_at + self.absolute, int(now) + idle)
        return Lifetime(idle, min(end, created_at + self.max_lifetime), True)
