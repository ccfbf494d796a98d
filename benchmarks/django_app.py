"""The Django project of the WSGI benchmark: one URL, one view, settings in ``peers``.

Each WSGI handler in the benchmark says in ``environ["bench.kind"]`` where its session
lives, so every variant runs this same view: "django" (``request.session``), "sessionkit"
(``environ["sessionkit.session"]``) or "bare" (a plain dict holding the same data).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path

from .core import SESSION_DATA

#: The bare variant's session: a plain dict, so the view runs the same code.
BARE_SESSION: dict[str, Any] = dict(SESSION_DATA)

#: Set by the benchmark's check request only.
PROBE: dict[str, Any] = {"on": False, "seen": None}

#: Data the seeding request writes (the benchmark may swap it).
SEED: dict[str, Any] = dict(SESSION_DATA)


def _session(request: HttpRequest) -> Any:
    kind = request.environ["bench.kind"]
    if kind == "django":
        return request.session
    if kind == "sessionkit":
        return request.environ["sessionkit.session"]
    return BARE_SESSION


def read_write(request: HttpRequest) -> HttpResponse:
    session = _session(request)
    if PROBE["on"]:
        PROBE["seen"] = dict(session.items())
    session["n"] = session.get("n", 0) + 1
    return HttpResponse("ok", content_type="text/plain")


def read_only(request: HttpRequest) -> HttpResponse:
    session = _session(request)
    if PROBE["on"]:
        PROBE["seen"] = dict(session.items())
    if session.get("user") is None:
        return HttpResponse("no user", status=409, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")


def seed(request: HttpRequest) -> HttpResponse:
    session = _session(request)
    session.update(SEED)
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("app/rw", read_write),
    path("app/ro", read_only),
    path("seed", seed),
]
