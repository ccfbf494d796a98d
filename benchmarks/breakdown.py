"""Where sessionkit's time goes: ``python -m benchmarks.breakdown``.

Times every step of the codec and ASGI paths on their own, with the same inputs as
``python -m benchmarks`` (best of several repeats, µs per call), next to the floors set by
the standard library (json) and by the AEAD primitives, so a change to ``src/`` can be
aimed at the step that costs most. No profiler runs, so nothing is inflated by it;
``--cprofile`` adds a cProfile listing of the ASGI read+write path for the call tree.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import gc
import itertools
import json
import os
import pstats
import timeit
from collections.abc import Callable

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

from sessionkit.cookies import pick_cookies
from sessionkit.seal import b64decode, b64encode
from sessionkit.session import check_timeouts, decode_payload, encode_payload

from . import core


def best_us(fn: Callable[[], object], seconds: float = 0.1, repeat: int = 5) -> float:
    """Best per-call time over ``repeat`` runs of about ``seconds`` each, in µs."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(1, int(number * seconds / 0.2))
    gc.disable()
    try:
        return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6
    finally:
        gc.enable()


def _asgi_call(variant: core.AsgiVariant) -> Callable[[], None]:
    app, template = variant.app, variant.scope

    def once() -> None:
        coro = app(dict(template), core._receive, core._discard)
        try:
            coro.send(None)  # nothing in these apps suspends: one send runs the request
        except StopIteration:
            pass
        else:  # pragma: no cover - would mean the request awaited something real
            raise RuntimeError("the ASGI call suspended")

    return once


def _cycle(fn: Callable[[str], object], values: list[str]) -> Callable[[], object]:
    """Call ``fn`` on the next of ``values`` each time (tokens not opened before)."""
    it = itertools.cycle(values)
    return lambda: fn(next(it))


def rows() -> list[tuple[str, str, float]]:
    out: list[tuple[str, str, float]] = []

    def add(group: str, label: str, fn: Callable[[], object]) -> None:
        out.append((group, label, best_us(fn)))

    kit = core.make_kit(visitor=False)
    vkit = core.make_kit(visitor=True)
    now = core.NOW
    codec = core.Codec(kit)
    data = core.SESSION_DATA
    state = codec.state
    name = kit.session_spec.name
    value = codec.seal(data)
    plaintext = encode_payload(state, data)
    sealer = kit.sealer
    raw = b64decode(value)
    aead = sealer._cipher(raw[1:5], int.from_bytes(raw[5:9], "big"))
    nonce, body, ad = raw[9:21], raw[21:], raw[:9] + name.encode()

    g = "seal (encode_payload + kit.sealer.seal)"
    add(g, "codec.seal(data) total", lambda: codec.seal(data))
    add(g, "  encode_payload(state, data)  [orjson]", lambda: encode_payload(state, data))
    add(g, "  sealer.seal(plaintext, now)", lambda: sealer.seal(plaintext, now))
    add(g, "    os.urandom(12)", lambda: os.urandom(12))
    add(g, "    AESGCM.encrypt", lambda: aead.encrypt(nonce, plaintext, ad))
    add(g, "    seal.b64encode(token)", lambda: b64encode(raw))

    g = "open (kit.sealer.unseal + decode_payload + check_timeouts)"
    fresh = [codec.seal(data) for _ in range(4096)]
    add(g, "codec.open(value) total, a token not seen before", _cycle(codec.open, fresh))
    add(g, "codec.open(value) total, the same token again (cached)", lambda: codec.open(value))
    add(
        g,
        "  sealer.unseal(value, now), not seen before",
        _cycle(lambda v: sealer.unseal(v, now), fresh),
    )
    add(g, "  sealer.unseal(value, now), cached", lambda: sealer.unseal(value, now))
    add(g, "    seal.b64decode(value)  [strict]", lambda: b64decode(value))
    add(
        g,
        "      base64.urlsafe_b64decode only",
        lambda: base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)),
    )
    add(g, "    AESGCM.decrypt", lambda: aead.decrypt(nonce, body, ad))
    add(g, "  decode_payload(plaintext)", lambda: decode_payload(plaintext))
    add(g, "    orjson.loads(plaintext)", lambda: orjson.loads(plaintext))
    add(g, "  check_timeouts(state, now)", lambda: check_timeouts(state, now, kit.timeouts))

    g = "exchange (kit.open + response headers), visitor off"
    cookie = dict(core.asgi_variants(core.app_untouched)[1].scope["headers"])[b"cookie"]
    cookie_text = cookie.decode("latin-1")
    add(g, "pick_cookies(header, names)", lambda: pick_cookies(cookie_text, kit.cookie_names))
    add(g, "kit.open(cookie_header, client=...) total", lambda: kit.open(cookie_text, client="x"))
    untouched = kit.open(cookie_text, client="x")
    app_headers = [("content-type", "text/plain"), ("content-length", "2")]
    add(
        g,
        "exchange.response_headers  (untouched: Vary only)",
        lambda: untouched.response_headers(app_headers),
    )
    written = kit.open(cookie_text, client="x")
    written.session["n"] = 1
    add(
        g,
        "session['n'] = 1  (__setitem__ + JSON check)",
        lambda: written.session.__setitem__("n", 1),
    )
    add(g, "exchange.set_cookie_headers  (written)", written.set_cookie_headers)
    add(g, "exchange.response_headers  (written)", lambda: written.response_headers(app_headers))
    raw_headers = [(b"content-type", b"text/plain"), (b"content-length", b"2")]
    add(
        g,
        "asgi: decode app headers to str",
        lambda: [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw_headers],
    )
    edited = written.response_headers(app_headers)
    add(
        g,
        "asgi: encode headers back to bytes",
        lambda: [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in edited],
    )

    g = "visitor cookie (visitor on)"
    vspec = vkit.visitor_spec
    assert vspec is not None
    visitors = vkit.visitors
    vvalue = visitors.sign(visitors.mint(), vspec.name)
    add(
        g, "VisitorCodec.verify(value, name)  [cached]", lambda: visitors.verify(vvalue, vspec.name)
    )
    add(g, "  seal.b64decode(value)", lambda: b64decode(vvalue))

    g = "ASGI request, whole (µs incl. bare app)"
    for label, inner in (("read+write", core.app_read_write), ("untouched", core.app_untouched)):
        for v in core.asgi_variants(inner):
            add(g, f"{label}: {v.label}", _asgi_call(v))

    g = "floors and alternatives on the same payload"
    payload_list = orjson.loads(plaintext)
    add(g, "orjson.dumps(sessionkit payload)", lambda: orjson.dumps(payload_list))
    add(g, "json.dumps(sessionkit payload)  [stdlib]", lambda: json.dumps(payload_list))
    add(g, "json.loads(sessionkit plaintext)  [stdlib]", lambda: json.loads(plaintext))
    siv = AESGCMSIV(os.urandom(32))
    sct = siv.encrypt(nonce, plaintext, ad)
    add(
        g,
        "AESGCMSIV.encrypt (the alternative to hourly subkeys)",
        lambda: siv.encrypt(nonce, plaintext, ad),
    )
    add(g, "AESGCMSIV.decrypt", lambda: siv.decrypt(nonce, sct, ad))

    g = "starlette codec steps (for comparison)"
    st = core.StarletteCodec(core.STARLETTE_SECRET)
    enc = st.encode(core.SESSION_DATA)
    add(g, "encode: b64(json) + TimestampSigner.sign", lambda: st.encode(core.SESSION_DATA))
    add(g, "decode: unsign(max_age) + json(b64)", lambda: st.decode(enc))
    signed = enc.encode()
    add(g, "  TimestampSigner.unsign only", lambda: st.signer.unsign(signed, max_age=st.max_age))
    return out


def render(table: list[tuple[str, str, float]]) -> str:
    lines = ["| step | µs/call (best) |", "|---|---:|"]
    group = None
    for g, label, us in table:
        if g != group:
            lines.append(f"| **{g}** | |")
            group = g
        lines.append(
            f"| {label.replace(' ', '&nbsp;', len(label) - len(label.lstrip()))} | {us:.2f} |"
        )
    return "\n".join(lines)


def cprofile_read_write(n: int = 20000) -> None:
    variant = core.asgi_variants(core.app_read_write)[1]

    async def batch() -> None:
        for _ in range(n):
            await variant.app(dict(variant.scope), core._receive, core._discard)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(batch())
    prof = cProfile.Profile()
    prof.enable()
    loop.run_until_complete(batch())
    prof.disable()
    loop.close()
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.breakdown", description=__doc__)
    parser.add_argument("--cprofile", action="store_true", help="also print a cProfile listing")
    args = parser.parse_args(argv)
    for line in core.machine_lines():
        print(line)
    print()
    print(render(rows()))
    if args.cprofile:
        print()
        cprofile_read_write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
