"""Helpers the stores share: the user index key and tolerant parsing of stored text."""

from __future__ import annotations

import json
import logging
import math

from ..errors import BadToken
from ..families import Record, Stored, parse_stored
from ..session import UserId

__all__ = ["LOGGER", "parse", "parse_record", "ttl_ms", "user_key", "user_of_key"]

#: Where stores report problems that do not raise (an unreadable record).
LOGGER = logging.getLogger("sessionkit.stores")


def user_key(user_id: UserId) -> str:
    """Return the index key of ``user_id``: its JSON text, so ``1`` and ``"1"`` differ."""
    return json.dumps(user_id)


def user_of_key(key: str | None) -> UserId | None:
    """The user whose index key is ``key`` (:func:`user_key`), or None for no key."""
    if key is None:
        return None
    user: UserId = json.loads(key)
    return user


def parse(text: str | bytes, family: str, user_id: UserId | None) -> Stored | None:
    """Parse stored text kept under ``user_id``; an unreadable one is logged and treated as
    absent."""
    try:
        return parse_stored(text, family, user_id)
    except BadToken:
        # Never log the text itself: it may hold session data.
        LOGGER.warning("unreadable session record for family %.8s...; treated as absent", family)
        return None


def parse_record(text: str | bytes, family: str, user_id: UserId) -> Record | None:
    """Parse stored text that must be a live record (tombstones and garbage give None)."""
    stored = parse(text, family, user_id)
    return stored if isinstance(stored, Record) else None


def ttl_ms(until: float, now: float) -> int:
    """Milliseconds from ``now`` until ``until``, rounded up; 0 or less means expired."""
    return math.ceil((until - now) * 1000)
