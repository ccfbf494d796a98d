"""ASVS V9 self-contained tokens and V11 cryptography: the sealed cookie, attacked.

The token format is re-implemented here from ``docs/token-format.md`` with nothing but
``cryptography``'s primitives, so a test proves the documented algorithms are the ones
in use. The cost of refusing a cookie is measured by counting the real AES-GCM
decryptions and HKDF derivations the sealer performs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sksec import CoreBrowser

import sessionkit
import sessionkit.seal
import sessionkit.visitor
from sessionkit import ConfigurationError, SessionKit
from sessionkit.seal import EPOCH_SECONDS, Sealer, b64decode, b64encode

pytestmark = pytest.mark.security

MakeKit = Callable[..., SessionKit]
SESSION = "__Host-session"
VISITOR = "__Host-visitor"
NOW = 1_800_000_000.0
KEY = sessionkit.generate_key()


def _hkdf(key: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key)


def master(key: str) -> bytes:
    return base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))


def issue(kit: SessionKit, app: Callable[[Any], Any] | None = None) -> CoreBrowser:
    browser = CoreBrowser(kit)
    browser.request(app or (lambda s: (s.login("alice"), s.update(cart=[1, 2]))))
    return browser


def refused(kit: SessionKit, value: str, name: str = SESSION) -> bool:
    session = kit.open(f"{name}={value}").session
    return session.is_new and session.user_id is None and dict(session) == {}


# ---------------------------------------------------------------- the documented format


@pytest.mark.asvs("11.2.1", "11.2.3", "11.3.1", "11.3.2", "11.4.1")
def test_the_session_cookie_is_aes_256_gcm_under_documented_hkdf_sha256_subkeys(
    make_kit: MakeKit, key: str, clock: Any
) -> None:
    kit = make_kit()
    token = b64decode(issue(kit).jar[SESSION])
    version, kid, hour = token[0], token[1:5], struct.unpack(">I", token[5:9])[0]
    nonce, sealed = token[9:21], token[21:]
    assert version == 1
    assert kid == _hkdf(master(key), b"sessionkit/v1/key-id", 4)
    assert hour == int(clock.now) // 3600
    purpose = _hkdf(master(key), b"sessionkit/v1/session", 32)
    hour_key = _hkdf(purpose, b"sessionkit/v1/epoch/" + struct.pack(">I", hour), 32)
    assert len(hour_key) * 8 == 256
    plaintext = AESGCM(hour_key).decrypt(nonce, sealed, token[:9] + SESSION.encode())
    fields = json.loads(plaintext)
    assert fields[0] == 2, "payload format version 2 (docs/token-format.md)"
    assert (fields[3], fields[-1]) == ("alice", {"cart": [1, 2]})
    assert len(nonce) * 8 == 96
    assert len(sealed) - len(plaintext) == 16, "a 128-bit tag"
    # the objects the sealer decrypts with are cryptography's (OpenSSL's) AES-GCM
    for opener in kit.sealer._openers.values():
        assert type(opener[0]) is AESGCM


@pytest.mark.asvs("11.2.1", "11.2.3", "11.4.1")
def test_the_visitor_cookie_is_a_documented_hmac_sha256(make_kit: MakeKit, key: str) -> None:
    kit = make_kit()
    raw = b64decode(issue(kit).jar[VISITOR])
    visitor_key = _hkdf(master(key), b"sessionkit/v1/visitor", 32)
    mac = hmac.new(visitor_key, raw[:21] + VISITOR.encode(), hashlib.sha256).digest()[:16]
    assert raw[21:] == mac
    assert len(mac) * 8 == 128


@pytest.mark.asvs("11.2.3")
@pytest.mark.parametrize(
    "bad",
    [
        base64.urlsafe_b64encode(bytes(range(16))).decode(),  # 128 bits: too short
        "correct horse battery staple and more words",  # a passphrase
        base64.urlsafe_b64encode(b"ab" * 16).decode(),  # a pattern
        "a" * 43,  # one letter case
    ],
)
def test_weak_keys_are_refused_at_start_up(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        SessionKit(secret_keys=[bad])


# ---------------------------------------------------------------- tamper, truncate, swap


@pytest.mark.asvs("9.1.1", "11.3.3", "7.2.1")
def test_every_bit_flip_is_refused(make_kit: MakeKit) -> None:
    kit = make_kit()
    raw = b64decode(issue(kit).jar[SESSION])
    for i in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[i // 8] ^= 1 << (i % 8)
        assert refused(kit, b64encode(bytes(flipped))), i


@pytest.mark.asvs("9.1.1", "11.3.3")
def test_every_truncation_and_extension_is_refused(make_kit: MakeKit) -> None:
    kit = make_kit()
    token = issue(kit).jar[SESSION]
    for end in range(len(token)):
        assert refused(kit, token[:end]), end
    for tail in ("A", "AA", "AAA", "AAAA", token):
        assert refused(kit, token + tail), tail
    raw = b64decode(token)
    for extra in (b"\0", b"\0" * 16, raw[21:]):
        assert refused(kit, b64encode(raw + extra))


@pytest.mark.asvs("9.2.2", "9.2.3")
def test_a_value_swapped_between_cookies_names_or_apps_is_refused(
    make_kit: MakeKit, key: str, events: list[Any]
) -> None:
    kit = make_kit(on_security_event=events.append)
    browser = issue(kit)
    session, visitor = browser.jar[SESSION], browser.jar[VISITOR]
    # session token in the visitor cookie and the other way round
    swapped = kit.open(f"{SESSION}={visitor}; {VISITOR}={session}")
    assert swapped.session.is_new
    assert swapped.visitor != CoreBrowser(kit, {VISITOR: visitor}).request().visitor
    # the same key, another app's cookie name (plain http development settings)
    other = SessionKit(secret_keys=[key], insecure_development=True, clock=kit.clock)
    plain = issue(other).jar["session"]
    assert refused(kit, plain)
    assert refused(other, session, name="session")
    # another purpose of the same key: a token sealed with the visitor subkeys
    payload = orjson.dumps(["A" * 22, "B" * 22, int(NOW), int(NOW), int(NOW), "x", {}])
    wrong_purpose = Sealer(kit.keys, "visitor", SESSION, max_age=43200, max_skew=60)
    assert refused(kit, wrong_purpose.seal(payload, kit.clock()))
    assert "tampered" in {e.reason for e in events}


@pytest.mark.asvs("9.1.2", "2.2.1")
def test_downgrades_and_other_spellings_are_refused_before_decryption(
    make_kit: MakeKit, counters: dict[str, int], events: list[Any]
) -> None:
    kit = make_kit(on_security_event=events.append)
    token = issue(kit).jar[SESSION]
    raw = b64decode(token)
    counters.update(decrypt=0, hkdf=0)
    candidates = {
        "version 0": b64encode(b"\x00" + raw[1:]),
        "version 2": b64encode(b"\x02" + raw[1:]),
        "version 255": b64encode(b"\xff" + raw[1:]),
        "header only ('none')": b64encode(raw[:21]),
        "no tag": b64encode(raw[:21] + b"x" * 15),
        "padded": token + "=" * (-len(token) % 4 or 4),
        "standard alphabet": base64.b64encode(raw).decode().rstrip("="),
        "spaces": token[:10] + " " + token[10:],
        "non-ascii": token[:10] + "\u00e9" + token[11:],
    }
    for what, value in candidates.items():
        if value == token:
            continue
        assert refused(kit, value), what
    assert counters["decrypt"] == 0
    assert {e.reason for e in events} <= {"malformed"}


@pytest.mark.asvs("9.1.3")
def test_a_token_cannot_choose_its_key(make_kit: MakeKit, counters: dict[str, int]) -> None:
    """Only the configured key ring is consulted; an unknown key id costs nothing."""
    kit = make_kit()
    raw = b64decode(issue(kit).jar[SESSION])
    counters.update(decrypt=0, hkdf=0)
    for i in range(200):
        kid = hashlib.sha256(b"%d" % i).digest()[:4]
        assert refused(kit, b64encode(raw[:1] + kid + raw[5:]))
    assert counters == {"decrypt": 0, "hkdf": 0}


@pytest.mark.asvs("9.2.1")
def test_tokens_outside_their_validity_window_are_refused_before_decryption(
    make_kit: MakeKit, clock: Any, counters: dict[str, int], events: list[Any]
) -> None:
    kit = make_kit(on_security_event=events.append)
    raw = b64decode(issue(kit).jar[SESSION])
    hour = int(clock.now) // EPOCH_SECONDS
    counters.update(decrypt=0, hkdf=0)
    future = b64encode(raw[:5] + struct.pack(">I", hour + 2) + raw[9:])
    # the longest a session can live is max_lifetime (remembered sessions), not 12 h
    oldest = hour - kit.max_lifetime // EPOCH_SECONDS - 2
    past = b64encode(raw[:5] + struct.pack(">I", oldest) + raw[9:])
    assert refused(kit, future)
    assert refused(kit, past)
    assert counters == {"decrypt": 0, "hkdf": 0}
    assert [e.reason for e in events] == ["from_the_future", "expired_absolute"]


@pytest.mark.asvs("9.2.1", "15.3.5", "1.5.2")
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (["A" * 22, "B" * 22, 0, 0, 0, None, {}], "expired_absolute"),
        (["A" * 22, "B" * 22, "N+5", "N", "N", None, {}], "invalid_payload"),  # created>seen
        (["A" * 22, "B" * 22, "N", "N", "N+600", None, {}], "invalid_payload"),  # rotated>seen
        (["A" * 22, "B" * 22, "N", "N+600", "N", None, {}], "from_the_future"),
        (["A" * 22, "B" * 22, True, True, True, None, {}], "invalid_payload"),
        (["A" * 22, "B" * 22, "N.5", "N.5", "N.5", None, {}], "invalid_payload"),
        (["A" * 22, "B" * 22, "N", "N", "N", True, {}], "invalid_payload"),
        (["A" * 22, "B" * 22, "N", "N", "N", ["alice"], {}], "invalid_payload"),
        (["A" * 22, "B" * 22, "N", "N", "N", None, []], "invalid_payload"),
        (["A" * 22, "B" * 22, "N", "N", "N", None, {}, "extra"], "invalid_payload"),
        (["A" * 21, "B" * 22, "N", "N", "N", None, {}], "invalid_payload"),
        ({"id": "A" * 22}, "invalid_payload"),
        ("a string", "invalid_payload"),
        (None, "invalid_payload"),
    ],
)
def test_authentic_payloads_of_the_wrong_shape_or_time_are_refused(
    make_kit: MakeKit, clock: Any, events: list[Any], payload: Any, reason: str
) -> None:
    """Sealed with the real key, so only the payload checks stand between it and the app."""
    kit = make_kit(on_security_event=events.append)
    now = int(clock.now)

    def fill(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("N"):
            if value == "N.5":
                return now + 0.5
            return now + int(value[2:] or 0) if value != "N" else now
        return value

    body = [fill(v) for v in payload] if isinstance(payload, list) else payload
    sealer = Sealer(kit.keys, "session", SESSION, max_age=kit.absolute_timeout, max_skew=60)
    assert refused(kit, sealer.seal(orjson.dumps(body), now))
    assert [e.reason for e in events] == [reason]


@pytest.mark.asvs("1.5.2", "15.3.5", "SK-HOSTILE-INPUT")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**64 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(st.characters(exclude_categories=("Cs",))),
        lambda inner: (
            st.lists(inner, max_size=8)
            | st.dictionaries(st.text(st.characters(exclude_categories=("Cs",))), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_any_authentic_json_opens_to_a_well_formed_session_or_nothing(payload: Any) -> None:
    kit = SessionKit(secret_keys=[KEY], clock=lambda: NOW)
    sealer = Sealer(kit.keys, "session", SESSION, max_age=kit.absolute_timeout, max_skew=60)
    session = kit.open(f"{SESSION}={sealer.seal(orjson.dumps(payload), NOW)}").session
    assert isinstance(session, dict)
    assert session.user_id is None or type(session.user_id) in (str, int)
    assert type(session.created_at) is int
    assert all(type(k) is str for k in session)


# ---------------------------------------------------------------- cost of refusing


class _Counting:
    """Stand-ins for the sealer's AESGCM and HKDF that count the real work done."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        counts_ = counts

        class CountingAESGCM:
            def __init__(self, key: bytes) -> None:
                self._real = AESGCM(key)

            def encrypt(self, nonce: bytes, data: bytes, aad: bytes | None) -> bytes:
                return self._real.encrypt(nonce, data, aad)

            def decrypt(self, nonce: bytes, data: bytes, aad: bytes | None) -> bytes:
                counts_["decrypt"] = counts_.get("decrypt", 0) + 1
                return self._real.decrypt(nonce, data, aad)

        class CountingHKDF:
            def __init__(self, **kwargs: Any) -> None:
                self._real = HKDF(**kwargs)

            def derive(self, key: bytes) -> bytes:
                counts_["hkdf"] = counts_.get("hkdf", 0) + 1
                return self._real.derive(key)

        self.aesgcm = CountingAESGCM
        self.hkdf = CountingHKDF


@pytest.fixture
def counters(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of AES-GCM decryptions and hourly HKDF derivations by sealers made from now."""
    counts: dict[str, int] = {}
    counting = _Counting(counts)
    monkeypatch.setattr(sessionkit.seal, "AESGCM", counting.aesgcm)
    monkeypatch.setattr(sessionkit.seal, "HKDF", counting.hkdf)
    counts.update(decrypt=0, hkdf=0)
    return counts


def _all_valid_hours(kit: SessionKit, now: float) -> list[int]:
    first = int(now - kit.absolute_timeout) // EPOCH_SECONDS
    last = int(now + kit.max_clock_skew) // EPOCH_SECONDS
    return list(range(first, last + 1))


@pytest.mark.asvs("SK-ONE-DECRYPTION", "15.2.2")
@pytest.mark.parametrize("keys", [1, 2])
def test_each_cookie_costs_at_most_one_decryption_and_bounded_derivations(
    make_kit: MakeKit, key: str, clock: Any, counters: dict[str, int], keys: int
) -> None:
    ring = [key] + [sessionkit.generate_key() for _ in range(keys - 1)]
    kit = make_kit(secret_keys=ring)
    genuine = b64decode(issue(kit).jar[SESSION])
    hours = _all_valid_hours(kit, clock.now)
    counters.update(decrypt=0, hkdf=0)
    n = 0
    for round_ in range(40):
        for kid in kit.keys.key_ids:
            for hour in hours:
                body = hashlib.sha256(b"%d/%d" % (round_, hour)).digest() * 3
                forged = genuine[:1] + kid + struct.pack(">I", hour) + body
                before = counters["decrypt"]
                assert refused(kit, b64encode(forged))
                assert counters["decrypt"] - before == 1
                n += 1
    assert counters["decrypt"] == n
    # one derivation per (key, hour) a valid token can have, however many cookies come
    assert counters["hkdf"] <= keys * len(hours)
    assert n >= 40 * keys * 13


@pytest.mark.asvs("SK-ONE-DECRYPTION", "15.2.2")
def test_a_request_opens_its_cookie_once_and_a_repeat_costs_nothing(
    make_kit: MakeKit, clock: Any, counters: dict[str, int]
) -> None:
    kit = make_kit()
    browser = issue(kit)
    counters.update(decrypt=0, hkdf=0)
    browser.request(lambda s: s.get("cart"))
    assert counters["decrypt"] == 1
    for _ in range(10):
        clock.advance(1)
        browser.request(lambda s: s.get("cart"))
    assert counters["decrypt"] == 1, "the same cookie again is served from the memo"
    duplicated = f"{SESSION}={browser.jar[SESSION]}; {SESSION}={browser.jar[SESSION]}x"
    kit.open(duplicated)
    assert counters["decrypt"] == 1, "two copies of our name: refused unopened"


@pytest.mark.asvs("SK-ONE-DECRYPTION", "15.2.2", "11.2.4")
def test_each_visitor_cookie_costs_one_mac_compared_in_constant_time(
    make_kit: MakeKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = make_kit()
    raw = b64decode(issue(kit).jar[VISITOR])
    calls = {"digest": 0, "compare_digest": 0}
    real_digest, real_compare = hmac.digest, hmac.compare_digest

    def digest(key: bytes, msg: bytes, name: str) -> bytes:
        calls["digest"] += 1
        return real_digest(key, msg, name)

    def compare_digest(a: bytes, b: bytes) -> bool:
        calls["compare_digest"] += 1
        return real_compare(a, b)

    monkeypatch.setattr(sessionkit.visitor.hmac, "digest", digest)
    monkeypatch.setattr(sessionkit.visitor.hmac, "compare_digest", compare_digest)
    for i in range(50):
        forged = raw[:21] + hashlib.sha256(b"%d" % i).digest()[:16]
        assert kit.open(f"{VISITOR}={b64encode(forged)}", sec_gpc=None).visitor is not None
    # one MAC to check each forged cookie, one to sign its replacement id at most
    assert calls["compare_digest"] == 50
    assert calls["digest"] == 50


@pytest.mark.asvs("11.2.5", "16.5.1")
def test_every_kind_of_bad_token_gets_the_same_answer(make_kit: MakeKit) -> None:
    """No oracle: the response does not say which check failed (only the server log does)."""
    kit = make_kit(visitor_cookie=None)
    raw = b64decode(issue(kit).jar[SESSION])
    other = b64decode(issue(make_kit(secret_keys=[sessionkit.generate_key()])).jar[SESSION])
    variants = {
        "tag": raw[:-1] + bytes([raw[-1] ^ 1]),
        "ciphertext": raw[:30] + bytes([raw[30] ^ 1]) + raw[31:],
        "nonce": raw[:10] + bytes([raw[10] ^ 1]) + raw[11:],
        "short": raw[:36],
        "other key": other,
        "version": b"\x02" + raw[1:],
    }
    answers = set()
    for what, value in variants.items():
        response = CoreBrowser(kit, {SESSION: b64encode(value)}).request()
        assert response.status == 200, what
        answers.add(tuple(response.headers))
    assert len(answers) == 1, answers


@pytest.mark.asvs("11.3.4")
def test_nonces_never_repeat_and_each_hour_has_its_own_key(make_kit: MakeKit, clock: Any) -> None:
    kit = make_kit()
    sealer = Sealer(kit.keys, "session", SESSION, max_age=kit.absolute_timeout, max_skew=60)
    nonces = {b64decode(sealer.seal(b"{}", clock.now))[9:21] for _ in range(50_000)}
    assert len(nonces) == 50_000
    # the same plaintext and nonce under two hours' keys: different ciphertexts
    this_hour = b64decode(sealer.seal(b"x", clock.now))
    next_hour = b64decode(sealer.seal(b"x", clock.now + EPOCH_SECONDS))
    assert this_hour[5:9] != next_hour[5:9]
    moved = next_hour[:9] + this_hour[9:]
    with pytest.raises(sessionkit.errors.BadToken):
        sealer.unseal(b64encode(moved), clock.now + EPOCH_SECONDS)


@pytest.mark.asvs("11.2.2")
def test_a_new_key_re_seals_old_cookies_and_removing_the_old_one_refuses_them(
    make_kit: MakeKit, key: str
) -> None:
    old_kit = make_kit()
    browser = issue(old_kit)
    stale = browser.copy()
    new_key = sessionkit.generate_key()
    rotated = make_kit(secret_keys=[new_key, key])
    browser.kit = rotated
    response = browser.request()
    assert response.session.user_id == "alice"  # type: ignore[union-attr]
    assert b64decode(browser.jar[SESSION])[1:5] == rotated.keys.key_ids[0]
    assert b64decode(browser.jar[VISITOR])[1:5] == rotated.keys.key_ids[0]
    browser.kit = stale.kit = make_kit(secret_keys=[new_key])
    assert browser.request().session.user_id == "alice"  # type: ignore[union-attr]
    assert stale.request().session.user_id is None  # type: ignore[union-attr]
