"""WSGI entry point: ``examples.django_project.wsgi:application`` for any WSGI server."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from .bootstrap import prepare

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_project.settings")

application = get_wsgi_application()
prepare()
