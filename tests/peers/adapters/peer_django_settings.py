"""Django settings for running Django's own session tests against sessionkit.

They follow Django's own test settings (``tests/test_sqlite.py`` and ``runtests.py`` in
Django's source: SQLite in memory, the apps and middleware its test runner installs)
with the one swap sessionkit's Django integration asks for: sessionkit's engine as
``SESSION_ENGINE`` and :class:`~sessionkit.integrations.django.SessionKitMiddleware`
where Django's ``SessionMiddleware`` was. The kit keeps sessionkit's defaults but for a
key from :func:`sessionkit.generate_key` and Django's default cookie name, ``sessionid``
(which the tests read through ``settings.SESSION_COOKIE_NAME``).
"""

from __future__ import annotations

import sessionkit

SECRET_KEY = "django_tests_secret_key"  # Django's own test value; sessionkit does not use it
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "sessions_tests",
]
MIDDLEWARE = [
    "sessionkit.integrations.django.SessionKitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
SESSION_ENGINE = "sessionkit.integrations.django"
SESSION_COOKIE_NAME = "sessionid"
SESSIONKIT = {
    "secret_keys": [sessionkit.generate_key()],
    "session_cookie": SESSION_COOKIE_NAME,
}
