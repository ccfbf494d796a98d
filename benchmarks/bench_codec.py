"""Codec round trip: sessionkit's seal + open against each peer's encode + decode."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from . import core
from .core import SESSION_DATA, Mode, Summary, measure, ratios, us
from .peers import DjangoCodec, FernetCodec, FlaskCodec, StarletteCodec
from .report import Headline, Row, Section, Table, Target

#: The peers, in the order of the table; Starlette is the one the target names.
PEERS: dict[str, Callable[[], Any]] = {
    "starlette (TimestampSigner, b64 JSON)": lambda: StarletteCodec(core.STARLETTE_SECRET),
    "flask (URLSafeTimedSerializer, tagged JSON)": FlaskCodec,
    "django signing (signed_cookies, compress)": DjangoCodec,
    "fernet (JSON in a Fernet token, ttl)": FernetCodec,
}
SK = "sessionkit (AES-256-GCM seal + open)"
STARLETTE = next(iter(PEERS))
SHORT = dict(zip(PEERS, ("Starlette", "Flask", "Django signing", "Fernet"), strict=True))


def _loop(
    encode: Callable[[Any], Any], decode: Callable[[Any], Any], obj: Any
) -> Callable[[int], int]:
    def run(n: int) -> int:
        enc, dec, now_ns = encode, decode, core.clock()
        start = now_ns()
        for _ in range(n):
            dec(enc(obj))
        return now_ns() - start

    return run


def codec_runners(data: dict[str, Any]) -> tuple[dict[str, Callable[[int], int]], dict[str, int]]:
    """Checked round-trip loops for sessionkit and every peer, and their cookie sizes."""
    codec = core.Codec(core.make_kit(visitor=False))
    value = codec.seal(data)
    state, opened = codec.open(value)
    core._require(opened == data, "sessionkit codec: data did not round-trip")
    core._require(state == codec.state, "sessionkit codec: state did not round-trip")
    runners = {SK: _loop(codec.seal, codec.open, data)}
    sizes = {SK: len(value)}
    for label, make in PEERS.items():
        peer = make()
        plain = dict(data)
        encoded = peer.encode(plain)
        core._require(peer.decode(encoded) == data, f"{label}: no round trip")
        runners[label] = _loop(peer.encode, peer.decode, plain)
        sizes[label] = len(encoded)
    return runners, sizes


def run(mode: Mode) -> Section:
    t0 = time.perf_counter()
    runners, sizes = codec_runners(SESSION_DATA)
    per_call, n = measure(runners, mode)
    sk = per_call[SK]
    rows = [Row(SK, Summary.of(us(sk)), note=f"cookie value {sizes[SK]} chars")]
    headlines = []
    for label in PEERS:
        r = Summary.of(ratios(sk, per_call[label]))
        rows.append(
            Row(
                label,
                Summary.of(us(per_call[label])),
                ratio=r,
                note=f"cookie value {sizes[label]} chars",
            )
        )
        headlines.append(
            Headline(
                f"codec round trip ÷ {SHORT[label]}",
                r,
                "cost",
                Target(0.45) if label == STARLETTE else None,
                detail="seal + open vs encode + decode, same session",
            )
        )
    data_bytes = len(json.dumps(SESSION_DATA).encode())
    table = Table(
        "Codec round trip (seal/encode then open/decode), µs per round trip",
        "µs/round trip",
        "sessionkit ÷ this",
        rows,
        notes=[
            f"the same {data_bytes}-byte session (JSON) for every codec; {n} round trips per timed "
            f"batch, {mode.repeats} interleaved repeats",
            "sessionkit encrypts and authenticates (AES-256-GCM) and checks its timeouts; "
            "Starlette, Flask and Django sign only; Fernet encrypts (AES-128-CBC + HMAC-SHA256)",
            "Flask's serializer is built once here; Flask itself builds it on every request "
            "(the WSGI section includes that)",
        ],
    )
    return Section(
        "codec",
        "Codec: seal + open vs the peers' encode + decode",
        tables=[table],
        headlines=headlines,
        seconds=time.perf_counter() - t0,
    )
