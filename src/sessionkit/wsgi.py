"""WSGI front end: ``app = SessionMiddleware(app, kit=kit)``.

The session is ``environ["sessionkit.session"]``, the visitor id ``visitor_of(environ)``.
Headers are added when the app calls ``start_response``; the response body passes through
untouched, so streaming works.
Session changes made after ``start_response`` (while the body is produced) are not saved.
When the cookies-required gate answers, the app is not called. With a store that does
not answer while the response is saved, the app's response is replaced by a 503.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from .access import opt_in, opt_out, session_of, visitor_of
from .exchange import HeaderChanges
from .gate import EarlyResponse
from .kit import SessionKit

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["SessionMiddleware", "opt_in", "opt_out", "session_of", "visitor_of"]


class SessionMiddleware:
    """WSGI middleware giving every request a sessionkit session."""

    def __init__(self, app: WSGIApplication, kit: SessionKit) -> None:
        self.app = app
        self.kit = kit
        self._request_id_key = kit.events.request_id_environ

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Handle one WSGI request."""
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        exchange = self.kit.open(
            environ.get("HTTP_COOKIE"),
            client=environ.get("REMOTE_ADDR"),
            sec_gpc=environ.get("HTTP_SEC_GPC"),
            dnt=environ.get("HTTP_DNT"),
            forwarded_for=environ.get("HTTP_X_FORWARDED_FOR"),
            method=environ.get("REQUEST_METHOD", "GET"),
            path=path.encode("latin-1", "replace").decode("utf-8", "replace"),
            query=environ.get("QUERY_STRING", ""),
            accept=environ.get("HTTP_ACCEPT"),
            user_agent=environ.get("HTTP_USER_AGENT"),
            request_id=environ.get(self._request_id_key) if self._request_id_key else None,
            scheme=environ.get("wsgi.url_scheme"),
            host=environ.get("HTTP_HOST"),
            preflight=environ.get("REQUEST_METHOD") == "OPTIONS"
            and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ,
        )
        early = exchange.early
        if early is None and exchange.pending is not None:
            early = exchange.load_record()
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
