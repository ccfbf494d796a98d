from __future__ import annotations

import base64
import subprocess
import sys

import pytest

from sessionkit import ConfigurationError, SessionKit, generate_key
from sessionkit.keys import KEY_BYTES, KeyRing, decode_key


def test_generated_key_is_32_random_bytes_in_base64url() -> None:
    key = generate_key()
    assert len(decode_key(key)) == KEY_BYTES
    assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len({generate_key() for _ in range(100)}) == 100


def test_padded_and_unpadded_spellings_are_the_same_key() -> None:
    raw = bytes(range(32))
    padded = base64.urlsafe_b64encode(raw).decode()
    assert decode_key(padded) == decode_key(padded.rstrip("=")) == raw


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("secret", "fewer than the 32 required"),
        ("correcthorsebatterystaplecorrecthorsebatter", "passphrase"),
        ("CORRECTHORSEBATTERYSTAPLECORRECTHORSEBATTER", "passphrase"),
        ("c2hvcnQ", "fewer than the 32 required"),
        (base64.urlsafe_b64encode(b"a" * 32).decode(), "pattern"),
        (base64.urlsafe_b64encode(b"ab" * 32).decode(), "pattern"),
        ("!" * 43, "not base64url"),
    ],
)
def test_weak_keys_fail_at_start_up_naming_the_fix(key: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says) as caught:
        SessionKit(secret_keys=[key])
    assert "python -m sessionkit keygen" in str(caught.value)


def test_key_list_must_be_a_non_empty_list_without_repeats() -> None:
    key = generate_key()
    with pytest.raises(ConfigurationError, match="list of keys"):
        SessionKit(secret_keys=key)
    with pytest.raises(ConfigurationError, match="no secret key"):
        SessionKit(secret_keys=[])
    with pytest.raises(ConfigurationError, match="listed twice"):
        SessionKit(secret_keys=[key, key])


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
    new, old = generate_key(), generate_key()
    kit = SessionKit.from_env({"SESSIONKIT_SECRET_KEYS": f" {new} , {old} ,"})
    assert kit.keys.key_ids == KeyRing([new, old]).key_ids
    with pytest.raises(ConfigurationError, match="SESSIONKIT_SECRET_KEYS is not set"):
        SessionKit.from_env({})


def test_keygen_command_prints_usable_keys() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sessionkit", "keygen", "-n", "3"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert len(out) == 3
    assert len(set(out)) == 3
    SessionKit(secret_keys=out)
