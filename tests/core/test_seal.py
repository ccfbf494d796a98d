from __future__ import annotations

import base64
import sys
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import assume, given
from hypothesis import strategies as st

from sessionkit import generate_key
from sessionkit import seal as seal_module
from sessionkit.errors import BadToken
from sessionkit.keys import KeyRing
from sessionkit.seal import (
    EPOCH_SECONDS,
    MAX_TOKEN_CHARS,
    OPENED_CACHE_SIZE,
    Sealer,
    b64decode,
    b64encode,
)

RING = KeyRing([generate_key()])
LIMITS = {"max_age": 43200, "max_skew": 60}
NAME = "__Host-session"
SEALER = Sealer(RING, "session", NAME, **LIMITS)
NOW = 1_800_000_000.0


def sealer_for(name: str = NAME, ring: KeyRing = RING, purpose: str = "session") -> Sealer:
    return Sealer(ring, purpose, name, **LIMITS)


def seal(plaintext: bytes, name: str = NAME, sealer: Sealer | None = None, now: float = NOW) -> str:
    return (sealer or sealer_for(name)).seal(plaintext, now)


def test_layout_is_version_key_id_epoch_nonce_then_ciphertext_and_tag() -> None:
    raw = b64decode(seal(b"hello"))
    assert raw[0] == 1
    assert raw[1:5] == RING.key_ids[0]
    assert int.from_bytes(raw[5:9], "big") == int(NOW) // 3600
    assert len(raw) == 1 + 4 + 4 + 12 + len(b"hello") + 16
    assert b"hello" not in raw


def test_every_seal_uses_a_fresh_nonce() -> None:
    tokens = {seal(b"same") for _ in range(200)}
    assert len(tokens) == 200
    assert len({b64decode(t)[9:21] for t in tokens}) == 200


@given(st.binary(max_size=2000), st.text(min_size=1, max_size=40))
def test_round_trip(plaintext: bytes, name: str) -> None:
    assert sealer_for(name).unseal(seal(plaintext, name), NOW) == (plaintext, True)


def _rejects(token: str, name: str = NAME, sealer: Sealer | None = None, now: float = NOW) -> str:
    with pytest.raises(BadToken) as caught:
        (sealer or sealer_for(name)).unseal(token, now)
    return caught.value.reason


@given(st.binary(max_size=300), st.data())
def test_any_bit_flip_is_rejected(plaintext: bytes, data: st.DataObject) -> None:
    raw = bytearray(b64decode(seal(plaintext)))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    assert _rejects(b64encode(bytes(raw))) in {
        "malformed",
        "unknown_key",
        "tampered",
        "expired_absolute",
        "from_the_future",
    }


@given(st.binary(max_size=300), st.data())
def test_truncation_and_extension_are_rejected(plaintext: bytes, data: st.DataObject) -> None:
    token = seal(plaintext)
    cut = data.draw(st.integers(0, len(token) - 1))
    _rejects(token[:cut])
    extra = data.draw(st.text(alphabet="AZaz09-_=.~ ", min_size=1, max_size=8))
    _rejects(token + extra)


@given(st.binary(max_size=300), st.data())
def test_any_character_change_is_rejected(plaintext: bytes, data: st.DataObject) -> None:
    """Base64 decoding is strict: no second spelling of a token opens it."""
    token = seal(plaintext)
    at = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.characters(codec="utf-8").filter(lambda c: c != token[at]))
    _rejects(token[:at] + char + token[at + 1 :])


def test_a_value_moved_to_another_cookie_name_is_rejected() -> None:
    token = seal(b"x")
    assert _rejects(token, "__Host-visitor") == "tampered"
    assert _rejects(token, "__host-session") == "tampered"


def test_another_key_or_purpose_is_rejected_with_one_attempt() -> None:
    token = seal(b"x")
    assert _rejects(token, sealer=sealer_for(ring=KeyRing([generate_key()]))) == "unknown_key"
    assert _rejects(token, sealer=sealer_for(purpose="visitor")) == "tampered"


def test_older_key_opens_and_says_so_removed_key_does_not() -> None:
    old, new = generate_key(), generate_key()
    token = seal(b"x", sealer=sealer_for(ring=KeyRing([old])))
    assert sealer_for(ring=KeyRing([new, old])).unseal(token, NOW) == (b"x", False)
    assert _rejects(token, sealer=sealer_for(ring=KeyRing([new]))) == "unknown_key"


def test_the_key_id_is_read_without_opening() -> None:
    old, new = generate_key(), generate_key()
    rotated = sealer_for(ring=KeyRing([new, old]))
    under_old = seal(b"x", sealer=sealer_for(ring=KeyRing([old])))
    under_new = seal(b"x", sealer=rotated)
    assert rotated.under_old_key(under_old)
    assert not rotated.under_old_key(under_new)
    for garbage in ("", "AQAB", "é" * 20, "!" * 20):
        assert rotated.under_old_key(garbage) is False, "not readable: opening refuses it"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "malformed"),
        ("A", "malformed"),
        ("====", "malformed"),
        ("AQ", "malformed"),
        ("AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "malformed"),
        ("é" * 50, "malformed"),
        ("\x00" * 50, "malformed"),
        ("A" * (MAX_TOKEN_CHARS + 1), "oversized"),
    ],
)
def test_garbage_gets_a_reason_never_another_exception(token: str, reason: str) -> None:
    assert _rejects(token) == reason


@given(st.text(max_size=200))
def test_unseal_of_any_text_raises_only_bad_token(text: str) -> None:
    with pytest.raises(BadToken):
        SEALER.unseal(text, NOW)


def test_tokens_outside_their_possible_lifetime_are_refused_before_decryption() -> None:
    token = seal(b"x")
    assert SEALER.unseal(token, NOW + 43200) == (b"x", True)
    assert _rejects(token, now=NOW + 43200 + EPOCH_SECONDS) == "expired_absolute"
    assert _rejects(token, now=NOW - EPOCH_SECONDS - 61) == "from_the_future"


def test_each_hour_seals_under_its_own_subkey() -> None:
    early, late = seal(b"x"), seal(b"x", now=NOW + EPOCH_SECONDS)
    raw = bytearray(b64decode(late))
    raw[5:9] = b64decode(early)[5:9]
    assert _rejects(b64encode(bytes(raw)), now=NOW + EPOCH_SECONDS) == "tampered"
    assert SEALER.unseal(late, NOW + EPOCH_SECONDS) == (b"x", True)


def test_the_subkey_cache_stays_bounded() -> None:
    sealer = sealer_for()
    for hour in range(200):
        sealer.unseal(seal(b"x", sealer=sealer, now=NOW + hour * 3600), NOW + hour * 3600)
    assert len(sealer._openers) <= 15


def test_b64_spelling_is_canonical() -> None:
    assert b64encode(b"\xff") == "_w"
    assert b64decode("_w") == b"\xff"
    for other in ("_x", "_w=", "_w==", "/w", "_ w"):
        with pytest.raises(BadToken):
            b64decode(other)


def test_a_remembered_token_still_expires() -> None:
    sealer = sealer_for()
    token = seal(b"x", sealer=sealer)
    assert sealer.unseal(token, NOW) == (b"x", True)
    assert sealer.unseal(token, NOW + 60) == (b"x", True)
    assert _rejects(token, sealer=sealer, now=NOW + 43200 + EPOCH_SECONDS) == "expired_absolute"


def test_the_memo_of_opened_tokens_stays_bounded() -> None:
    sealer = sealer_for()
    for _ in range(OPENED_CACHE_SIZE + 10):
        sealer.unseal(seal(b"x", sealer=sealer), NOW)
    assert len(sealer._opened) <= OPENED_CACHE_SIZE


# -- The hour window holds whichever way a token is opened -------------------------------

HOUR_START = int(NOW) // EPOCH_SECONDS * EPOCH_SECONDS
LAST_VALID = HOUR_START + EPOCH_SECONDS + LIMITS["max_age"] - 0.5
FIRST_EXPIRED = HOUR_START + EPOCH_SECONDS + LIMITS["max_age"]
EARLIEST_VALID = HOUR_START - LIMITS["max_skew"]
LAST_FROM_THE_FUTURE = EARLIEST_VALID - 0.5
#: fresh: nothing cached; opener cached: another token of the same key and hour opened
#: first; memoised: this very token opened first.
PATHS = ["fresh", "opener cached", "memoised"]


def opened_before(path: str, token: str) -> Sealer:
    """A sealer that has opened, at ``NOW``, what ``path`` says."""
    sealer = sealer_for()
    sibling = seal(b"sibling")
    assert b64decode(sibling)[:9] == b64decode(token)[:9], "same version, key id and hour"
    if path == "opener cached":
        sealer.unseal(sibling, NOW)
    elif path == "memoised":
        sealer.unseal(token, NOW)
    return sealer


@pytest.mark.parametrize("path", PATHS)
def test_a_token_is_refused_once_its_hour_is_past_max_age(path: str) -> None:
    token = seal(b"x")
    assert opened_before(path, token).unseal(token, LAST_VALID) == (b"x", True)
    assert _rejects(token, sealer=opened_before(path, token), now=FIRST_EXPIRED) == (
        "expired_absolute"
    )


@pytest.mark.parametrize("path", PATHS)
def test_a_token_from_beyond_max_skew_is_refused(path: str) -> None:
    """A clock stepped back makes a cached token one from the future: it is refused."""
    token = seal(b"x")
    assert opened_before(path, token).unseal(token, EARLIEST_VALID) == (b"x", True)
    assert _rejects(token, sealer=opened_before(path, token), now=LAST_FROM_THE_FUTURE) == (
        "from_the_future"
    )


# -- One spelling per byte string ---------------------------------------------------------

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.mark.parametrize(("leftover", "size", "spellings"), [(2, 1, 4), (3, 2, 16)])
@pytest.mark.parametrize("whole", ["", "AAAA", "_-_-"])
def test_a_last_character_with_unused_bits_set_is_refused(
    leftover: int, size: int, spellings: int, whole: str
) -> None:
    """After 2 leftover characters 4 bits are unused, after 3 leftover characters 2."""
    canonical = {
        base64.urlsafe_b64encode(bytes([0] * (size - 1) + [b])).decode()[leftover - 1]
        for b in range(256)
    }
    assert len(canonical) == spellings
    head = whole + "A" * (leftover - 1)
    accepted, reasons = set(), set()
    for char in ALPHABET:
        try:
            b64decode(head + char)
        except BadToken as exc:
            reasons.add(exc.reason)
        else:
            accepted.add(char)
    assert accepted == canonical
    assert reasons == {"malformed"}


@given(st.text(alphabet=ALPHABET, max_size=24))
def test_text_that_decodes_is_the_one_spelling_of_its_bytes(text: str) -> None:
    try:
        raw = b64decode(text)
    except BadToken:
        return
    assert b64encode(raw) == text


@given(st.binary(max_size=64))
def test_bytes_round_trip_through_their_spelling(raw: bytes) -> None:
    assert b64decode(b64encode(raw)) == raw


DECODERS = [seal_module._decode_checked]
if sys.version_info >= (3, 11):
    DECODERS.append(seal_module._decode_strict)


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize("bad", ["!", "+", "/", "=", " ", "\n", ".", "\x00", "\x7f"])
def test_a_foreign_byte_is_refused_even_where_the_length_fits(
    decode: Callable[[bytes, bytes], bytes], bad: str
) -> None:
    """Four foreign bytes leave a whole group behind: a lenient decoder skipping them
    would decode ``AAAA`` and let the token through."""
    for text in (f"AAAA{bad * 4}", f"{bad * 4}AAAA", f"AA{bad * 4}AA"):
        with pytest.raises(BadToken):
            decode(text.encode(), b"")
        with pytest.raises(BadToken):
            b64decode(text)


@pytest.mark.parametrize("decode", DECODERS)
@given(raw=st.binary(max_size=48))
def test_each_decoder_reads_what_b64encode_writes(
    decode: Callable[[bytes, bytes], bytes], raw: bytes
) -> None:
    text = b64encode(raw).encode()
    assert decode(text, b"=="[: -len(text) % 4]) == raw


@given(st.text(alphabet=ALPHABET + "!+/= .", max_size=24))
def test_the_decoders_agree(text: str) -> None:
    """The faster decoder of Python 3.11+ and the one of 3.10 give the same answers."""
    data, padding = text.encode(), b"=="[: -len(text) % 4]
    tail = len(data) % 4
    assume(tail != 1 and (not tail or data[-1] in seal_module._CANONICAL_LAST[tail]))
    answers = []
    for decode in DECODERS:
        try:
            answers.append(decode(data, padding))
        except (BadToken, ValueError):
            answers.append(None)
    assert len(set(answers)) == 1, (text, answers)


# -- The format as documented, the cookie size cap, the caches' bounds --------------------


def test_a_token_built_from_the_documented_format_opens() -> None:
    """docs/token-format.md, independently: HKDF-SHA256 of the purpose key per hour."""
    kid = RING.key_ids[0]
    hour = int(NOW) // 3600
    info = b"sessionkit/v1/epoch/" + hour.to_bytes(4, "big")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
        RING.subkeys("session")[kid]
    )
    header = b"\x01" + kid + hour.to_bytes(4, "big")
    nonce = bytes(range(12))
    sealed = AESGCM(key).encrypt(nonce, b"documented", header + NAME.encode())
    token = base64.urlsafe_b64encode(header + nonce + sealed).rstrip(b"=").decode()
    assert sealer_for().unseal(token, NOW) == (b"documented", True)
    # ... and a token the sealer makes opens with the same derivation.
    raw = b64decode(seal(b"mine"))
    assert AESGCM(key).decrypt(raw[9:21], raw[21:], raw[:9] + NAME.encode()) == b"mine"


def test_another_version_byte_is_malformed_before_any_decryption() -> None:
    raw = bytearray(b64decode(seal(b"x")))
    raw[0] = 2
    assert _rejects(b64encode(bytes(raw))) == "malformed"


def test_a_cookie_of_4096_characters_is_read_one_of_4097_is_oversized() -> None:
    """Browsers keep a cookie up to 4096 bytes: nothing longer is decoded."""
    assert _rejects("A" * 4096) == "malformed"
    assert _rejects("A" * 4097) == "oversized"
    assert _rejects("A" * 4100) == "oversized"


@pytest.mark.parametrize("now", [0.0, 1.0, 3600.0, 7199.0, 2 * 3600.0 + 5])
def test_tokens_of_the_first_hours_after_1970_open(now: float) -> None:
    sealer = sealer_for()
    token = sealer.seal(b"early", now)
    assert b64decode(token)[5:9] == (int(now) // 3600).to_bytes(4, "big")
    assert sealer.unseal(token, now) == (b"early", True)


def test_every_hour_a_valid_token_can_have_stays_in_the_subkey_cache() -> None:
    """At one instant, one key: each hour from max_age ago to max_skew ahead is kept."""
    limits = {"max_age": 43200, "max_skew": 7200}
    sealer = Sealer(RING, "session", NAME, **limits)
    oldest = (int(NOW) - limits["max_age"]) // 3600
    newest = (int(NOW) + limits["max_skew"]) // 3600
    maker = Sealer(RING, "session", NAME, **limits)
    for hour in range(oldest, newest + 1):
        token = maker.seal(b"x", hour * 3600.0)
        assert sealer.unseal(token, NOW) == (b"x", True)
    assert len(sealer._openers) == newest - oldest + 1 == 15


def test_the_subkey_cache_never_exceeds_its_bound() -> None:
    sealer = sealer_for()
    largest = 0
    for hour in range(60):
        sealer.unseal(seal(b"x", sealer=sealer, now=NOW + hour * 3600), NOW + hour * 3600)
        largest = max(largest, len(sealer._openers))
    # one key, hours from 43260 s back to now, and room for the hour turning over
    assert largest == 43260 // 3600 + 3


def test_the_memo_holds_1024_opened_tokens_then_starts_over() -> None:
    sealer = sealer_for()
    for _ in range(1024):
        sealer.unseal(seal(b"x", sealer=sealer), NOW)
    assert len(sealer._opened) == 1024 == OPENED_CACHE_SIZE
    sealer.unseal(seal(b"x", sealer=sealer), NOW)
    assert len(sealer._opened) == 1
