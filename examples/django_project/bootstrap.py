"""Create the demo database and the demo user when the server starts."""

from __future__ import annotations

import threading

DEMO_USER = "demo"
DEMO_PASSWORD = "correct horse"  # noqa: S105 - the published demo credential


def _prepare() -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    users = get_user_model()
    if not users.objects.filter(username=DEMO_USER).exists():
        users.objects.create_user(DEMO_USER, password=DEMO_PASSWORD)


def prepare() -> None:
    """Migrate and add the demo user, in a worker thread.

    uvicorn imports the application inside its event loop, where Django refuses to touch
    the database; a thread of its own has no event loop.
    """
    from django.db import connections

    errors: list[BaseException] = []

    def run() -> None:
        try:
            _prepare()
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)
        finally:
            connections.close_all()

    worker = threading.Thread(target=run, name="demo-database")
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
