"""Kits that differ from an application's kit in the session cookie's name alone.

Some applications give part of the site a session cookie of its own name (Flask's
``SessionInterface.get_cookie_name`` overridden per request). :func:`renamed` derives such
a kit from the application's: the same keys, store, timeouts, attributes, gate, forgery
policy, reporter and metrics, and another session cookie name, checked by the rules a
configured name meets (:class:`~sessionkit.cookies.CookieSpec`) and sealed into every
cookie as the configured name is, so a cookie sealed under one name never opens under
another. A previous framework's cookie (:mod:`sessionkit.migrate`) migrates into the
application's own session cookie only, never into a renamed one.

:class:`NamedKits` keeps the derived kits of one application, at most
:data:`MAX_COOKIE_NAMES` names. One name past that raises
:class:`~sessionkit.ConfigurationError` rather than evicting a name: a set of names that
keeps growing is made from something unbounded (a header, a tenant from the URL), which
would let a client choose the name its session is sealed under and make a kit for every
name it sends.
"""

from __future__ import annotations

import copy
import dataclasses
import threading

from .cookies import PickedCookies
from .errors import ConfigurationError
from .exchange import session_cookie_reader
from .kit import SessionKit
from .seal import Sealer

__all__ = ["MAX_COOKIE_NAMES", "NamedKits", "renamed"]

#: How many session cookie names other than its own one application may use.
MAX_COOKIE_NAMES = 16


def renamed(kit: SessionKit, name: str, *, asker: str = "the application") -> SessionKit:
    """A kit like ``kit`` whose session cookie is named ``name``.

    ``asker`` says where the name came from, for the error messages. A name that is not a
    cookie name token, that breaks its prefix's rules under the kit's settings
    (``__Host-`` with a ``path`` or ``domain``, ``__Host-`` or ``__Secure-`` under
    ``insecure_development``), or that is the name of another of the kit's cookies (or of
    a migration's old cookie) raises :class:`~sessionkit.ConfigurationError` naming the
    fix. Store outages and recoveries are reported by each kit on its own.
    """
    if not isinstance(name, str):
        raise ConfigurationError(
            f"{asker} gave the session cookie name {name!r}, a {type(name).__name__}: return a str"
        )
    try:
        spec = dataclasses.replace(kit.session_spec, name=name)
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"{asker} gave a session cookie name that is refused: {exc}"
        ) from None
    others = kit.cookie_names - {kit.session_spec.name}
    migration = kit.migration
    if name in others or (migration is not None and name in migration.cookie_names):
        raise ConfigurationError(
            f"{asker} gave the session cookie name {name!r}, which already names another "
            "cookie of the kit (the visitor, cookie-check or opt-out cookie, or an old "
            "framework's cookie being migrated): return a name of its own"
        )
    derived = copy.copy(kit)
    derived.session_spec = spec
    derived.sealer = Sealer(
        kit.keys,
        "session",
        name,
        max_age=kit.timeouts.max_lifetime,
        max_skew=kit.timeouts.max_skew,
    )
    derived.cookie_names = others | {name}
    derived.migration = None
    derived.request_cookies = PickedCookies(
        derived.cookie_names, session_cookie_reader(name, derived.sealer)
    )
    return derived


class NamedKits:
    """The kit of each session cookie name one application uses, made on first use.

    The application's own name gives its kit back as it is. At most
    :data:`MAX_COOKIE_NAMES` other names are kept; the next raises
    :class:`~sessionkit.ConfigurationError` (see the module docstring). Safe to share
    between threads.
    """

    __slots__ = ("_asker", "_kit", "_kits", "_limit", "_lock")

    def __init__(
        self, kit: SessionKit, *, asker: str = "the application", limit: int = MAX_COOKIE_NAMES
    ) -> None:
        self._kit = kit
        self._asker = asker
        self._limit = limit
        self._kits: dict[str, SessionKit] = {kit.session_spec.name: kit}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> SessionKit:
        """The kit whose session cookie is named ``name``."""
        found = self._kits.get(name) if isinstance(name, str) else None
        if found is not None:
            return found
        with self._lock:
            found = self._kits.get(name) if isinstance(name, str) else None
            if found is not None:
                return found
            derived = renamed(self._kit, name, asker=self._asker)
            if len(self._kits) > self._limit:
                raise ConfigurationError(
                    f"{self._asker} gave a session cookie name ({name!r}) past the "
                    f"{self._limit} other than the kit's own that one application may use: "
                    "return one of a fixed, small set of names, never a name made from the "
                    "request (a header, a host or a path segment)"
                )
            self._kits[name] = derived
            return derived

    def __len__(self) -> int:
        """How many names have a kit, the application's own included."""
        return len(self._kits)
