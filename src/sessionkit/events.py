"""Security and lifecycle events: frozen records an operator can use, and how they are logged.

A :class:`SecurityEvent` says a cookie was refused (``reason`` is one of this module's
reason constants); a :class:`LifecycleEvent` says something happened to a session (a
login, a logout, a rotation, a revocation, a gate block, a store outage, a migration).
Both carry what an operator needs to find the request: its path and method, the client
address (only as ``client_address`` allows), the user-agent *family* (never the whole
header), a request id (from the configured header, else generated), and a short keyed
tag of the session family (an HMAC, never the family id itself, so a log reader cannot
turn it into a cookie). They never carry a cookie's value or any session data.

Events are logged on ``sessionkit.security`` (refusals), ``sessionkit.lifecycle`` and
``sessionkit.stores``. sessionkit installs no handler: an application that configured
no logging still sees the warnings on stderr through Python's last-resort handler, at
most one per reason per window so a flood cannot fill the terminal. Repeats of a reason
are rate limited (:class:`RateLimit`); the next event of that reason that is logged says
how many were left out. :class:`JSONFormatter` writes one JSON object per line.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .exchange import RequestInfo
    from .metrics import Metrics

__all__ = [
    "CREATED",
    "CROSS_SITE",
    "DUPLICATE",
    "EXPIRED_ABSOLUTE",
    "EXPIRED_IDLE",
    "FORGERY_REASONS",
    "FROM_THE_FUTURE",
    "GATE_BLOCKED",
    "INVALID_PAYLOAD",
    "KEY_REISSUED",
    "LIFECYCLE_LOGGER",
    "LOGIN",
    "LOGOUT",
    "MALFORMED",
    "MIGRATED",
    "MIGRATION_ENDED",
    "OLD_COOKIE_EXPIRED",
    "OLD_COOKIE_FORGED",
    "OLD_COOKIE_MALFORMED",
    "OLD_COOKIE_REFUSED",
    "ORIGIN_MISMATCH",
    "OVERSIZED",
    "REPLAYED",
    "REVOKED",
    "ROTATED",
    "SECURITY_LOGGER",
    "SESSION_REVOKED",
    "STORE_LOGGER",
    "STORE_RECOVERED",
    "STORE_UNAVAILABLE",
    "TAMPERED",
    "TOKEN_INVALID",
    "TOKEN_MISSING",
    "UNKNOWN_KEY",
    "USER_REVOKED",
    "AddressMode",
    "EventSettings",
    "JSONFormatter",
    "LifecycleEvent",
    "RateLimit",
    "Reporter",
    "SecurityEvent",
    "client_for_log",
    "user_agent_family",
]

#: The logger every security event goes to (refusals at WARNING, expiry at INFO).
SECURITY_LOGGER = logging.getLogger("sessionkit.security")
#: The logger of lifecycle events (INFO; a gate block too).
LIFECYCLE_LOGGER = logging.getLogger("sessionkit.lifecycle")
#: The logger of store outages (WARNING) and recoveries (INFO).
STORE_LOGGER = logging.getLogger("sessionkit.stores")

# -- security reasons ------------------------------------------------------------------

#: Not base64url, wrong length or unknown format version.
MALFORMED = "malformed"
#: Well-formed, but the authentication tag does not verify (altered, or another cookie's value).
TAMPERED = "tampered"
#: Sealed under a key that is not (or no longer) in the key ring.
UNKNOWN_KEY = "unknown_key"
#: Longer than any cookie we issue.
OVERSIZED = "oversized"
#: The same cookie name appeared more than once in the request.
DUPLICATE = "duplicate"
#: The session was idle for longer than the idle timeout.
EXPIRED_IDLE = "expired_idle"
#: The session is older than the absolute timeout.
EXPIRED_ABSOLUTE = "expired_absolute"
#: A timestamp inside the sealed payload lies in the future beyond the allowed clock skew.
FROM_THE_FUTURE = "from_the_future"
#: Authentic, but the payload inside does not have the expected shape.
INVALID_PAYLOAD = "invalid_payload"
#: Authentic, but the store holds no such session: logged out, revoked or expired there.
REVOKED = "revoked"
#: A session id rotated out before the grace window came back: the cookie was copied.
#: The whole session (every id it had and has) is revoked.
REPLAYED = "replayed_id"
#: A previous framework's session cookie whose signature does not verify under the old key.
OLD_COOKIE_FORGED = "old_cookie_forged"
#: A previous framework's session cookie older than that framework's own max age.
OLD_COOKIE_EXPIRED = "old_cookie_expired"
#: A previous framework's session cookie that is signed but cannot be decoded.
OLD_COOKIE_MALFORMED = "old_cookie_malformed"
#: A previous framework's session whose data breaks sessionkit's rules (JSON, privacy guard).
OLD_COOKIE_REFUSED = "old_cookie_refused"
#: A previous framework's session cookie presented after the migration's end date.
MIGRATION_ENDED = "migration_ended"

# -- lifecycle names -------------------------------------------------------------------

#: A new session got its first cookie.
CREATED = "created"
#: ``session.login(user_id)``: a new family bound to a user.
LOGIN = "login"
#: ``session.invalidate()`` / ``session.clear()``: the family ended.
LOGOUT = "logout"
#: The session id was replaced (``detail``: ``"explicit"`` or ``"timed"``).
ROTATED = "rotated"
#: A cookie sealed under an older key was re-issued under the newest.
KEY_REISSUED = "key_reissued"
#: ``kit.revoke_user`` ended a user's sessions (``detail``: how many; ``family``: user tag).
USER_REVOKED = "user_revoked"
#: ``kit.revoke_session`` ended one session of a user (``family``: the user's tag).
SESSION_REVOKED = "session_revoked"
#: The cookies-required gate answered with its block page instead of the app.
GATE_BLOCKED = "gate_blocked"
#: The store did not answer (WARNING on ``sessionkit.stores``).
STORE_UNAVAILABLE = "store_unavailable"
#: The store answered again after an outage.
STORE_RECOVERED = "store_recovered"
#: A previous framework's session cookie became a sessionkit session (``detail``: reader).
MIGRATED = "migrated"

#: An unsafe request whose ``Sec-Fetch-Site`` says another site (or subdomain) sent it.
CROSS_SITE = "cross_site"
#: An unsafe request (or a WebSocket handshake) whose ``Origin`` or ``Referer`` is
#: neither the request's own origin nor a trusted one.
ORIGIN_MISMATCH = "origin_mismatch"
#: An unsafe request to a token path that carried no anti-forgery token.
TOKEN_MISSING = "token_missing"  # noqa: S105 - a name, not a secret
#: An anti-forgery token that is not this session's (another session, altered, from
#: before a login or rotation, or for another token path).
TOKEN_INVALID = "token_invalid"  # noqa: S105 - a name, not a secret
#: The reasons of a refused request (rather than a rejected cookie).
FORGERY_REASONS = frozenset({CROSS_SITE, ORIGIN_MISMATCH, TOKEN_MISSING, TOKEN_INVALID})
#: The cookies-required gate turned a client away over plain http to a host that is not
#: loopback: the cookies are ``Secure``, so no client keeps them there (not a cookie of
#: the client's; the site is served over http).
INSECURE_TRANSPORT = "insecure_transport"

AddressMode = Literal["truncated", "full", "off"]

#: Events of one reason logged per window before the rest are counted and left out.
DEFAULT_RATE_BURST = 10
#: Seconds of one rate-limiting window.
DEFAULT_RATE_WINDOW = 60
#: The request id header read by default (nginx ``$request_id``, Heroku, many proxies).
DEFAULT_REQUEST_ID_HEADER = "x-request-id"
#: Hex characters of a family tag (48 bits: enough to correlate, not to guess).
TAG_CHARS = 12
#: Characters of a path kept in an event.
MAX_PATH_CHARS = 200

_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ROUTINE = frozenset({EXPIRED_IDLE, EXPIRED_ABSOLUTE, MIGRATION_ENDED})
#: Lifecycle events a client or an outage can repeat at will, rate limited like refusals;
#: the others (logins, logouts, rotations, ...) are an audit trail and all logged.
_FLOODABLE = frozenset({GATE_BLOCKED, STORE_UNAVAILABLE})
#: (marker in the User-Agent, family), first match wins: Edge and Opera say "Chrome/" too,
#: and Chrome says "Safari/".
_AGENTS = (
    ("edg/", "Edge"),
    ("opr/", "Opera"),
    ("firefox/", "Firefox"),
    ("chromium/", "Chromium"),
    ("chrome/", "Chrome"),
    ("safari/", "Safari"),
    ("curl/", "curl"),
    ("wget/", "Wget"),
    ("python-requests/", "python-requests"),
    ("python-httpx/", "python-httpx"),
    ("python-urllib/", "python-urllib"),
    ("go-http-client/", "Go"),
    ("okhttp/", "okhttp"),
)
_BOTS = ("bot", "spider", "crawl", "slurp")


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """A cookie was refused. ``reason`` is one of this module's reason constants.

    ``client`` is the address as ``client_address`` allows, ``user_agent`` the browser
    family (``"Chrome"``, ``"curl"``, ``"bot"``, ``"other"``), ``family`` a keyed tag of
    the refused session's family when it was known, ``suppressed`` how many events of
    this reason the rate limit left out of the log before this one.
    For a request refused as forged (:data:`FORGERY_REASONS`), ``cookie`` names the
    session cookie it would have used.
    """

    reason: str
    cookie: str
    client: str | None
    # The request's context: not part of what the event *is*, so equality leaves it out
    # (``SecurityEvent("tampered", name, client)`` still equals a logged event).
    path: str | None = field(default=None, compare=False)
    method: str | None = field(default=None, compare=False)
    request_id: str | None = field(default=None, compare=False)
    user_agent: str | None = field(default=None, compare=False)
    family: str | None = field(default=None, compare=False)
    suppressed: int = field(default=0, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready ``dict`` (``"event": "security"`` added)."""
        return {"event": "security", **{f.name: getattr(self, f.name) for f in fields(self)}}


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """Something happened to a session. ``name`` is one of this module's lifecycle names.

    The request fields are those of :class:`SecurityEvent` (all None for an operation
    that came through no request, such as ``kit.revoke_user``); ``detail`` adds what the
    name needs (the rotation's cause, the migration's reader, a count, the store error).
    """

    name: str
    client: str | None = None
    path: str | None = None
    method: str | None = None
    request_id: str | None = None
    user_agent: str | None = None
    family: str | None = None
    detail: str | None = None
    suppressed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready ``dict`` (``"event": "lifecycle"`` added)."""
        return {"event": "lifecycle", **{f.name: getattr(self, f.name) for f in fields(self)}}


def client_for_log(address: str | None, mode: AddressMode) -> str | None:
    """Return the client address as it may be logged.

    ``"truncated"`` keeps the network part only (IPv4 /24, IPv6 /48), ``"full"`` keeps it
    all, ``"off"`` drops it. Anything that is not an IP address (a Unix socket path, a
    forged value) is logged as ``None``.
    """
    if address is None or mode == "off":
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if mode == "full":
        return str(ip)
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def user_agent_family(user_agent: str | None) -> str | None:
    """The family of a ``User-Agent`` header: a browser or client name, ``"bot"`` or ``"other"``.

    Only a name from a fixed list is ever returned, so nothing the client wrote (a
    version string that identifies a device, text meant to forge a log line) is logged.
    """
    if not user_agent:
        return None
    lowered = user_agent[:512].lower()
    if any(word in lowered for word in _BOTS):
        return "bot"
    for marker, family in _AGENTS:
        if marker in lowered:
            return family
    return "other"


def _printable(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, control characters written as escapes."""
    cut = text[:limit]
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", cut)


def new_request_id() -> str:
    """A fresh request id for a request that came without one (16 hex characters)."""
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class EventSettings:
    """How events are built and logged (frozen by :class:`SessionKit` at start-up)."""

    #: How much of the client address an event keeps.
    client_address: AddressMode = "truncated"
    #: The request header a proxy or server puts a request id in (None: always generate).
    request_id_header: str | None = DEFAULT_REQUEST_ID_HEADER
    #: Events of one reason logged per window; the rest are counted.
    rate_burst: int = DEFAULT_RATE_BURST
    #: Seconds of one window.
    rate_window: int = DEFAULT_RATE_WINDOW

    def __post_init__(self) -> None:
        if self.client_address not in ("truncated", "full", "off"):
            raise ConfigurationError(
                f"client_address={self.client_address!r} is not one of 'truncated', 'full', 'off'"
            )
        header = self.request_id_header
        if header is not None and (
            not isinstance(header, str) or not _HEADER_NAME.fullmatch(header)
        ):
            raise ConfigurationError(
                f"request_id_header={header!r} must be a header name such as 'X-Request-ID' "
                "(letters, digits and '-'), or None to always generate request ids"
            )
        if header is not None:
            object.__setattr__(self, "request_id_header", header.lower())
        for name, setting in (("rate_burst", "log_rate_limit"), ("rate_window", "rate_window")):
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                raise ConfigurationError(
                    f"{setting} must be a positive whole number, not {value!r}"
                )

    @property
    def request_id_environ(self) -> str | None:
        """The WSGI ``environ`` key of :attr:`request_id_header` (``HTTP_X_REQUEST_ID``)."""
        header = self.request_id_header
        return None if header is None else "HTTP_" + header.upper().replace("-", "_")


def accepted_request_id(value: str | None) -> str | None:
    """A request id from a header, if it is printable ASCII of at most 128 characters."""
    if value is None:
        return None
    value = value.strip()
    return value if _REQUEST_ID.fullmatch(value) else None


class RateLimit:
    """At most ``burst`` events of one key per ``window`` seconds; the rest are counted.

    :meth:`admit` returns None for an event to leave out, else the number left out since
    the last one admitted (reported in the admitted event). It is safe to share between
    threads; the keys are reason names, a small fixed set.
    """

    __slots__ = ("_lock", "_slots", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self._lock = threading.Lock()
        self._slots: dict[str, list[float]] = {}

    def admit(self, key: str, now: float, burst: int) -> int | None:
        """Count one event of ``key`` at ``now``; None when it is to be left out."""
        with self._lock:
            slot = self._slots.get(key)
            if slot is None or now - slot[0] >= self.window or now < slot[0]:
                carried = 0 if slot is None else int(slot[2])
                self._slots[key] = [now, 1, 0]
                return carried
            if slot[1] < burst:
                slot[1] += 1
                return 0
            slot[2] += 1
            return None


EventHook = Callable[[SecurityEvent], None]
LifecycleHook = Callable[[LifecycleEvent], None]


class Reporter:
    """Builds, logs, counts and hands on the events of one kit.

    Every event reaches the metrics and the hooks; the log gets each reason at most
    :attr:`EventSettings.rate_burst` times per window (once per window when nothing
    handles the ``sessionkit`` loggers, so Python's last-resort handler is not flooded).
    Loggers added with :meth:`also_log_to` get a copy of each warning that is logged
    (the Flask and Django integrations report into the framework's loggers that way).
    """

    def __init__(
        self,
        settings: EventSettings,
        tag_key: bytes,
        metrics: Metrics,
        clock: Callable[[], float],
        on_security_event: EventHook | None = None,
        on_lifecycle_event: LifecycleHook | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._tag_key = tag_key
        self._clock = clock
        self._limit = RateLimit(settings.rate_window)
        self._also: list[_Copy] = []
        self.on_security_event = on_security_event
        self.on_lifecycle_event = on_lifecycle_event

    def also_log_to(
        self,
        logger: logging.Logger,
        *,
        replaces_last_resort: bool = False,
        security_only: bool = False,
        prefix: str = "sessionkit: ",
    ) -> None:
        """Also log each logged warning (refusals, store outages) on ``logger``.

        The copy's message is ``prefix`` and the line of the ``sessionkit`` log.
        ``security_only=True`` copies refused cookies only. ``replaces_last_resort=True``
        says ``logger`` always shows what it gets (Flask's ``app.logger`` has its own
        stderr handler): when nothing handles the ``sessionkit`` loggers, the warning
        then goes to ``logger`` alone, not also to Python's last-resort handler. Adding
        the same logger twice adds it once.
        """
        if all(copy.logger is not logger for copy in self._also):
            self._also.append(_Copy(logger, replaces_last_resort, security_only, prefix))

    def tag(self, value: str | int) -> str:
        """The keyed, non-reversible tag of a family id (or a user id) as logged."""
        mac = hmac.new(self._tag_key, str(value).encode("utf-8"), hashlib.sha256)
        return mac.hexdigest()[:TAG_CHARS]

    def _request_fields(self, request: RequestInfo | None) -> dict[str, Any]:
        if request is None:
            return {}
        return {
            "client": client_for_log(request.client, self.settings.client_address),
            "path": _printable(request.path, MAX_PATH_CHARS),
            "method": _printable(request.method, 16),
            "request_id": request.request_id or new_request_id(),
            "user_agent": user_agent_family(request.user_agent),
        }

    def security(
        self, reason: str, cookie: str, request: RequestInfo | None, family: str | None = None
    ) -> SecurityEvent:
        """Record that ``cookie`` was refused for ``reason``; return the event."""
        event = SecurityEvent(
            reason,
            cookie,
            **{"client": None, **self._request_fields(request)},
            family=None if family is None else self.tag(family),
        )
        self.metrics.rejected(reason, cookie)
        level = logging.INFO if reason in _ROUTINE else logging.WARNING
        self._log(SECURITY_LOGGER, level, "security:" + reason, event)
        self._hand_on(event, self.on_security_event, "on_security_event")
        return event

    def lifecycle(
        self,
        name: str,
        request: RequestInfo | None,
        *,
        family: str | None = None,
        detail: str | None = None,
        tagged: str | None = None,
    ) -> LifecycleEvent:
        """Record lifecycle event ``name``; ``family`` is tagged here, ``tagged`` already is."""
        event = LifecycleEvent(
            name,
            **self._request_fields(request),
            family=tagged if family is None else self.tag(family),
            detail=detail,
        )
        self.metrics.lifecycle(name, detail)
        logger, level = LIFECYCLE_LOGGER, logging.INFO
        if name == STORE_UNAVAILABLE:
            logger, level = STORE_LOGGER, logging.WARNING
        elif name == STORE_RECOVERED:
            logger = STORE_LOGGER
        self._log(logger, level, "lifecycle:" + name if name in _FLOODABLE else None, event)
        self._hand_on(event, self.on_lifecycle_event, "on_lifecycle_event")
        return event

    def warn_at_startup(self, message: str) -> None:
        """Log a start-up warning on ``sessionkit.settings`` (shown even with no logging set up)."""
        logging.getLogger("sessionkit.settings").warning("%s", message)

    def _log(self, logger: logging.Logger, level: int, key: str | None, event: Any) -> None:
        """Log ``event`` unless the rate limit (on ``key``; None: none) leaves it out.

        Warnings are copied to the loggers of :meth:`also_log_to`.
        """
        security = isinstance(event, SecurityEvent)
        also = [
            copy
            for copy in self._also
            if level >= logging.WARNING and (security or not copy.security_only)
        ]
        own = logger.isEnabledFor(level)
        if not own and not any(copy.logger.isEnabledFor(level) for copy in also):
            return
        handled = logger.hasHandlers()
        if not handled and any(copy.replaces_last_resort for copy in also):
            own = False  # a framework logger shows it: no second copy on stderr
        seen = handled or any(copy.logger.hasHandlers() for copy in also)
        burst = self.settings.rate_burst if seen else 1
        suppressed = 0 if key is None else self._limit.admit(key, self._clock(), burst)
        if suppressed is None:
            return
        logged = event if not suppressed else _with_suppressed(event, suppressed)
        extra = {"sessionkit_event": logged}
        text = _describe(logged)
        if own:
            logger.log(level, "%s", text, extra=extra)
        for copy in also:
            copy.logger.log(level, "%s%s", copy.prefix, text, extra=extra)

    def _hand_on(self, event: Any, hook: Callable[[Any], None] | None, name: str) -> None:
        if hook is None:
            return
        try:
            hook(event)
        except Exception:
            # A broken hook must not turn a refused cookie into a 500.
            SECURITY_LOGGER.exception("%s raised; the request goes on", name)


class _Copy(NamedTuple):
    """A logger that gets a copy of the logged warnings (see :meth:`Reporter.also_log_to`)."""

    logger: logging.Logger
    replaces_last_resort: bool
    security_only: bool
    prefix: str


def _with_suppressed(event: Any, suppressed: int) -> Any:
    values = {f.name: getattr(event, f.name) for f in fields(event)}
    values["suppressed"] = suppressed
    return type(event)(**values)


def _describe(event: SecurityEvent | LifecycleEvent) -> str:
    """One log line for ``event``: what happened, then ``key=value`` for each known field."""
    if isinstance(event, SecurityEvent) and event.reason in FORGERY_REASONS:
        head = f"refused request as forged: {event.reason}"
    elif isinstance(event, SecurityEvent):
        head = f"rejected cookie {event.cookie}: {event.reason}"
    else:
        head = event.name.replace("_", " ")
        if event.detail is not None:
            head += f" ({event.detail})"
    parts = [head]
    for name in ("method", "path", "client", "user_agent", "request_id", "family"):
        value = getattr(event, name)
        parts.append(f"{name}={value if value is not None else '-'}")
    if event.suppressed:
        parts.append(f"({event.suppressed} more left out by the rate limit)")
    return " ".join(parts)


class JSONFormatter(logging.Formatter):
    """Write each log record as one JSON object on one line (JSON lines).

    Every record has ``time`` (ISO 8601, UTC), ``level``, ``logger`` and ``message``; a
    sessionkit event adds its fields (``event``, ``reason`` or ``name``, ``cookie``,
    ``client``, ``path``, ``method``, ``request_id``, ``user_agent``, ``family``,
    ``detail``, ``suppressed``); an exception adds ``exception``. Plug it into logging
    configuration like any formatter::

        "formatters": {"json": {"()": "sessionkit.events.JSONFormatter"}}
    """

    def format(self, record: logging.LogRecord) -> str:
        """Return ``record`` as one line of JSON."""
        stamp = _dt.datetime.fromtimestamp(record.created, tz=_dt.timezone.utc)
        doc: dict[str, Any] = {
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        event = getattr(record, "sessionkit_event", None)
        if isinstance(event, SecurityEvent | LifecycleEvent):
            doc.update(event.as_dict())
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)
