"""The sealed token format, version 1: AES-256-GCM-SIV over bytes, bound to a cookie name.

Layout of the decoded token (the cookie value is its base64url text, without padding)::

    offset  size  field
    0       1     version, 0x01
    1       4     key id (see :mod:`sessionkit.keys`)
    5       12    nonce, random for every seal
    17      n+16  ciphertext of the n-byte plaintext, then the 16-byte tag

The associated data is ``version || key id || cookie name (UTF-8)``: a value moved to
another cookie name, sealed under another key or altered in any byte fails to open.
The key id selects the one key to try, so opening costs at most one decryption.

AES-GCM-SIV (RFC 8452) is used instead of AES-GCM because it lifts GCM's nonce budget
(2**32 seals per key with random 96-bit nonces, NIST SP 800-38D section 8.3): it derives
fresh internal keys from every nonce, and a repeated nonce reveals only whether two
plaintexts were identical. ``docs/token-format.md`` states the resulting bound.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

from .errors import BadToken
from .events import MALFORMED, OVERSIZED, TAMPERED, UNKNOWN_KEY
from .keys import KEY_ID_BYTES, KeyRing

__all__ = ["MAX_TOKEN_CHARS", "NONCE_BYTES", "TAG_BYTES", "VERSION", "Sealer"]

#: Format version byte of tokens produced by this module.
VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
#: No cookie value longer than this is decoded (browsers cap a cookie at 4096 bytes).
MAX_TOKEN_CHARS = 4096

_VERSION_BYTE = bytes([VERSION])
_HEADER = 1 + KEY_ID_BYTES
_BODY = _HEADER + NONCE_BYTES
_MIN_BYTES = _BODY + TAG_BYTES


def b64encode(raw: bytes) -> str:
    """Encode bytes as unpadded base64url text."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """Decode unpadded base64url text strictly: one spelling per byte string.

    Raises :class:`BadToken` ("malformed") for any other alphabet, padding, non-ASCII
    character or non-canonical trailing bits.
    """
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise BadToken(MALFORMED) from None
    if b64encode(raw) != text:
        raise BadToken(MALFORMED)
    return raw


class Sealer:
    """Seal and open byte strings for one purpose of a :class:`KeyRing`."""

    __slots__ = ("_aeads", "_primary", "_primary_kid")

    def __init__(self, ring: KeyRing, purpose: str) -> None:
        self._aeads = {kid: AESGCMSIV(key) for kid, key in ring.subkeys(purpose).items()}
        self._primary_kid = ring.key_ids[0]
        self._primary = self._aeads[self._primary_kid]

    def seal(self, plaintext: bytes, name: str) -> str:
        """Encrypt ``plaintext`` under the newest key, bound to cookie ``name``."""
        header = _VERSION_BYTE + self._primary_kid
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._primary.encrypt(nonce, plaintext, header + name.encode())
        return b64encode(header + nonce + sealed)

    def unseal(self, token: str, name: str) -> tuple[bytes, bool]:
        """Open a token sealed for cookie ``name``.

        Returns the plaintext and whether it was sealed under the newest key (when not,
        the caller re-seals it). Raises :class:`BadToken` with the reason otherwise.
        """
        if len(token) > MAX_TOKEN_CHARS:
            raise BadToken(OVERSIZED)
        raw = b64decode(token)
        if len(raw) < _MIN_BYTES or raw[0] != VERSION:
            raise BadToken(MALFORMED)
        kid = raw[1:_HEADER]
        aead = self._aeads.get(kid)
        if aead is None:
            raise BadToken(UNKNOWN_KEY)
        try:
            plaintext = aead.decrypt(raw[_HEADER:_BODY], raw[_BODY:], raw[:_HEADER] + name.encode())
        except InvalidTag:
            raise BadToken(TAMPERED) from None
        return plaintext, kid == self._primary_kid
