"""Hand-made mutants: the changes a reviewer worries about, each one exact text replaced.

``scripts/mutation`` runs these beside the generated mutants of the same module and counts
them in its score. Each ``old`` text must occur exactly once in the module, so a change to
the code that moves it fails the run until this list is updated. The hand-made mutants
of one module alone: ``./scripts/mutation exchange --match hand-made``.
"""

HANDMADE = [
    (
        "gate",
        "the redirect path encoder lets ?, # and % through",
        """_PATH_SAFE = "/:@!$&'()*+,;=-._~\"""",
        """_PATH_SAFE = "/:@!$&'()*+,;=-._~?#%\"""",
    ),
    (
        "seal",
        "no hour-window check when the cipher of the header is cached",
        "        else:\n            self._check_hour(opener[2], now)\n",
        "",
    ),
    (
        "seal",
        "one more accepted last character in canonical base64",
        'frozenset(b"AQgw")',
        'frozenset(b"AQgwB")',
    ),
    (
        "cookies",
        "cookie names stripped of all Unicode whitespace",
        "while before >= 0 and header[before] in _OWS:",
        "while before >= 0 and header[before].isspace():",
    ),
    (
        "cookies",
        "CR, LF and NUL allowed in a configured Path or Domain",
        r'_ATTRIBUTE_VALUE = re.compile(r"[\x20-\x3a\x3c-\x7e]+")',
        r'_ATTRIBUTE_VALUE = re.compile(r"[\x00-\x3a\x3c-\x7e]+")',
    ),
    (
        "visitor",
        "the memo of verified values never emptied",
        "            self._verified.clear()\n",
        "            pass\n",
    ),
    (
        "privacy",
        "13-digit card numbers pass",
        "CARD_MIN_DIGITS = 13",
        "CARD_MIN_DIGITS = 14",
    ),
    (
        "privacy",
        "19-digit card numbers pass",
        "CARD_MAX_DIGITS = 19",
        "CARD_MAX_DIGITS = 18",
    ),
    (
        "privacy",
        "Mastercard 2720 passes",
        "range(2221, 2721)",
        "range(2221, 2720)",
    ),
    (
        "privacy",
        "a passphrase key passes",
        '        "passphrase",\n',
        "",
    ),
    (
        "privacy",
        "nested values are checked one level deep only",
        "                        pending.append(inner)\n",
        "                        pending.append(inner if isinstance(inner, str) else None)\n",
    ),
    (
        "session",
        "the idle bound is exclusive",
        "if now - seen > timeouts.idle_of(lifetime):",
        "if now - seen >= timeouts.idle_of(lifetime):",
    ),
    (
        "session",
        "the kit's idle bound is exclusive",
        "if now - seen > timeouts.idle:",
        "if now - seen >= timeouts.idle:",
    ),
    (
        "session",
        "the absolute bound is exclusive",
        "if now > timeouts.end_of(lifetime, created):",
        "if now >= timeouts.end_of(lifetime, created):",
    ),
    (
        "session",
        "the kit's absolute bound is exclusive",
        "if now > created + timeouts.absolute:",
        "if now >= created + timeouts.absolute:",
    ),
    (
        "session",
        "the clock skew bound is exclusive",
        "if seen > now + timeouts.max_skew:",
        "if seen >= now + timeouts.max_skew:",
    ),
    (
        "session",
        "integer user ids do not reopen",
        " and type(user) is not int)",
        ")",
    ),
    (
        "session",
        "an authentic payload of the wrong shape opens",
        "        or (data is not None and type(data) is not dict)\n",
        "",
    ),
    (
        "exchange",
        "two visitor cookies accepted without a duplicate event",
        "                kit.report(DUPLICATE, vspec.name, self._info())\n",
        "                pass\n",
    ),
    (
        "exchange",
        "opt_out() deletes an existing opt-out cookie",
        "        self._opt_out_delete = False\n",
        "        self._opt_out_delete = self._opt_out_seen\n",
    ),
    (
        "exchange",
        "the app's Cache-Control kept beside no-store when a cookie is set",
        "return HeaderChanges(add, bool(cookies) and bool(cache_control))",
        "return HeaderChanges(add, False)",
    ),
]
