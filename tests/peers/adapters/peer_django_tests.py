"""Django's own session tests (``sessions_tests/tests.py``) applied to sessionkit.

- :class:`SessionKitStoreTests` is Django's ``SessionTestsMixin``, the contract every
  session engine's test class in Django runs, applied to
  ``sessionkit.integrations.django.SessionStore`` exactly as Django applies it to its
  own engines (``CookieSessionTests`` for ``signed_cookies``), with none of the
  overrides and skips those classes add.
- :class:`SessionKitMiddlewareTests` is Django's ``SessionMiddlewareTests`` with
  sessionkit's middleware in place of Django's: the one name those tests call,
  ``SessionMiddleware`` in Django's test module, is bound to
  :class:`~sessionkit.integrations.django.SessionKitMiddleware`. Only the classes below
  run in this process, so no test of Django's own engines sees that binding.

The upstream classes are reached through the module (``upstream.X``), never imported by
name, so the test loader finds only these two.
"""

from __future__ import annotations

from django.test import SimpleTestCase
from sessions_tests import tests as upstream

from sessionkit.integrations.django import SessionKitMiddleware, SessionStore

__all__ = ["SessionKitMiddlewareTests", "SessionKitStoreTests"]

upstream.SessionMiddleware = SessionKitMiddleware


class SessionKitStoreTests(upstream.SessionTestsMixin, SimpleTestCase):
    """Django's session engine contract, applied to sessionkit's engine."""

    backend = SessionStore


class SessionKitMiddlewareTests(upstream.SessionMiddlewareTests):
    """Django's session middleware tests, run on sessionkit's middleware."""
