"""Framework integrations: thin glue between a web framework and sessionkit's front ends.

Each submodule imports its framework, so import the one you use:

- :mod:`sessionkit.integrations.flask`: ``init_app(app, kit)``; ``flask.session`` is a
  sessionkit session.
- :mod:`sessionkit.integrations.django`: ``SESSION_ENGINE`` and ``SessionKitMiddleware``.
- :mod:`sessionkit.integrations.fastapi`: ``SessionDep`` and ``VisitorDep`` dependencies
  over the ASGI middleware.

Importing this package imports no framework.
"""

from __future__ import annotations
