"""The cookies-required gate: block the application part of a site when cookies are off.

Paths under the configured prefixes are the application; every other path is public
and passes untouched. A safe request (GET, HEAD) to the application that carries none of
our cookies gets at most one redirect (303) to the same path with a check marker in the
query, setting a short-lived test cookie. On the marked request, a test cookie proves
that cookies work and the client is sent back to the clean URL; without one, the client
gets the "cookies are required" response. Any other method goes straight to that
response. The marker alone proves nothing, so a client that drops cookies sees one
redirect and then the block, never a loop. Nothing is stored on the server.

Every ``Location`` is a same-origin relative path rebuilt from the request's own path:
percent-encoded, starting with exactly one ``/``, so no request target can turn it into
a redirect to another host.
"""

from __future__ import annotations

import html
import ipaddress
import json
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from string import Template
from urllib.parse import quote

from .errors import ConfigurationError

__all__ = [
    "CHECK_COOKIE_MAX_AGE",
    "CHECK_MARKER",
    "DEFAULT_BLOCK_PAGE",
    "BlockPage",
    "EarlyResponse",
    "Gate",
    "is_loopback_host",
    "is_same_origin_path",
    "safe_location",
    "unavailable",
    "wants_html",
]

#: Query parameter that marks the request following the test redirect.
CHECK_MARKER = "sessionkit-cookie-check"
#: Lifetime of the test cookie, in seconds.
CHECK_COOKIE_MAX_AGE = 300
#: Status of the "cookies are required" response.
BLOCK_STATUS = 403
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = "/:@!$'()*+,;=-._~?&%"

#: The default "cookies are required" page; ``$home`` is replaced by the home link.
DEFAULT_BLOCK_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cookies are required</title>
</head>
<body>
<main>
<h1>Cookies are required</h1>
<p>This part of the site keeps you signed in with a cookie, and your browser did not
send one back. It cannot work without cookies.</p>
<h2>How to enable cookies</h2>
<ul>
<li>In your browser's settings, open the privacy or cookies section and allow cookies
for this site (first-party cookies are enough).</li>
<li>If you use private browsing or an extension that blocks cookies, allow this site.</li>
<li>Then reload this page.</li>
</ul>
<p>The public pages work without cookies: <a href="$home">go to the home page</a>.</p>
</main>
</body>
</html>
"""

#: Seconds a client is asked to wait when the session store is down.
RETRY_AFTER = 5

#: The page sent with 503 while the session store does not answer.
UNAVAILABLE_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Temporarily unavailable</title>
</head>
<body>
<main>
<h1>Temporarily unavailable</h1>
<p>Sessions cannot be checked right now, so this page is not served. Nothing was lost:
please try again in a few seconds.</p>
</main>
</body>
</html>
"""

#: The page sent instead of the "cookies are required" page when the request came over
#: plain http to a host that is not loopback: the cookies are Secure and were never kept.
INSECURE_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>This site needs https</title>
</head>
<body>
<main>
<h1>This site needs https</h1>
<p>This request reached the server over plain http. The site's cookies are marked
<code>Secure</code>, so browsers keep them only over https, and this part of the site
cannot work without them. Open the https address of this page instead.</p>
<p>If the address bar already shows https, a proxy in front of the site forwards plain
http: its operator can fix that. The public pages work either way:
<a href="$home">go to the home page</a>.</p>
</main>
</body>
</html>
"""

BlockPage = str | Callable[[str], str]


@dataclass(frozen=True, slots=True)
class EarlyResponse:
    """A response sent instead of calling the app: a redirect or the block page."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def status_line(self) -> str:
        """The WSGI status string, e.g. ``"303 See Other"``."""
        return f"{self.status} {HTTPStatus(self.status).phrase}"


def is_loopback_host(host: str | None) -> bool:
    """Whether a ``Host`` header names this machine, where browsers keep Secure cookies
    over plain http (``localhost``, ``*.localhost``, ``127.0.0.0/8``, ``[::1]``).

    An absent host counts as loopback: nothing can be said about it.
    """
    if not host:
        return True
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name[1:]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_same_origin_path(target: str) -> bool:
    """Whether ``target`` can only ever lead to this site: a path with one leading ``/``.

    Browsers read ``//host``, ``/\\host`` and ``/<tab>/host`` as another site, so a
    second slash or a backslash after the first, a backslash anywhere, and control or
    space characters (which browsers strip or fold) are all refused.
    """
    if not target.startswith("/") or target[1:2] == "/":
        return False
    return not any(c == "\\" or c.isspace() or not c.isprintable() for c in target)


def _normalise(path: str) -> str:
    # A trailing slash never changes what is protected (prefixes are kept without one).
    return posixpath.normpath("/" + path.lstrip("/"))


def safe_location(path: str, query: str) -> str:
    """Rebuild a same-origin relative URL from a request's decoded path and raw query.

    Every character outside the RFC 3986 path alphabet (backslashes, control characters,
    ``%``, ``?``, ``#``, spaces, non-ASCII) is percent-encoded, and leading slashes are
    collapsed to one, so the result can never name another host.
    """
    # "surrogatepass" lets a path with lone surrogates (possible from an ASGI server
    # that decodes bytes with "surrogateescape") be encoded instead of raising.
    location = "/" + quote(path.encode("utf-8", "surrogatepass"), safe=_PATH_SAFE).lstrip("/")
    if query:
        location += "?" + quote(query.encode("utf-8", "surrogatepass"), safe=_QUERY_SAFE)
    return location


def _without_marker(query: str) -> str:
    return "&".join(p for p in query.split("&") if p and p.split("=", 1)[0] != CHECK_MARKER)


class Gate:
    """The cookies-required decision for one policy (built by :class:`SessionKit`)."""

    __slots__ = ("_html", "_json", "_prefixes", "home", "test_cookie")

    def __init__(
        self,
        prefixes: Iterable[str],
        *,
        home: str,
        page: BlockPage,
        json_body: Callable[[str], object] | None,
        test_cookie: str,
    ) -> None:
        if isinstance(prefixes, str):
            raise ConfigurationError(
                "require_cookies takes a list of path prefixes, e.g. require_cookies=['/app']"
            )
        cleaned = []
        for prefix in prefixes:
            if not isinstance(prefix, str) or not prefix.startswith("/"):
                raise ConfigurationError(
                    f"require_cookies entry {prefix!r} must be a path starting with '/'"
                )
            cleaned.append(prefix.rstrip("/"))
        self._prefixes = tuple(cleaned)
        if not is_same_origin_path(home):
            raise ConfigurationError(
                f"public_home {home!r} must be a path on this site, like '/' or '/welcome' "
                "(one leading '/', no backslash, no control or space characters)"
            )
        self.home = home
        self._html = page
        self._json = json_body
        self.test_cookie = test_cookie

    def __bool__(self) -> bool:
        return bool(self._prefixes)

    def protects(self, path: str) -> bool:
        """Whether ``path`` (or its normalised form: no ``.``, ``..`` or ``//``) is protected."""
        if not self._prefixes:
            return False
        for candidate in (path, _normalise(path)):
            for prefix in self._prefixes:
                # The root prefix is "": it protects every path, as each normalised
                # candidate starts with "/".
                if candidate == prefix or (
                    candidate.startswith(prefix) and candidate[len(prefix)] == "/"
                ):
                    return True
        return False

    def decide(
        self,
        *,
        method: str,
        path: str,
        query: str,
        has_cookie: bool,
        has_test_cookie: bool,
        accept: str | None,
    ) -> EarlyResponse | None:
        """Return the response to send instead of the app, or None to let the request in.

        Call it only for a path that :meth:`protects`.
        """
        marked = any(p.split("=", 1)[0] == CHECK_MARKER for p in query.split("&"))
        if has_cookie or has_test_cookie:
            if marked and method in _SAFE_METHODS:
                return self._redirect(safe_location(path, _without_marker(query)), None)
            return None
        if method not in _SAFE_METHODS or marked:
            blocked = self.blocked(path, accept)
            # The test cookie again: once the visitor enables cookies, the reload the page
            # asks for carries it and is let in.
            headers = [*blocked.headers, ("Set-Cookie", self.test_cookie)]
            return EarlyResponse(blocked.status, headers, b"" if method == "HEAD" else blocked.body)
        check = f"{query}&{CHECK_MARKER}=1" if query else f"{CHECK_MARKER}=1"
        return self._redirect(safe_location(path, check), self.test_cookie)

    @staticmethod
    def _redirect(location: str, cookie: str | None) -> EarlyResponse:
        headers = [
            ("Location", location),
            ("Cache-Control", "no-store"),
            ("Content-Length", "0"),
        ]
        if cookie is not None:
            headers.append(("Set-Cookie", cookie))
        return EarlyResponse(303, headers, b"")

    def insecure(self, accept: str | None, head: bool) -> EarlyResponse:
        """The response that says the site is served over http, so Secure cookies fail."""
        if wants_html(accept):
            text = Template(INSECURE_PAGE).safe_substitute(home=html.escape(self.home))
            answer = _answer(BLOCK_STATUS, text.encode(), "text/html; charset=utf-8")
        else:
            doc = {
                "error": "https_required",
                "detail": "This site's cookies are Secure and this request came over plain "
                "http: use the https address.",
                "home": self.home,
            }
            answer = _answer(BLOCK_STATUS, json.dumps(doc).encode(), "application/json")
        return EarlyResponse(answer.status, answer.headers, b"") if head else answer

    def blocked(self, path: str, accept: str | None) -> EarlyResponse:
        """The "cookies are required" response, HTML or JSON by the ``Accept`` header."""
        if wants_html(accept):
            page = self._html
            text = (
                page(path)
                if callable(page)
                else Template(page).safe_substitute(home=html.escape(self.home))
            )
            return _answer(BLOCK_STATUS, text.encode(), "text/html; charset=utf-8")
        doc = (
            self._json(path)
            if self._json is not None
            else {
                "error": "cookies_required",
                "detail": "This part of the site needs cookies; enable them and retry.",
                "home": self.home,
            }
        )
        return _answer(BLOCK_STATUS, json.dumps(doc).encode(), "application/json")


def unavailable(accept: str | None) -> EarlyResponse:
    """The 503 response for a request that needs the session store while it is down."""
    if wants_html(accept):
        body = UNAVAILABLE_PAGE.encode()
        kind = "text/html; charset=utf-8"
    else:
        body = json.dumps(
            {
                "error": "session_store_unavailable",
                "detail": "Sessions cannot be checked right now; retry in a few seconds.",
            }
        ).encode()
        kind = "application/json"
    return _answer(503, body, kind, [("Retry-After", str(RETRY_AFTER))])


def _answer(
    status: int, body: bytes, kind: str, extra: list[tuple[str, str]] | None = None
) -> EarlyResponse:
    headers = [
        ("Content-Type", kind),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("Vary", "Accept, Cookie"),
    ]
    return EarlyResponse(status, headers + (extra or []), body)


def wants_html(accept: str | None) -> bool:
    """Whether a client with this ``Accept`` header takes an HTML page (no header: yes)."""
    if not accept:
        return True
    for part in accept.split(","):
        kind = part.split(";", 1)[0].strip().lower()
        if kind in ("text/html", "application/xhtml+xml", "text/*", "*/*"):
            return True
    return False
