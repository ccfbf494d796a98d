"""Pure ASGI front end: ``app.add_middleware(SessionMiddleware, kit=kit)``.

It translates an ASGI scope into :meth:`SessionKit.open`'s arguments, puts the session in
``scope["session"]`` (so Starlette's and FastAPI's ``request.session`` work; the visitor
id is ``visitor_of(scope)``), and adds the exchange's headers to
``http.response.start``. WebSocket handlers can read the session; a WebSocket has no
response to carry a cookie, so changes made there are not saved. When the
cookies-required gate answers, the app is not called: an http request gets the gate's
response, a WebSocket is closed with code 1008 before it is accepted. The same holds
for a request refused as forged (:mod:`sessionkit.forgery`), a WebSocket handshake from
another origin included; when a token is required and not in the header, the first
:data:`~sessionkit.forgery.MAX_FORM_PREFIX` bytes of a form body are read for it and
handed on to the app unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any

from .access import csrf_token, opt_in, opt_out, session_of, visitor_of
from .errors import ConfigurationError
from .exchange import Exchange
from .forgery import MAX_FORM_PREFIX, Provenance, form_token
from .gate import EarlyResponse
from .kit import SessionKit
from .lifetime import DEFAULT_ABSOLUTE_TIMEOUT, DEFAULT_TOUCH_INTERVAL

__all__ = [
    "ASGIApp",
    "SessionMiddleware",
    "csrf_token",
    "opt_in",
    "opt_out",
    "session_of",
    "visitor_of",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_UNSET: Any = object()
#: WebSocket close code for a refused connection (RFC 6455 section 7.4.1).
_POLICY_VIOLATION = 1008


# Where each header of interest is kept while the headers are read.
(
    _COOKIE,
    _FORWARDED_FOR,
    _GPC,
    _DNT,
    _ACCEPT,
    _USER_AGENT,
    _HOST,
    _ORIGIN,
    _REFERER,
    _FETCH_SITE,
    _CONTENT_TYPE,
    _FORWARDED_HOST,
    _FORWARDED_PROTO,
    _TOKEN,
    _PREFLIGHT,
    _REQUEST_ID,
) = range(16)
_SLOTS = 16
_HEADER_SLOTS = {
    b"cookie": _COOKIE,
    b"x-forwarded-for": _FORWARDED_FOR,
    b"sec-gpc": _GPC,
    b"dnt": _DNT,
    b"accept": _ACCEPT,
    b"user-agent": _USER_AGENT,
    b"host": _HOST,
    b"origin": _ORIGIN,
    b"referer": _REFERER,
    b"sec-fetch-site": _FETCH_SITE,
    b"content-type": _CONTENT_TYPE,
    b"x-forwarded-host": _FORWARDED_HOST,
    b"x-forwarded-proto": _FORWARDED_PROTO,
    b"access-control-request-method": _PREFLIGHT,
}


#: The names of the headers sessionkit adds, as ASGI spells them.
_NAMES = {n: n.lower().encode("latin-1") for n in ("Vary", "Cache-Control", "Set-Cookie")}


def _encode(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    names = _NAMES
    return [(names.get(n) or n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]


def _from_starlette_names(
    secret_key: str,
    session_cookie: Any,
    max_age: Any,
    path: Any,
    same_site: Any,
    https_only: Any,
    domain: Any,
    partitioned: Any,
    insecure_development: bool,
) -> SessionKit:
    settings: dict[str, Any] = {
        "insecure_development": insecure_development,
        "cookie_spelling": "starlette",
    }
    if session_cookie is not _UNSET:
        settings["session_cookie"] = session_cookie
    if max_age is None:
        settings["persistent_cookie"] = False
    elif max_age is not _UNSET:
        settings["idle_timeout"] = max_age
        settings["absolute_timeout"] = max(max_age, DEFAULT_ABSOLUTE_TIMEOUT)
        if isinstance(max_age, int) and max_age > 1:
            settings["touch_interval"] = min(DEFAULT_TOUCH_INTERVAL, max_age // 2)
    if path is not _UNSET:
        settings["path"] = path
    if same_site is not _UNSET:
        settings["same_site"] = same_site
    if https_only is not _UNSET:
        settings["secure"] = https_only
    if domain is not _UNSET:
        settings["domain"] = domain
    if partitioned is not _UNSET:
        settings["partitioned"] = partitioned
    return SessionKit(secret_keys=[secret_key], **settings)


class SessionMiddleware:
    """ASGI middleware giving every http and websocket request a sessionkit session.

    Pass ``kit=`` or, as a drop-in for Starlette's ``SessionMiddleware``, its keyword
    names: ``secret_key`` (a key from ``python -m sessionkit keygen``, also accepted as the
    second positional argument), ``session_cookie``, ``max_age`` (the idle timeout;
    ``None`` for a browser-session cookie), ``path``, ``same_site``, ``https_only`` and
    ``domain`` and ``partitioned`` (CHIPS); plus ``insecure_development=True`` to allow
    ``https_only=False``. Built from those names, it writes its cookies' attributes as
    Starlette does (``path=/; Max-Age=...; httponly; samesite=lax``; see
    :data:`sessionkit.cookies.Spelling`), so tests that compare Starlette's header text
    keep passing. ``csrf_exempt`` is a callable from the scope to whether its
    route is exempt from the forgery checks
    (:func:`sessionkit.integrations.starlette.route_exempt` reads the ``@csrf_exempt``
    marks of Starlette and FastAPI routes).
    """

    def __init__(
        self,
        app: ASGIApp,
        kit: SessionKit | str | None = None,
        *,
        secret_key: str | None = None,
        session_cookie: str = _UNSET,
        max_age: int | None = _UNSET,
        path: str = _UNSET,
        same_site: str = _UNSET,
        https_only: bool = _UNSET,
        domain: str | None = _UNSET,
        partitioned: bool = _UNSET,
        insecure_development: bool = False,
        csrf_exempt: Callable[[Scope], bool] | None = None,
    ) -> None:
        if isinstance(kit, str):
            if secret_key is not None:
                raise ConfigurationError("secret_key is given twice: by position and by name")
            kit, secret_key = None, kit
        starlette_names = (
            session_cookie,
            max_age,
            path,
            same_site,
            https_only,
            domain,
            partitioned,
        )
        if kit is None:
            if secret_key is None:
                raise ConfigurationError(
                    "SessionMiddleware needs kit=SessionKit(...) or secret_key=<key from "
                    "`python -m sessionkit keygen`>"
                )
            kit = _from_starlette_names(secret_key, *starlette_names, insecure_development)
        elif not isinstance(kit, SessionKit):
            raise ConfigurationError(
                f"kit must be a sessionkit.SessionKit, not {type(kit).__name__}"
            )
        elif (
            secret_key is not None
            or insecure_development
            or any(v is not _UNSET for v in starlette_names)
        ):
            raise ConfigurationError(
                "pass either kit= or Starlette's keyword names, not both: "
                "put the settings in SessionKit(...)"
            )
        self.app = app
        self.kit = kit
        self._checks = kit.forgery.checks
        #: Asked, before a forgery refusal, whether the app's route is exempt.
        self.csrf_exempt = csrf_exempt
        token_header = kit.forgery.policy.token_header.lower().encode("latin-1")
        #: Header name -> where its value goes (the token header's and the request id
        #: header's names are the kit's).
        self._slots = {**_HEADER_SLOTS, token_header: _TOKEN}
        header = kit.events.request_id_header
        if header is not None:
            self._slots[header.lower().encode("latin-1")] = _REQUEST_ID

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        found: list[str | None] = [None] * _SLOTS
        cookie = forwarded = None
        cookies: list[str] | None = None  # every Cookie line, when there are several
        forwards: list[str] | None = None  # every X-Forwarded-For line, likewise
        slots = self._slots
        for name, value in scope["headers"]:
            slot = slots.get(name)
            if slot is None:
                continue
            text = value.decode("latin-1")
            if slot > _FORWARDED_FOR:
                found[slot] = text  # the last of any other header counts
            elif slot == _COOKIE:
                if cookie is None:
                    cookie = text
                elif cookies is None:
                    cookies = [cookie, text]
                else:
                    cookies.append(text)
            elif forwarded is None:
                forwarded = text
            elif forwards is None:
                forwards = [forwarded, text]
            else:
                forwards.append(text)
        if cookies is not None:
            cookie = "; ".join(cookies)
        if forwards is not None:
            forwarded = ", ".join(forwards)
        client = scope.get("client")
        http = kind == "http"
        method = scope["method"] if http else "WEBSOCKET"
        kit = self.kit
        provenance = _provenance(scope, found, http) if self._checks(method) else None
        exempt = self.csrf_exempt
        exchange = Exchange(
            kit,
            cookie,
            client[0] if client else None,
            found[_GPC],
            found[_DNT],
            forwarded,
            method,
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            found[_ACCEPT],
            found[_USER_AGENT],
            found[_REQUEST_ID],
            scope.get("scheme"),
            found[_HOST],
            found[_PREFLIGHT],
            None,
            provenance,
            None if exempt is None else partial(exempt, scope),
        )
        early = exchange.early
        if early is None and exchange.pending is not None:
            early = await exchange.aload_record()
        check = exchange.token_check
        if early is None and check is not None:
            sent = None
            if check.header is None and check.form:
                body, complete, receive = await _body_prefix(receive)
                field = kit.forgery.policy.token_field
                sent = form_token(body, found[_CONTENT_TYPE], field, complete=complete)
            early = exchange.check_token(sent)
        if early is not None:
            if http:
                await _respond(send, early)
            else:
                await send({"type": "websocket.close", "code": _POLICY_VIOLATION})
            return
        scope["session"] = exchange.session
        scope["sessionkit.exchange"] = exchange
        if not http:
            await self.app(scope, receive, send)
            return
        replaced: list[EarlyResponse] = []  # the response sent in place of the app's

        def send_with_cookies(message: Message) -> Awaitable[None]:
            # Not a coroutine function itself: most messages go on to ``send`` as they
            # are, and its own awaitable is handed back without another frame around it.
            if replaced:
                return _nothing()
            if message["type"] == "http.response.start" and not exchange.untouched:
                return _start_with_cookies(exchange, message, send, replaced)
            return send(message)

        await self.app(scope, receive, send_with_cookies)


def _provenance(scope: Scope, found: list[str | None], http: bool) -> Provenance:
    """The origin headers of a request the forgery checks look at."""
    host = found[_HOST]
    if host is None:
        server = scope.get("server")
        if server and server[1] is not None:
            host = f"{server[0]}:{server[1]}"
    return Provenance(
        found[_ORIGIN],
        found[_REFERER],
        found[_FETCH_SITE],
        host,
        scope.get("scheme") or ("http" if http else "ws"),
        found[_FORWARDED_HOST],
        found[_FORWARDED_PROTO],
        found[_TOKEN],
        found[_CONTENT_TYPE],
    )


async def _start_with_cookies(
    exchange: Exchange, message: Message, send: Send, replaced: list[EarlyResponse]
) -> None:
    """Send ``http.response.start`` with the exchange's headers, or the 503 in its place."""
    headers = message.get("headers", [])
    vary: list[str] = []
    cache_control: list[str] = []
    for name, value in headers:
        if name == b"vary":
            vary.append(value.decode("latin-1"))
        elif name == b"cache-control":
            cache_control.append(value.decode("latin-1"))
    changes = (
        exchange.finish(vary, cache_control)
        if exchange.kit.store is None
        else await exchange.afinish(vary, cache_control)
    )
    if isinstance(changes, EarlyResponse):
        replaced.append(changes)
        await _respond(send, changes)
        return
    if changes.add:
        if changes.drop_cache_control:
            headers = [h for h in headers if h[0] != b"cache-control"]
        message["headers"] = [*headers, *_encode(changes.add)]
    await send(message)


async def _nothing() -> None:
    """What is sent after a response sessionkit replaced: nothing."""


async def _body_prefix(receive: Receive) -> tuple[bytes, bool, Receive]:
    """Read up to :data:`MAX_FORM_PREFIX` bytes of the body; hand them on to the app.

    Returns the bytes read, whether they are the whole body, and the ``receive`` the app
    must use: it replays the messages read here, then goes on with the original.
    """
    messages: list[Message] = []
    size = 0
    complete = False
    while size < MAX_FORM_PREFIX:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            complete = True
            break
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
    if len(body) > MAX_FORM_PREFIX:
        # A server may hand over more in one message: look at the same prefix anyway.
        body, complete = body[:MAX_FORM_PREFIX], False

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return body, complete, replay


async def _respond(send: Send, response: EarlyResponse) -> None:
    start = {"type": "http.response.start", "status": response.status}
    await send({**start, "headers": _encode(response.headers)})
    await send({"type": "http.response.body", "body": response.body})
