"""The policy object and the per-request exchange: the framework-free core of sessionkit.

A front end calls :meth:`SessionKit.open` with what it read from the request and gets an
:class:`Exchange` holding the session and the visitor id. When the response starts, it
calls :meth:`Exchange.response_headers` with the app's headers and sends what comes back.
Every decision lives here; the front ends only translate.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from .cookies import MAX_COOKIE_BYTES, CookieSpec, SameSite, pick_cookies
from .errors import BadToken, ConfigurationError, SessionTooLarge
from .events import (
    DUPLICATE,
    EXPIRED_ABSOLUTE,
    EXPIRED_IDLE,
    INVALID_PAYLOAD,
    REPLAYED,
    REVOKED,
    SECURITY_LOGGER,
    AddressMode,
    SecurityEvent,
    client_for_log,
)
from .gate import (
    CHECK_COOKIE_MAX_AGE,
    DEFAULT_BLOCK_PAGE,
    BlockPage,
    EarlyResponse,
    Gate,
    unavailable,
)
from .keys import KeyRing
from .privacy import SensitiveDataGuard
from .seal import Sealer
from .session import Session, UserId
from .stores.base import SessionRecord, Store, StoreUnavailable
from .visitor import VisitorCodec

__all__ = [
    "DEFAULT_ABSOLUTE_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CLOCK_SKEW",
    "DEFAULT_ROTATE_EVERY",
    "DEFAULT_TOUCH_INTERVAL",
    "DEFAULT_VISITOR_MAX_AGE",
    "MAX_VISITOR_MAX_AGE",
    "Exchange",
    "SessionKit",
]

#: Seconds without a request after which a session ends (OWASP ASVS level 2: 30 min).
DEFAULT_IDLE_TIMEOUT = 30 * 60
#: Seconds after creation at which a session ends however active it is (ASVS L2: 12 h).
DEFAULT_ABSOLUTE_TIMEOUT = 12 * 60 * 60
#: Least seconds between two refreshes of ``last_seen`` for an unchanged session.
DEFAULT_TOUCH_INTERVAL = 60
#: Seconds after which a session id is replaced on the next request.
DEFAULT_ROTATE_EVERY = 15 * 60
#: Seconds a payload's timestamps may lie ahead of the server clock.
DEFAULT_MAX_CLOCK_SKEW = 60
#: Seconds the id rotated out last is still accepted, for requests already in flight.
DEFAULT_ROTATION_GRACE = 10
#: Lifetime of the visitor cookie.
DEFAULT_VISITOR_MAX_AGE = 365 * 24 * 60 * 60
#: Browsers cap cookie lifetimes at 400 days (RFC 6265bis section 5.5).
MAX_VISITOR_MAX_AGE = 400 * 24 * 60 * 60

_SECURE_SESSION = "__Host-session"
_SECURE_VISITOR = "__Host-visitor"
_SECURE_CHECK = "__Host-cookie-check"
_SECURE_OPT_OUT = "__Host-opt-out"
_PLAIN_PREFIX = len("__Host-")
_NO_STORE = "no-store"
_NO_STORE_TOKENS = ("no-store",)
_VARY_COVERS = ("cookie", "*")
_ENV_KEYS = "SESSIONKIT_SECRET_KEYS"

EventHook = Callable[[SecurityEvent], None]


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
        idle_timeout: int = DEFAULT_IDLE_TIMEOUT,
        absolute_timeout: int = DEFAULT_ABSOLUTE_TIMEOUT,
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
    ) -> None:
        """Check and freeze the policy.

        ``secret_keys`` lists keys newest first; only the first seals. ``visitor_cookie=None``
        turns the visitor cookie off. ``insecure_development=True`` is the one way to send
        cookies over plain http: it drops ``Secure`` and the ``__Host-`` prefix.
        ``require_cookies`` lists the path prefixes of the application part of the site
        (see :mod:`sessionkit.gate`); ``cookies_required_page`` is an HTML template (``$home``
        is the link to ``public_home``) or a callable from the path to HTML, and
        ``cookies_required_json`` a callable from the path to the JSON document sent to
        clients that do not accept HTML. ``store`` (see :mod:`sessionkit.stores`) adds
        server-side revocation, replay detection and room for large sessions; after a
        rotation the previous id still works for ``rotation_grace`` seconds.
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
        self.idle_timeout = _positive("idle_timeout", idle_timeout)
        self.absolute_timeout = _positive("absolute_timeout", absolute_timeout)
        self.touch_interval = _positive("touch_interval", touch_interval)
        self.max_clock_skew = _positive("max_clock_skew", max_clock_skew)
        if absolute_timeout < idle_timeout:
            raise ConfigurationError(
                f"absolute_timeout ({absolute_timeout}s) is shorter than idle_timeout "
                f"({idle_timeout}s): raise absolute_timeout or lower idle_timeout"
            )
        if touch_interval * 2 > idle_timeout:
            raise ConfigurationError(
                f"touch_interval ({touch_interval}s) must be at most half of idle_timeout "
                f"({idle_timeout}s), or active sessions would time out between refreshes"
            )
        self.rotate_every = (
            None if rotate_every is None else _positive("rotate_every", rotate_every)
        )
        self.visitor_max_age = _positive("visitor_max_age", visitor_max_age)
        if visitor_max_age > MAX_VISITOR_MAX_AGE:
            raise ConfigurationError(
                f"visitor_max_age ({visitor_max_age}s) is over the 400 days a browser keeps "
                "a cookie"
            )
        if client_address not in ("truncated", "full", "off"):
            raise ConfigurationError(
                f"client_address={client_address!r} is not one of 'truncated', 'full', 'off'"
            )
        self.rotation_grace = _positive("rotation_grace", rotation_grace)
        if rotation_grace > 60:
            raise ConfigurationError(
                f"rotation_grace ({rotation_grace}s) is over a minute: the grace window "
                "covers requests already in flight and is meant to be seconds"
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
        self.persistent_cookie = persistent_cookie
        self.insecure_development = insecure_development
        self.client_address: AddressMode = client_address
        self.clock = clock
        self.on_security_event = on_security_event
        self.session_spec = CookieSpec(
            session_cookie,
            path=path,
            domain=domain,
            secure=secure,
            http_only=http_only,
            same_site=same_site,
        )
        self.visitor_spec = (
            None
            if visitor_cookie is None
            else CookieSpec(visitor_cookie, secure=secure, same_site="lax")
        )
        if self.visitor_spec is not None and visitor_cookie == session_cookie:
            raise ConfigurationError("session_cookie and visitor_cookie must have different names")
        self.keys = KeyRing(secret_keys)
        self._sealer = Sealer(
            self.keys,
            "session",
            self.session_spec.name,
            max_age=self.absolute_timeout,
            max_skew=self.max_clock_skew,
        )
        self._visitors = VisitorCodec(self.keys)
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
        self.opt_out_spec = CookieSpec(
            _SECURE_OPT_OUT if secure else _SECURE_OPT_OUT[_PLAIN_PREFIX:], secure=secure
        )
        self._names = frozenset(
            n
            for n in (session_cookie, visitor_cookie, self.check_spec.name, self.opt_out_spec.name)
            if n is not None
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **settings: Any) -> SessionKit:
        """Build from ``SESSIONKIT_SECRET_KEYS`` (comma-separated, newest first) + ``settings``."""
        value = (os.environ if environ is None else environ).get(_ENV_KEYS, "")
        keys = [k.strip() for k in value.split(",") if k.strip()]
        if not keys:
            raise ConfigurationError(
                f"{_ENV_KEYS} is not set: generate a key with `python -m sessionkit keygen` "
                f"and export {_ENV_KEYS}=<key> (several keys comma-separated, newest first)"
            )
        return cls(secret_keys=keys, **settings)

    def __repr__(self) -> str:
        return (
            f"SessionKit(session_cookie={self.session_spec.name!r}, keys={self.keys!r}, "
            f"idle_timeout={self.idle_timeout}, absolute_timeout={self.absolute_timeout})"
        )

    def report(self, reason: str, cookie: str, client: str | None) -> None:
        """Record one security event on the ``sessionkit.security`` logger and the hook.

        Expiry is logged at INFO (it is routine); every other reason at WARNING. An
        exception from the hook is logged, never raised into the request.
        """
        event = SecurityEvent(reason, cookie, client_for_log(client, self.client_address))
        SECURITY_LOGGER.log(
            logging.INFO if reason in (EXPIRED_IDLE, EXPIRED_ABSOLUTE) else logging.WARNING,
            "rejected cookie %s: %s (client %s)",
            event.cookie,
            event.reason,
            event.client or "-",
            extra={"sessionkit_event": event},
        )
        if self.on_security_event is not None:
            try:
                self.on_security_event(event)
            except Exception:
                # A broken hook must not turn a rejected cookie into a 500.
                SECURITY_LOGGER.exception("on_security_event raised; the request goes on")

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
        now: float | None = None,
    ) -> Exchange:
        """Read a request's cookies and return the exchange for that request.

        ``cookie_header`` is the ``Cookie`` header's text (several headers joined with
        ``"; "``), ``client`` the peer address and ``forwarded_for`` the ``X-Forwarded-For``
        header (both for events only; see ``trusted_proxy_hops``), ``sec_gpc`` and ``dnt``
        the values of those headers: either one being ``1`` opts the visitor out of the
        visitor cookie. ``method``, ``path`` (decoded, as the app's router sees it),
        ``query`` (raw) and ``accept`` serve the cookies-required gate: when it answers,
        :attr:`Exchange.early` holds the response to send instead of calling the app.
        Never raises for anything the client sent.
        """
        if now is None:
            now = self.clock()
        found = pick_cookies(cookie_header, self._names) if cookie_header else {}
        early = None
        protected = bool(self.gate) and self.gate.protects(path)
        if protected:
            early = self.gate.decide(
                method=method,
                path=path,
                query=query,
                has_cookie=any(n in found for n in self._names if n != self.check_spec.name),
                has_test_cookie=self.check_spec.name in found,
                accept=accept,
            )
        opt_out = _is_one(sec_gpc) or _is_one(dnt)
        if self.trusted_proxy_hops:
            client = _forwarded_client(client, forwarded_for, self.trusted_proxy_hops)
        return Exchange(self, found, client, opt_out, now, early, protected, accept)

    def open_session(self, value: str, now: float) -> tuple[Session, bool, bool]:
        """Open one session cookie value; raise :class:`BadToken` if it is not acceptable.

        Returns the session, whether it must be re-issued (sealed under an older key) and
        whether its data is kept in the store.
        """
        payload, current_key = self._sealer.unseal(value, now)
        session, spilled = Session.opened(
            payload, now, self.idle_timeout, self.absolute_timeout, self.max_clock_skew, self.guard
        )
        if spilled and self.store is None:
            raise BadToken(INVALID_PAYLOAD)
        return session, not current_key, spilled

    def seal_session(self, session: Session, now: float) -> tuple[str, bool]:
        """Seal ``session`` into a cookie value.

        Returns the value and whether the data was left out for the store to keep: that
        happens only when the whole session would not fit one cookie and a store is
        configured. Without a store, raises :class:`SessionTooLarge` instead.
        """
        value = self._sealer.seal(session.payload(), now)
        size = self.session_spec.size(value)
        if size <= MAX_COOKIE_BYTES:
            return value, False
        if self.store is None:
            raise SessionTooLarge(size, MAX_COOKIE_BYTES)
        return self._sealer.seal(session.payload(with_data=False), now), True

    def seconds_left(self, session: Session, now: float) -> int:
        """Seconds from ``now`` until ``session`` ends if left idle (0 when already over).

        The idle timeout, or less when the absolute timeout comes first.
        """
        remaining = session.created_at + self.absolute_timeout - int(now)
        return max(0, min(self.idle_timeout, remaining))

    def session_max_age(self, session: Session, now: float) -> int | None:
        """Max-Age for a session cookie issued at ``now``: until the first timeout due."""
        if not self.persistent_cookie:
            return None
        return max(1, self.seconds_left(session, now))

    def revoke_user(self, user_id: UserId) -> int:
        """End every session of ``user_id`` ("log out everywhere"); return how many ended.

        Needs a store: without one, a cookie cannot be recalled, so this raises
        :class:`ConfigurationError`.
        """
        return self._require_store("revoke_user").delete_user(user_id)

    async def arevoke_user(self, user_id: UserId) -> int:
        """Coroutine form of :meth:`revoke_user`, for ASGI apps."""
        return await self._require_store("arevoke_user").adelete_user(user_id)

    def _require_store(self, what: str) -> Store:
        if self.store is None:
            raise ConfigurationError(
                f"{what} needs a server-side store: a cookie-only session cannot be recalled. "
                "Pass store=sessionkit.stores.SQLiteStore(path) (or MemoryStore, RedisStore)"
            )
        return self.store


class Exchange:
    """The sessionkit side of one request: the session, the visitor id, what to send back.

    A front end calls :meth:`load_record` (or :meth:`aload_record`) after
    :meth:`SessionKit.open`, then :meth:`finish` (or :meth:`afinish`) with the ``Vary``
    and ``Cache-Control`` values of the app's response, and applies the changes. Each
    returns the response to send instead (a 503) when the store does not answer.
    """

    __slots__ = (
        "_accept",
        "_browser_opt_out",
        "_client",
        "_degraded",
        "_kit",
        "_now",
        "_opt_out_delete",
        "_opt_out_seen",
        "_opt_out_set",
        "_protected",
        "_record",
        "_reissue",
        "_session_cookie_seen",
        "_spilled",
        "_vary",
        "_visitor_delete",
        "_visitor_set",
        "early",
        "pending_family",
        "session",
        "store_ops",
        "visitor",
    )

    def __init__(
        self,
        kit: SessionKit,
        found: dict[str, list[str]],
        client: str | None,
        opt_out: bool,
        now: float,
        early: EarlyResponse | None = None,
        protected: bool = False,
        accept: str | None = None,
    ) -> None:
        self._kit = kit
        self._now = now
        self._client = client
        self._accept = accept
        self._protected = protected
        #: The response to send instead of calling the app (the cookies-required gate).
        self.early = early
        #: The family whose store record must be loaded before the app runs, or None.
        self.pending_family: str | None = None
        #: Store writes this response needs: ``(family, record)``, record None to delete.
        self.store_ops: list[tuple[str, SessionRecord | None]] = []
        self._record: SessionRecord | None = None
        self._reissue = self._spilled = self._degraded = False
        spec = kit.session_spec
        values = None if early is not None else found.get(spec.name)
        #: The request's session; empty and new when no valid cookie came in.
        self.session: Session
        self._session_cookie_seen = values is not None
        # The response depends on every sessionkit cookie the request carried.
        self._vary = bool(found)
        if values is None:
            self.session = Session(now, kit.guard)
        elif len(values) > 1:
            self._reject(DUPLICATE)
        else:
            try:
                self.session, self._reissue, self._spilled = kit.open_session(values[0], now)
            except BadToken as exc:
                self._reject(exc.reason)
            else:
                if kit.store is None:
                    self._validated()
                else:
                    self.pending_family = self.session.family
        #: The visitor id, or None when the visitor cookie is off or the visitor opted out.
        self.visitor: str | None = None
        self._visitor_set = self._visitor_delete = False
        self._browser_opt_out = opt_out
        self._opt_out_seen = kit.opt_out_spec.name in found
        self._opt_out_set = self._opt_out_delete = False
        vspec = kit.visitor_spec
        if vspec is None or early is not None:
            return
        vvalues = found.get(vspec.name)
        if opt_out or self._opt_out_seen:
            self._visitor_delete = vvalues is not None
            return
        if vvalues is not None:
            if len(vvalues) > 1:
                kit.report(DUPLICATE, vspec.name, client)
            else:
                try:
                    self.visitor, current = kit._visitors.verify(vvalues[0], vspec.name)
                    self._visitor_set = not current
                    return
                except BadToken as exc:
                    kit.report(exc.reason, vspec.name, client)
        self.visitor = kit._visitors.mint()
        self._visitor_set = True

    def opt_out(self) -> None:
        """Record the visitor's request not to be tracked.

        The visitor cookie is expired, the visitor id becomes None, and the choice is
        remembered in a cookie that holds ``1`` and nothing else, so it identifies no one.
        """
        if self._kit.visitor_spec is None:
            return
        self.visitor = None
        self._visitor_set = False
        self._visitor_delete = True
        self._opt_out_set = not self._opt_out_seen
        self._opt_out_delete = False

    def opt_in(self) -> None:
        """Undo :meth:`opt_out`: forget the choice and give the visitor an id again.

        A browser that sends ``Sec-GPC: 1`` or ``DNT: 1`` still gets no visitor id: the
        signal wins for as long as the browser sends it.
        """
        vspec = self._kit.visitor_spec
        if vspec is None:
            return
        self._opt_out_delete = self._opt_out_seen
        self._opt_out_set = False
        if self._browser_opt_out or self.visitor is not None:
            return
        self.visitor = self._kit._visitors.mint()
        self._visitor_set = True
        self._visitor_delete = False

    def _reject(self, reason: str) -> None:
        self._kit.report(reason, self._kit.session_spec.name, self._client)
        self.session = Session(self._now, self._kit.guard)

    def _validated(self) -> None:
        every = self._kit.rotate_every
        if every is not None and self._now - self.session.rotated_at >= every:
            self.session.rotate()

    def resolve(self, record: SessionRecord | None) -> None:
        """Check the session against its store record (None when the store has none).

        The current id passes; the id rotated out last passes during the grace window and
        continues as the current id; any other id of a live session is a replayed copy:
        the whole session is revoked. A session the store does not know is refused.
        """
        self.pending_family = None
        session = self.session
        if record is None:
            self._reject(REVOKED)
            return
        if record.session_id != session.id:
            if record.previous_id != session.id or self._now > record.previous_until:
                self.store_ops.append((session.family, None))
                self._reject(REPLAYED)
                return
            # A request in flight during a rotation: it continues as the current id, and
            # its response re-issues nothing unless the app changes the session, so the
            # browser keeps the newer cookie it already holds.
            session.adopt(record.session_id, None)
            session.rotated_at = session.last_seen = int(self._now)
        if self._spilled:
            if record.data is None:
                self._reject(INVALID_PAYLOAD)
                return
            session.adopt(session.id, record.data)
        self._record = record
        self._validated()

    def _store_down(self) -> EarlyResponse | None:
        self.pending_family = None
        if self._protected:
            return unavailable(self._accept)
        self._degraded = True
        self.session = Session(self._now, self._kit.guard)
        return None

    def load_record(self) -> EarlyResponse | None:
        """Load and check the store record (blocking); return a 503 response if it is down.

        When the store is down, a request to a cookies-required path gets the 503; any
        other request goes on with an empty session and no cookie changes.
        """
        store = self._kit.store
        if self.pending_family is None or store is None:
            return None
        try:
            record = store.load(self.pending_family, self._now)
        except StoreUnavailable:
            return self._store_down()
        self.resolve(record)
        return None

    async def aload_record(self) -> EarlyResponse | None:
        """Coroutine form of :meth:`load_record`."""
        store = self._kit.store
        if self.pending_family is None or store is None:
            return None
        try:
            record = await store.aload(self.pending_family, self._now)
        except StoreUnavailable:
            return self._store_down()
        self.resolve(record)
        return None

    def finish(self, vary: list[str], cache_control: list[str]) -> HeaderChanges | EarlyResponse:
        """Decide the response's header changes (see :meth:`header_changes`), then save.

        ``vary`` and ``cache_control`` are the values of those headers the app set. When
        the store does not answer, returns the 503 response to send instead: a session
        the app changed is never reported as saved when it was not.
        """
        changes = self._changes(vary, cache_control)
        store = self._kit.store
        if store is None or not self.store_ops or isinstance(changes, EarlyResponse):
            return changes
        try:
            for family, record in self.store_ops:
                if record is None:
                    store.delete(family)
                else:
                    store.save(family, record, self._now)
        except StoreUnavailable:
            return unavailable(self._accept)
        return changes

    async def afinish(
        self, vary: list[str], cache_control: list[str]
    ) -> HeaderChanges | EarlyResponse:
        """Coroutine form of :meth:`finish`: the store is awaited, never blocking the loop."""
        changes = self._changes(vary, cache_control)
        store = self._kit.store
        if store is None or not self.store_ops or isinstance(changes, EarlyResponse):
            return changes
        try:
            for family, record in self.store_ops:
                if record is None:
                    await store.adelete(family)
                else:
                    await store.asave(family, record, self._now)
        except StoreUnavailable:
            return unavailable(self._accept)
        return changes

    def _changes(self, vary: list[str], cache_control: list[str]) -> HeaderChanges | EarlyResponse:
        try:
            return self.header_changes(vary, cache_control)
        except StoreUnavailable:
            return unavailable(self._accept)

    def set_cookie_headers(self) -> list[str]:
        """The ``Set-Cookie`` values this response must carry (empty when nothing changed).

        With a store, also fills :attr:`store_ops`. Raises :class:`SessionTooLarge` when
        the session does not fit one cookie and there is no store to keep it, and
        :class:`StoreUnavailable` when the store is down and the session was written.
        """
        kit = self._kit
        session = self.session
        out: list[str] = []
        if self._degraded:
            if session.modified or session.id_changed:
                raise StoreUnavailable("the session store is down; the session cannot be saved")
        else:
            self._session_cookie(out)
        vspec = kit.visitor_spec
        if vspec is not None:
            if self._visitor_delete:
                out.append(vspec.delete())
            elif self._visitor_set and self.visitor is not None:
                value = kit._visitors.sign(self.visitor, vspec.name)
                out.append(vspec.set(value, kit.visitor_max_age))
            if self._opt_out_set:
                out.append(kit.opt_out_spec.set("1", kit.visitor_max_age))
            elif self._opt_out_delete:
                out.append(kit.opt_out_spec.delete())
        return out

    def _session_cookie(self, out: list[str]) -> None:
        kit = self._kit
        session = self.session
        now = self._now
        rejected = self._session_cookie_seen and session.is_new
        stored = self._record is not None
        if stored and session.family != session.loaded_family:
            self.store_ops.append((session.loaded_family, None))
        if session.is_empty:
            if self._session_cookie_seen and (rejected or session.modified or session.id_changed):
                out.append(kit.session_spec.delete())
                if stored and session.family == session.loaded_family:
                    self.store_ops.append((session.family, None))
            return
        if not (
            rejected
            or session.modified
            or self._reissue
            or session.id_changed
            or session.family != session.loaded_family
            or now - session.last_seen >= kit.touch_interval
        ):
            return
        value, spilled = kit.seal_session(session, now)
        out.append(kit.session_spec.set(value, kit.session_max_age(session, now)))
        if kit.store is None:
            return
        previous_id, previous_until = None, 0.0
        if self._record is not None and session.family == session.loaded_family:
            if session.id_changed:
                previous_id, previous_until = session.loaded_id, now + kit.rotation_grace
            else:
                previous_id = self._record.previous_id
                previous_until = self._record.previous_until
        absolute_end = session.created_at + kit.absolute_timeout
        data = dict(session) if spilled else None
        loaded = self._record
        if (
            loaded is not None
            and session.family == session.loaded_family
            and loaded.session_id == session.id
            and loaded.previous_id == previous_id
            and loaded.user_id == session.user_id
            and loaded.data == data
            and loaded.expires_at >= min(absolute_end, now + kit.idle_timeout)
        ):
            # Only the cookie changed and the record still outlives the session's idle
            # end: no store write, so a read+write request costs one round trip.
            return
        record = SessionRecord(
            session_id=session.id,
            previous_id=previous_id,
            previous_until=previous_until,
            user_id=session.user_id,
            data=data,
            # A touch interval of slack lets the writes that follow skip the store.
            expires_at=min(absolute_end, now + kit.idle_timeout + kit.touch_interval),
        )
        self.store_ops.append((session.family, record))

    def header_changes(self, vary: list[str], cache_control: list[str]) -> HeaderChanges:
        """What sessionkit adds to a response whose ``Vary`` and ``Cache-Control`` are given.

        ``Set-Cookie`` for what changed; ``Vary: Cookie`` when any sessionkit cookie was
        read (the visitor id can shape a page too) or set; ``Cache-Control: no-store`` in
        place of any caching directive that lacks it when a cookie is set, so no shared
        cache can store one visitor's cookie for others. The app's own ``Set-Cookie``
        headers are left as they are.
        """
        cookies = self.set_cookie_headers()
        add: list[tuple[str, str]] = []
        if (self._vary or cookies) and not any(_lists_token(value, _VARY_COVERS) for value in vary):
            add.append(("Vary", "Cookie"))
        drop = False
        if cookies:
            if not any(_lists_token(value, _NO_STORE_TOKENS) for value in cache_control):
                drop = bool(cache_control)
                add.append(("Cache-Control", _NO_STORE))
            add.extend(("Set-Cookie", cookie) for cookie in cookies)
        return HeaderChanges(add, drop)

    def response_headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Return the app's ``headers`` with sessionkit's changes applied.

        A convenience over :meth:`header_changes` for callers holding ``str`` pairs.
        """
        vary = [v for n, v in headers if n.lower() == "vary"]
        cache_control = [v for n, v in headers if n.lower() == "cache-control"]
        changes = self.header_changes(vary, cache_control)
        if not changes.add:
            return headers
        kept = (
            [(n, v) for n, v in headers if n.lower() != "cache-control"]
            if changes.drop_cache_control
            else list(headers)
        )
        return kept + changes.add


class HeaderChanges(NamedTuple):
    """Headers to append to a response, and whether its own Cache-Control goes first."""

    add: list[tuple[str, str]]
    drop_cache_control: bool


def _forwarded_client(peer: str | None, forwarded_for: str | None, hops: int) -> str | None:
    """The address the outermost trusted proxy saw; the peer when the header is short.

    Each of ``hops`` proxies appends the address it received the request from, so the
    entry ``hops`` places from the right was written by the outermost trusted one; any
    entries further left came from the client and are not believed.
    """
    entries = [entry.strip() for entry in forwarded_for.split(",")] if forwarded_for else []
    return entries[-hops] if len(entries) >= hops else peer


def _is_one(value: str | None) -> bool:
    return value is not None and value.strip() == "1"


def _lists_token(value: str, tokens: tuple[str, ...]) -> bool:
    return any(part.strip().lower() in tokens for part in value.split(","))
