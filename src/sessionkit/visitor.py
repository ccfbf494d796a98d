"""The persistent visitor cookie: an opaque random id and a MAC, nothing else.

Layout of the decoded value (the cookie carries its base64url text)::

    offset  size  field
    0       1     version, 0x01
    1       4     key id
    5       16    the visitor id: 128 random bits
    21      16    HMAC-SHA256 over bytes 0..20 and the cookie name, truncated to 128 bits

The first five bytes are the same for every visitor under one key. The id is not derived
from anything, carries no data, and no API turns it into a login.
"""

from __future__ import annotations

import hmac
import os

from .errors import BadToken
from .events import MALFORMED, OVERSIZED, TAMPERED, UNKNOWN_KEY
from .keys import KEY_ID_BYTES, KeyRing
from .seal import b64decode, b64encode

__all__ = ["VERIFIED_CACHE_SIZE", "VISITOR_ID_BYTES", "VisitorCodec"]

#: Random bytes in a visitor id.
VISITOR_ID_BYTES = 16
#: How many verified visitor cookie values are remembered.
VERIFIED_CACHE_SIZE = 4096
_MAC_BYTES = 16
_VERSION = 1
_HEADER = 1 + KEY_ID_BYTES
_SIGNED = _HEADER + VISITOR_ID_BYTES
_TOTAL = _SIGNED + _MAC_BYTES
_MAX_CHARS = 64


class VisitorCodec:
    """Mint, sign and verify visitor ids under the ``visitor`` subkeys of a key ring."""

    __slots__ = ("_keys", "_primary_kid", "_verified")

    def __init__(self, ring: KeyRing) -> None:
        self._keys = ring.subkeys("visitor")
        self._primary_kid = ring.key_ids[0]
        #: (value, name) -> (visitor id, newest key) for values whose MAC verified.
        self._verified: dict[tuple[str, str], tuple[str, bool]] = {}

    @staticmethod
    def mint() -> str:
        """Return a new random visitor id (22 base64url characters)."""
        return b64encode(os.urandom(VISITOR_ID_BYTES))

    def sign(self, visitor_id: str, name: str) -> str:
        """Return the cookie value for ``visitor_id`` under the newest key."""
        signed = bytes([_VERSION]) + self._primary_kid + b64decode(visitor_id)
        mac = hmac.digest(self._keys[self._primary_kid], signed + name.encode(), "sha256")
        return b64encode(signed + mac[:_MAC_BYTES])

    def verify(self, value: str, name: str) -> tuple[str, bool]:
        """Return the visitor id in ``value`` and whether it is signed under the newest key.

        Raises :class:`BadToken` naming the reason when the value is not ours. The last
        :data:`VERIFIED_CACHE_SIZE` values that verified are remembered: a browser sends
        the same value on every request, and a value's MAC never changes.
        """
        known = self._verified.get((value, name))
        if known is not None:
            return known
        if len(value) > _MAX_CHARS:
            raise BadToken(OVERSIZED)
        raw = b64decode(value)
        if len(raw) != _TOTAL or raw[0] != _VERSION:
            raise BadToken(MALFORMED)
        kid = raw[1:_HEADER]
        key = self._keys.get(kid)
        if key is None:
            raise BadToken(UNKNOWN_KEY)
        mac = hmac.digest(key, raw[:_SIGNED] + name.encode(), "sha256")[:_MAC_BYTES]
        if not hmac.compare_digest(mac, raw[_SIGNED:]):
            raise BadToken(TAMPERED)
        result = b64encode(raw[_HEADER:_SIGNED]), kid == self._primary_kid
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[value, name] = result
        return result
