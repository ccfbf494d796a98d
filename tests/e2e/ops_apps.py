"""Apps the operations tests run in their own processes, as a user would run them.

- ``asgi_factory()`` (``uvicorn --factory``), ``wsgi`` (gunicorn) and ``flask_app``
  (``flask run``): an app that configured no logging at all, its kit from
  ``SESSIONKIT_SECRET_KEYS``, on plain http (``insecure_development``);
- ``python ops_apps.py django-old PORT``: a Django project on the ``signed_cookies``
  session backend, whose ``/login`` signs a user in the Django way;
- ``python ops_apps.py django-new PORT``: the same project moved to sessionkit, with a
  migration reading the old cookie; Django's logging writes ``django.security`` records
  as JSON lines on stderr, and with a third argument its metrics are served for
  Prometheus on that port (the recipe of docs/operations.md).

Each app answers ``GET /me`` with its session as JSON.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from typing import Any

OLD_DJANGO_KEY = "django-insecure-old-project-key-for-the-migration-tests"
UNTIL = datetime(2040, 1, 1, tzinfo=timezone.utc)


def _kit() -> Any:
    import sessionkit

    return sessionkit.SessionKit.from_env(insecure_development=True)


def asgi_factory() -> Any:
    """A Starlette app with sessionkit; no logging configured."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    import sessionkit.asgi

    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"session": dict(request.session)})

    return Starlette(
        routes=[Route("/me", me)],
        middleware=[Middleware(sessionkit.asgi.SessionMiddleware, kit=_kit())],
    )


def _wsgi_app() -> Any:
    import sessionkit.wsgi

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = json.dumps({"session": dict(environ["sessionkit.session"])}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return sessionkit.wsgi.SessionMiddleware(app, kit=_kit())


def _flask_app() -> Any:
    import flask

    from sessionkit.integrations.flask import init_app

    app = flask.Flask("ops_flask")

    @app.route("/me")
    def me() -> Any:
        return flask.jsonify(session=dict(flask.session))

    init_app(app, _kit())
    return app


if os.environ.get("OPS_APP") == "wsgi":
    wsgi = _wsgi_app()
elif os.environ.get("OPS_APP") == "flask":
    flask_app = _flask_app()


# --------------------------------------------------------------------------- Django


def _django(mode: str) -> Any:
    import django
    from django.conf import settings
    from django.http import HttpRequest, JsonResponse
    from django.urls import path

    def login(request: HttpRequest) -> JsonResponse:
        request.session["user"] = "alice"
        request.session["cart"] = [1, 2]
        return JsonResponse({"ok": True})

    def me(request: HttpRequest) -> JsonResponse:
        from sessionkit.integrations.django import session_of

        session = session_of(request)
        return JsonResponse({"user": session.user_id, "session": dict(session)})

    module = sys.modules[__name__]
    common: dict[str, Any] = {
        "DEBUG": False,
        "ALLOWED_HOSTS": ["127.0.0.1"],
        "ROOT_URLCONF": __name__,
        "INSTALLED_APPS": [],
        "USE_TZ": True,
    }
    if mode == "django-old":
        module.urlpatterns = [path("login", login)]  # type: ignore[attr-defined]
        settings.configure(
            **common,
            SECRET_KEY=OLD_DJANGO_KEY,
            SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
            MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
        )
    else:
        from sessionkit.migrate import DjangoSignedCookie, Migration

        module.urlpatterns = [path("me", me)]  # type: ignore[attr-defined]
        settings.configure(
            **common,
            SECRET_KEY=OLD_DJANGO_KEY,
            SESSION_ENGINE="sessionkit.integrations.django",
            SESSION_COOKIE_NAME="sk-session",
            MIDDLEWARE=["sessionkit.integrations.django.SessionKitMiddleware"],
            SESSIONKIT={
                "insecure_development": True,
                "session_cookie": "sk-session",
                "migrate": Migration(
                    [DjangoSignedCookie(OLD_DJANGO_KEY, user_key="user")], until=UNTIL
                ),
            },
            LOGGING={
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"json": {"()": "sessionkit.events.JSONFormatter"}},
                "handlers": {
                    "stderr": {"class": "logging.StreamHandler", "formatter": "json"},
                },
                "loggers": {"django.security": {"handlers": ["stderr"], "level": "INFO"}},
            },
        )
    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    return WSGIHandler()


def _prometheus(port: int) -> None:
    """The docs' Prometheus recipe: OpenTelemetry's exporter, scraped on ``port``."""
    from opentelemetry import metrics
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import start_http_server

    metrics.set_meter_provider(MeterProvider(metric_readers=[PrometheusMetricReader()]))
    start_http_server(port, addr="127.0.0.1")


def main(argv: list[str]) -> None:
    """``ops_apps.py django-old|django-new PORT [METRICS_PORT]``: serve that Django app."""
    from werkzeug.serving import make_server

    mode, port = argv[1], int(argv[2])
    if len(argv) > 3:
        _prometheus(int(argv[3]))
    make_server("127.0.0.1", port, _django(mode), threaded=True).serve_forever()


if __name__ == "__main__":
    main(sys.argv)
