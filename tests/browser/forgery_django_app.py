"""The Django app of the Chromium forgery tests, served by uvicorn in its own process.

Django is configured once per process, so it runs apart from the other tests. It opts in
to sessionkit's forgery checks (``forgery`` in ``SESSIONKIT``) in place of Django's
``CsrfViewMiddleware``; ``create`` is the ASGI application factory.
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import parse_qsl

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from sessionkit.forgery import ForgeryPolicy
from sessionkit.integrations.django import csrf_token, session_of


def form(request: HttpRequest) -> HttpResponse:
    session = session_of(request)
    session.setdefault("balance", 100)
    token = csrf_token(request)
    return HttpResponse(
        "<!doctype html><title>Form</title>"
        '<form method=post action="/transfer">'
        f'<input type=hidden name=csrf_token value="{html.escape(token)}">'
        "<input name=amount value=10><button>Send</button></form>"
        f"<script>const TOKEN = {json.dumps(token)};"
        "async function ownFetch() {"
        ' const r = await fetch("/transfer", {method: "POST", body: "amount=5",'
        ' headers: {"X-CSRF-Token": TOKEN,'
        ' "Content-Type": "application/x-www-form-urlencoded"}});'
        " return r.status; }</script>"
    )


def transfer(request: HttpRequest) -> HttpResponse:
    session = session_of(request)
    fields: dict[str, Any] = dict(parse_qsl(request.body.decode()))
    session["balance"] = session.get("balance", 100) - int(fields.get("amount", "0"))
    return HttpResponse(f"<!doctype html><title>Done</title><p id=balance>{session['balance']}</p>")


def balance(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"balance": session_of(request).get("balance")})


urlpatterns = [path("form", form), path("transfer", transfer), path("balance", balance)]


def create() -> Any:
    """The ASGI application (uvicorn ``--factory``)."""
    settings.configure(
        DEBUG=False,
        SECRET_KEY="forgery-browser-test-" + "k" * 40,
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=["sessionkit.integrations.django.SessionKitMiddleware"],
        SESSION_ENGINE="sessionkit.integrations.django",
        SESSION_COOKIE_NAME="session",
        SESSIONKIT={
            "insecure_development": True,
            "forgery": ForgeryPolicy(token_paths=["/"]),
        },
        LOGGING={
            "version": 1,
            "handlers": {"console": {"class": "logging.StreamHandler"}},
            "loggers": {"sessionkit.security": {"handlers": ["console"], "level": "WARNING"}},
        },
    )
    django.setup()
    from django.core.asgi import get_asgi_application

    return get_asgi_application()
