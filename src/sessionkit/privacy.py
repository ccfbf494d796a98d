"""The sensitive-data guard: passwords and card numbers never go into a session.

A session cookie or store record is the wrong place for a password, a PIN, a card
verification code or a payment card number: the guard refuses such writes by default.
A key is sensitive when one of its words (split at ``_``, ``-``, ``.``, spaces and
camelCase humps), or the whole key with separators removed, is a sensitive word. A value
is sensitive when it is, or contains, a run of 13 to 19 digits (spaces or dashes allowed
between them, no letter or digit right before or after) that starts like a payment card
(3, 4, 5 or 6, or the 2221-2720 range) and passes the Luhn check, or when it matches an
extra configured pattern. Values are checked all the way down through lists and dicts.
Millisecond timestamps, phone numbers, hex digests and most order numbers pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .errors import ConfigurationError, SensitiveData

__all__ = ["DEFAULT_SENSITIVE_WORDS", "SensitiveData", "SensitiveDataGuard"]

#: Words that make a session key sensitive.
DEFAULT_SENSITIVE_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "pin",
        "cvv",
        "cvv2",
        "cvc",
        "cvc2",
        "ssn",
        "cardnumber",
        "creditcard",
    }
)

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SEPARATORS = re.compile(r"[\W_]+")
# A run of digits inside a word (a hex digest, a base64 token) is not a card number.
_CARD_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z])")
_MAX_DEPTH = 32


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _looks_like_a_card(digits: str) -> bool:
    first = digits[0]
    if first not in "3456" and not (first == "2" and 2221 <= int(digits[:4]) <= 2720):
        return False
    return _luhn(digits)


def _has_card_number(text: str) -> bool:
    return any(
        _looks_like_a_card(match.group().replace(" ", "").replace("-", ""))
        for match in _CARD_CANDIDATE.finditer(text)
    )


class SensitiveDataGuard:
    """Refuse sensitive keys and values (built by :class:`SessionKit` from its settings).

    ``allowed_keys`` lists exact keys that pass, value and all, even though a word of
    theirs is sensitive (``"csrf_secret"``, say); ``patterns`` adds regular expressions a
    string value must not match; ``enabled=False`` turns the guard off.
    """

    __slots__ = ("_allowed", "_enabled", "_known", "_patterns", "_words")

    def __init__(
        self,
        *,
        enabled: bool = True,
        allowed_keys: Iterable[str] = (),
        patterns: Iterable[str | re.Pattern[str]] = (),
        words: Iterable[str] = DEFAULT_SENSITIVE_WORDS,
    ) -> None:
        if isinstance(allowed_keys, str) or isinstance(patterns, str):
            raise ConfigurationError(
                "sensitive_keys_allowed and sensitive_patterns take lists, not a single string"
            )
        self._enabled = enabled
        self._allowed = frozenset(allowed_keys)
        try:
            self._patterns = tuple(re.compile(p) for p in patterns)
        except re.error as exc:
            raise ConfigurationError(f"a sensitive_patterns entry is not a regex: {exc}") from None
        self._words = frozenset(w.lower() for w in words)
        self._known: dict[str, bool] = {}

    def key_is_sensitive(self, key: str) -> bool:
        """Whether ``key`` names something that must not be stored in a session."""
        known = self._known.get(key)
        if known is None:
            words = {w.lower() for w in _WORDS.findall(key)}
            words.add(_SEPARATORS.sub("", key).lower())
            known = key not in self._allowed and not self._words.isdisjoint(words)
            if len(self._known) < 4096:
                self._known[key] = known
        return known

    def value_is_sensitive(self, value: Any, depth: int = 0) -> bool:
        """Whether ``value`` holds a card number or matches a configured pattern."""
        if isinstance(value, str):
            return (len(value) >= 13 and _has_card_number(value)) or any(
                p.search(value) for p in self._patterns
            )
        if isinstance(value, int) and not isinstance(value, bool):
            return value >= 10**12 and _has_card_number(str(value))
        if depth >= _MAX_DEPTH:
            return False
        if isinstance(value, dict):
            return any(
                self.key_is_sensitive(k) or self.value_is_sensitive(v, depth + 1)
                for k, v in value.items()
                if isinstance(k, str)
            )
        if isinstance(value, list | tuple):
            return any(self.value_is_sensitive(v, depth + 1) for v in value)
        return False

    def check(self, key: str, value: Any) -> None:
        """Raise :class:`SensitiveData` if storing ``value`` under ``key`` is refused.

        The message names the key and the fix, never the value.
        """
        if not self._enabled or key in self._allowed:
            return
        if self.key_is_sensitive(key):
            raise SensitiveData(
                f"session[{key!r}]: a key like this holds a password, PIN or card code, "
                "which must never be stored in a session. Store a flag or an id instead, or "
                "list the key in SessionKit(sensitive_keys_allowed=[...]) if it is not one"
            )
        if self.value_is_sensitive(value):
            raise SensitiveData(
                f"session[{key!r}]: the value looks like a payment card number (or matches "
                "sensitive_patterns), which must never be stored in a session. Store a "
                "token from the payment provider instead, or pass "
                "SessionKit(sensitive_data=False) to turn the guard off"
            )
