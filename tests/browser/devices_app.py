"""The pages of the browser test of a user's sessions, and its Django app.

``test_devices_browser.py`` serves the same small app on FastAPI, Flask and Django. The
HTML is here, shared; the Django app is built by :func:`create_django_app`, which uvicorn
runs in a subprocess (``--factory``), since Django is configured once per process.
"""

from __future__ import annotations

import html
import logging
import os
import sys
from typing import Any

from sessionkit.devices import SessionInfo


def sessions_page(user: Any, listed: list[SessionInfo], note: str = "") -> str:
    """The list: one ``li`` per session, a "Sign out" form on each but this browser's."""
    rows = "".join(
        f'<li data-handle="{html.escape(i.handle)}" data-current="{str(i.current).lower()}">'
        f'<span class="device">{html.escape(i.device or "")}</span>'
        + (
            " (this browser)"
            if i.current
            else '<form method="post" action="/sessions/end">'
            f'<input type="hidden" name="handle" value="{html.escape(i.handle)}">'
            "<button>Sign out</button></form>"
        )
        + "</li>"
        for i in listed
    )
    return (
        f"<title>Sessions</title><p id=user>{html.escape(str(user))}</p>"
        f"<p id=note>{note}</p><ul>{rows}</ul>"
    )


def me_page(user: Any) -> str:
    """Who the request is served as."""
    return f"<title>Me</title><p id=user>{html.escape(str(user))}</p>"


def create_django_app() -> Any:
    """The Django version: an ASGI application over SessionKitMiddleware, no database.

    The key comes from ``SESSIONKIT_SECRET_KEYS``; security events are printed, one a
    line, for the test to read from the server's output.
    """
    import django
    from django.conf import settings
    from django.core.asgi import get_asgi_application

    from sessionkit.stores import MemoryStore

    security = logging.getLogger("sessionkit.security")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("security event: %(message)s"))
    security.addHandler(handler)
    settings.configure(
        DEBUG=False,
        SECRET_KEY="sessionkit-browser-tests-" + "d" * 40,
        ALLOWED_HOSTS=["127.0.0.1"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        DATABASES={},
        MIDDLEWARE=["sessionkit.integrations.django.SessionKitMiddleware"],
        SESSION_ENGINE="sessionkit.integrations.django",
        SESSION_COOKIE_NAME="session",
        SESSIONKIT={
            "secret_keys": os.environ["SESSIONKIT_SECRET_KEYS"].split(","),
            "store": MemoryStore(),
            "insecure_development": True,
        },
    )
    django.setup()
    return get_asgi_application()


def _views() -> list[Any]:
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    from sessionkit.integrations.django import get_kit, session_of

    def login(request: HttpRequest) -> HttpResponse:
        session_of(request).login(request.GET["user"])
        return HttpResponse(me_page(request.GET["user"]))

    def me(request: HttpRequest) -> HttpResponse:
        return HttpResponse(me_page(session_of(request).user_id))

    def sessions(request: HttpRequest) -> HttpResponse:
        session = session_of(request)
        user = session.user_id
        listed = [] if user is None else get_kit().sessions_of(user, current=session)
        return HttpResponse(sessions_page(user, listed))

    def end(request: HttpRequest) -> HttpResponse:
        session = session_of(request)
        user = session.user_id
        if user is None:
            return HttpResponse(sessions_page(None, []))
        kit = get_kit()
        ended = kit.revoke_session(user, request.POST["handle"])
        listed = kit.sessions_of(user, current=session)
        return HttpResponse(sessions_page(user, listed, "ended" if ended else "refused"))

    return [
        path("login", login),
        path("me", me),
        path("sessions", sessions),
        path("sessions/end", end),
    ]


def __getattr__(name: str) -> Any:
    # Django reads ``urlpatterns`` only after create_django_app() configured it.
    if name == "urlpatterns":
        return _views()
    raise AttributeError(name)
