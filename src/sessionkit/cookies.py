"""Read the ``Cookie`` request header and write ``Set-Cookie`` response headers.

Parsing follows RFC 6265bis section 5.6 for the parts that matter to us: pairs are split
on ``;`` only (never on ``,``, see Django CVE-2016-7401), the name is everything before
the first ``=`` (a pair without one has an empty name), spaces and tabs around name and
value are dropped and no other character is (a vertical tab or a no-break space before
``__Host-session`` makes another name), and names compare byte for byte, so
``__host-session`` is not ``__Host-session``. Every occurrence of a wanted name is kept,
so a caller can treat duplicates as the attack they are.

A browser sends the same ``Cookie`` header until a cookie changes, so a
:class:`PickedCookies` remembers what :func:`pick_cookies` found in the last
:data:`PICKED_CACHE_SIZE` headers: parsing is a pure function of the header text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import lru_cache
from typing import Generic, Literal, TypeVar

from .errors import ConfigurationError

__all__ = [
    "MAX_COOKIE_BYTES",
    "MAX_PICKED_HEADER_CHARS",
    "PICKED_CACHE_SIZE",
    "SPELLINGS",
    "CookieSpec",
    "Found",
    "PickedCookies",
    "SameSite",
    "Spelling",
    "pick_cookies",
]

#: Browsers store a cookie only when its name and value together fit in this many bytes.
MAX_COOKIE_BYTES = 4096
#: How many ``Cookie`` headers a :class:`PickedCookies` remembers.
PICKED_CACHE_SIZE = 1024
#: Longer headers are parsed every time, never remembered.
MAX_PICKED_HEADER_CHARS = 8192

#: What :class:`PickedCookies` finds: every value of each wanted name, read-only.
Found = Mapping[str, tuple[str, ...]]
_T = TypeVar("_T")

SameSite = Literal["lax", "strict", "none"]
#: How ``Set-Cookie`` attributes are written: ``"standard"`` (``Max-Age=60; Path=/;
#: Secure; HttpOnly; SameSite=Lax``, the names as RFC 6265 writes them) or
#: ``"starlette"`` (``path=/; Max-Age=60; httponly; samesite=lax; secure``, as Starlette's
#: ``SessionMiddleware`` writes them). Attribute names and the ``SameSite`` value are
#: case-insensitive (RFC 6265 section 5.2), so browsers read both alike; the spelling
#: matters to tests that compare header text.
Spelling = Literal["standard", "starlette"]
SPELLINGS: tuple[Spelling, ...] = ("standard", "starlette")

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_ATTRIBUTE_VALUE = re.compile(r"[\x20-\x3a\x3c-\x7e]+")
_OWS = " \t"
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"


def pick_cookies(header: str | None, names: Collection[str]) -> dict[str, list[str]]:
    """Return every value of each wanted cookie name found in a ``Cookie`` header.

    ``header`` is the header's text (ASGI bytes decoded as Latin-1, so no input raises).
    Names not in ``names`` are skipped without further work.
    """
    found: dict[str, list[str]] = {}
    if not header:
        return found
    # Read as a split on ";" then on the first "=" would, but search only for our names:
    # no object per foreign pair, so the cost stays linear in the header's length (an
    # attacker's header of many empty or foreign pairs costs C-speed scanning only).
    size = len(header)
    for name in names:
        start = 0
        while (at := header.find(name, start)) >= 0:
            start = at + 1
            before = at - 1
            while before >= 0 and header[before] in _OWS:
                before -= 1
            if before >= 0 and header[before] != ";":
                continue  # inside another pair's name or value
            after = at + len(name)
            while after < size and header[after] in _OWS:
                after += 1
            if after >= size or header[after] != "=":
                continue  # a longer name, or a pair without "="
            end = header.find(";", after + 1)
            if end < 0:
                end = size
            found.setdefault(name, []).append(header[after + 1 : end].strip(_OWS))
            start = end
    return found


_NONE_FOUND: Found = {}


class PickedCookies(Generic[_T]):
    """:func:`pick_cookies` for one set of names, remembering the last headers it read.

    ``derive`` turns what was found into what the caller decides from it (a pure
    function of the header too), remembered with it. The answers are shared between
    requests that send the same header, so they are read-only: a mapping of tuples. At
    most :data:`PICKED_CACHE_SIZE` headers of up to :data:`MAX_PICKED_HEADER_CHARS`
    characters are kept (the memory is emptied when full).
    """

    __slots__ = ("_derive", "_names", "_none", "_seen")

    def __init__(self, names: Collection[str], derive: Callable[[Found], _T]) -> None:
        self._names = tuple(names)
        self._derive = derive
        self._none = (_NONE_FOUND, derive(_NONE_FOUND))
        self._seen: dict[str, tuple[Found, _T]] = {}

    def __call__(self, header: str | None) -> tuple[Found, _T]:
        """What ``header`` (the ``Cookie`` header's text) holds, and what derives from it."""
        if not header:
            return self._none
        picked = self._seen.get(header)
        if picked is None:
            found = {n: tuple(v) for n, v in pick_cookies(header, self._names).items()}
            picked = (found, self._derive(found))
            if len(header) <= MAX_PICKED_HEADER_CHARS:
                if len(self._seen) >= PICKED_CACHE_SIZE:
                    self._seen.clear()
                self._seen[header] = picked
        return picked


@lru_cache(maxsize=64)
def _http_date(seconds: int) -> str:
    """``seconds`` since the epoch as an HTTP date (``Thu, 01 Jan 2026 00:00:00 GMT``).

    Remembered: the cookies of one second, with one lifetime, share their date.
    """
    return formatdate(seconds, usegmt=True)


@dataclass(frozen=True, slots=True)
class CookieSpec:
    """The name and attributes of one cookie, checked once at start-up.

    Prefix rules are enforced here: ``__Host-`` needs ``Secure``, ``Path=/`` and no
    ``Domain``; ``__Secure-`` needs ``Secure``; ``SameSite=None`` needs ``Secure``.
    ``partitioned=True`` adds the ``Partitioned`` attribute (CHIPS: a third-party cookie
    kept in a separate jar per top-level site), which also needs ``Secure``. A Path or
    Domain holding a control character (CR, LF, NUL, ...), ``;`` or non-ASCII text is
    refused, so no setting can add a header or an attribute. ``spelling`` chooses how
    the attributes are written (see :data:`Spelling`); it changes no attribute.
    """

    name: str
    path: str = "/"
    domain: str | None = None
    secure: bool = True
    http_only: bool = True
    same_site: SameSite = "lax"
    partitioned: bool = False
    spelling: Spelling = "standard"
    # The header text, made once: what comes before Max-Age (Starlette's "; path=/"),
    # the attributes after it, and the Max-Age and Expires of a deletion.
    _head: str = field(init=False, repr=False, compare=False)
    _suffix: str = field(init=False, repr=False, compare=False)
    _expired: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _TOKEN.fullmatch(self.name):
            raise ConfigurationError(
                f"cookie name {self.name!r} is not a valid cookie name token: use letters, "
                "digits and !#$%&'*+-.^_`|~ only (no space, ';', ',', '=', quote, CR, LF or "
                "other control character)"
            )
        same_site = str(self.same_site).lower()
        if same_site not in ("lax", "strict", "none"):
            raise ConfigurationError(
                f"same_site={self.same_site!r} is not one of 'lax', 'strict', 'none'"
            )
        object.__setattr__(self, "same_site", same_site)
        if self.spelling not in SPELLINGS:
            raise ConfigurationError(
                f"cookie spelling {self.spelling!r} is not one of {', '.join(map(repr, SPELLINGS))}"
            )
        if not self.path.startswith("/") or not _ATTRIBUTE_VALUE.fullmatch(self.path):
            raise ConfigurationError(
                f"cookie path {self.path!r} must start with '/' and hold only printable ASCII "
                "other than ';' (no CR, LF or other control character)"
            )
        if self.domain is not None and not _ATTRIBUTE_VALUE.fullmatch(self.domain):
            raise ConfigurationError(
                f"cookie domain {self.domain!r} holds characters not allowed: write the host "
                "name alone, in printable ASCII (no ';', CR, LF or other control character)"
            )
        if self.name.startswith("__Host-"):
            if self.domain is not None:
                raise ConfigurationError(
                    f"cookie {self.name!r} has a Domain, which the __Host- prefix forbids: "
                    "drop domain=, or rename the cookie with the __Secure- prefix"
                )
            if self.path != "/":
                raise ConfigurationError(
                    f"cookie {self.name!r} has Path={self.path}, but the __Host- prefix needs "
                    "Path=/: drop path=, or rename the cookie with the __Secure- prefix"
                )
        if self.name.startswith(("__Host-", "__Secure-")) and not self.secure:
            raise ConfigurationError(
                f"cookie {self.name!r} is not Secure, which its prefix requires: "
                "keep secure=True (use insecure_development=True for plain http on a laptop)"
            )
        if same_site == "none" and not self.secure:
            raise ConfigurationError(
                "same_site='none' without Secure is refused by browsers: keep secure=True"
            )
        if self.partitioned and not self.secure:
            raise ConfigurationError(
                f"cookie {self.name!r} is Partitioned but not Secure, which browsers refuse: "
                "keep secure=True, or drop partitioned=True"
            )
        if self.spelling == "starlette":
            head = f"; path={self.path}"
            parts = ["httponly"] if self.http_only else []
            parts.append(f"samesite={same_site}")
            if self.secure:
                parts.append("secure")
            if self.domain is not None:
                parts.append(f"domain={self.domain}")
            if self.partitioned:
                parts.append("partitioned")
            expires = "expires"
        else:
            head = ""
            parts = [f"Path={self.path}"]
            if self.domain is not None:
                parts.append(f"Domain={self.domain}")
            if self.secure:
                parts.append("Secure")
            if self.http_only:
                parts.append("HttpOnly")
            parts.append(f"SameSite={same_site.capitalize()}")
            if self.partitioned:
                parts.append("Partitioned")
            expires = "Expires"
        object.__setattr__(self, "_head", head)
        object.__setattr__(self, "_suffix", "; ".join(parts))
        object.__setattr__(self, "_expired", f"Max-Age=0; {expires}={_EPOCH}")

    def set(self, value: str, max_age: int | None, now: float | None = None) -> str:
        """Return a ``Set-Cookie`` value storing ``value`` for ``max_age`` seconds.

        ``max_age=None`` makes a browser-session cookie. ``value`` must already be
        cookie-safe (our tokens are base64url). With ``now`` (seconds since the epoch),
        the standard spelling also writes ``Expires``, the same moment as a date, as
        Werkzeug and Django do: browsers obey ``Max-Age`` over it (RFC 6265 section
        5.3), and clients that know only ``Expires`` keep the cookie as long. Starlette
        writes no ``Expires``, and neither does its spelling.
        """
        if max_age is None:
            return f"{self.name}={value}{self._head}; {self._suffix}"
        if now is None or self.spelling == "starlette":
            return f"{self.name}={value}{self._head}; Max-Age={max_age}; {self._suffix}"
        expires = _http_date(int(now) + max_age)
        return f"{self.name}={value}; Max-Age={max_age}; Expires={expires}; {self._suffix}"

    def delete(self) -> str:
        """Return a ``Set-Cookie`` value that makes the browser drop this cookie now."""
        return f"{self.name}={self._head}; {self._expired}; {self._suffix}"

    def size(self, value: str) -> int:
        """Bytes of name and value, the part browsers count against the 4096 limit."""
        return len(self.name) + 1 + len(value)
