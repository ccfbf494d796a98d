from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionkit import generate_key
from sessionkit.errors import BadToken
from sessionkit.keys import KeyRing
from sessionkit.seal import MAX_TOKEN_CHARS, Sealer, b64decode, b64encode

RING = KeyRing([generate_key()])
SEALER = Sealer(RING, "session")
NAME = "__Host-session"


def test_layout_is_version_key_id_nonce_then_ciphertext_and_tag() -> None:
    raw = b64decode(SEALER.seal(b"hello", NAME))
    assert raw[0] == 1
    assert raw[1:5] == RING.key_ids[0]
    assert len(raw) == 1 + 4 + 12 + len(b"hello") + 16
    assert b"hello" not in raw


def test_every_seal_uses_a_fresh_nonce() -> None:
    tokens = {SEALER.seal(b"same", NAME) for _ in range(200)}
    assert len(tokens) == 200
    assert len({b64decode(t)[5:17] for t in tokens}) == 200


@given(st.binary(max_size=2000), st.text(min_size=1, max_size=40))
def test_round_trip(plaintext: bytes, name: str) -> None:
    assert SEALER.unseal(SEALER.seal(plaintext, name), name) == (plaintext, True)


def _rejects(token: str, name: str = NAME, sealer: Sealer = SEALER) -> str:
    with pytest.raises(BadToken) as caught:
        sealer.unseal(token, name)
    return caught.value.reason


@given(st.binary(max_size=300), st.data())
def test_any_bit_flip_is_rejected(plaintext: bytes, data: st.DataObject) -> None:
    raw = bytearray(b64decode(SEALER.seal(plaintext, NAME)))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    assert _rejects(b64encode(bytes(raw))) in {"malformed", "unknown_key", "tampered"}


@given(st.binary(max_size=300), st.data())
def test_truncation_and_extension_are_rejected(plaintext: bytes, data: st.DataObject) -> None:
    token = SEALER.seal(plaintext, NAME)
    cut = data.draw(st.integers(0, len(token) - 1))
    _rejects(token[:cut])
    extra = data.draw(st.text(alphabet="AZaz09-_=.~ ", min_size=1, max_size=8))
    _rejects(token + extra)


@given(st.binary(max_size=300), st.data())
def test_any_character_change_is_rejected(plaintext: bytes, data: st.DataObject) -> None:
    """Base64 decoding is strict: no second spelling of a token opens it."""
    token = SEALER.seal(plaintext, NAME)
    at = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.characters(codec="utf-8").filter(lambda c: c != token[at]))
    _rejects(token[:at] + char + token[at + 1 :])


def test_a_value_moved_to_another_cookie_name_is_rejected() -> None:
    token = SEALER.seal(b"x", NAME)
    assert _rejects(token, "__Host-visitor") == "tampered"
    assert _rejects(token, "__host-session") == "tampered"


def test_another_key_or_purpose_is_rejected_with_one_attempt() -> None:
    token = SEALER.seal(b"x", NAME)
    assert _rejects(token, sealer=Sealer(KeyRing([generate_key()]), "session")) == "unknown_key"
    assert _rejects(token, sealer=Sealer(RING, "visitor")) == "tampered"


def test_older_key_opens_and_says_so_removed_key_does_not() -> None:
    old, new = generate_key(), generate_key()
    token = Sealer(KeyRing([old]), "session").seal(b"x", NAME)
    assert Sealer(KeyRing([new, old]), "session").unseal(token, NAME) == (b"x", False)
    assert _rejects(token, sealer=Sealer(KeyRing([new]), "session")) == "unknown_key"


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
        SEALER.unseal(text, NAME)


def test_b64_spelling_is_canonical() -> None:
    assert b64encode(b"\xff") == "_w"
    assert b64decode("_w") == b"\xff"
    for other in ("_x", "_w=", "_w==", "/w", "_ w"):
        with pytest.raises(BadToken):
            b64decode(other)
