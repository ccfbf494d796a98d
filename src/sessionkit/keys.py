"""Secret keys: generation, validation, key ids and one derived subkey per purpose.

A key is 32 random bytes written as base64url. Keys are given newest first; only the
first one seals. Each key has a public 4-byte *key id* (derived from the key, revealing
nothing about it) that a token carries so the right key is found with one look-up.
Every use of a key (the session cookie, the visitor cookie, ...) gets its own subkey
through HKDF-SHA256 with a distinct ``info`` string, so no two purposes share key material.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import ConfigurationError

__all__ = ["KEY_BYTES", "KEY_ID_BYTES", "KeyRing", "generate_key"]

#: Bytes of randomness in a generated key, and the least a configured key may hold.
KEY_BYTES = 32
#: Length of the public key id carried in every token.
KEY_ID_BYTES = 4
#: A decoded key with fewer distinct byte values than this is a pattern, not a random key.
_MIN_DISTINCT_BYTES = 16
_INFO_PREFIX = b"sessionkit/v1/"
_HOW_TO_GENERATE = "generate one with `python -m sessionkit keygen` or sessionkit.generate_key()"


def generate_key() -> str:
    """Return a new secret key: 32 bytes from the OS CSPRNG, base64url without padding."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).rstrip(b"=").decode("ascii")


def _hkdf(master: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(master)


def decode_key(text: str) -> bytes:
    """Decode and check one key; raise :class:`ConfigurationError` naming the fix."""
    if not isinstance(text, str):
        raise ConfigurationError(f"a secret key must be a str, not {type(text).__name__}")
    stripped = text.strip()
    try:
        raw = base64.b64decode(stripped + "=" * (-len(stripped) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"a secret key is not base64url text of {KEY_BYTES} random bytes; {_HOW_TO_GENERATE}"
        ) from None
    if len(raw) < KEY_BYTES:
        raise ConfigurationError(
            f"a secret key holds {len(raw)} bytes, fewer than the {KEY_BYTES} required; "
            f"{_HOW_TO_GENERATE}"
        )
    if (
        len(set(raw)) < _MIN_DISTINCT_BYTES
        or stripped.rstrip("=").lower() == stripped.rstrip("=")
        or stripped.rstrip("=").upper() == stripped.rstrip("=")
    ):
        raise ConfigurationError(
            f"a secret key looks like a pattern or a passphrase, not random bytes "
            f"(a random key mixes upper and lower case); {_HOW_TO_GENERATE}"
        )
    return raw


class KeyRing:
    """An ordered set of secret keys, newest first, with per-purpose subkeys.

    The key material never appears in ``repr``; only the public key ids do.
    """

    __slots__ = ("_masters", "key_ids")

    def __init__(self, keys: Iterable[str]) -> None:
        if isinstance(keys, str):
            raise ConfigurationError(
                "secret_keys takes a list of keys, newest first; wrap a single key in a list"
            )
        masters = [decode_key(key) for key in keys]
        if not masters:
            raise ConfigurationError(f"no secret key is configured; {_HOW_TO_GENERATE}")
        ids = [_hkdf(m, _INFO_PREFIX + b"key-id", KEY_ID_BYTES) for m in masters]
        if len(set(ids)) != len(ids):
            raise ConfigurationError("the same secret key is listed twice in secret_keys")
        self._masters = tuple(masters)
        #: Public key ids, newest first; ``key_ids[0]`` is the one that seals.
        self.key_ids: tuple[bytes, ...] = tuple(ids)

    def subkeys(self, purpose: str) -> dict[bytes, bytes]:
        """Return ``{key id: 32-byte subkey}`` for one purpose, newest key first."""
        info = _INFO_PREFIX + purpose.encode("ascii")
        return {kid: _hkdf(m, info, 32) for kid, m in zip(self.key_ids, self._masters, strict=True)}

    def __len__(self) -> int:
        return len(self._masters)

    def __repr__(self) -> str:
        return f"KeyRing(key_ids=[{', '.join(k.hex() for k in self.key_ids)}])"
