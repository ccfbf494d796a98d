"""The exception tree: every error sessionkit raises derives from :class:`SessionKitError`."""

from __future__ import annotations

__all__ = [
    "BadToken",
    "ConfigurationError",
    "SensitiveData",
    "SessionKitError",
    "SessionTooLarge",
    "UnserializableValue",
]


class SessionKitError(Exception):
    """Root of every sessionkit error; catch this to catch them all."""


class ConfigurationError(SessionKitError, ValueError):
    """A setting is unsafe or inconsistent; raised at start-up with the fix in the message."""


class SessionTooLarge(SessionKitError):
    """The sealed session does not fit in one cookie and no store can take it."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"the session cookie would be {size} bytes (name and value), over the limit of "
            f"{limit}: keep less data in the session (store ids, not records)"
        )


class SensitiveData(SessionKitError, ValueError):
    """A password-like key or a card-number-like value was written to a session."""


class UnserializableValue(SessionKitError, TypeError):
    """A value written to a session cannot be stored as JSON."""


class BadToken(SessionKitError):
    """A cookie value could not be opened; ``reason`` names why (see :mod:`sessionkit.events`)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
