"""Secret keys: generation, validation, key ids and one derived subkey per purpose.

A generated key is 32 random bytes written as base64url. A configured key may be any
random key of at least 256 bits written as text: hex (read first: an even number of hex
digits, either case), standard base64 or base64url, padded or not. Its strength is judged
by its alphabet and length (hex carries 4 bits a character, base64 6), so 64 hex digits
or 43 base64 characters are the least accepted. Text that a random key of its length
produces with odds below about one in two billion is refused as a pattern (few distinct
bytes, a repeated run, a counting sequence) or a passphrase (base64 text whose letters
are all one case, or text with spaces).

Keys are given newest first; only the first one seals. Each key has a public 4-byte
*key id* (derived from the key, revealing nothing about it) that a token carries so the
right key is found with one look-up. Every use of a key (the session cookie, the visitor
cookie, ...) gets its own subkey through HKDF-SHA256 with a distinct ``info`` string, so
no two purposes share key material.
"""

from __future__ import annotations

import base64
import itertools
import os
import string
from collections.abc import Iterable, Sequence

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
#: A run of this many bits seen twice in a key (or in the steps between its symbols) is a
#: repetition: a random 32-byte key shows one with odds below 2**-36.
_REPEAT_BITS = 48
_INFO_PREFIX = b"sessionkit/v1/"
_HOW_TO_GENERATE = "generate one with `python -m sessionkit keygen` or sessionkit.generate_key()"
_HOW_TO_WRITE_BYTES = (
    "if the bytes are a key's text, .decode() them; if they are raw random bytes, write "
    "them as text with base64.urlsafe_b64encode(raw).decode(); or make a new key with "
    "sessionkit.generate_key()"
)

_HEX_DIGITS = frozenset(string.hexdigits)
_BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_BASE64 = _BASE64URL[:62] + "+/"
_BASE64URL_SET = frozenset(_BASE64URL)
_BASE64_SET = frozenset(_BASE64)
_HEX_BITS = 4
_BASE64_BITS = 6
_MIN_HEX_DIGITS = KEY_BYTES * 8 // _HEX_BITS
_MIN_BASE64_CHARS = -(-KEY_BYTES * 8 // _BASE64_BITS)
_SIZE_NEEDED = (
    f"{KEY_BYTES} bytes ({KEY_BYTES * 8} bits) required: "
    f"{_MIN_HEX_DIGITS} hex digits or {_MIN_BASE64_CHARS} base64 characters"
)


def generate_key() -> str:
    """Return a new secret key: 32 bytes from the OS CSPRNG, base64url without padding."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).rstrip(b"=").decode("ascii")


def _hkdf(master: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(master)


def _refused(problem: str) -> ConfigurationError:
    return ConfigurationError(f"a secret key {problem}; {_HOW_TO_GENERATE}")


def _repeats(symbols: Sequence[int], modulus: int, window: int) -> bool:
    """Whether a run of ``window`` symbols occurs twice, in ``symbols`` or in their steps.

    The steps (each symbol minus the one before, modulo ``modulus``) of a counting
    sequence such as ``bytes(range(32))`` repeat even though its symbols do not.
    """
    steps = [(b - a) % modulus for a, b in itertools.pairwise(symbols)]
    for sequence in (list(symbols), steps):
        seen: set[tuple[int, ...]] = set()
        for start in range(len(sequence) - window + 1):
            run = tuple(sequence[start : start + window])
            if run in seen:
                return True
            seen.add(run)
    return False


def _read_text(text: str) -> tuple[bytes, str, list[int], int]:
    """Decode a key's text: ``(bytes, encoding name, symbol values, bits per symbol)``."""
    if len(text) % 2 == 0 and _HEX_DIGITS.issuperset(text):
        return bytes.fromhex(text), "hex", [int(c, 16) for c in text], _HEX_BITS
    if _HEX_DIGITS.issuperset(text):
        raise _refused(
            f"of {len(text)} hex digits has an odd number of them (a digit is missing or extra)"
        )
    if text[:2] in ("0x", "0X") and _HEX_DIGITS.issuperset(text[2:]):
        raise _refused("starts with 0x: write the hex digits alone")
    if any(c.isspace() for c in text):
        raise _refused("holds spaces or line breaks, so it reads like a passphrase, not a key")
    body = text.rstrip("=")
    padding = len(text) - len(body)
    if len(body) % 4 == 1 or (padding and (len(text) % 4 or padding != -len(body) % 4)):
        raise _refused("is not hex, base64 or base64url text (its length or padding is wrong)")
    if _BASE64URL_SET.issuperset(body):
        alphabet, altchars = _BASE64URL, b"-_"
    elif _BASE64_SET.issuperset(body):
        alphabet, altchars = _BASE64, b"+/"
    elif (_BASE64URL_SET | _BASE64_SET).issuperset(body):
        raise _refused("mixes the base64 (+/) and base64url (-_) alphabets")
    else:
        raise _refused("is not hex, base64 or base64url text")
    raw = base64.b64decode(body + "=" * (-len(body) % 4), altchars=altchars, validate=True)
    return raw, "base64", [alphabet.index(c) for c in body], _BASE64_BITS


def decode_key(text: str) -> bytes:
    """Decode and check one key's text; raise :class:`ConfigurationError` naming the fix.

    Surrounding whitespace is ignored. Keys from :func:`generate_key` decode as base64url.
    """
    if isinstance(text, bytes | bytearray | memoryview):
        raise ConfigurationError(
            f"a secret key must be text (str), not bytes: {_HOW_TO_WRITE_BYTES}"
        )
    if not isinstance(text, str):
        raise ConfigurationError(
            f"a secret key must be text (str), not {type(text).__name__}; {_HOW_TO_GENERATE}"
        )
    stripped = text.strip()
    if not stripped:
        raise _refused("is empty")
    raw, encoding, symbols, bits = _read_text(stripped)
    if len(raw) < KEY_BYTES:
        raise _refused(
            f"written as {encoding} holds {len(raw)} bytes ({len(raw) * 8} bits), fewer than "
            f"the {_SIZE_NEEDED}"
        )
    if encoding == "base64" and (stripped.lower() == stripped or stripped.upper() == stripped):
        raise _refused(
            "reads like a passphrase, not random bytes: its letters are all one case, "
            "and random base64 text mixes both"
        )
    distinct = len(set(raw))
    if distinct < _MIN_DISTINCT_BYTES:
        raise _refused(
            f"is a pattern, not random bytes: it uses only {distinct} of the 256 byte values"
        )
    window = -(-_REPEAT_BITS // bits)
    if _repeats(raw, 256, _REPEAT_BITS // 8) or _repeats(symbols, 1 << bits, window):
        raise _refused(
            "is a pattern, not random bytes: a run of it repeats, or it counts up or down"
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
        if isinstance(keys, bytes | bytearray | memoryview):
            raise ConfigurationError(
                "secret_keys takes a list of keys as text, newest first, not bytes: "
                + _HOW_TO_WRITE_BYTES
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
