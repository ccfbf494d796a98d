"""WSGI front end: ``app = SessionMiddleware(app, kit=kit)``.

The session is ``environ["sessionkit.session"]``, the visitor id ``visitor_of(environ)``.
Headers are added when the app calls ``start_response``; the response body passes through
untouched, so streaming works.
Session changes made after ``start_response`` (while the body is produced) are not saved.
When the cookies-required gate answers, or a request is refused as forged
(:mod:`sessionkit.forgery`), the app is not called; when a token is required and not in
the header, the first :data:`~sessionkit.forgery.MAX_FORM_PREFIX` bytes of a form body
are read for it and handed on to the app unchanged. With a store that does
not answer while the response is saved, the app's response is replaced by a 503.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import IO, TYPE_CHECKING

from .access import csrf_token, opt_in, opt_out, session_of, visitor_of
from .exchange import HeaderChanges
from .forgery import MAX_FORM_PREFIX, Provenance, form_token
from .gate import EarlyResponse
from .kit import SessionKit

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["SessionMiddleware", "csrf_token", "opt_in", "opt_out", "session_of", "visitor_of"]


class SessionMiddleware:
    """WSGI middleware giving every request a sessionkit session.

    ``csrf_exempt`` is a callable from the environ to whether its route is exempt from
    the forgery checks (Flask's ``@csrf_exempt`` marks are read this way).
    """

    def __init__(
        self,
        app: WSGIApplication,
        kit: SessionKit,
        *,
        csrf_exempt: Callable[[WSGIEnvironment], bool] | None = None,
    ) -> None:
        self.app = app
        self.kit = kit
        #: Asked, before a forgery refusal, whether the app's route is exempt.
        self.csrf_exempt = csrf_exempt
        header = kit.forgery.policy.token_header.upper().replace("-", "_")
        self._token_key = "HTTP_" + header
        self._request_id_key = kit.events.request_id_environ

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Handle one WSGI request."""
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        provenance = None
        if self.kit.forgery.checks(method):
            host = environ.get("HTTP_HOST")
            if host is None and "SERVER_NAME" in environ:
                host = f"{environ['SERVER_NAME']}:{environ.get('SERVER_PORT', '')}".rstrip(":")
            provenance = Provenance(
                environ.get("HTTP_ORIGIN"),
                environ.get("HTTP_REFERER"),
                environ.get("HTTP_SEC_FETCH_SITE"),
                host,
                environ.get("wsgi.url_scheme", "http"),
                environ.get("HTTP_X_FORWARDED_HOST"),
                environ.get("HTTP_X_FORWARDED_PROTO"),
                environ.get(self._token_key),
                environ.get("CONTENT_TYPE"),
            )
        exempt = self.csrf_exempt
        exchange = self.kit.open(
            environ.get("HTTP_COOKIE"),
            client=environ.get("REMOTE_ADDR"),
            sec_gpc=environ.get("HTTP_SEC_GPC"),
            dnt=environ.get("HTTP_DNT"),
            forwarded_for=environ.get("HTTP_X_FORWARDED_FOR"),
            method=method,
            path=path.encode("latin-1", "replace").decode("utf-8", "replace"),
            query=environ.get("QUERY_STRING", ""),
            accept=environ.get("HTTP_ACCEPT"),
            user_agent=environ.get("HTTP_USER_AGENT"),
            request_id=environ.get(self._request_id_key) if self._request_id_key else None,
            scheme=environ.get("wsgi.url_scheme"),
            host=environ.get("HTTP_HOST"),
            access_control_request_method=environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"),
            provenance=provenance,
            exempt=None if exempt is None else partial(exempt, environ),
        )
        early = exchange.early
        if early is None and exchange.pending is not None:
            early = exchange.load_record()
        check = exchange.token_check
        if early is None and check is not None:
            sent = None
            if check.header is None and check.form:
                body, complete = _body_prefix(environ)
                field = self.kit.forgery.policy.token_field
                sent = form_token(body, environ.get("CONTENT_TYPE"), field, complete=complete)
            early = exchange.check_token(sent)
        if early is not None:
            start_response(early.status_line, early.headers)
            return [early.body]
        environ["sessionkit.session"] = exchange.session
        environ["sessionkit.exchange"] = exchange
        replaced: list[EarlyResponse] = []

        def start_with_cookies(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            vary: list[str] = []
            cache_control: list[str] = []
            for name, value in headers:
                lowered = name.lower()
                if lowered == "vary":
                    vary.append(value)
                elif lowered == "cache-control":
                    cache_control.append(value)
            changes = exchange.finish(vary, cache_control)
            if isinstance(changes, EarlyResponse):
                replaced.append(changes)
                start_response(changes.status_line, changes.headers, exc_info)
                return _discard
            if changes.add:
                headers = _with_changes(headers, changes)
            return start_response(status, headers, exc_info)

        result = self.app(environ, start_with_cookies)
        if self.kit.store is None:
            return result
        return _replaceable(result, replaced)


def _with_changes(headers: list[tuple[str, str]], changes: HeaderChanges) -> list[tuple[str, str]]:
    """The app's headers with sessionkit's added; ``Cookie`` joins the app's own ``Vary`` line.

    One ``Vary`` line, as Flask and Werkzeug write it (two lines mean the same to HTTP,
    RFC 9110 section 5.3, but tests and some caches read only one).
    """
    out = (
        [h for h in headers if h[0].lower() != "cache-control"]
        if changes.drop_cache_control
        else list(headers)
    )
    add = changes.add
    if add and add[0] == ("Vary", "Cookie"):
        last = max((i for i, (name, _) in enumerate(out) if name.lower() == "vary"), default=None)
        if last is not None:
            name, value = out[last]
            out[last] = (name, f"{value}, Cookie")
            add = add[1:]
    return [*out, *add]


def _body_prefix(environ: WSGIEnvironment) -> tuple[bytes, bool]:
    """Read up to :data:`MAX_FORM_PREFIX` bytes of the body, and leave them for the app.

    ``wsgi.input`` is replaced by a stream that gives the bytes read here, then the rest.
    Returns the bytes and whether they are the whole body.
    """
    stream: IO[bytes] = environ["wsgi.input"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0 and not environ.get("wsgi.input_terminated"):
        return b"", True
    want = MAX_FORM_PREFIX if length <= 0 else min(length, MAX_FORM_PREFIX)
    chunks: list[bytes] = []
    got = 0
    while got < want:
        chunk = stream.read(want - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    head = b"".join(chunks)
    complete = got < want or (0 < length <= MAX_FORM_PREFIX)
    environ["wsgi.input"] = io.BytesIO(head) if complete else _Rejoined(head, stream)
    return head, complete


class _Rejoined:
    """A body stream: the bytes already read, then the rest of the original stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = io.BytesIO(head)
        self._rest = rest

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self._head.read() + self._rest.read()
        data = self._head.read(size)
        if len(data) < size:
            data += self._rest.read(size - len(data))
        return data

    def readline(self, size: int | None = -1) -> bytes:
        limit = -1 if size is None else size
        line = self._head.readline(limit)
        if line.endswith(b"\n") or (limit >= 0 and len(line) >= limit):
            return line
        return line + self._rest.readline(-1 if limit < 0 else limit - len(line))

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(self)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


def _discard(data: bytes) -> None:
    """The ``write`` callable handed to an app whose response was replaced."""


def _replaceable(result: Iterable[bytes], replaced: list[EarlyResponse]) -> Iterator[bytes]:
    """Pass the app's body through, unless its response was replaced by a 503."""
    try:
        for chunk in result:
            if replaced:
                break
            yield chunk
        if replaced:
            yield replaced[0].body
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
