"""ASGI entry point: ``python -m uvicorn examples.django_project.asgi:application``."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from .bootstrap import prepare

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_project.settings")

application = get_asgi_application()
prepare()
