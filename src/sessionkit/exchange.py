"""The sessionkit side of one request: its session, its visitor id, what to send back.

A front end gets an :class:`Exchange` from :meth:`SessionKit.open`, then:

1. sends :attr:`Exchange.early` instead of calling the app when it is set (a request
   refused as forged, or the cookies-required gate);
2. with a store, calls :meth:`Exchange.load_record` (or awaits
   :meth:`Exchange.aload_record`) before the app runs: the family's record is loaded and
   judged there (:func:`sessionkit.families.judge`), so a replayed or revoked cookie is
   refused before any handler runs, WebSockets included;
3. when :attr:`Exchange.token_check` is set, reads the anti-forgery token from the form
   if it is not in the header, and sends :meth:`Exchange.check_token`'s 403 if it
   returns one;
4. when the response starts, calls :meth:`Exchange.finish` (or awaits
   :meth:`Exchange.afinish`) with the app's ``Vary`` and ``Cache-Control`` values and
   applies the :class:`HeaderChanges` it returns, or sends the 503 it returns instead.

Every decision lives here and in the modules it calls; front ends only translate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, NamedTuple

from .cookies import Found
from .devices import NewDevice
from .errors import BadToken, SessionTooLarge
from .events import (
    CREATED,
    DUPLICATE,
    GATE_BLOCKED,
    INSECURE_TRANSPORT,
    KEY_REISSUED,
    LOGIN,
    LOGOUT,
    MIGRATED,
    ROTATED,
    accepted_request_id,
    new_request_id,
)
from .families import LOGIN as FAMILY_LOGIN
from .families import LOGOUT as FAMILY_LOGOUT
from .families import (
    FamilyRef,
    Intent,
    Judgement,
    Plan,
    Record,
    Stored,
    Verdict,
    ended,
    judge,
    new_record,
    plan,
    stored_until,
)
from .forgery import TOKEN_MARKER, Provenance, TokenCheck
from .gate import BLOCK_STATUS, EarlyResponse, is_loopback_host, unavailable
from .migrate import Refused
from .seal import Sealer
from .session import (
    Session,
    State,
    check_timeouts,
    decode_payload,
    encode_payload,
    new_session_id,
)
from .stores.base import Store, StoreUnavailable

if TYPE_CHECKING:
    from .kit import SessionKit

__all__ = ["MAX_ATTEMPTS", "Exchange", "HeaderChanges", "RequestInfo"]

#: How many times a request retries a write that lost a race, reading the winner's state
#: again each time; past that the response is a 503 (nothing is overwritten). Each lost
#: race is another request's write, so this bounds the work, not progress: with three tabs
#: writing on two workers, 4 gave about one spurious 503 in 40,000 requests.
MAX_ATTEMPTS = 16
_NO_STORE = "no-store"
_VARY_COVERS = ("cookie", "*")


class RequestInfo(NamedTuple):
    """What the core knows of a request, beyond its cookies (translated by a front end)."""

    client: str | None = None
    method: str = "GET"
    path: str = "/"
    query: str = ""
    accept: str | None = None
    user_agent: str | None = None
    scheme: str | None = None
    host: str | None = None
    request_id: str | None = None


class SessionCookie(NamedTuple):
    """What a ``Cookie`` header holds of the session cookie, derived once per header."""

    #: Its value, when it came exactly once.
    value: str | None = None
    #: Whether it came more than once (refused: neither copy is believed).
    duplicated: bool = False
    #: Whether its key id (read without decrypting) is not the newest key's: the
    #: cookie is then re-issued even when the app does not use the session.
    stale: bool = False


def session_cookie_reader(name: str, sealer: Sealer) -> Callable[[Found], SessionCookie]:
    """What the kit's :class:`~sessionkit.cookies.PickedCookies` derives from each header."""

    def read(found: Found) -> SessionCookie:
        values = found.get(name)
        if values is None:
            return SessionCookie()
        if len(values) > 1:
            return SessionCookie(duplicated=True)
        return SessionCookie(values[0], stale=sealer.under_old_key(values[0]))

    return read


class HeaderChanges(NamedTuple):
    """Headers to append to a response, and whether its own Cache-Control goes first."""

    add: list[tuple[str, str]]
    drop_cache_control: bool


#: A store conversation written once, run blocking (:func:`_run`) or awaited
#: (:func:`_arun`): each step yields a store call ``(name, args)`` and receives its answer.
Step = Generator[tuple[str, tuple[Any, ...]], Any, Any]


class Exchange:
    """The sessionkit side of one request (see the module docstring)."""

    # Most of an exchange's state keeps its default for most requests: the defaults are
    # class attributes, and an instance holds only what its request changed.
    _base: Record | None = None
    _cookie_state: State | None = None
    _cookie_value: str | None = None
    _cookie_data: dict[str, Any] | None = None
    _reissue = _expire = _quiet = _degraded = _issued = False
    _migrated: str | None = None
    _old_cookie: str | None = None
    _opt_out_set = _opt_out_delete = False
    _visitor: str | None = None
    _visitor_asked = _visitor_set = _visitor_delete = False
    _browser_opt_out = False
    _stale = False
    _request: RequestInfo | None = None
    #: The anti-forgery token this request must carry (see :meth:`check_token`).
    token_check: TokenCheck | None = None
    #: The cookie's state whose store record must be loaded before the app runs.
    pending: State | None = None

    def __init__(
        self,
        kit: SessionKit,
        cookie_header: str | None,
        client: str | None,
        sec_gpc: str | None,
        dnt: str | None,
        forwarded_for: str | None,
        method: str,
        path: str,
        query: str,
        accept: str | None,
        user_agent: str | None,
        request_id: str | None,
        scheme: str | None,
        host: str | None,
        access_control_request_method: str | None,
        now: float | None,
        provenance: Provenance | None,
        exempt: Callable[[], bool] | None,
    ) -> None:
        """Read a request: :meth:`SessionKit.open`'s arguments, all by position, in its order.

        Front ends call this directly (one call per request, no keyword binding).
        """
        self._kit = kit
        self._now = now = kit.clock() if now is None else now
        self._found, cookie = kit.request_cookies(cookie_header)
        if (sec_gpc is not None and _is_one(sec_gpc)) or (dnt is not None and _is_one(dnt)):
            self._browser_opt_out = True
        # Most requests never need it (no event, no store): it is made on first use.
        self._request_of = (
            client,
            forwarded_for,
            method,
            path,
            query,
            accept,
            user_agent,
            scheme,
            host,
            request_id,
        )
        early = None
        if provenance is not None and kit.forgery:
            reason, self.token_check = kit.forgery.decide(
                method, path, provenance, kit.trusted_proxy_hops, exempt
            )
            if reason is not None:
                kit.report(reason, kit.session_spec.name, self.request)
                early = kit.forgery.refusal(reason, accept)
        self._protected = protected = kit.gate.protects(path)
        preflight = method == "OPTIONS" and access_control_request_method is not None
        if protected and early is None and not preflight:
            early = self._gate(method, path, query, accept)
        #: The response to send instead of calling the app (the cookies-required gate).
        self.early = early
        opener: Callable[[Session], None] = Session.reset
        value = cookie.value
        if early is not None:
            pass  # the app does not run: no cookie is read
        elif cookie.duplicated:
            self._reject(DUPLICATE)
        elif value is None:
            if kit.migration is not None:
                opener = self._open_migrated
        else:
            self._cookie_value = value
            if cookie.stale:
                self._stale = True
            if kit.store is None:
                opener = self._open_cookie
            else:
                state = self._unseal(value)
                if state is not None:
                    self.pending = state
        #: The request's session (opened on first use).
        self.session = Session.lazy(opener, now, kit.guard, kit.timeouts)

    def _gate(self, method: str, path: str, query: str, accept: str | None) -> EarlyResponse | None:
        """The cookies-required gate's answer for a request to a protected path."""
        kit, found = self._kit, self._found
        check = kit.check_spec.name
        early = kit.gate.decide(
            method=method,
            path=path,
            query=query,
            has_cookie=any(n in found for n in kit.cookie_names if n != check),
            has_test_cookie=check in found,
            accept=accept,
        )
        if early is not None and early.status == BLOCK_STATUS and self._insecure():
            kit.report(INSECURE_TRANSPORT, kit.session_spec.name, self.request)
            early = kit.gate.insecure(accept, method == "HEAD")
        elif early is not None and early.status == BLOCK_STATUS:
            kit.reporter.lifecycle(GATE_BLOCKED, self.request)
        return early

    def _insecure(self) -> bool:
        """Whether the request came over plain http to a host where Secure cookies fail."""
        request = self.request
        if request.scheme != "http" or not self._kit.session_spec.secure:
            return False
        return not is_loopback_host(request.host)

    @property
    def kit(self) -> SessionKit:
        """The kit this exchange belongs to."""
        return self._kit

    # -- opening the session cookie ----------------------------------------------------

    def _reject(self, reason: str) -> None:
        state = self._cookie_state
        family = None if state is None else state.family
        self._kit.report(reason, self._kit.session_spec.name, self._info(), family=family)
        self._expire = True

    @property
    def request(self) -> RequestInfo:
        """What the core knows of the request (its client, method, path, ...)."""
        request = self._request
        if request is None:
            client, forwarded, method, path, query, accept, agent, scheme, host, request_id = (
                self._request_of
            )
            hops = self._kit.trusted_proxy_hops
            if hops:
                client = _forwarded_client(client, forwarded, hops)
            if request_id is not None:
                request_id = accepted_request_id(request_id)
            request = RequestInfo(
                client, method, path, query, accept, agent, scheme, host, request_id
            )
            self._request = request
        return request

    def _info(self) -> RequestInfo:
        """The request, with a request id generated on first need when it came with none."""
        request = self.request
        if request.request_id is None:
            request = self._request = request._replace(request_id=new_request_id())
        return request

    def _unseal(self, value: str) -> State | None:
        """Open the cookie value and check its timeouts; None (reported) when refused."""
        kit = self._kit
        try:
            payload, current_key = kit.sealer.unseal(value, self._now)
            state, data = decode_payload(payload)
        except BadToken as exc:
            self._reject(exc.reason)
            return None
        if (data is None) != (kit.store is not None):
            # Data in the cookie with a store, or none without one: not issued by this kit.
            self._reject("invalid_payload")
            return None
        expired = check_timeouts(state, self._now, kit.timeouts)
        if expired is not None:
            self._reject(expired)
            return None
        self._reissue = not current_key
        self._cookie_state = state
        self._cookie_data = data
        return state

    def _open_migrated(self, session: Session) -> None:
        """The lazy opener of a request with no session cookie: a previous one may migrate."""
        session.reset()
        migration = self._kit.migration
        if migration is None:
            return
        result = migration.migrate(self._found, self._now, self._kit.guard)
        if result is None:
            return
        self._old_cookie = result.expire
        if isinstance(result, Refused):
            self._kit.report(result.reason, result.cookie_name, self._info())
            return
        session.update(result.data)
        if result.user_id is not None:
            session.login(result.user_id)
        self._migrated = result.reader

    def _open_cookie(self, session: Session) -> None:
        """The lazy opener of a cookie-only session."""
        value = self._cookie_value
        state = None if value is None else self._unseal(value)
        if state is None:
            session.reset()
        else:
            session.fill(state, self._cookie_data)

    # -- the store record, before the app runs -------------------------------------

    def _ref(self, state: State) -> FamilyRef:
        return FamilyRef(state.family, state.user_id, self._kit.namespaces)

    def _load_steps(self, cookie: State) -> Step:
        """Load, judge and (if needed) write the family's record before the app runs."""
        self.pending = None
        ref = self._ref(cookie)
        timeouts = self._kit.timeouts
        for _ in range(MAX_ATTEMPTS):
            stored: Stored | None = yield ("load", (ref, self._now))
            judgement = judge(stored, cookie, self._now, timeouts)
            if judgement.write is None or not isinstance(stored, Record):
                break
            until = _until(judgement.write, stored, timeouts)
            saved = yield ("save", (ref, stored.version, judgement.write, until, self._now))
            if saved:
                if isinstance(judgement.write, Record):
                    stored = judgement.write
                break
        else:
            raise StoreUnavailable("the session record kept changing while it was read")
        self._apply(judgement, stored)

    def _apply(self, judgement: Judgement, stored: Stored | None) -> None:
        session = self.session
        if judgement.reason is not None:
            self._reject(judgement.reason)
        verdict = judgement.verdict
        if verdict is Verdict.ENDED_RECENTLY:
            self._quiet = True
            return
        cookie = self._cookie_state
        if verdict not in (Verdict.CURRENT, Verdict.PREVIOUS, Verdict.IN_FLIGHT) or cookie is None:
            return
        if not isinstance(stored, Record):
            return
        state = stored.state
        if cookie.last_seen > state.last_seen:
            state = state._replace(last_seen=cookie.last_seen)
        self._base = stored
        self._reissue |= verdict is Verdict.PREVIOUS
        if verdict is Verdict.IN_FLIGHT:
            # Only a change this request makes re-issues the cookie.
            self._cookie_state = stored.state
        session.fill(state, stored.data())

    def _store_down(self) -> EarlyResponse | None:
        if self._protected:
            return unavailable(self.request.accept)
        self._degraded = True
        return None

    def load_record(self) -> EarlyResponse | None:
        """Load and judge the store record (blocking); the 503 to send if the store is down.

        When the store is down, a request to a cookies-required path gets the 503; any
        other request goes on with an empty session and no cookie changes.
        """
        store = self._kit.store
        if self.pending is None or store is None:
            return None
        try:
            _run(self._load_steps(self.pending), self._kit, store)
        except StoreUnavailable as exc:
            self._kit.store_error(exc, self._info())
            return self._store_down()
        return None

    async def aload_record(self) -> EarlyResponse | None:
        """Coroutine form of :meth:`load_record`: the store is awaited."""
        store = self._kit.store
        if self.pending is None or store is None:
            return None
        try:
            await _arun(self._load_steps(self.pending), self._kit, store)
        except StoreUnavailable as exc:
            self._kit.store_error(exc, self._info())
            return self._store_down()
        return None

    # -- anti-forgery tokens -----------------------------------------------------------

    def check_token(self, form_token: str | None = None) -> EarlyResponse | None:
        """Check the request's anti-forgery token; the 403 to send when it is refused.

        Call it after the store record is loaded. The token is the one sent in the
        header, else ``form_token`` (what the front end read from the form field).
        """
        check = self.token_check
        if check is None:
            return None
        self.token_check = None
        kit = self._kit
        sent = check.header if check.header is not None else form_token
        state = self.session.state
        reason = kit.forgery.verify(sent, state.family, state.generation, check.scope)
        if reason is None:
            return None
        kit.report(reason, kit.session_spec.name, self.request)
        return kit.forgery.refusal(reason, self.request.accept)

    def csrf_token(self, action: str | None = None) -> str:
        """A fresh anti-forgery token of this session.

        Site-wide by default; with ``action`` (the path a form posts to), bound to the
        token path prefix covering it and refused under any other. The session is kept
        even when empty (under :data:`~sessionkit.forgery.TOKEN_MARKER`) so that it comes
        back with the form. Make it after any login, logout or rotation in this request.
        """
        session = self.session
        if session.is_empty:
            session[TOKEN_MARKER] = True
        state = session.state
        scope = "" if action is None else self._kit.forgery.scope_for(action)
        return self._kit.forgery.mint(state.family, state.generation, scope)

    # -- the visitor id ------------------------------------------------------------

    @property
    def visitor(self) -> str | None:
        """The visitor id, minted on first use; None when off or the visitor opted out."""
        if not self._visitor_asked and self._kit.visitor_spec is not None:
            self._visitor_asked = True
            self._visitor = self._resolve_visitor()
        return self._visitor

    @property
    def _visitor_values(self) -> tuple[str, ...] | None:
        vspec = self._kit.visitor_spec
        return None if vspec is None else self._found.get(vspec.name)

    @property
    def _opt_out_seen(self) -> bool:
        return self._kit.opt_out_spec.name in self._found

    def _resolve_visitor(self) -> str | None:
        kit = self._kit
        vspec = kit.visitor_spec
        if vspec is None:
            return None
        values = self._visitor_values
        if self._browser_opt_out or self._opt_out_seen:
            self._visitor_delete = values is not None
            return None
        if values is not None:
            if len(values) > 1:
                kit.report(DUPLICATE, vspec.name, self._info())
            else:
                try:
                    visitor, current = kit.visitors.verify(values[0], vspec.name)
                except BadToken as exc:
                    kit.report(exc.reason, vspec.name, self._info())
                else:
                    self._visitor_set = not current
                    return visitor
        self._visitor_set = True
        return kit.visitors.mint()

    def opt_out(self) -> None:
        """Record the visitor's request not to be tracked.

        The visitor cookie is expired, the visitor id becomes None, and the choice is
        remembered in a cookie that holds ``1`` and nothing else, so it identifies no one.
        """
        if self._kit.visitor_spec is None:
            return
        self._visitor_asked = True
        self._visitor = None
        self._visitor_delete = self._visitor_values is not None or self._visitor_delete
        self._opt_out_set = not self._opt_out_seen
        self._opt_out_delete = False

    def opt_in(self) -> None:
        """Undo :meth:`opt_out`: forget the choice and give the visitor an id again.

        A browser that sends ``Sec-GPC: 1`` or ``DNT: 1`` still gets no visitor id: the
        signal wins for as long as the browser sends it.
        """
        if self._kit.visitor_spec is None:
            return
        self._opt_out_delete = self._opt_out_seen
        self._opt_out_set = False
        self._visitor_asked = True
        if self._browser_opt_out or self._visitor is not None:
            return
        self._visitor = self._kit.visitors.mint()
        self._visitor_set = True
        self._visitor_delete = False

    # -- the response --------------------------------------------------------------

    def _intent(self) -> Intent:
        session = self.session
        return Intent(
            state=session.state,
            data=dict(dict.items(session)),
            data_changed=session.modified,
            explicit_rotation=session.explicit_rotation,
        )

    def _write_steps(self) -> Step:
        """The store writes of this response; leaves the final state in the session."""
        kit = self._kit
        session = self.session
        timeouts = kit.timeouts
        now = self._now
        base = self._base
        state = session.state
        if self._degraded and session.modified:
            # The store did not answer when the request came in: a change (a logout
            # above all) cannot be made to stick, and must not be reported as done.
            raise StoreUnavailable("the session store is down; the session cannot be saved")
        known = None
        if (
            kit.devices.on_new_device is not None
            and state.user_id is not None
            and (base is None or base.state.family != state.family)
        ):
            # A login: the labels of the user's live sessions, read before the one this
            # login replaces is ended (the same browser signing in again is no news).
            families = yield ("families_of", (state.user_id, kit.namespaces, now))
            known = tuple(sorted({r.device for _, r in families if r.device is not None}))
        if session.ended is not None and base is not None and base.state.family == session.ended:
            reason = FAMILY_LOGIN if state.user_id is not None else FAMILY_LOGOUT
            yield from self._end_family(base, reason)
            base = self._base = None
        if base is not None and state.family == base.state.family:
            intent = self._intent()
            current: Stored | None = base
            verified = False
            for _ in range(MAX_ATTEMPTS):
                step: Plan | None = plan(current, base, intent, now, timeouts)
                if step is None or not isinstance(current, Record):
                    # The family ended elsewhere while this request ran: drop its changes
                    # and leave the cookie alone (the browser may hold a newer one).
                    self._quiet = True
                    session.reset()
                    return
                won_elsewhere = current.version != base.version
                final = current if step.record is None else step.record
                issues = self._reissue or current.state != self._cookie_state
                if step.record is None and issues and not verified:
                    # Nothing to write, but a cookie to re-issue from what was read: make
                    # sure the family did not end or move on meanwhile.
                    verified = True
                    current = yield ("load", (self._ref(base.state), now))
                    if isinstance(current, Record) and current.version == base.version:
                        current = base
                    continue
                if step.record is not None:
                    ref = self._ref(final.state)
                    until = stored_until(final, timeouts)
                    if not (yield ("save", (ref, step.expected, final, until, now))):
                        current = yield ("load", (self._ref(base.state), now))
                        continue
                session.adopt(final.state, final.data() if won_elsewhere else None)
                self._base = final
                if won_elsewhere and final.state.id != base.state.id and not self._reissue:
                    # Another request rotated the id while this one ran. That response
                    # delivers the new id to the browser; this one must not hand it to
                    # whoever held the request open across the rotation.
                    self._quiet = True
                return
            raise StoreUnavailable("the session record kept changing while it was written")
        if (session.is_empty and not session.kept) or (self._quiet and state.user_id is None):
            return
        address = kit.address_of(self.request) if state.user_id is not None else None
        device = kit.device_of(self.request) if state.user_id is not None else None
        record = new_record(state, dict(dict.items(session)), now, device, address)
        until = stored_until(record, timeouts)
        if not (yield ("save", (self._ref(state), None, record, until, now))):
            raise StoreUnavailable("a new session family could not be created")
        self._base = record
        self._quiet = False
        if (
            known is not None
            and state.user_id is not None
            and device is not None
            and device not in known
        ):
            kit.new_device(NewDevice(state.user_id, device, address, int(now), known))

    def _end_family(self, base: Record, reason: str) -> Step:
        timeouts = self._kit.timeouts
        ref = self._ref(base.state)
        current: Stored | None = base
        family_end = timeouts.end_of(base.state.lifetime, base.state.created_at)
        for _ in range(MAX_ATTEMPTS):
            if not isinstance(current, Record):
                return
            tomb = ended(current, self._now, reason)
            until = stored_until(tomb, timeouts, family_end)
            if (yield ("save", (ref, current.version, tomb, until, self._now))):
                return
            current = yield ("load", (ref, self._now))
        raise StoreUnavailable("the session record kept changing while it was ended")

    @property
    def untouched(self) -> bool:
        """Whether the response needs nothing from sessionkit, so its headers stay as they are.

        True when the app used neither the session nor the visitor id and the session
        cookie needs nothing either: it was not refused, and not sealed under an older key
        (re-issued under the newest even when unused). :meth:`finish` then returns no
        change, so a front end may skip it.
        """
        return not (self._visitor_asked or self._expire or self._stale or self.session.opened)

    def finish(self, vary: list[str], cache_control: list[str]) -> HeaderChanges | EarlyResponse:
        """Save the session and decide the response's header changes (blocking).

        ``vary`` and ``cache_control`` are the values of those headers the app set. When
        the store does not answer, returns the 503 response to send instead: a session
        the app changed is never reported as saved when it was not.
        """
        store = self._kit.store
        if store is not None and self.session.opened:
            try:
                _run(self._write_steps(), self._kit, store)
            except StoreUnavailable as exc:
                if not self._degraded:  # else already reported when the record was loaded
                    self._kit.store_error(exc, self._info())
                return unavailable(self.request.accept)
        return self.header_changes(vary, cache_control)

    async def afinish(
        self, vary: list[str], cache_control: list[str]
    ) -> HeaderChanges | EarlyResponse:
        """Coroutine form of :meth:`finish`: the store is awaited, never blocking the loop."""
        store = self._kit.store
        if store is not None and self.session.opened:
            try:
                await _arun(self._write_steps(), self._kit, store)
            except StoreUnavailable as exc:
                if not self._degraded:  # else already reported when the record was loaded
                    self._kit.store_error(exc, self._info())
                return unavailable(self.request.accept)
        return self.header_changes(vary, cache_control)

    def discard(self) -> None:
        """Forget this request's session changes (Django drops them on a 5xx response)."""
        if self.session.opened and self.session.modified:
            self._quiet = True
            self.session.reset()

    # -- cookies -------------------------------------------------------------------

    def _session_cookie(self, out: list[str]) -> None:
        kit = self._kit
        spec = kit.session_spec
        session = self.session
        presented = self._cookie_value is not None or self._expire
        if not session.opened:
            if not self._stale:
                if self._expire:
                    out.append(spec.delete())
                return
            session.open()
        if kit.store is not None:
            self._stored_cookie(out, presented)
            return
        if self._quiet and not self._expire:
            # The request's changes were discarded (a server error): the browser keeps
            # the cookie it sent, as if the request had not happened.
            return
        if session.is_empty and not session.kept:
            # An empty session needs no cookie: one the app emptied (or logged out) is
            # deleted; an empty one that came back unchanged is left as it is.
            if presented and (self._expire or session.modified):
                out.append(spec.delete())
            return
        state = session.state
        now = int(self._now)
        every = kit.timeouts.rotate_every
        rotate = every is not None and now - state.rotated_at >= every and not session.is_new
        touch = now - state.last_seen >= kit.timeouts.touch
        if not (session.modified or self._reissue or self._expire or rotate or touch):
            return
        if rotate:
            state = state._replace(id=new_session_id(), rotated_at=now)
        state = _seen_at(state, max(now, state.last_seen))
        session.adopt(state, None)
        self._issue(out, state, session)

    def _stored_cookie(self, out: list[str], presented: bool) -> None:
        spec = self._kit.session_spec
        session = self.session
        base = self._base
        if self._quiet:
            return
        if base is None:
            if presented and (self._expire or session.modified):
                out.append(spec.delete())
            return
        state = base.state
        if state != self._cookie_state or self._reissue:
            self._issue(out, state, None)

    def _issue(self, out: list[str], state: State, data: dict[str, Any] | None) -> None:
        kit, now = self._kit, self._now
        spec = kit.session_spec
        value = kit.sealer.seal(encode_payload(state, data), now)
        size = spec.size(value)
        if size > kit.max_cookie_bytes:
            raise SessionTooLarge(size, kit.max_cookie_bytes)
        _, _, _, created, seen, _, _, _, lifetime = state
        out.append(spec.set(value, kit.timeouts.max_age(lifetime, created, seen, now), now))
        self._issued = True

    def _note_lifecycle(self) -> None:
        """Report what this response did to the session: login, logout, rotation, ..."""
        session = self.session
        if not session.opened or self._quiet:
            return
        kit = self._kit
        prior = None if session.is_new else self._cookie_state
        state = session.state
        if prior is not None:
            kit.metrics.opened()
        if self._migrated is not None:
            if self._issued:
                kit.lifecycle(MIGRATED, self._info(), family=state.family, detail=self._migrated)
            return
        logged_in = state.user_id is not None and (prior is None or prior.family != state.family)
        if logged_in:
            kit.lifecycle(LOGIN, self._info(), family=state.family)
            return
        if session.ended is not None:
            kit.lifecycle(LOGOUT, self._info(), family=session.ended)
            return
        if not self._issued:
            return
        if prior is None or prior.family != state.family:
            kit.lifecycle(CREATED, self._info(), family=state.family)
        elif prior.id != state.id:
            cause = "explicit" if session.explicit_rotation else "timed"
            kit.lifecycle(ROTATED, self._info(), family=state.family, detail=cause)
        elif self._stale:
            kit.lifecycle(KEY_REISSUED, self._info(), family=state.family)

    def set_cookie_headers(self) -> list[str]:
        """The ``Set-Cookie`` values this response must carry (empty when nothing changed).

        Raises :class:`SessionTooLarge` when a cookie-only session does not fit one cookie.
        """
        kit = self._kit
        out: list[str] = []
        if not self._degraded:
            self._session_cookie(out)
            self._note_lifecycle()
        if self._old_cookie is not None:
            out.append(self._old_cookie)
        vspec = kit.visitor_spec
        if vspec is not None:
            if self._visitor_delete:
                out.append(vspec.delete())
            elif self._visitor_set and self._visitor is not None:
                value = kit.visitors.sign(self._visitor, vspec.name)
                out.append(vspec.set(value, kit.visitor_max_age, self._now))
            if self._opt_out_set:
                out.append(kit.opt_out_spec.set("1", kit.visitor_max_age, self._now))
            elif self._opt_out_delete:
                out.append(kit.opt_out_spec.delete())
        return out

    def header_changes(self, vary: list[str], cache_control: list[str]) -> HeaderChanges:
        """What sessionkit adds to a response whose ``Vary`` and ``Cache-Control`` are given.

        ``Set-Cookie`` for what changed; ``Vary: Cookie`` when the app used the session
        or the visitor id (the page may depend on them) or a cookie is set; when a cookie
        is set, ``Cache-Control: no-store`` in place of the app's own caching directives,
        so no shared cache can store one visitor's cookie for others. A response whose
        app used neither gets nothing, its caching headers untouched.
        """
        cookies = self.set_cookie_headers()
        add: list[tuple[str, str]] = []
        used = self.session.accessed or self._visitor_asked
        if (used or cookies) and not (vary and any(_lists_token(v, _VARY_COVERS) for v in vary)):
            add.append(("Vary", "Cookie"))
        if cookies:
            add.append(("Cache-Control", _NO_STORE))
            add.extend(("Set-Cookie", cookie) for cookie in cookies)
        return HeaderChanges(add, bool(cookies) and bool(cache_control))

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


def _until(write: Stored, stored: Record, timeouts: Any) -> float:
    family_end = timeouts.end_of(stored.state.lifetime, stored.state.created_at)
    return stored_until(write, timeouts, family_end)


def _seen_at(state: State, stamp: int) -> State:
    """``state._replace(last_seen=stamp)`` without the generic ``_replace``'s cost."""
    sid, family, user, created, _, rotated, auth, generation, lifetime = state
    return State(sid, family, user, created, stamp, rotated, auth, generation, lifetime)


def _lists_token(value: str, tokens: tuple[str, ...]) -> bool:
    return any(part.strip().lower() in tokens for part in value.split(","))


def _run(steps: Step, kit: SessionKit, store: Store) -> Any:
    """Drive a store conversation with blocking calls; return what it returns."""
    calls: dict[str, Callable[..., Any]] = {
        "load": store.load,
        "save": store.save,
        "families_of": store.families_of,
    }
    answer: Any = None
    try:
        while True:
            name, args = steps.send(answer)
            answer = kit.timed(name, calls[name], args)
    except StopIteration as stop:
        return stop.value


async def _arun(steps: Step, kit: SessionKit, store: Store) -> Any:
    """Drive a store conversation with awaited calls; return what it returns."""
    calls: dict[str, Callable[..., Awaitable[Any]]] = {
        "load": store.aload,
        "save": store.asave,
        "families_of": store.afamilies_of,
    }
    answer: Any = None
    try:
        while True:
            name, args = steps.send(answer)
            answer = await kit.atimed(name, calls[name], args)
    except StopIteration as stop:
        return stop.value


def _forwarded_client(peer: str | None, forwarded_for: str | None, hops: int) -> str | None:
    """The address the outermost trusted proxy saw; the peer when the header is short.

    Each of ``hops`` proxies appends the address it received the request from, so the
    entry ``hops`` places from the right was written by the outermost trusted one; any
    entries further left came from the client and are not believed.
    """
    entries = [entry.strip() for entry in forwarded_for.split(",")] if forwarded_for else []
    return entries[-hops] if len(entries) >= hops else peer


def _is_one(value: str) -> bool:
    return value.strip() == "1"
