"""The peers' codecs and settings, each used the way its own middleware uses it."""

from __future__ import annotations

import datetime
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from .core import STARLETTE_MAX_AGE, StarletteCodec

FLASK_SECRET = "flask-benchmark-secret-0123456789abcdef"
DJANGO_SECRET = "django-benchmark-secret-0123456789abcdef-0123456789abcdef"
FERNET_KEY = Fernet.generate_key()
#: Django's SESSION_COOKIE_AGE default (two weeks), also used for Fernet's ttl.
TWO_WEEKS = 14 * 24 * 60 * 60
DJANGO_SALT = "django.contrib.sessions.backends.signed_cookies"

_django_ready = False


def django_setup() -> None:
    """Configure Django once for this process: signed-cookie sessions, no database."""
    global _django_ready
    if _django_ready:
        return
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY=DJANGO_SECRET,
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF="benchmarks.django_app",
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            DATABASES={},
            SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
            USE_TZ=True,
            LOGGING_CONFIG=None,
        )
    django.setup(set_prefix=False)
    _django_ready = True


class FlaskCodec:
    """Flask's session codec: URLSafeTimedSerializer with Flask's tagged JSON.

    Flask builds this serializer on every request (``get_signing_serializer``); here it
    is built once, so the codec numbers leave that cost out (the WSGI section has it).
    """

    def __init__(self) -> None:
        from flask import Flask
        from flask.sessions import SecureCookieSessionInterface

        app = Flask("bench_codec")
        app.secret_key = FLASK_SECRET
        serializer = SecureCookieSessionInterface().get_signing_serializer(app)
        assert serializer is not None
        self.serializer = serializer
        self.max_age = int(app.permanent_session_lifetime.total_seconds())

    def encode(self, session: dict[str, Any]) -> str:
        return self.serializer.dumps(dict(session))  # type: ignore[no-any-return]

    def decode(self, value: str) -> dict[str, Any]:
        return self.serializer.loads(value, max_age=self.max_age)  # type: ignore[no-any-return]


class DjangoCodec:
    """django.contrib.sessions.backends.signed_cookies: ``signing.dumps``/``loads``."""

    def __init__(self) -> None:
        django_setup()
        from django.contrib.sessions.serializers import JSONSerializer
        from django.core import signing

        self.signing = signing
        self.serializer = JSONSerializer

    def encode(self, session: dict[str, Any]) -> str:
        return self.signing.dumps(  # type: ignore[no-any-return]
            session, compress=True, salt=DJANGO_SALT, serializer=self.serializer
        )

    def decode(self, value: str) -> dict[str, Any]:
        return self.signing.loads(  # type: ignore[no-any-return]
            value, serializer=self.serializer, max_age=TWO_WEEKS, salt=DJANGO_SALT
        )


class FernetCodec:
    """What one writes for an encrypted cookie by hand: JSON in a Fernet token with a ttl."""

    def __init__(self, key: bytes = FERNET_KEY) -> None:
        self.fernet = Fernet(key)

    def encode(self, session: dict[str, Any]) -> str:
        return self.fernet.encrypt(json.dumps(session).encode("utf-8")).decode("ascii")

    def decode(self, value: str) -> dict[str, Any]:
        return json.loads(self.fernet.decrypt(value, ttl=TWO_WEEKS))  # type: ignore[no-any-return]


def starsessions_fernet_serializer() -> Any:
    """A starsessions ``Serializer`` that encrypts with Fernet.

    starsessions has no encryption of its own: its ``CookieStore`` signs (itsdangerous
    ``TimestampSigner``) and its documented hook for changing the cookie's content is the
    ``serializer``. This is the smallest encrypting serializer one would write for it.
    """
    from starsessions import Serializer

    fernet = Fernet(FERNET_KEY)

    class FernetJsonSerializer(Serializer):
        def serialize(self, data: Any) -> bytes:
            return fernet.encrypt(json.dumps(data).encode("utf-8"))

        def deserialize(self, data: bytes) -> dict[str, Any]:
            if not data:
                return {}
            try:
                return json.loads(fernet.decrypt(data, ttl=TWO_WEEKS))  # type: ignore[no-any-return]
            except InvalidToken:
                return {}

    return FernetJsonSerializer()


def starsessions_layers(secret: str) -> list[tuple[type, dict[str, Any]]]:
    """starsessions' cookie store with the Fernet serializer, loading every request."""
    from starsessions import CookieStore, SessionAutoloadMiddleware
    from starsessions import SessionMiddleware as StarsessionsMiddleware

    return [
        (
            StarsessionsMiddleware,
            {
                "store": CookieStore(secret_key=secret),
                "serializer": starsessions_fernet_serializer(),
                "lifetime": datetime.timedelta(seconds=STARLETTE_MAX_AGE),
                "cookie_https_only": True,
            },
        ),
        (SessionAutoloadMiddleware, {}),
    ]


__all__ = [
    "DJANGO_SECRET",
    "FERNET_KEY",
    "FLASK_SECRET",
    "DjangoCodec",
    "FernetCodec",
    "FlaskCodec",
    "StarletteCodec",
    "django_setup",
    "starsessions_layers",
]
