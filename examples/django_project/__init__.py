"""A small Django project behind sessionkit: public home, log-in form, a private area, log-out.

Run it from the repository root, with ``pip install -e ".[django,demo]"`` done::

    python -m uvicorn examples.django_project.asgi:application --host 127.0.0.1 --port 8000

(or any WSGI server on ``examples.django_project.wsgi:application``) and open
http://127.0.0.1:8000. The demo user is ``demo`` with the password ``correct horse``,
typed at every log-on; it lives in ``django.contrib.auth``'s user table, created at start
in an SQLite database. ``request.session`` is Django's API over the sessionkit session:
``django.contrib.auth.login()`` rotates the session id and binds the session to the user,
``logout()`` revokes it. ``/app`` requires cookies (one test redirect, then a "cookies are
required" page); Django's CSRF token is kept in the session (``CSRF_USE_SESSIONS``).

It serves plain http on 127.0.0.1 through the explicit ``insecure_development=True``
opt-in. The sessionkit key comes from ``SESSIONKIT_SECRET_KEYS`` and Django's
``SECRET_KEY`` from ``DJANGO_SECRET_KEY``, each generated at start when unset (sessions
then end when the server stops); ``SESSIONKIT_DEMO_DIR`` chooses where the SQLite files go
(a directory under the system's temporary directory by default).
"""
