"""pytest plugin: Starlette's own ``tests/middleware/test_session.py`` against sessionkit.

Loaded with ``-p peer_starlette`` in a pytest run rooted in Starlette's unpacked sdist.
The test file is run byte for byte as Starlette ships it; this plugin changes only what
its one import line resolves to:

- ``starlette.middleware.sessions`` is this module, so the test's
  ``from starlette.middleware.sessions import Session, SessionMiddleware`` gets
  sessionkit's :class:`~sessionkit.Session` and the :class:`SessionMiddleware` below,
  which is :class:`sessionkit.asgi.SessionMiddleware` with two settings:

  - the key: the tests pass ``secret_key="example"``, which sessionkit refuses at start-up
    (it is not 32 random bytes), so a key from :func:`sessionkit.generate_key` takes its
    place;
  - ``insecure_development=True``: the tests talk plain http to ``testserver`` with
    Starlette's default ``https_only=False``, which sessionkit allows only when told it is
    a development setup. ``https_only=True`` still means ``Secure`` cookies.

  Every other keyword argument reaches sessionkit as the test wrote it.
- ``httpx2``: Starlette's ``tests/types.py`` imports it, and its test client prefers it;
  where it is not installed, ``httpx`` (the project it was forked from, with the same
  API) stands in.
"""

from __future__ import annotations

import sys
from typing import Any

import sessionkit
from sessionkit import asgi
from sessionkit.session import Session

__all__ = ["KEY", "Session", "SessionMiddleware"]

#: The key that replaces the tests' ``secret_key="example"``.
KEY = sessionkit.generate_key()


class SessionMiddleware(asgi.SessionMiddleware):
    """sessionkit's ASGI middleware under Starlette's name, with a real key, over http."""

    def __init__(self, app: asgi.ASGIApp, secret_key: str, **options: Any) -> None:
        super().__init__(app, secret_key=KEY, insecure_development=True, **options)


sys.modules["starlette.middleware.sessions"] = sys.modules[__name__]

try:
    import httpx2  # noqa: F401
except ImportError:
    import httpx

    sys.modules["httpx2"] = httpx
