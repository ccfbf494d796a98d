"""sessionkit: encrypted session cookies, opaque visitor cookies and rotating session ids.

Build one :class:`SessionKit` at start-up and hand it to a front end:
:class:`sessionkit.asgi.SessionMiddleware` or :class:`sessionkit.wsgi.SessionMiddleware`.

sessionkit adds no handler to its loggers (not even a ``NullHandler``): an application
that configured no logging still sees its warnings on stderr, through Python's
last-resort handler (see :mod:`sessionkit.events`).
"""

from __future__ import annotations

from .errors import (
    ConfigurationError,
    SensitiveData,
    SessionKitError,
    SessionTooLarge,
    UnserializableValue,
)
from .events import LifecycleEvent, SecurityEvent
from .forgery import ForgeryPolicy
from .keys import generate_key
from .kit import SessionKit
from .session import Session

__all__ = [
    "ConfigurationError",
    "ForgeryPolicy",
    "LifecycleEvent",
    "SecurityEvent",
    "SensitiveData",
    "Session",
    "SessionKit",
    "SessionKitError",
    "SessionTooLarge",
    "UnserializableValue",
    "generate_key",
]

__version__ = "0.1.0"
