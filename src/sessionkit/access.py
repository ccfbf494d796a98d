"""Typed access to sessionkit's per-request state, for ASGI scopes and WSGI environs alike.

Both front ends put the request's :class:`~sessionkit.exchange.Exchange` under
``"sessionkit.exchange"`` (and the session under ``"session"`` or
``"sessionkit.session"``); these helpers read and change it:
``session_of(request.scope)``, ``visitor_of(environ)``, ``opt_out(environ)``,
``fresh_login_location(request.scope, 300)``, ``csrf_token(environ)``.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from .exchange import Exchange
from .session import Session

__all__ = ["csrf_token", "fresh_login_location", "opt_in", "opt_out", "session_of", "visitor_of"]

RequestState = MutableMapping[str, Any]


def _exchange(state: RequestState) -> Exchange:
    exchange: Exchange = state["sessionkit.exchange"]
    return exchange


def session_of(state: RequestState) -> Session:
    """The typed session of a request (an ASGI scope or a WSGI environ)."""
    return _exchange(state).session


def visitor_of(state: RequestState) -> str | None:
    """The visitor id of a request, or None when the visitor opted out or it is off.

    The visitor cookie is minted (or re-signed under the newest key) only for requests
    that ask for the id, and the response then varies by ``Cookie``.
    """
    return _exchange(state).visitor


def opt_out(state: RequestState) -> None:
    """Record this visitor's opt-out: no visitor id from now on (see :meth:`Exchange.opt_out`)."""
    _exchange(state).opt_out()


def opt_in(state: RequestState) -> None:
    """Undo :func:`opt_out` for this visitor (see :meth:`Exchange.opt_in`)."""
    _exchange(state).opt_in()


def csrf_token(state: RequestState, action: str | None = None) -> str:
    """A fresh anti-forgery token of this request's session.

    Put it in a hidden field named ``csrf_token`` (first in the form), or send it in the
    ``X-CSRF-Token`` header. The token is valid on every token path; with ``action``
    (the path the form posts to) it is bound to the token path prefix covering that
    path, and refused under any other. Each call gives a different value (masked); all
    of them stay valid until the session logs in, logs out or rotates.
    """
    return _exchange(state).csrf_token(action)


def fresh_login_location(
    state: RequestState, max_age: int, *, reauth_path: str | None = None
) -> str | None:
    """None when the request's login is at most ``max_age`` seconds old; else where to go.

    The location is the re-authentication page (``reauth_path``, by default the kit's)
    with a same-origin ``next`` back to this request's path and query. A session bound
    to no user is never fresh. For a Starlette endpoint::

        if (location := fresh_login_location(request.scope, 300)) is not None:
            return RedirectResponse(location, status_code=303)
    """
    exchange = _exchange(state)
    rule = exchange.kit.fresh_login(max_age, reauth_path)
    request = exchange.request
    return rule.decide(exchange.session.auth_age, request.path, request.query)
