"""sessionkit: encrypted session cookies, opaque visitor cookies and rotating session ids.

Build one :class:`SessionKit` at start-up and hand it to a front end:
:class:`sessionkit.asgi.SessionMiddleware` or :class:`sessionkit.wsgi.SessionMiddleware`.
"""

from __future__ import annotations

import logging

from .errors import (
    ConfigurationError,
    SensitiveData,
    SessionKitError,
    SessionTooLarge,
    UnserializableValue,
)
from .events import SecurityEvent
from .forgery import ForgeryPolicy
from .keys import generate_key
from .kit import SessionKit
from .session import Session

__all__ = [
    "ConfigurationError",
    "ForgeryPolicy",
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

logging.getLogger("sessionkit").addHandler(logging.NullHandler())
