"""Settings of the demo project: sessionkit as the session engine, auth on SQLite."""

from __future__ import annotations

import os
import secrets

from examples.common import demo_settings, state_dir

STATE_DIR = state_dir()

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "examples.django_project.urls"
USE_TZ = True

INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # In place of django.contrib.sessions.middleware.SessionMiddleware: sessions, the
    # cookies-required gate and the visitor cookie.
    "sessionkit.integrations.django.SessionKitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": STATE_DIR / "django-auth.sqlite3"}
}

SESSION_ENGINE = "sessionkit.integrations.django"
SESSION_COOKIE_NAME = "session"  # the kit's session cookie name over plain http
# The examples' policy (examples/common.py): /app needs cookies, an SQLite store, the
# security events kept for the /events page, plain http locally.
SESSIONKIT = demo_settings("django")
CSRF_USE_SESSIONS = True
# A log-in form posted with cookies off is told so (not "CSRF verification failed").
CSRF_FAILURE_VIEW = "examples.django_project.views.csrf_failure"
LOGIN_URL = "/login"

# Show sessionkit's security events (rejected, replayed or revoked cookies) in the console.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"sessionkit.security": {"handlers": ["console"], "level": "INFO"}},
}
