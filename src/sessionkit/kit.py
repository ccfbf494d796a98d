"""The policy object: one :class:`SessionKit` per application, built once at start-up.

It checks every setting once, freezes them into the pieces that decide (the
:class:`~sessionkit.lifetime.Timeouts`, the cookie specs, the cookies-required
:class:`~sessionkit.gate.Gate`, the sealer and the visitor codec), and hands each request
an :class:`~sessionkit.exchange.Exchange`. Operations over a user's sessions
(``revoke_user``) go to the store through it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from .cookies import MAX_COOKIE_BYTES, CookieSpec, SameSite, pick_cookies
from .devices import (
    DEFAULT_REAUTH_PATH,
    ENDED,
    FOREIGN,
    FOREIGN_HANDLE,
    DevicePolicy,
    FreshLogin,
    Handles,
    NewDevice,
    NewDeviceHook,
    SessionInfo,
    describe,
    device_label,
    labels_available,
    revoke_steps,
)
from .errors import ConfigurationError
from .events import (
    DEFAULT_RATE_BURST,
    DEFAULT_REQUEST_ID_HEADER,
    GATE_BLOCKED,
    INSECURE_TRANSPORT,
    SECURITY_LOGGER,
    SESSION_REVOKED,
    STORE_RECOVERED,
    STORE_UNAVAILABLE,
    USER_REVOKED,
    AddressMode,
    EventHook,
    EventSettings,
    LifecycleEvent,
    LifecycleHook,
    Reporter,
    SecurityEvent,
    accepted_request_id,
    client_for_log,
)
from .exchange import Exchange, HeaderChanges, RequestInfo, _arun, _run
from .forgery import Forgery, ForgeryPolicy, Provenance, TokenCheck
from .gate import (
    BLOCK_STATUS,
    CHECK_COOKIE_MAX_AGE,
    DEFAULT_BLOCK_PAGE,
    BlockPage,
    Gate,
    is_loopback_host,
)
from .keys import KeyRing
from .lifetime import (
    DEFAULT_ABSOLUTE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CLOCK_SKEW,
    DEFAULT_MAX_LIFETIME,
    DEFAULT_ROTATE_EVERY,
    DEFAULT_ROTATION_GRACE,
    DEFAULT_TOUCH_INTERVAL,
    Timeouts,
)
from .metrics import Metrics
from .migrate import Migration
from .privacy import SensitiveDataGuard
from .seal import Sealer
from .session import Session, UserId
from .stores.base import Store, StoreUnavailable
from .visitor import VisitorCodec

__all__ = [
    "DEFAULT_ABSOLUTE_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CLOCK_SKEW",
    "DEFAULT_MAX_LIFETIME",
    "DEFAULT_ROTATE_EVERY",
    "DEFAULT_TOUCH_INTERVAL",
    "DEFAULT_VISITOR_MAX_AGE",
    "MAX_VISITOR_MAX_AGE",
    "Exchange",
    "HeaderChanges",
    "SessionKit",
]

_T = TypeVar("_T")

#: Lifetime of the visitor cookie.
DEFAULT_VISITOR_MAX_AGE = 365 * 24 * 60 * 60
#: Browsers cap cookie lifetimes at 400 days (RFC 6265bis section 5.5).
MAX_VISITOR_MAX_AGE = 400 * 24 * 60 * 60

_SECURE_SESSION = "__Host-session"
_SECURE_VISITOR = "__Host-visitor"
_SECURE_CHECK = "__Host-cookie-check"
_SECURE_OPT_OUT = "__Host-opt-out"
_PLAIN_PREFIX = len("__Host-")
_ENV_KEYS = "SESSIONKIT_SECRET_KEYS"
_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_INSECURE_WARNING = (
    "sessionkit: insecure_development=True: session cookies go over plain http without "
    "Secure or the __Host- prefix. Never use this setting in production"
)


def _positive(name: str, value: object) -> int:
    if type(value) is not int or value <= 0:
        raise ConfigurationError(
            f"{name} must be a positive whole number of seconds, not {value!r}"
        )
    return value


class SessionKit:
    """One policy for session and visitor cookies: keys, cookie attributes and timeouts.

    Build it once at start-up; every setting is checked there and a bad one raises
    :class:`ConfigurationError` naming the fix. It holds no per-request state and is
    safe to share between threads and tasks.
    """

    def __init__(
        self,
        *,
        secret_keys: Iterable[str],
        require_cookies: Iterable[str] = (),
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
        session_cookie: str | None = None,
        visitor_cookie: str | None = _SECURE_VISITOR,
        path: str = "/",
        domain: str | None = None,
        secure: bool | None = None,
        http_only: bool = True,
        same_site: SameSite = "lax",
        partitioned: bool = False,
        idle_timeout: int = DEFAULT_IDLE_TIMEOUT,
        absolute_timeout: int = DEFAULT_ABSOLUTE_TIMEOUT,
        max_lifetime: int = DEFAULT_MAX_LIFETIME,
        touch_interval: int = DEFAULT_TOUCH_INTERVAL,
        rotate_every: int | None = DEFAULT_ROTATE_EVERY,
        rotation_grace: int = DEFAULT_ROTATION_GRACE,
        max_clock_skew: int = DEFAULT_MAX_CLOCK_SKEW,
        persistent_cookie: bool = True,
        visitor_max_age: int = DEFAULT_VISITOR_MAX_AGE,
        insecure_development: bool = False,
        client_address: AddressMode = "truncated",
        on_security_event: EventHook | None = None,
        public_home: str = "/",
        cookies_required_page: BlockPage = DEFAULT_BLOCK_PAGE,
        cookies_required_json: Callable[[str], object] | None = None,
        sensitive_data: bool = True,
        sensitive_keys_allowed: Iterable[str] = (),
        sensitive_patterns: Iterable[str | re.Pattern[str]] = (),
        trusted_proxy_hops: int = 0,
        store_namespace: str | None = None,
        request_id_header: str | None = DEFAULT_REQUEST_ID_HEADER,
        log_rate_limit: int = DEFAULT_RATE_BURST,
        on_lifecycle_event: LifecycleHook | None = None,
        meter_provider: Any = None,
        migrate: Migration | None = None,
        trusted_origins: Iterable[str] = (),
        csrf_exempt: Iterable[str] = (),
        forgery: ForgeryPolicy | None = None,
        reauth_path: str = DEFAULT_REAUTH_PATH,
        on_new_device: NewDeviceHook | None = None,
    ) -> None:
        """Check and freeze the policy.

        ``secret_keys`` lists keys newest first; only the first seals. ``visitor_cookie=None``
        turns the visitor cookie off. ``insecure_development=True`` is the one way to send
        cookies over plain http: it drops ``Secure`` and the ``__Host-`` prefix.
        ``require_cookies`` lists the path prefixes of the application part of the site
        (see :mod:`sessionkit.gate`); ``cookies_required_page`` is an HTML template (``$home``
        is the link to ``public_home``) or a callable from the path to HTML, and
        ``cookies_required_json`` a callable from the path to the JSON document sent to
        clients that do not accept HTML. ``store`` (see :mod:`sessionkit.stores`) keeps the
        session data on the server and adds revocation and replay detection.
        ``max_lifetime`` caps every session, "remember me" ones included
        (:meth:`Session.set_expiry`). ``store_namespace`` keeps this application's records
        apart from other applications sharing the store; by default it is derived from
        the key ring (and follows key rotation). ``reauth_path`` is the re-authentication
        page that ``require_fresh_login`` sends stale logins to, and ``on_new_device`` is
        called with a :class:`~sessionkit.devices.NewDevice` after a login from a device
        label none of the user's other live sessions has (see :mod:`sessionkit.devices`).

        Events (:mod:`sessionkit.events`) take their request id from the
        ``request_id_header`` a proxy sets (None: always generate one); the log keeps at
        most ``log_rate_limit`` events of one reason a minute; ``on_lifecycle_event`` is
        called with every :class:`~sessionkit.events.LifecycleEvent`. ``meter_provider``
        is an OpenTelemetry ``MeterProvider`` (None: the global one; see
        :mod:`sessionkit.metrics`). ``migrate`` is a :class:`~sessionkit.migrate.Migration`
        that turns a previous framework's session cookie into a sessionkit session.
        Cross-site request forgery protection (:mod:`sessionkit.forgery`) is on:
        ``trusted_origins`` lists other origins allowed to send unsafe requests and
        ``csrf_exempt`` the path prefixes never checked; or pass every forgery setting at
        once as ``forgery=ForgeryPolicy(...)``.
        """
        if secure is None:
            secure = not insecure_development
        elif not secure and not insecure_development:
            raise ConfigurationError(
                "secure=False would send the session cookie over plain http: pass "
                "insecure_development=True to say this is a development setup"
            )
        if session_cookie is None:
            if not secure:
                session_cookie = _SECURE_SESSION[_PLAIN_PREFIX:]
            elif path != "/" or domain is not None:
                session_cookie = "__Secure-" + _SECURE_SESSION[_PLAIN_PREFIX:]
            else:
                session_cookie = _SECURE_SESSION
        if visitor_cookie == _SECURE_VISITOR and not secure:
            visitor_cookie = visitor_cookie[_PLAIN_PREFIX:]
        #: The session timeouts, frozen.
        self.timeouts = Timeouts(
            idle=idle_timeout,
            absolute=absolute_timeout,
            max_lifetime=max_lifetime,
            touch=touch_interval,
            rotate_every=rotate_every,
            grace=rotation_grace,
            max_skew=max_clock_skew,
            persistent=bool(persistent_cookie),
        )
        self.visitor_max_age = _positive("visitor_max_age", visitor_max_age)
        if visitor_max_age > MAX_VISITOR_MAX_AGE:
            raise ConfigurationError(
                f"visitor_max_age ({visitor_max_age}s) is over the 400 days a browser keeps "
                "a cookie"
            )
        self.events = EventSettings(
            client_address=client_address,
            request_id_header=request_id_header,
            rate_burst=log_rate_limit,
        )
        if store is not None and not isinstance(store, Store):
            raise ConfigurationError(
                f"store={store!r} is not a sessionkit store: use one of sessionkit.stores "
                "(MemoryStore, SQLiteStore, RedisStore)"
            )
        self.store = store
        self.guard = SensitiveDataGuard(
            enabled=sensitive_data, allowed_keys=sensitive_keys_allowed, patterns=sensitive_patterns
        )
        if type(trusted_proxy_hops) is not int or trusted_proxy_hops < 0:
            raise ConfigurationError(
                f"trusted_proxy_hops must be the number of proxies in front of the app "
                f"(0 or more), not {trusted_proxy_hops!r}"
            )
        self.trusted_proxy_hops = trusted_proxy_hops
        self.insecure_development = insecure_development
        self.client_address: AddressMode = client_address
        self.clock = clock
        self.session_spec = CookieSpec(
            session_cookie,
            path=path,
            domain=domain,
            secure=secure,
            http_only=http_only,
            same_site=same_site,
            partitioned=partitioned,
        )
        self.visitor_spec = (
            None
            if visitor_cookie is None
            else CookieSpec(visitor_cookie, secure=secure, same_site="lax")
        )
        if self.visitor_spec is not None and visitor_cookie == session_cookie:
            raise ConfigurationError("session_cookie and visitor_cookie must have different names")
        self.keys = KeyRing(secret_keys)
        #: The key id of the key that seals.
        self.primary_kid = self.keys.key_ids[0]
        if store_namespace is not None and (
            not isinstance(store_namespace, str) or not _NAMESPACE.fullmatch(store_namespace)
        ):
            raise ConfigurationError(
                f"store_namespace={store_namespace!r} must be 1 to 64 letters, digits, '_', "
                "'.' or '-'"
            )
        #: Where this kit's records live in a store, newest first.
        self.namespaces: tuple[str, ...] = (
            (store_namespace,)
            if store_namespace is not None
            else tuple(kid.hex() for kid in self.keys.key_ids)
        )
        #: Seals and opens session cookies.
        self.sealer = Sealer(
            self.keys,
            "session",
            self.session_spec.name,
            max_age=self.timeouts.max_lifetime,
            max_skew=self.timeouts.max_skew,
        )
        #: Signs and verifies visitor cookies.
        self.visitors = VisitorCodec(self.keys)
        self.max_cookie_bytes = MAX_COOKIE_BYTES
        #: The list of sessions and re-authentication settings.
        self.devices = DevicePolicy(reauth_path=reauth_path, on_new_device=on_new_device)
        #: Makes and checks the opaque handles of :meth:`sessions_of`.
        self.handles = Handles(self.keys)
        self.check_spec = CookieSpec(
            _SECURE_CHECK if secure else _SECURE_CHECK[_PLAIN_PREFIX:], secure=secure
        )
        self.gate = Gate(
            require_cookies,
            home=public_home,
            page=cookies_required_page,
            json_body=cookies_required_json,
            test_cookie=self.check_spec.set("1", CHECK_COOKIE_MAX_AGE),
        )
        trusted_origins, csrf_exempt = tuple(trusted_origins), tuple(csrf_exempt)
        configured = forgery is not None or bool(trusted_origins) or bool(csrf_exempt)
        if forgery is None:
            forgery = ForgeryPolicy(trusted_origins=trusted_origins, exempt=csrf_exempt)
        elif not isinstance(forgery, ForgeryPolicy):
            raise ConfigurationError(
                f"forgery must be a sessionkit.forgery.ForgeryPolicy, not {type(forgery).__name__}"
            )
        elif trusted_origins or csrf_exempt:
            raise ConfigurationError(
                "trusted_origins and csrf_exempt are given twice: put them in "
                "forgery=ForgeryPolicy(trusted_origins=..., exempt=...)"
            )
        #: Cross-site request forgery checks and session-bound tokens.
        self.forgery = Forgery(forgery, self.keys, home=public_home, configured=configured)
        self.opt_out_spec = CookieSpec(
            _SECURE_OPT_OUT if secure else _SECURE_OPT_OUT[_PLAIN_PREFIX:], secure=secure
        )
        self._names = frozenset(
            n
            for n in (session_cookie, visitor_cookie, self.check_spec.name, self.opt_out_spec.name)
            if n is not None
        )
        if migrate is not None and not isinstance(migrate, Migration):
            raise ConfigurationError(
                f"migrate={migrate!r} is not a sessionkit.migrate.Migration: build one with "
                "Migration([StarletteCookie(old_key)], until=datetime(...))"
            )
        if migrate is not None:
            migrate.check_names(self._names)
        #: Turns a previous framework's session cookie into a session (None: off).
        self.migration = migrate
        self._wanted = self._names | (migrate.cookie_names if migrate is not None else set())
        #: Counts sessions, refusals and store calls (see :mod:`sessionkit.metrics`).
        self.metrics = Metrics(meter_provider)
        #: Builds, logs and counts the events (see :mod:`sessionkit.events`).
        self.reporter = Reporter(
            self.events,
            self.keys.subkeys("event-tag")[self.primary_kid],
            self.metrics,
            clock,
            on_security_event,
            on_lifecycle_event,
        )
        self._store_failing = False
        if insecure_development:
            self.reporter.warn_at_startup(_INSECURE_WARNING)

    # -- settings, as read back ----------------------------------------------------

    @property
    def idle_timeout(self) -> int:
        """Seconds of inactivity after which a session ends (unless it has its own)."""
        return self.timeouts.idle

    @property
    def absolute_timeout(self) -> int:
        """Seconds after login at which a session ends however active it is."""
        return self.timeouts.absolute

    @property
    def max_lifetime(self) -> int:
        """The longest any session may live, "remember me" sessions included."""
        return self.timeouts.max_lifetime

    @property
    def touch_interval(self) -> int:
        """Least seconds between two refreshes of an unchanged session's cookie."""
        return self.timeouts.touch

    @property
    def rotate_every(self) -> int | None:
        """Seconds after which a session id is replaced (None: no timed rotation)."""
        return self.timeouts.rotate_every

    @property
    def rotation_grace(self) -> int:
        """Seconds a replaced id still works once its successor was presented."""
        return self.timeouts.grace

    @property
    def max_clock_skew(self) -> int:
        """Seconds a payload's timestamps may lie ahead of this server's clock."""
        return self.timeouts.max_skew

    @property
    def persistent_cookie(self) -> bool:
        """Whether session cookies outlive the browser unless a session says otherwise."""
        return self.timeouts.persistent

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **settings: Any) -> SessionKit:
        """Build from ``SESSIONKIT_SECRET_KEYS`` (comma-separated, newest first) + ``settings``."""
        value = (os.environ if environ is None else environ).get(_ENV_KEYS, "")
        keys = [k.strip() for k in value.split(",") if k.strip()]
        if not keys:
            raise ConfigurationError(
                f"{_ENV_KEYS} is not set: generate a key with `sessionkit keygen` and "
                f"export {_ENV_KEYS}=<key> (several keys comma-separated, newest first)"
            )
        return cls(secret_keys=keys, **settings)

    def __repr__(self) -> str:
        return (
            f"SessionKit(session_cookie={self.session_spec.name!r}, keys={self.keys!r}, "
            f"idle_timeout={self.idle_timeout}, absolute_timeout={self.absolute_timeout})"
        )

    # -- reporting -------------------------------------------------------------------

    @property
    def on_security_event(self) -> EventHook | None:
        """The hook called with every :class:`SecurityEvent` (None: none)."""
        return self.reporter.on_security_event

    @on_security_event.setter
    def on_security_event(self, hook: EventHook | None) -> None:
        self.reporter.on_security_event = hook

    def report(
        self, reason: str, cookie: str, request: RequestInfo, *, family: str | None = None
    ) -> SecurityEvent:
        """Record one security event on the ``sessionkit.security`` logger and the hook.

        Expiry is logged at INFO (it is routine); every other reason at WARNING.
        ``family`` is the refused session's family id when it is known (logged as a
        keyed tag). An exception from the hook is logged, never raised into the request.
        """
        return self.reporter.security(reason, cookie, request, family)

    def lifecycle(
        self,
        name: str,
        request: RequestInfo | None,
        *,
        family: str | None = None,
        detail: str | None = None,
    ) -> LifecycleEvent:
        """Record a lifecycle event (see :mod:`sessionkit.events` for the names)."""
        return self.reporter.lifecycle(name, request, family=family, detail=detail)

    def store_error(self, exc: StoreUnavailable, request: RequestInfo) -> None:
        """Record that the store did not answer (the request fails closed)."""
        self._store_failing = True
        self.reporter.lifecycle(STORE_UNAVAILABLE, request, detail=_printable_error(exc))

    def _store_answered(self) -> None:
        if self._store_failing:
            self._store_failing = False
            self.reporter.lifecycle(STORE_RECOVERED, None)

    def address_of(self, request: RequestInfo) -> str | None:
        """The client address of ``request`` as it may be recorded (``client_address``)."""
        return client_for_log(request.client, self.client_address)

    def device_of(self, request: RequestInfo) -> str | None:
        """A coarse device label for ``request`` (browser and system), or None.

        None when ``ua-parser`` is not installed (see :func:`sessionkit.devices.device_label`).
        """
        return device_label(request.user_agent) if labels_available() else None

    def new_device(self, event: NewDevice) -> None:
        """Call the ``on_new_device`` hook; an exception from it is logged, never raised."""
        hook = self.devices.on_new_device
        if hook is None:
            return
        try:
            hook(event)
        except Exception:
            SECURITY_LOGGER.exception("on_new_device raised; the request goes on")

    def fresh_login(self, max_age: int, reauth_path: str | None = None) -> FreshLogin:
        """The rule "a login at most ``max_age`` seconds old", sending others to re-auth.

        ``reauth_path`` defaults to the kit's. Raises :class:`ConfigurationError` for a
        ``max_age`` that is not a positive whole number of seconds.
        """
        return self.devices.fresh_login(max_age, reauth_path)

    def timed(self, name: str, call: Callable[..., _T], args: tuple[Any, ...]) -> _T:
        """Run one blocking store call, timing it for the metrics."""
        start = time.perf_counter() if self.metrics.enabled else None
        try:
            result = call(*args)
        except StoreUnavailable:
            self._store_call(name, start, failed=True)
            raise
        self._store_call(name, start, failed=False)
        return result

    async def atimed(
        self, name: str, call: Callable[..., Awaitable[_T]], args: tuple[Any, ...]
    ) -> _T:
        """Await one store call, timing it for the metrics."""
        start = time.perf_counter() if self.metrics.enabled else None
        try:
            result = await call(*args)
        except StoreUnavailable:
            self._store_call(name, start, failed=True)
            raise
        self._store_call(name, start, failed=False)
        return result

    def _store_call(self, name: str, start: float | None, *, failed: bool) -> None:
        # The metrics' latency (when they are on), and the recovery after an outage.
        if start is not None:
            self.metrics.store_call(name, time.perf_counter() - start, failed=failed)
        if not failed:
            self._store_answered()

    # -- requests --------------------------------------------------------------------

    def open(
        self,
        cookie_header: str | None,
        *,
        client: str | None = None,
        sec_gpc: str | None = None,
        dnt: str | None = None,
        forwarded_for: str | None = None,
        method: str = "GET",
        path: str = "/",
        query: str = "",
        accept: str | None = None,
        user_agent: str | None = None,
        request_id: str | None = None,
        scheme: str | None = None,
        host: str | None = None,
        access_control_request_method: str | None = None,
        now: float | None = None,
        provenance: Provenance | None = None,
        exempt: Callable[[], bool] | None = None,
    ) -> Exchange:
        """Read a request's cookies and return the exchange for that request.

        ``cookie_header`` is the ``Cookie`` header's text (several headers joined with
        ``"; "``), ``client`` the peer address and ``forwarded_for`` the ``X-Forwarded-For``
        header (see ``trusted_proxy_hops``), ``sec_gpc`` and ``dnt`` the values of those
        headers: either one being ``1`` opts the visitor out of the visitor cookie.
        ``method``, ``path`` (decoded, as the app's router sees it), ``query`` (raw) and
        ``accept`` serve the cookies-required gate: when it answers,
        :attr:`Exchange.early` holds the response to send instead of calling the app.
        ``access_control_request_method`` is that header's value: an ``OPTIONS`` carrying
        it is a CORS preflight, which the gate lets through (browsers never send cookies
        with one). ``scheme`` and ``host`` (the ``Host`` header) let the gate
        tell a site served over plain http, where Secure cookies are never kept, from a
        client with cookies off. ``user_agent`` and ``request_id`` (the value of
        ``request_id_header``) go into events. ``provenance`` (the request's origin headers)
        serves the forgery checks: a request refused as forged gets its 403 in
        :attr:`Exchange.early`, and one that must carry a token gets
        :attr:`Exchange.token_check`. ``exempt``, when given, is asked (at most once, only
        before a refusal) whether the app's route is exempt. Never raises for anything the
        client sent.
        """
        if now is None:
            now = self.clock()
        found = pick_cookies(cookie_header, self._wanted) if cookie_header else {}
        opt_out = _is_one(sec_gpc) or _is_one(dnt)
        if self.trusted_proxy_hops:
            client = _forwarded_client(client, forwarded_for, self.trusted_proxy_hops)
        request = RequestInfo(
            client,
            method,
            path,
            query,
            accept,
            user_agent,
            scheme,
            host,
            accepted_request_id(request_id),
        )
        early = None
        token: TokenCheck | None = None
        if provenance is not None and self.forgery:
            reason, token = self.forgery.decide(
                method, path, provenance, self.trusted_proxy_hops, exempt
            )
            if reason is not None:
                self.report(reason, self.session_spec.name, request)
                early = self.forgery.refusal(reason, accept)
        protected = bool(self.gate) and self.gate.protects(path)
        preflight = method == "OPTIONS" and access_control_request_method is not None
        if protected and early is None and not preflight:
            early = self.gate.decide(
                method=method,
                path=path,
                query=query,
                has_cookie=any(n in found for n in self._names if n != self.check_spec.name),
                has_test_cookie=self.check_spec.name in found,
                accept=accept,
            )
            if early is not None and early.status == BLOCK_STATUS and self._insecure(request):
                self.report(INSECURE_TRANSPORT, self.session_spec.name, request)
                early = self.gate.insecure(accept, method == "HEAD")
            elif early is not None and early.status == BLOCK_STATUS:
                self.reporter.lifecycle(GATE_BLOCKED, request)
        return Exchange(self, request, found, opt_out, now, early, protected, token)

    def _insecure(self, request: RequestInfo) -> bool:
        """Whether ``request`` came over plain http to a host where Secure cookies fail."""
        return (
            request.scheme == "http"
            and self.session_spec.secure
            and not is_loopback_host(request.host)
        )

    def seconds_left(self, session: Session, now: float) -> int:
        """Seconds from ``now`` until ``session`` ends if no other request comes."""
        s = session.state
        return self.timeouts.seconds_left(s.lifetime, s.created_at, s.last_seen, now)

    # -- over all of a user's sessions -------------------------------------------------

    def revoke_user(self, user_id: UserId) -> int:
        """End every session of ``user_id`` ("log out everywhere"); return how many ended.

        Needs a store: without one, a cookie cannot be recalled, so this raises
        :class:`ConfigurationError`.
        """
        store = self._require_store("revoke_user")
        count = store.revoke_user(user_id, self.namespaces, self.clock())
        self._user_revoked(user_id, count)
        return count

    async def arevoke_user(self, user_id: UserId) -> int:
        """Coroutine form of :meth:`revoke_user`, for ASGI apps."""
        store = self._require_store("arevoke_user")
        count = await store.arevoke_user(user_id, self.namespaces, self.clock())
        self._user_revoked(user_id, count)
        return count

    def _user_revoked(self, user_id: UserId, count: int) -> None:
        tag = self.reporter.tag(user_id)
        self.reporter.lifecycle(USER_REVOKED, None, detail=str(count), tagged=tag)

    def sessions_of(self, user_id: UserId, *, current: Session | None = None) -> list[SessionInfo]:
        """The live sessions of ``user_id``, for a "where you're signed in" page.

        ``current`` is the request's session: its entry comes first, marked ``current``.
        Each entry has an opaque ``handle`` for :meth:`revoke_session`, never a session id.
        Needs a store (else :class:`ConfigurationError`).
        """
        store = self._require_store("sessions_of")
        now = self.clock()
        families = self.timed("families_of", store.families_of, (user_id, self.namespaces, now))
        return describe(families, self.handles, self.timeouts, now, _family(current))

    async def asessions_of(
        self, user_id: UserId, *, current: Session | None = None
    ) -> list[SessionInfo]:
        """Coroutine form of :meth:`sessions_of`, for ASGI apps."""
        store = self._require_store("asessions_of")
        now = self.clock()
        args = (user_id, self.namespaces, now)
        families = await self.atimed("families_of", store.afamilies_of, args)
        return describe(families, self.handles, self.timeouts, now, _family(current))

    def revoke_session(self, user_id: UserId, handle: str, *, client: str | None = None) -> bool:
        """End the one session of ``user_id`` that ``handle`` (from :meth:`sessions_of`) names.

        Returns True when it ended it: that browser's next request has no session. A
        handle that names none of the user's live sessions (another user's, a forged
        one) ends nothing, returns False and is reported as a ``foreign_handle`` security
        event (``client``, the address of the request that asked, goes in the event).
        False without an event when the session ended meanwhile. Needs a store.
        """
        store = self._require_store("revoke_session")
        steps = revoke_steps(
            user_id, handle, self.handles, self.namespaces, self.timeouts, self.clock()
        )
        return self._revoked(_run(steps, self, store), user_id, client)

    async def arevoke_session(
        self, user_id: UserId, handle: str, *, client: str | None = None
    ) -> bool:
        """Coroutine form of :meth:`revoke_session`, for ASGI apps."""
        store = self._require_store("arevoke_session")
        steps = revoke_steps(
            user_id, handle, self.handles, self.namespaces, self.timeouts, self.clock()
        )
        return self._revoked(await _arun(steps, self, store), user_id, client)

    def _revoked(self, outcome: str, user_id: UserId, client: str | None) -> bool:
        if outcome == FOREIGN:
            self.report(FOREIGN_HANDLE, self.session_spec.name, RequestInfo(client))
        elif outcome == ENDED:
            tag = self.reporter.tag(user_id)
            self.reporter.lifecycle(SESSION_REVOKED, RequestInfo(client), tagged=tag)
        return outcome == ENDED

    def _require_store(self, what: str) -> Store:
        if self.store is None:
            raise ConfigurationError(
                f"{what} needs a server-side store: a cookie-only session cannot be recalled. "
                "Pass store=sessionkit.stores.SQLiteStore(path) (or MemoryStore, RedisStore)"
            )
        return self.store


def _forwarded_client(peer: str | None, forwarded_for: str | None, hops: int) -> str | None:
    """The address the outermost trusted proxy saw; the peer when the header is short.

    Each of ``hops`` proxies appends the address it received the request from, so the
    entry ``hops`` places from the right was written by the outermost trusted one; any
    entries further left came from the client and are not believed.
    """
    entries = [entry.strip() for entry in forwarded_for.split(",")] if forwarded_for else []
    return entries[-hops] if len(entries) >= hops else peer


def _printable_error(exc: BaseException) -> str:
    """A store error's type and message, on one line and short (no request data in it)."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text[:200]


def _family(session: Session | None) -> str | None:
    return None if session is None else session.state.family


def _is_one(value: str | None) -> bool:
    return value is not None and value.strip() == "1"
