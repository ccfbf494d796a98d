"""Cross-site request forgery: refuse unsafe requests that another site made a browser send.

A cookie rides along with every request the browser makes to its site, whoever asked for
it; this module decides whether an unsafe request (any method but GET, HEAD, OPTIONS and
TRACE) came from the site itself. It needs no server state and, for browsers of the last
years, no token:

1. ``Sec-Fetch-Site`` (sent by every current browser, and not settable by a page): only
   ``same-origin`` and ``none`` (the user typed the address) pass; ``same-site`` and
   ``cross-site`` are refused unless the request's ``Origin`` is a trusted origin.
2. Without it, ``Origin`` (or, when a browser sends no ``Origin``, the origin of
   ``Referer``) must be the request's own origin (scheme, host and port, from the
   ``Host`` header, or from ``X-Forwarded-Proto``/``X-Forwarded-Host`` behind
   ``trusted_proxy_hops`` proxies) or a trusted origin. ``Origin: null`` never matches.
3. A request with none of these headers (a server, a webhook, a command-line client)
   passes: no browser sends an unsafe cross-site request without them.

On the paths listed in :attr:`ForgeryPolicy.token_paths`, an unsafe request must also
carry a session-bound token (the ``X-CSRF-Token`` header or the ``csrf_token`` form
field). A token is an HMAC-SHA256, under the key ring's ``forgery`` subkey, of the
session's family, its generation (which changes on login, logout and explicit rotation,
not on timed rotation) and a scope: ``""`` for a site-wide token, valid on every token
path, or the token path prefix a form posts to, valid under that prefix only. Each render masks it
with fresh random bytes (one-time pad, as BREACH defences do), so compressed HTML never
repeats it. Tokens are compared with ``hmac.compare_digest`` only.

A WebSocket handshake carries no ``Sec-Fetch-Site`` a server can rely on, but always an
``Origin`` from a browser: :func:`check_websocket` refuses one from another origin
(cross-site WebSocket hijacking).

Everything here is pure: front ends translate headers into a :class:`Provenance`, the
kit calls these functions, and a refusal is an :class:`~sessionkit.gate.EarlyResponse`
(403, HTML or JSON) plus a security event naming the reason.
"""

from __future__ import annotations

import hmac
import html
import json
import os
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from string import Template
from typing import Any, NamedTuple, TypeVar
from urllib.parse import unquote_plus, urlsplit

from .errors import BadToken, ConfigurationError
from .events import CROSS_SITE, ORIGIN_MISMATCH, TOKEN_INVALID, TOKEN_MISSING
from .gate import EarlyResponse, wants_html
from .keys import KeyRing
from .seal import b64decode, b64encode

__all__ = [
    "CROSS_SITE",
    "DEFAULT_REFUSED_PAGE",
    "DEFAULT_TOKEN_FIELD",
    "DEFAULT_TOKEN_HEADER",
    "EXEMPT_MARK",
    "MAX_FORM_PREFIX",
    "ORIGIN_MISMATCH",
    "REFUSED_STATUS",
    "SAFE_METHODS",
    "TOKEN_INVALID",
    "TOKEN_MARKER",
    "TOKEN_MISSING",
    "Forgery",
    "ForgeryPolicy",
    "Provenance",
    "TokenCheck",
    "check_origin",
    "check_websocket",
    "csrf_exempt",
    "form_token",
    "marked_exempt",
    "origin_of",
    "reads_form",
    "request_origin",
    "token_required",
    "token_scope",
]

#: Methods that must not change anything, so they are never checked (RFC 9110 9.2.1).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: The form field a token is read from.
DEFAULT_TOKEN_FIELD = "csrf_token"  # noqa: S105 - a name, not a secret
#: The request header a token is read from (for ``fetch`` and other scripts).
DEFAULT_TOKEN_HEADER = "X-CSRF-Token"  # noqa: S105 - a name, not a secret
#: How many bytes of a form body are read looking for the token field: put the hidden
#: field first in the form (browsers send fields in document order).
MAX_FORM_PREFIX = 64 * 1024
#: Status of a refused request.
REFUSED_STATUS = 403
#: The session key that keeps an otherwise empty session alive once a token was made
#: for it (a token is bound to the session, so the session must come back with the form).
TOKEN_MARKER = "sessionkit.csrf"  # noqa: S105 - a name, not a secret

#: Random bytes of the mask, and of the MAC it hides.
_TOKEN_BYTES = 32
_TOKEN_CHARS = 86  # base64url of 64 bytes, unpadded
_PURPOSE = "forgery"
_UNSAFE_NEVER_SAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PASSING_SITES = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_WEB_SCHEMES = {"ws": "http", "wss": "https"}
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_FIELD_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_URLENCODED = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"
_BOUNDARY = re.compile(r'boundary="?([^";]{1,200})"?', re.IGNORECASE)
_PART_NAME = re.compile(rb'\bname="([^"]*)"', re.IGNORECASE)

#: The default page sent with a refusal.
DEFAULT_REFUSED_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Request refused</title>
</head>
<body>
<main>
<h1>Request refused</h1>
<p>This request did not come from a page of this site, or it came from a page that is
too old, so it was not carried out. Nothing was changed.</p>
<p>Go back, reload the page and try again. If you followed a link or a button on
another site, that site tried to act for you here.</p>
<p><a href="$home">Go to the home page</a>.</p>
</main>
</body>
</html>
"""

RefusedPage = str | Callable[[str], str]
_F = TypeVar("_F", bound=Callable[..., Any])
#: The attribute :func:`csrf_exempt` sets on a view function.
EXEMPT_MARK = "__sessionkit_csrf_exempt__"


def csrf_exempt(view: _F) -> _F:
    """Mark a view function (a Flask view, a Starlette or FastAPI endpoint) as exempt.

    An unsafe request routed to it is never refused as forged nor asked for a token: use
    it for a webhook that authenticates itself (a signature header). The front end asks
    the framework's router (``init_app`` in Flask; ``csrf_exempt=route_exempt`` on the
    ASGI middleware for Starlette and FastAPI).
    """
    setattr(view, EXEMPT_MARK, True)
    return view


def marked_exempt(view: object) -> bool:
    """Whether :func:`csrf_exempt` marked ``view``."""
    return getattr(view, EXEMPT_MARK, False) is True


def _prefixes(name: str, values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ConfigurationError(f"{name} takes a list of path prefixes, e.g. {name}=['/hooks']")
    cleaned = []
    for value in values:
        if not isinstance(value, str) or not value.startswith("/"):
            raise ConfigurationError(f"{name} entry {value!r} must be a path starting with '/'")
        cleaned.append(value.rstrip("/"))
    return tuple(cleaned)


def _normalise(path: str) -> str:
    if path.startswith("/") and "//" not in path and "/." not in path:
        return path
    # A trailing slash changes no prefix match (prefixes are kept without one).
    return posixpath.normpath("/" + path.lstrip("/"))


def _longest(prefixes: tuple[str, ...], path: str) -> str | None:
    """The longest of ``prefixes`` covering ``path``, or None."""
    best: str | None = None
    for prefix in prefixes:
        if (
            prefix == "" or path == prefix or (path.startswith(prefix) and path[len(prefix)] == "/")
        ) and (best is None or len(prefix) > len(best)):
            best = prefix
    return best


@lru_cache(maxsize=1024)
def origin_of(url: str) -> str | None:
    """The origin of ``url`` as ``scheme://host[:port]``, lower-case, default port dropped.

    ``ws`` and ``wss`` count as ``http`` and ``https``. Returns None for anything that has
    no host (``null``, a path, text that is not a URL).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    scheme = _WEB_SCHEMES.get(scheme, scheme)
    host = parts.hostname
    if not scheme or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _trusted_origin(entry: object) -> str:
    fix = (
        f"trusted_origins entry {entry!r} is not an origin: write scheme://host[:port], "
        "like 'https://app.example.com', with no path, query or user name"
    )
    if not isinstance(entry, str):
        raise ConfigurationError(fix)
    origin = origin_of(entry)
    if origin is None:
        raise ConfigurationError(fix)
    parts = urlsplit(entry.strip())  # origin_of read it, so it splits
    if (
        parts.scheme.lower() not in _DEFAULT_PORTS
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
        or "*" in entry
    ):
        raise ConfigurationError(fix)
    return origin


@dataclass(frozen=True, slots=True, init=False)
class ForgeryPolicy:
    """Cross-site request forgery settings, checked at construction.

    ``trusted_origins`` lists other origins allowed to send unsafe requests
    (``"https://admin.example.com"``); ``exempt`` lists path prefixes never checked
    (webhooks that authenticate themselves); ``token_paths`` lists path prefixes where an
    unsafe request must also carry a session-bound token (``["/"]``: everywhere).
    ``safe_methods`` are never checked. ``token_field`` and ``token_header`` name where a
    token is read from. ``refused_page`` is an HTML template (``$home`` is the home link)
    or a callable from the refusal reason to HTML; ``refused_json`` a callable from the
    reason to the JSON document sent to clients that do not accept HTML.
    ``enabled=False`` turns every check off (Django's own middleware does it there).
    A bad setting raises :class:`~sessionkit.ConfigurationError` (a ``ValueError``)
    naming the fix.
    """

    enabled: bool
    trusted_origins: frozenset[str]
    exempt: tuple[str, ...]
    token_paths: tuple[str, ...]
    safe_methods: frozenset[str]
    token_field: str
    token_header: str
    refused_page: RefusedPage
    refused_json: Callable[[str], object] | None

    def __init__(
        self,
        *,
        enabled: bool = True,
        trusted_origins: Iterable[str] = (),
        exempt: Iterable[str] = (),
        token_paths: Iterable[str] = (),
        safe_methods: Iterable[str] = SAFE_METHODS,
        token_field: str = DEFAULT_TOKEN_FIELD,
        token_header: str = DEFAULT_TOKEN_HEADER,
        refused_page: RefusedPage = DEFAULT_REFUSED_PAGE,
        refused_json: Callable[[str], object] | None = None,
    ) -> None:
        if not isinstance(enabled, bool):
            raise ConfigurationError(f"enabled must be True or False, not {enabled!r}")
        if isinstance(trusted_origins, str):
            raise ConfigurationError(
                "trusted_origins takes a list of origins, e.g. "
                "trusted_origins=['https://app.example.com']"
            )
        if isinstance(safe_methods, str):
            raise ConfigurationError("safe_methods takes a list of methods, e.g. ['GET', 'HEAD']")
        methods = frozenset(str(m).upper() for m in safe_methods)
        unsafe = sorted(methods & _UNSAFE_NEVER_SAFE)
        if unsafe:
            raise ConfigurationError(
                f"safe_methods lists {', '.join(unsafe)}, which change things: exempt the "
                "paths that need it with csrf_exempt=[...] instead"
            )
        if not isinstance(token_header, str) or not _HEADER_NAME.fullmatch(token_header):
            raise ConfigurationError(
                f"token_header={token_header!r} is not a header name, like 'X-CSRF-Token'"
            )
        if not isinstance(token_field, str) or not _FIELD_NAME.fullmatch(token_field):
            raise ConfigurationError(
                f"token_field={token_field!r} must be 1 to 64 letters, digits, '_', '.', "
                "':' or '-', like 'csrf_token'"
            )
        if not (isinstance(refused_page, str) or callable(refused_page)):
            raise ConfigurationError(
                "refused_page must be an HTML template or a callable from the reason to HTML"
            )
        if refused_json is not None and not callable(refused_json):
            raise ConfigurationError("refused_json must be a callable from the reason to JSON")
        setattr_ = object.__setattr__
        setattr_(self, "enabled", enabled)
        setattr_(self, "trusted_origins", frozenset(map(_trusted_origin, trusted_origins)))
        setattr_(self, "exempt", _prefixes("csrf_exempt", exempt))
        setattr_(self, "token_paths", _prefixes("token_paths", token_paths))
        setattr_(self, "safe_methods", methods)
        setattr_(self, "token_field", token_field)
        setattr_(self, "token_header", token_header)
        setattr_(self, "refused_page", refused_page)
        setattr_(self, "refused_json", refused_json)

    def exempts(self, path: str) -> bool:
        """Whether ``path`` lies under an exempt prefix, as written and once normalised.

        Both forms must be exempt, so ``/hooks/../account`` is not under ``/hooks``.
        """
        return (
            _longest(self.exempt, path) is not None
            and _longest(self.exempt, _normalise(path)) is not None
        )


class Provenance(NamedTuple):
    """The headers that tell where a request came from (translated by a front end).

    ``host`` is the ``Host`` header (or the server's name and port without one),
    ``scheme`` the scheme the server received (``http``, ``https``, ``ws``, ``wss``),
    ``token`` the value of the policy's token header and ``content_type`` the body's.
    """

    origin: str | None = None
    referer: str | None = None
    fetch_site: str | None = None
    host: str | None = None
    scheme: str = "https"
    forwarded_host: str | None = None
    forwarded_proto: str | None = None
    token: str | None = None
    content_type: str | None = None


class TokenCheck(NamedTuple):
    """A token the front end must have checked before the app runs.

    ``scope`` is the token path prefix of the request, ``header`` the token sent in the
    header (None: look in the form), ``form`` whether the body is a form to read it from.
    """

    scope: str
    header: str | None
    form: bool


def _hop(value: str | None, hops: int) -> str | None:
    """The entry the outermost of ``hops`` trusted proxies wrote, or None (see kit.py)."""
    if not value:
        return None
    entries = [entry.strip() for entry in value.split(",")]
    return entries[-hops] if len(entries) >= hops else None


def request_origin(provenance: Provenance, trusted_hops: int = 0) -> str | None:
    """The request's own origin: its scheme and ``Host``, or what trusted proxies say."""
    scheme, host = provenance.scheme, provenance.host
    if trusted_hops:
        scheme = _hop(provenance.forwarded_proto, trusted_hops) or scheme
        host = _hop(provenance.forwarded_host, trusted_hops) or host
    if not host or "/" in host or "@" in host:
        return None
    return origin_of(f"{scheme}://{host}")


def _matches(sent: str | None, provenance: Provenance, policy: ForgeryPolicy, hops: int) -> bool:
    return sent is not None and (
        sent in policy.trusted_origins or sent == request_origin(provenance, hops)
    )


def check_origin(
    policy: ForgeryPolicy, method: str, path: str, provenance: Provenance, trusted_hops: int = 0
) -> str | None:
    """The reason to refuse this request as forged, or None to let it through.

    See the module docstring for the order of the checks; exempt paths, safe methods
    and a disabled policy always pass.
    """
    if not policy.enabled or method in policy.safe_methods or policy.exempts(path):
        return None
    site = provenance.fetch_site
    if site is not None:
        if site.strip().lower() in _PASSING_SITES:
            return None
        origin = provenance.origin
        if origin is not None and origin_of(origin) in policy.trusted_origins:
            return None
        return CROSS_SITE
    origin = provenance.origin
    if origin is None:
        if provenance.referer is None:
            return None
        sent = origin_of(provenance.referer)
    else:
        sent = origin_of(origin)  # None for "null", which has no host
    if _matches(sent, provenance, policy, trusted_hops):
        return None
    return ORIGIN_MISMATCH


def check_websocket(
    policy: ForgeryPolicy, path: str, provenance: Provenance, trusted_hops: int = 0
) -> str | None:
    """The reason to refuse a WebSocket handshake from another origin, or None.

    Browsers always send ``Origin`` on a handshake; one that is neither the request's
    own origin nor trusted is refused. A client without ``Origin`` is not a browser.
    """
    if not policy.enabled or policy.exempts(path):
        return None
    origin = provenance.origin
    if origin is None:
        return None
    if _matches(origin_of(origin), provenance, policy, trusted_hops):
        return None
    return ORIGIN_MISMATCH


def token_scope(policy: ForgeryPolicy, path: str) -> str | None:
    """The token path prefix covering ``path``, or None where no token is asked for.

    The path is read as written and once normalised (no ``.``, ``..`` or ``//``); when
    either form is covered, a token is asked for, bound to the longest prefix found.
    """
    paths = policy.token_paths
    if not paths:
        return None
    found = _longest(paths, path)
    normal = _normalise(path)
    if normal is not path:
        other = _longest(paths, normal)
        if other is not None and (found is None or len(other) > len(found)):
            found = other
    return found


def token_required(policy: ForgeryPolicy, method: str, path: str) -> bool:
    """Whether an unsafe request to ``path`` must carry a session-bound token."""
    return (
        policy.enabled
        and method not in policy.safe_methods
        and token_scope(policy, path) is not None
        and not policy.exempts(path)
    )


def reads_form(content_type: str | None) -> bool:
    """Whether a body of this type is a form the token field can be read from."""
    return content_type is not None and _kind(content_type) in (_URLENCODED, _MULTIPART)


def _kind(content_type: str) -> str:
    """The media type of a ``Content-Type`` value, lower-case, without its parameters."""
    return content_type.partition(";")[0].strip().lower()


def form_token(
    body: bytes, content_type: str | None, field_name: str, *, complete: bool = True
) -> str | None:
    """The value of the form field ``field_name`` in ``body``.

    Reads ``application/x-www-form-urlencoded`` and ``multipart/form-data`` bodies.
    ``complete=False`` says ``body`` is only the beginning of the body (the first
    :data:`MAX_FORM_PREFIX` bytes): only fields wholly within it count. Returns None
    when the field is not there.
    """
    if not content_type:
        return None
    kind = _kind(content_type)
    if kind == _URLENCODED:
        text = body.decode("latin-1")
        if not complete:
            text = text.rpartition("&")[0]
        for pair in text.split("&"):
            name, _, value = pair.partition("=")
            if unquote_plus(name) == field_name:
                return unquote_plus(value)
        return None
    if kind == _MULTIPART:
        found = _BOUNDARY.search(content_type)
        if found is None:
            return None
        delimiter = b"--" + found.group(1).encode("latin-1")
        wanted = field_name.encode()
        for part in body.split(delimiter)[1:-1]:
            head, sep, content = part.partition(b"\r\n\r\n")
            if not sep:
                continue
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-disposition:"):
                    named = _PART_NAME.search(line)
                    if named is not None and named.group(1) == wanted:
                        return content.removesuffix(b"\r\n").decode("utf-8", "replace")
        return None
    return None


class Forgery:
    """A :class:`ForgeryPolicy` with its token keys (built by :class:`SessionKit`)."""

    __slots__ = ("_keys", "configured", "home", "policy")

    def __init__(
        self, policy: ForgeryPolicy, ring: KeyRing, *, home: str = "/", configured: bool = True
    ) -> None:
        self.policy = policy
        self.home = home
        #: Whether the kit was given forgery settings (not only the defaults): Django's
        #: front end runs these checks only then, leaving them to Django otherwise.
        self.configured = configured
        self._keys = tuple(ring.subkeys(_PURPOSE).values())

    def __bool__(self) -> bool:
        return self.policy.enabled

    def checks(self, method: str) -> bool:
        """Whether requests with ``method`` (``"WEBSOCKET"``: a handshake) are checked.

        Front ends build a :class:`Provenance` only for those.
        """
        return self.policy.enabled and method not in self.policy.safe_methods

    def _mac(self, key: bytes, family: str, generation: int, scope: str) -> bytes:
        message = f"{family}\x00{generation}\x00{scope}".encode("utf-8", "surrogatepass")
        return hmac.digest(key, message, "sha256")

    def mint(self, family: str, generation: int, scope: str) -> str:
        """A fresh masked token for a session's family and generation and a token scope."""
        mac = self._mac(self._keys[0], family, generation, scope)
        pad = os.urandom(_TOKEN_BYTES)
        masked = int.from_bytes(pad, "big") ^ int.from_bytes(mac, "big")
        return b64encode(pad + masked.to_bytes(_TOKEN_BYTES, "big"))

    def verify(self, sent: str | None, family: str, generation: int, scope: str) -> str | None:
        """The reason to refuse token ``sent`` for this session and scope, or None.

        A token bound to ``scope`` passes, and so does a site-wide one (scope ``""``).
        Any key of the ring is accepted, so tokens survive a key rotation.
        """
        if sent is None or not sent.strip():
            return TOKEN_MISSING
        sent = sent.strip()
        if len(sent) != _TOKEN_CHARS:
            return TOKEN_INVALID
        try:
            raw = b64decode(sent)
        except BadToken:
            return TOKEN_INVALID
        pad, masked = raw[:_TOKEN_BYTES], raw[_TOKEN_BYTES:]
        mac = (int.from_bytes(pad, "big") ^ int.from_bytes(masked, "big")).to_bytes(
            _TOKEN_BYTES, "big"
        )
        valid = False
        for key in self._keys:
            for bound in ("", scope) if scope else ("",):
                valid |= hmac.compare_digest(mac, self._mac(key, family, generation, bound))
        return None if valid else TOKEN_INVALID

    def decide(
        self,
        method: str,
        path: str,
        provenance: Provenance,
        trusted_hops: int = 0,
        exempt: Callable[[], bool] | None = None,
    ) -> tuple[str | None, TokenCheck | None]:
        """The reason to refuse a request, or the token check it needs (or neither).

        ``method`` is ``"WEBSOCKET"`` for a WebSocket handshake. ``exempt`` is asked,
        only when there is something to refuse or check, whether the app's route for
        this request is exempt (a decorator in Flask).
        """
        policy = self.policy
        if method in policy.safe_methods:
            return None, None
        site = provenance.fetch_site
        if method == "WEBSOCKET":
            # A handshake has no body, and a browser's WebSocket sets no headers: Origin
            # is all there is to check.
            reason = check_websocket(policy, path, provenance, trusted_hops)
            scope = None
            needs_token = False
        elif (site == "same-origin" or site == "none") and not policy.token_paths:
            # What a current browser sends from the app's own pages: nothing more to ask.
            return None, None
        else:
            reason = check_origin(policy, method, path, provenance, trusted_hops)
            scope = None if reason is not None else token_scope(policy, path)
            needs_token = scope is not None and not policy.exempts(path)
        if (reason is not None or needs_token) and exempt is not None and exempt():
            return None, None
        if not needs_token or scope is None:
            return reason, None
        return None, TokenCheck(scope, provenance.token, reads_form(provenance.content_type))

    def scope_for(self, path: str) -> str:
        """The scope a token for a form posting to ``path`` is bound to (``""``: site-wide)."""
        return token_scope(self.policy, path) or ""

    def refusal(self, reason: str, accept: str | None) -> EarlyResponse:
        """The 403 response for a refused request: HTML or JSON by the ``Accept`` header."""
        policy = self.policy
        if wants_html(accept):
            page = policy.refused_page
            text = (
                page(reason)
                if callable(page)
                else Template(page).safe_substitute(home=html.escape(self.home))
            )
            body = text.encode()
            kind = "text/html; charset=utf-8"
        else:
            doc = (
                policy.refused_json(reason)
                if policy.refused_json is not None
                else {
                    "error": "forbidden",
                    "reason": reason,
                    "detail": "This request did not come from this site; reload the page "
                    "and try again.",
                }
            )
            body = json.dumps(doc).encode()
            kind = "application/json"
        headers = [
            ("Content-Type", kind),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Vary", "Accept"),
        ]
        return EarlyResponse(REFUSED_STATUS, headers, body)
