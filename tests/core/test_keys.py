from __future__ import annotations

import base64
import hashlib
import random
import secrets
from collections.abc import Callable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sessionkit import ConfigurationError, SessionKit, generate_key
from sessionkit.keys import KEY_BYTES, KeyRing, decode_key

Encode = Callable[[bytes], str]

ENCODINGS: dict[str, Encode] = {
    "hex": bytes.hex,
    "HEX": lambda raw: raw.hex().upper(),
    "base64": lambda raw: base64.b64encode(raw).decode(),
    "base64 unpadded": lambda raw: base64.b64encode(raw).decode().rstrip("="),
    "base64url": lambda raw: base64.urlsafe_b64encode(raw).decode(),
    "base64url unpadded": lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("="),
}
HEX_DIGITS = set("0123456789abcdefABCDEF")
# Fixed random keys, so the parametrised cases below are the same on every run.
PINNED_KEY = "GdAiA-7ZxzsFI30OV1St_umZxU9srxofMa7jtrG-Bbc"
PINNED_HEX = hashlib.sha256(b"a hex key").hexdigest()
PINNED_33 = hashlib.sha512(b"33 bytes").digest()[:33]


def random_bytes(seed: int, size: int) -> bytes:
    """Bytes as random as a key's: hypothesis picks the seed, not the bytes."""
    return random.Random(seed).randbytes(size)


def test_generated_key_is_32_random_bytes_in_base64url() -> None:
    key = generate_key()
    assert len(decode_key(key)) == KEY_BYTES
    assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len({generate_key() for _ in range(100)}) == 100


def test_key_ids_of_existing_keys_do_not_change() -> None:
    """A key's id and subkeys are pinned: re-reading a configured key must not move them."""
    key = PINNED_KEY
    ring = KeyRing([key])
    assert ring.key_ids[0].hex() == "cbefd02d"
    assert ring.subkeys("session")[ring.key_ids[0]].hex() == (
        "9bb4a1b153118e1e12b834d0e25eb2be184c0b4aaf106816ff4849526c5451ba"
    )
    raw = decode_key(key)
    for encode in ENCODINGS.values():
        assert KeyRing([encode(raw)]).key_ids == ring.key_ids


@given(st.integers(min_value=0, max_value=2**64), st.integers(KEY_BYTES, 96))
def test_random_keys_in_every_encoding_decode_to_their_bytes(seed: int, size: int) -> None:
    raw = random_bytes(seed, size)
    for name, encode in ENCODINGS.items():
        assert decode_key(encode(raw)) == raw, name
        assert decode_key(f" {encode(raw)}\n") == raw, name


@given(st.integers(min_value=0, max_value=2**64))
def test_generated_style_keys_decode_as_they_always_did(seed: int) -> None:
    key = base64.urlsafe_b64encode(random_bytes(seed, KEY_BYTES)).rstrip(b"=").decode()
    assert decode_key(key) == base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))


def test_one_case_hex_is_a_random_key() -> None:
    for key in (secrets.token_hex(32), secrets.token_hex(32).upper(), secrets.token_hex(48)):
        assert decode_key(key) == bytes.fromhex(key)
    SessionKit(secret_keys=[secrets.token_hex(32), secrets.token_urlsafe(32)])
    SessionKit(secret_keys=[base64.b64encode(secrets.token_bytes(32)).decode()])


@given(st.integers(min_value=0, max_value=2**64), st.integers(8, KEY_BYTES - 1))
def test_short_keys_are_refused_saying_their_real_size(seed: int, size: int) -> None:
    raw = random_bytes(seed, size)
    for name, encode in ENCODINGS.items():
        text = encode(raw)
        # a short base64 text can, rarely, be all hex digits and so read as hex
        assume(name.lower().startswith("hex") or not HEX_DIGITS.issuperset(text.rstrip("=")))
        reading = "hex" if name.lower() == "hex" else "base64"
        with pytest.raises(ConfigurationError) as caught:
            decode_key(text)
        message = str(caught.value)
        assert f"written as {reading} holds {size} bytes ({size * 8} bits)" in message, name
        assert "64 hex digits or 43 base64 characters" in message
        assert "python -m sessionkit keygen" in message


def test_a_128_bit_hex_key_is_reported_as_128_bits() -> None:
    with pytest.raises(ConfigurationError, match=r"hex holds 16 bytes \(128 bits\)"):
        decode_key(secrets.token_hex(16))


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("secret", "holds 4 bytes"),
        ("c2hvcnQ", "holds 5 bytes"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("correcthorsebatterystaplecorrecthorsebatter", "passphrase"),
        ("CORRECTHORSEBATTERYSTAPLECORRECTHORSEBATTER", "passphrase"),
        ("thequickbrownfoxjumpsoverthelazydogagainnow", "passphrase"),
        ("correct horse battery staple and more words", "passphrase"),
        (base64.urlsafe_b64encode(b"a" * 32).decode(), "uses only 1 of the 256 byte values"),
        (base64.urlsafe_b64encode(b"ab" * 32).decode(), "uses only 2 of the 256 byte values"),
        ("a" * 64, "uses only 1 of the 256 byte values"),
        (base64.urlsafe_b64encode(b"abcdefghijklmnopq" * 2).decode(), "a run of it repeats"),
        (base64.urlsafe_b64encode(bytes(range(32))).decode(), "counts up or down"),
        (bytes(range(100, 164)).hex(), "counts up or down"),
        ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq", "counts up or down"),
        ("!" * 43, "not hex, base64 or base64url"),
        (PINNED_KEY + "==", "length or padding"),
        (PINNED_KEY[:41], "length or padding"),
        ("0x" + PINNED_HEX, "starts with 0x"),
        (PINNED_HEX[:-1], "odd number"),
        ("-_" + base64.b64encode(PINNED_33).decode()[2:] + "+/", "mixes"),
    ],
)
def test_weak_or_malformed_keys_fail_at_start_up_naming_the_fix(key: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says) as caught:
        SessionKit(secret_keys=[key])
    assert "python -m sessionkit keygen" in str(caught.value)


@given(st.integers(min_value=0, max_value=2**64), st.integers(6, 16))
def test_a_repeated_run_in_a_random_key_is_a_pattern(seed: int, size: int) -> None:
    head = random_bytes(seed, KEY_BYTES)
    raw = head + head[:size]
    for name, encode in ENCODINGS.items():
        with pytest.raises(ConfigurationError, match="pattern"):
            decode_key(encode(raw))
        assert decode_key(encode(head)) == head, name


def test_bytes_get_a_hint_on_writing_them_as_text() -> None:
    raw = secrets.token_bytes(32)
    for given_key in (raw, bytearray(raw), generate_key().encode()):
        with pytest.raises(ConfigurationError, match="not bytes") as caught:
            SessionKit(secret_keys=[given_key])  # type: ignore[list-item]
        message = str(caught.value)
        assert "base64.urlsafe_b64encode(raw).decode()" in message
        assert "sessionkit.generate_key()" in message
        assert ".decode() them" in message
    with pytest.raises(ConfigurationError, match="not bytes"):
        KeyRing(raw)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not int"):
        KeyRing([12345])  # type: ignore[list-item]


@given(st.text(max_size=120))
def test_any_text_is_a_key_or_a_configuration_error(text: str) -> None:
    message = ""
    try:
        raw = decode_key(text)
    except ConfigurationError as exc:
        message = str(exc)
    if message:
        assert "python -m sessionkit keygen" in message
    else:
        assert len(raw) >= KEY_BYTES


def test_key_list_must_be_a_non_empty_list_without_repeats() -> None:
    key = generate_key()
    with pytest.raises(ConfigurationError, match="list of keys"):
        SessionKit(secret_keys=key)
    with pytest.raises(ConfigurationError, match="no secret key"):
        SessionKit(secret_keys=[])
    with pytest.raises(ConfigurationError, match="listed twice"):
        SessionKit(secret_keys=[key, key])
    with pytest.raises(ConfigurationError, match="listed twice"):
        SessionKit(secret_keys=[key, decode_key(key).hex()])


def test_keys_never_appear_in_repr() -> None:
    keys = [generate_key(), generate_key()]
    kit = SessionKit(secret_keys=keys)
    for text in (repr(kit), repr(kit.keys), str(kit)):
        for key in keys:
            assert key not in text
            assert decode_key(key).hex() not in text


def test_subkeys_differ_per_purpose_and_per_key() -> None:
    ring = KeyRing([generate_key(), generate_key()])
    session = ring.subkeys("session")
    visitor = ring.subkeys("visitor")
    assert list(session) == list(ring.key_ids)
    values = list(session.values()) + list(visitor.values())
    assert len(set(values)) == 4
    assert KeyRing([generate_key()]).key_ids != ring.key_ids[:1]


def test_from_env_reads_comma_separated_keys_newest_first() -> None:
    new, old = generate_key(), secrets.token_hex(32)
    kit = SessionKit.from_env({"SESSIONKIT_SECRET_KEYS": f" {new} , {old} ,"})
    assert kit.keys.key_ids == KeyRing([new, old]).key_ids
    with pytest.raises(ConfigurationError, match="SESSIONKIT_SECRET_KEYS is not set"):
        SessionKit.from_env({})


# -- The limits of the pattern checks, exactly -------------------------------------------
# Each hex key below is fixed: random filler with one planted feature.

#: 16 distinct byte values (the least a key may have), no repeated run.
SIXTEEN_DISTINCT = "c59e9e4bb747f447d780149b479e14f84bd7c5cfb71480849030309b9084846f"
#: 15 distinct byte values.
FIFTEEN_DISTINCT = "804790f84bd7b7d76fc51430cfcf47f4f4904bb7846f9bd7479bf8d74bcf80cf"
#: A run of 12 hex digits (48 bits) written twice at odd offsets: no 6 whole bytes repeat.
TWELVE_DIGITS_TWICE = "31227de669e128126a517b206a88c73cf1227de669e1230d18212cace820f025"
#: 5 bytes (40 bits) written twice: shorter than a pattern.
FIVE_BYTES_TWICE = "31bc57acf66b14126a517b206a88c73cfa9ec6f757acf66b14212cace820f025"
#: 7 bytes counting up by 10 twice, the second time through 0xff -> 0x04.
BYTES_COUNT_TWICE_WRAPPING = "310a141e28323c466a517b206a88c73cfa9ee6f0fa040e1822212cace820f025"
#: 13 hex digits counting up by one twice, the second time through f -> 0.
DIGITS_COUNT_TWICE_WRAPPING = "31b0123456789abc6a517b206a88c73cfa9ec6f789abcdef01234cace820f025"

#: 9 base64 characters counting up by one twice, the second time through "+/" to "A".
SYMBOLS_COUNT_TWICE_WRAPPING = "MbabcdefghiqUXsgaojHPPqexv56789+/ABsrOgg8CXw"


def test_sixteen_distinct_byte_values_are_enough_fifteen_are_not() -> None:
    assert decode_key(SIXTEEN_DISTINCT) == bytes.fromhex(SIXTEEN_DISTINCT)
    with pytest.raises(ConfigurationError, match="uses only 15 of the 256 byte values"):
        decode_key(FIFTEEN_DISTINCT)


@pytest.mark.parametrize(
    "key",
    [
        TWELVE_DIGITS_TWICE,
        BYTES_COUNT_TWICE_WRAPPING,
        DIGITS_COUNT_TWICE_WRAPPING,
        SYMBOLS_COUNT_TWICE_WRAPPING,
    ],
)
def test_a_48_bit_run_or_count_seen_twice_is_a_pattern(key: str) -> None:
    """Counting steps are taken modulo the alphabet, so a count through zero still counts."""
    with pytest.raises(ConfigurationError, match="a run of it repeats, or it counts"):
        decode_key(key)


def test_a_40_bit_run_seen_twice_is_no_pattern() -> None:
    assert decode_key(FIVE_BYTES_TWICE) == bytes.fromhex(FIVE_BYTES_TWICE)


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("0X" + PINNED_HEX, "starts with 0x"),
        ("-" + base64.b64encode(PINNED_33).decode()[1:-1] + "+", "mixes"),
        (PINNED_KEY + "A====", "length or padding"),
    ],
)
def test_more_malformed_keys(key: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        decode_key(key)


def test_0x_before_text_that_is_not_hex_is_read_as_base64() -> None:
    assert len(decode_key("0xZ" + PINNED_HEX)) == 50


def test_messages_name_the_fix_in_full() -> None:
    with pytest.raises(ConfigurationError) as empty:
        decode_key("")
    assert str(empty.value) == (
        "a secret key is empty; generate one with `python -m sessionkit keygen` or "
        "sessionkit.generate_key()"
    )
    with pytest.raises(ConfigurationError) as raw:
        decode_key(b"key")  # type: ignore[arg-type]
    assert str(raw.value) == (
        "a secret key must be text (str), not bytes: if the bytes are a key's text, "
        ".decode() them; if they are raw random bytes, write them as text with "
        "base64.urlsafe_b64encode(raw).decode(); or make a new key with "
        "sessionkit.generate_key()"
    )


def test_a_ring_counts_its_keys() -> None:
    assert len(KeyRing([generate_key(), generate_key(), generate_key()])) == 3
