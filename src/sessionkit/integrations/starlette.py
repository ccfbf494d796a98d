"""Starlette (and FastAPI) routes marked with ``@csrf_exempt``.

The ASGI middleware runs before the router, so it asks the router which endpoint a
request would reach before refusing it::

    from sessionkit.asgi import SessionMiddleware
    from sessionkit.integrations.starlette import csrf_exempt, route_exempt

    @csrf_exempt
    async def webhook(request): ...

    app = Starlette(routes=[Route("/hooks/pay", webhook, methods=["POST"])])
    app.add_middleware(SessionMiddleware, kit=kit, csrf_exempt=route_exempt)

The router is asked only for a request that would otherwise be refused or asked for a
token, so ordinary requests pay nothing for it.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from starlette.routing import BaseRoute, Match

from ..forgery import csrf_exempt, marked_exempt

__all__ = ["csrf_exempt", "route_exempt"]


def route_exempt(scope: MutableMapping[str, Any]) -> bool:
    """Whether the endpoint this request is routed to was marked with :func:`csrf_exempt`."""
    app = scope.get("app")
    routes = getattr(getattr(app, "router", app), "routes", None)
    if routes is None:
        return False
    return _exempt_in(routes, dict(scope))


def _exempt_in(routes: Iterable[BaseRoute], scope: dict[str, Any]) -> bool:
    for route in routes:
        match, child = route.matches(scope)
        if match is not Match.FULL:
            continue
        inner = getattr(route, "routes", None)
        if inner is not None:
            return _exempt_in(inner, {**scope, **child})
        return marked_exempt(child.get("endpoint"))
    return False
