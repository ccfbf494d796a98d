"""pytest plugin: Flask's own session tests against sessionkit's Flask integration.

Loaded with ``-p peer_flask`` in a pytest run rooted in Flask's unpacked sdist. The test
files and their ``conftest.py`` are run byte for byte as Flask ships them. When Flask's
``app`` fixture has built its app, this plugin wires sessionkit in with
``sessionkit.integrations.flask.init_app(app)``, as an application would, so every test
that uses that fixture (directly or through ``client``) runs on sessionkit. The kit is
built from ``app.config`` at the app's first request, so the Flask settings a test makes
after the fixture (``APPLICATION_ROOT``, ``SESSION_COOKIE_*``, ...) reach it, as they
would in an application configured after ``init_app``.

The kit keeps sessionkit's defaults (``Secure`` cookies included: Werkzeug's test client
sends them over its plain-http requests) but for two settings, put in ``app.config``:

- ``SESSIONKIT_SECRET_KEYS``: a key from :func:`sessionkit.generate_key` (the fixture's
  ``SECRET_KEY="test key"`` is a passphrase, which sessionkit refuses);
- ``SESSIONKIT = {"session_cookie": "session"}``: Flask's default ``SESSION_COOKIE_NAME``
  (which, left at its default, would not replace sessionkit's ``__Host-session``).

One shim concerns pytest, not sessionkit: Flask's ``conftest.py`` reads the sentinel
``_pytest.monkeypatch.notset``, which recent pytest releases keep only as
``_pytest.compat.NOTSET``; where the old name is gone, it is set to that same object.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import flask
import pytest
from _pytest import monkeypatch as _monkeypatch
from _pytest.compat import NOTSET

import sessionkit
from sessionkit.integrations.flask import CONFIG_KEYS, CONFIG_SETTINGS, init_app

__all__ = ["KEY", "configure", "pytest_fixture_setup"]

#: The key of every kit this plugin builds.
KEY = sessionkit.generate_key()

if not hasattr(_monkeypatch, "notset"):
    _monkeypatch.notset = NOTSET  # type: ignore[attr-defined]


def configure(app: flask.Flask) -> None:
    """Give an app built by the ``app`` fixture sessionkit, configured through its config."""
    app.config[CONFIG_KEYS] = [KEY]
    app.config[CONFIG_SETTINGS] = {"session_cookie": "session"}
    init_app(app)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    """Give the app built by Flask's ``app`` fixture sessionkit sessions."""
    value = yield
    if fixturedef.argname == "app" and isinstance(value, flask.Flask):
        configure(value)
    return value
