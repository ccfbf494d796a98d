"""pytest plugin: Flask's own session tests against sessionkit's Flask integration.

Loaded with ``-p peer_flask`` in a pytest run rooted in Flask's unpacked sdist. The test
files and their ``conftest.py`` are run byte for byte as Flask ships them. Every Flask app
the tests build (Flask's ``app`` fixture, or a test's own ``Flask(...)`` or subclass) gets
sessionkit as an application gives it, right after it is made:
``sessionkit.integrations.flask.init_app(app)``. The kit is built from ``app.config`` at
the app's first request, so the Flask settings a test makes afterwards
(``APPLICATION_ROOT``, ``SESSION_COOKIE_*``, ...) reach it, as they would in an
application configured after ``init_app``.

The kit keeps sessionkit's defaults (``Secure`` cookies included: Werkzeug's test client
sends them over its plain-http requests) but for two settings, put in ``app.config``:

- ``SESSIONKIT_SECRET_KEYS``: a key from :func:`sessionkit.generate_key` (the tests'
  ``SECRET_KEY`` values, such as ``"test key"``, are passphrases, which sessionkit
  refuses);
- ``SESSIONKIT = {"session_cookie": "session"}``: Flask's default ``SESSION_COOKIE_NAME``
  (which, left at its default, would not replace sessionkit's ``__Host-session``).

A test's own session interface subclasses sessionkit's, as an application's does once
it moves to sessionkit: ``flask.sessions.SessionInterface`` and
``flask.sessions.SecureCookieSessionInterface``, the names the tests import, are
:class:`~sessionkit.integrations.flask.SessionKitInterface` (Flask itself keeps its own
classes, bound when it was imported).

One shim concerns pytest, not sessionkit: Flask's ``conftest.py`` reads the sentinel
``_pytest.monkeypatch.notset``, which recent pytest releases keep only as
``_pytest.compat.NOTSET``; where the old name is gone, it is set to that same object.
"""

from __future__ import annotations

import functools
from typing import Any

import flask
import flask.sessions
from _pytest import monkeypatch as _monkeypatch
from _pytest.compat import NOTSET

import sessionkit
from sessionkit.integrations.flask import (
    CONFIG_KEYS,
    CONFIG_SETTINGS,
    SessionKitInterface,
    init_app,
)

__all__ = ["KEY", "configure"]

#: The key of every kit this plugin builds.
KEY = sessionkit.generate_key()

if not hasattr(_monkeypatch, "notset"):
    _monkeypatch.notset = NOTSET  # type: ignore[attr-defined]


def configure(app: flask.Flask) -> None:
    """Give a newly made app sessionkit, configured through its config."""
    app.config[CONFIG_KEYS] = [KEY]
    app.config[CONFIG_SETTINGS] = {"session_cookie": "session"}
    init_app(app)


_made = flask.Flask.__init__


@functools.wraps(_made)
def _make_with_sessionkit(app: flask.Flask, *args: Any, **kwargs: Any) -> None:
    _made(app, *args, **kwargs)
    configure(app)


flask.Flask.__init__ = _make_with_sessionkit  # type: ignore[method-assign]
flask.sessions.SessionInterface = SessionKitInterface  # type: ignore[misc]
flask.sessions.SecureCookieSessionInterface = SessionKitInterface  # type: ignore[misc]
