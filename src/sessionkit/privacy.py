"""The sensitive-data guard: passwords and card numbers never go into a session.

A session cookie or store record is the wrong place for a password, a PIN, a card
verification code or a payment card number: the guard refuses such writes by default.
Keys and string values are read after Unicode NFKC normalisation, so full-width letters
and digits, ligatures and compatibility spaces count as their plain forms, and a decimal
digit of any script counts as its value.

A key is sensitive when one of its words (split at ``_``, ``-``, ``.``, spaces and
camelCase humps), or the whole key with separators removed, is a sensitive word.

A value is sensitive when it holds a payment card number or matches an extra configured
pattern. A card number is 13 to 19 digits that start like a payment card (3, 4, 5 or 6,
or Mastercard's 2221-2720) and pass the Luhn check. In text it is written whole or in
groups joined by one space, dash or dot, and any run of whole groups counts (so
``4111111111111111.0`` holds one), except that a lone dot is a decimal point and the
digits after it are a fraction (``51.507350951234`` and ``0.4111111111111111`` pass).
Digits that touch a letter or another digit are part of a word, such as a hex digest or
a token, and never count. An int, or a float with no fraction, counts by its digits.
Lists and dicts are checked all the way down, however deep, without recursion.
Millisecond timestamps, phone numbers, hex digests, base64 tokens and most order numbers
pass.
"""

from __future__ import annotations

import re
import unicodedata
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
        "passcode",
        "pwd",
        "secret",
        "pin",
        "pincode",
        "cvv",
        "cvv2",
        "cvc",
        "cvc2",
        "securitycode",
        "ssn",
        "cardnumber",
        "creditcard",
    }
)

#: Fewest and most digits in a payment card number (ISO/IEC 7812).
CARD_MIN_DIGITS = 13
CARD_MAX_DIGITS = 19
#: How many keys the guard remembers its verdict on.
KNOWN_KEYS_CACHE_SIZE = 4096

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SEPARATORS = re.compile(r"[\W_]+")
# Digit groups joined by single separators, not touching a letter or digit: a run of
# digits inside a word (a hex digest, a base64 token) is not a card number.
_DIGIT_GROUPS = re.compile(r"(?<![0-9A-Za-z])[0-9]+(?:[ .-][0-9]+)*(?![0-9A-Za-z])")
_GROUP_SEPARATOR = re.compile(r"[ .-]")
_ANY_DECIMAL_DIGIT = re.compile(r"\d")
_MASTERCARD_2_SERIES = range(2221, 2721)
_SMALLEST_CARD = 10 ** (CARD_MIN_DIGITS - 1)
_TOO_LARGE_FOR_A_CARD = 10**CARD_MAX_DIGITS


def _normalise(text: str) -> str:
    """NFKC, then every decimal digit as its ASCII digit; ASCII text is returned as is."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text)
    return _ANY_DECIMAL_DIGIT.sub(lambda m: str(unicodedata.decimal(m.group())), text)


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
    """Whether ASCII ``digits`` (13 to 19 of them) have a card's prefix and Luhn sum."""
    first = digits[0]
    if first not in "3456" and not (first == "2" and int(digits[:4]) in _MASTERCARD_2_SERIES):
        return False
    return _luhn(digits)


def _has_card_number(text: str) -> bool:
    """Whether normalised ``text`` holds a run of whole digit groups that is a card number."""
    for match in _DIGIT_GROUPS.finditer(text):
        run = match.group()
        if run.count(".") == 1:
            # A lone dot is a decimal point: the digits after it are a fraction.
            run = run.partition(".")[0]
        groups = _GROUP_SEPARATOR.split(run)
        for first in range(len(groups)):
            digits = ""
            # every group holds a digit, so no more than CARD_MAX_DIGITS groups can fit
            for group in groups[first : first + CARD_MAX_DIGITS]:
                digits += group
                if len(digits) > CARD_MAX_DIGITS:
                    break
                if len(digits) >= CARD_MIN_DIGITS and _looks_like_a_card(digits):
                    return True
    return False


def _number_is_a_card(number: int) -> bool:
    number = abs(number)
    return _SMALLEST_CARD <= number < _TOO_LARGE_FOR_A_CARD and _looks_like_a_card(str(number))


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
            text = _normalise(key)
            words = {w.lower() for w in _WORDS.findall(text)}
            words.add(_SEPARATORS.sub("", text).lower())
            known = key not in self._allowed and not self._words.isdisjoint(words)
            if len(self._known) < KNOWN_KEYS_CACHE_SIZE:
                self._known[key] = known
        return known

    def _text_is_sensitive(self, text: str) -> bool:
        normalised = _normalise(text)
        if len(normalised) >= CARD_MIN_DIGITS and _has_card_number(normalised):
            return True
        return any(
            p.search(text) or (normalised is not text and p.search(normalised))
            for p in self._patterns
        )

    def value_is_sensitive(self, value: Any) -> bool:
        """Whether ``value``, or anything inside it, holds a card number or a sensitive key.

        Strings are also matched against the configured patterns. Lists, tuples and dicts
        are walked with an explicit stack, so no nesting depth hides a value.
        """
        kind = type(value)
        if value is None or kind is bool:
            return False
        if kind is int:
            return _number_is_a_card(value)
        if kind is str:
            return self._text_is_sensitive(value)
        pending = [value]
        walked: set[int] = set()
        while pending:
            item = pending.pop()
            if isinstance(item, str):
                if self._text_is_sensitive(item):
                    return True
            elif isinstance(item, bool):
                continue
            elif isinstance(item, int):
                if _number_is_a_card(item):
                    return True
            elif isinstance(item, float):
                if item.is_integer() and _number_is_a_card(int(item)):
                    return True
            elif isinstance(item, dict | list | tuple):
                if id(item) in walked:
                    continue
                walked.add(id(item))
                if isinstance(item, dict):
                    for key, inner in item.items():
                        if isinstance(key, str) and self.key_is_sensitive(key):
                            return True
                        pending.append(inner)
                else:
                    pending.extend(item)
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
                f"session[{key!r}]: the value looks like a payment card number (or holds a "
                "password-like key, or matches sensitive_patterns), which must never be "
                "stored in a session. Store a token from the payment provider instead, or "
                "pass SessionKit(sensitive_data=False) to turn the guard off"
            )
