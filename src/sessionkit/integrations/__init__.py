"""Framework integrations: thin glue between a web framework and sessionkit's front ends.

Each submodule imports its framework, so import the one you use:

- :mod:`sessionkit.integrations.flask`: ``init_app(app, kit)``; ``flask.session`` is a
  sessionkit session.
- :mod:`sessionkit.integrations.django`: ``SESSION_ENGINE`` and ``SessionKitMiddleware``.
- :mod:`sessionkit.integrations.fastapi`: ``SessionDep``, ``VisitorDep`` and
  ``CsrfTokenDep`` dependencies over the ASGI middleware.
- :mod:`sessionkit.integrations.starlette`: ``route_exempt``, which honours
  ``@csrf_exempt`` on Starlette and FastAPI routes.

Importing this package imports no framework.
"""

from __future__ import annotations
