"""The sealed token format, version 1: AES-256-GCM under hourly subkeys, bound to a cookie.

Layout of the decoded token (the cookie value is its base64url text, without padding)::

    offset  size  field
    0       1     version, 0x01
    1       4     key id (see :mod:`sessionkit.keys`)
    5       4     epoch: whole hours since 1970-01-01 UTC when the token was sealed
    9       12    nonce, random for every seal
    21      n+16  ciphertext of the n-byte plaintext, then the 16-byte tag

The associated data is ``version || key id || epoch || cookie name (UTF-8)``: a value
moved to another cookie name, sealed under another key or in another hour, or altered in
any byte fails to open. The key id and epoch select the one subkey to try, so opening
costs at most one decryption; an epoch outside the window a token can be valid in is
refused before any cryptography runs.

Each hour seals under its own AES-256 key, derived with HKDF-SHA256 from the purpose's
subkey and the epoch. That lifts AES-GCM's nonce budget (2**32 seals per key with random
96-bit nonces, NIST SP 800-38D section 8.3) from a lifetime limit to a rate limit:
2**32 seals per hour, about 1.19 million per second. ``docs/token-format.md`` states the
bound and what it costs.
"""

from __future__ import annotations

import binascii
import os
import struct
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import BadToken
from .events import EXPIRED_ABSOLUTE, FROM_THE_FUTURE, MALFORMED, OVERSIZED, TAMPERED, UNKNOWN_KEY
from .keys import KEY_ID_BYTES, KeyRing

__all__ = [
    "EPOCH_SECONDS",
    "MAX_TOKEN_CHARS",
    "NONCE_BYTES",
    "OPENED_CACHE_SIZE",
    "TAG_BYTES",
    "VERSION",
    "Sealer",
    "b64decode",
    "b64encode",
]

#: Format version byte of tokens produced by this module.
VERSION = 1
#: Length of one subkey epoch.
EPOCH_SECONDS = 3600
NONCE_BYTES = 12
TAG_BYTES = 16
#: No cookie value longer than this is decoded (browsers cap a cookie at 4096 bytes).
MAX_TOKEN_CHARS = 4096
#: How many opened tokens each sealer remembers (about 1 KiB each for a typical session).
OPENED_CACHE_SIZE = 1024

_VERSION_BYTE = bytes([VERSION])
_EPOCH = struct.Struct(">I")
_KID_END = 1 + KEY_ID_BYTES
_HEADER = _KID_END + _EPOCH.size
_BODY = _HEADER + NONCE_BYTES
_MIN_BYTES = _BODY + TAG_BYTES

#: The key id is bytes 1-4 of a token: its first 8 base64url characters hold them.
_KID_CHARS = 8
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: base64url to base64, and every byte outside base64url to "!", which no base64 has.
_TO_STANDARD = bytes(b if b in _ALPHABET[:-2] else {45: 43, 95: 47}.get(b, 33) for b in range(256))
# The last character of a canonical encoding leaves no unused bit set: after 2 leftover
# characters (1 byte) it is one of 4 letters, after 3 (2 bytes) one of 16.
_CANONICAL_LAST = {2: frozenset(b"AQgw"), 3: frozenset(b"AEIMQUYcgkosw048")}


def b64encode(raw: bytes) -> str:
    """Encode bytes as unpadded base64url text."""
    return binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def b64decode(text: str) -> bytes:
    """Decode unpadded base64url text strictly: one spelling per byte string.

    Raises :class:`BadToken` ("malformed") for any other alphabet, padding, non-ASCII
    character or unused bits set in the last character.
    """
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError:
        raise BadToken(MALFORMED) from None
    tail = len(data) % 4
    if tail == 1 or (tail and data[-1] not in _CANONICAL_LAST[tail]):
        raise BadToken(MALFORMED)
    return _decode(data, b"=="[: -tail % 4])


def _decode_checked(data: bytes, padding: bytes) -> bytes:
    """Decode base64url on any Python: every byte outside it is refused first."""
    if data.translate(None, _ALPHABET):
        raise BadToken(MALFORMED)
    return binascii.a2b_base64(data.translate(_FROM_URLSAFE) + padding)


if sys.version_info >= (3, 11):

    def _decode_strict(data: bytes, padding: bytes) -> bytes:
        """Decode base64url in one pass: it becomes base64, every other byte one binascii's
        strict mode refuses (whose loop is also the faster, new in 3.11)."""
        try:
            return binascii.a2b_base64(data.translate(_TO_STANDARD) + padding, strict_mode=True)
        except binascii.Error:
            raise BadToken(MALFORMED) from None

    _decode = _decode_strict
else:  # pragma: no cover - Python 3.10
    _decode = _decode_checked


class Sealer:
    """Seal and open byte strings for one purpose of a :class:`KeyRing` and one cookie name.

    ``max_age`` is the longest a token of this purpose can be valid, in seconds, and
    ``max_skew`` how far ahead of this server's clock a sealing server's clock may run:
    together they bound the hours worth a decryption attempt.
    """

    __slots__ = (
        "_cache_size",
        "_max_age",
        "_max_skew",
        "_name",
        "_opened",
        "_openers",
        "_primary_kid",
        "_sealing",
        "_subkeys",
    )

    def __init__(
        self, ring: KeyRing, purpose: str, name: str, *, max_age: int, max_skew: int
    ) -> None:
        self._subkeys = ring.subkeys(purpose)
        self._primary_kid = ring.key_ids[0]
        self._name = name.encode()
        self._max_age = max_age
        self._max_skew = max_skew
        #: token header -> (cipher, associated data, hour, sealed under the newest key)
        self._openers: dict[bytes, tuple[AESGCM, bytes, int, bool]] = {}
        # Every (key, hour) a valid token can have, with room for the hour turning over.
        self._cache_size = len(self._subkeys) * ((max_age + max_skew) // EPOCH_SECONDS + 3)
        self._sealing: tuple[int, bytes, AESGCM, bytes] = (-1, b"", AESGCM(bytes(32)), b"")
        #: token -> (plaintext, hour, sealed under the newest key), for tokens that opened.
        self._opened: dict[str, tuple[bytes, int, bool]] = {}

    def _cipher(self, kid: bytes, hour: int) -> AESGCM:
        """The cipher of one key and hour: AES-256-GCM under an HKDF-derived subkey."""
        subkey = self._subkeys.get(kid)
        if subkey is None:
            raise BadToken(UNKNOWN_KEY)
        info = b"sessionkit/v1/epoch/" + _EPOCH.pack(hour)
        return AESGCM(
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(subkey)
        )

    def seal(self, plaintext: bytes, now: float) -> str:
        """Encrypt ``plaintext`` under the newest key's subkey for the hour of ``now``."""
        hour = int(now) // EPOCH_SECONDS
        sealing = self._sealing
        if sealing[0] != hour:
            header = _VERSION_BYTE + self._primary_kid + _EPOCH.pack(hour)
            sealing = self._sealing = (
                hour,
                header,
                self._cipher(self._primary_kid, hour),
                header + self._name,
            )
        _, header, aead, aad = sealing
        nonce = os.urandom(NONCE_BYTES)
        token = header + nonce + aead.encrypt(nonce, plaintext, aad)
        return b64encode(token)

    def _opener(self, header: bytes, now: float) -> tuple[AESGCM, bytes, int, bool]:
        if header[0] != VERSION:
            raise BadToken(MALFORMED)
        (hour,) = _EPOCH.unpack_from(header, _KID_END)
        self._check_hour(hour, now)
        kid = header[1:_KID_END]
        opener = (self._cipher(kid, hour), header + self._name, hour, kid == self._primary_kid)
        if len(self._openers) >= self._cache_size:
            self._openers.clear()
        self._openers[header] = opener
        return opener

    def _check_hour(self, hour: int, now: float) -> None:
        if hour > (now + self._max_skew) // EPOCH_SECONDS:
            raise BadToken(FROM_THE_FUTURE)
        if hour < (now - self._max_age) // EPOCH_SECONDS:
            raise BadToken(EXPIRED_ABSOLUTE)

    def under_old_key(self, token: str) -> bool:
        """Whether ``token``'s key id, readable without decrypting, is not the newest.

        False for a value too short or not base64 there (opening it will refuse it).
        """
        head = token[:_KID_CHARS]
        if len(head) < _KID_CHARS:
            return False
        try:
            raw = b64decode(head)
        except BadToken:
            return False
        return raw[1:_KID_END] != self._primary_kid

    def unseal(self, token: str, now: float) -> tuple[bytes, bool]:
        """Open a token sealed by this sealer's purpose and cookie name.

        Returns the plaintext and whether it was sealed under the newest key (when not,
        the caller re-seals it). Raises :class:`BadToken` with the reason otherwise.

        A browser sends the same cookie until it changes, so the last
        :data:`OPENED_CACHE_SIZE` tokens that opened are remembered with their plaintext:
        decryption is a pure function of the key ring and the token, and a token enters
        the memory only after its tag verified. The hour is checked on every call.
        """
        opened = self._opened.get(token)
        if opened is not None:
            plaintext, hour, newest = opened
            self._check_hour(hour, now)
            return plaintext, newest
        if len(token) > MAX_TOKEN_CHARS:
            raise BadToken(OVERSIZED)
        raw = b64decode(token)
        if len(raw) < _MIN_BYTES:
            raise BadToken(MALFORMED)
        header = raw[:_HEADER]
        opener = self._openers.get(header)
        if opener is None:
            opener = self._opener(header, now)
        else:
            self._check_hour(opener[2], now)
        aead, aad, hour, newest = opener
        try:
            plaintext = aead.decrypt(raw[_HEADER:_BODY], raw[_BODY:], aad)
        except InvalidTag:
            raise BadToken(TAMPERED) from None
        if len(self._opened) >= OPENED_CACHE_SIZE:
            self._opened.clear()
        self._opened[token] = (plaintext, hour, newest)
        return plaintext, newest
