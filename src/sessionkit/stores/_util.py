"""Helpers the stores share: the user index key and tolerant record parsing."""

from __future__ import annotations

import json
import logging
import math

from .base import SessionRecord

__all__ = ["LOGGER", "parse_record", "ttl_ms", "user_key"]

#: Where stores report problems that do not raise (an unreadable record).
LOGGER = logging.getLogger("sessionkit.stores")


def user_key(user_id: str | int) -> str:
    """Return the index key of ``user_id``: its JSON text, so ``1`` and ``"1"`` differ."""
    return json.dumps(user_id)


def parse_record(text: str | bytes, family: str) -> SessionRecord | None:
    """Parse a stored record; an unreadable one is logged and treated as absent."""
    try:
        return SessionRecord.loads(text)
    except (ValueError, TypeError):
        # Never log the text itself: it may hold session data.
        LOGGER.warning("unreadable session record for family %.8s...; treated as absent", family)
        return None


def ttl_ms(expires_at: float, now: float) -> int:
    """Milliseconds from ``now`` until ``expires_at``, rounded up; 0 or less means expired."""
    return math.ceil((expires_at - now) * 1000)
