"""The Cookie request header, attacked: duplicates, look-alike names, smuggling, bytes, bombs.

sessionkit splits the header on ``;`` only, as browsers write it (RFC 6265bis 5.6), never
on ``,`` (Django CVE-2016-7401: a cookie set by a sibling subdomain smuggled in a second
one through a comma); names compare byte for byte; two copies of one of our names are an
attack, not "first wins". Processing cost stays linear in the header's size.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sksec import CoreBrowser, call_asgi

import sessionkit
import sessionkit.asgi
from sessionkit import SessionKit
from sessionkit.cookies import pick_cookies
from sessionkit.errors import BadToken
from sessionkit.seal import Sealer

pytestmark = pytest.mark.security

MakeKit = Callable[..., SessionKit]
SESSION = "__Host-session"
VISITOR = "__Host-visitor"
NAMES = frozenset({SESSION, VISITOR, "__Host-cookie-check", "__Host-opt-out"})
KEY = sessionkit.generate_key()
NOW = 1_800_000_000.0


def logged_in(kit: SessionKit) -> str:
    browser = CoreBrowser(kit)
    browser.request(lambda s: s.login("alice"))
    return browser.jar[SESSION]


def user_of(kit: SessionKit, header: str | None) -> Any:
    return kit.open(header).session.user_id


# ---------------------------------------------------------------- duplicates, names


@pytest.mark.asvs("15.3.7", "16.3.3")
@pytest.mark.parametrize("order", ["valid first", "valid last", "both valid", "same twice"])
def test_two_copies_of_the_session_cookie_are_refused_not_picked(
    make_kit: MakeKit, events: list[Any], order: str
) -> None:
    kit = make_kit(on_security_event=events.append)
    good, other = logged_in(kit), logged_in(kit)
    pairs = {
        "valid first": (good, "garbage"),
        "valid last": ("garbage", good),
        "both valid": (good, other),
        "same twice": (good, good),
    }[order]
    response = CoreBrowser(kit).request(cookie=f"{SESSION}={pairs[0]}; a=1; {SESSION}={pairs[1]}")
    assert response.session is not None
    assert response.session.user_id is None
    assert response.session.is_new
    assert response.cookies[SESSION][1]["max-age"] == "0"
    assert [e.reason for e in events] == ["duplicate"]


@pytest.mark.asvs("15.3.7")
def test_duplicates_across_two_cookie_header_lines_are_refused(make_kit: MakeKit) -> None:
    kit = make_kit()
    good = logged_in(kit)
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["session"].user_id)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = sessionkit.asgi.SessionMiddleware(app, kit=kit)
    lines = [(b"cookie", f"{SESSION}={good}".encode()), (b"cookie", f"{SESSION}=x".encode())]
    status, _, _ = call_asgi(middleware, headers=lines)
    assert status == 200
    assert seen == [None]


@pytest.mark.asvs("15.3.7", "1.5.3")
@pytest.mark.parametrize(
    "name",
    [
        "__host-session",
        "__HOST-SESSION",
        "__Host-Session",
        "__Host-session\u200b",
        "__\u0397ost-session",  # Greek capital eta
        "__Host-session\x00",
        "__Host_session",
        "Host-session",
        "__Secure-session",
    ],
)
def test_look_alike_names_are_not_ours(make_kit: MakeKit, events: list[Any], name: str) -> None:
    kit = make_kit(on_security_event=events.append)
    good = logged_in(kit)
    response = CoreBrowser(kit).request(cookie=f"{name}={good}")
    assert response.session is not None
    assert response.session.user_id is None
    assert SESSION not in response.cookies, "not ours: nothing to expire"
    assert events == []


# ---------------------------------------------------------------- smuggling


@pytest.mark.asvs("1.5.3")
@pytest.mark.parametrize(
    "template",
    [
        "a=b, {name}={good}",  # Django CVE-2016-7401
        "a=b,{name}={good}",
        'a="x, {name}={good}"',
        'a="x,{name}={good}',
        "a={name}={good}",
        "{name}={good}, a=b",
        "{name}={good},",
        '{name}="{good}"',
        "{name}={good}\\",
        "{name}:{good}",
        "{name} {good}",
        "{name}\t={good}x",
    ],
)
def test_commas_and_quotes_smuggle_nothing_in(make_kit: MakeKit, template: str) -> None:
    kit = make_kit()
    good = logged_in(kit)
    header = template.format(name=SESSION, good=good)
    assert user_of(kit, header) is None, header


@pytest.mark.asvs("1.5.3")
@pytest.mark.parametrize(
    "template",
    [
        "{name}={good}",
        "a=b; {name}={good}",
        "a=b;{name}={good};c=d",
        " {name} = {good} ",  # optional whitespace around name and value (RFC 6265bis)
        'a="x; y"; {name}={good}',  # a quoted value elsewhere ends at its ';' as in browsers
        "a=b, c=d; {name}={good}",
    ],
)
def test_a_genuine_cookie_is_found_among_others(make_kit: MakeKit, template: str) -> None:
    kit = make_kit()
    good = logged_in(kit)
    assert user_of(kit, template.format(name=SESSION, good=good)) == "alice"


@pytest.mark.asvs("1.5.3", "SK-HOSTILE-INPUT")
@settings(max_examples=300, deadline=None)
@given(
    before=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=20)), max_size=6),
    after=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=20)), max_size=6),
    separator=st.sampled_from([";", "; ", " ;", ";\t"]),
)
def test_other_cookies_never_change_what_ours_parse_to(
    before: list[tuple[str, str]], after: list[tuple[str, str]], separator: str
) -> None:
    """Whatever surrounds our pair (commas, quotes, '=', bytes), we read exactly our value."""

    def clean(pairs: list[tuple[str, str]]) -> list[str]:
        out = []
        for name, value in pairs:
            name, value = name.replace(";", ""), value.replace(";", "")
            if name.strip(" \t") in NAMES:
                name = "x" + name
            out.append(f"{name}={value}")
        return out

    ours = f"{SESSION}=AbC-_09"
    header = separator.join([*clean(before), ours, *clean(after)])
    assert pick_cookies(header, NAMES) == {SESSION: ["AbC-_09"]}


@pytest.mark.asvs("1.5.3", "SK-HOSTILE-INPUT")
@settings(max_examples=500, deadline=None)
@given(header=st.text(max_size=300))
def test_parsing_any_header_never_raises_and_values_are_pieces_of_it(header: str) -> None:
    found = pick_cookies(header, NAMES)
    assert set(found) <= NAMES
    pieces = header.split(";")
    for name, values in found.items():
        for value in values:
            assert ";" not in value
            assert any(name in p and value in p for p in pieces)
    # a comma never starts a pair: joined by commas, only the first pair can be ours
    if ";" not in header:
        assert sum(len(v) for v in found.values()) <= 1


# ---------------------------------------------------------------- unsealer properties


SEALER_KIT = SessionKit(secret_keys=[KEY], clock=lambda: NOW)
SEALER = Sealer(SEALER_KIT.keys, "session", SESSION, max_age=43200, max_skew=60)


@pytest.mark.asvs("9.1.1", "2.2.1", "SK-HOSTILE-INPUT")
@settings(max_examples=500, deadline=None)
@given(
    text=st.text(max_size=300)
    | st.text(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        min_size=40,
        max_size=300,
    )
)
def test_unsealing_any_text_refuses_it_with_a_reason(text: str) -> None:
    with pytest.raises(BadToken) as refused:
        SEALER.unseal(text, NOW)
    assert refused.value.reason in {
        "malformed",
        "tampered",
        "unknown_key",
        "oversized",
        "from_the_future",
        "expired_absolute",
    }


@pytest.mark.asvs("9.1.1", "11.3.3", "SK-HOSTILE-INPUT")
@settings(max_examples=300, deadline=None)
@given(
    plaintext=st.binary(max_size=200),
    edit=st.sampled_from(["replace", "insert", "delete", "swap"]),
    data=st.data(),
)
def test_any_edit_of_a_sealed_token_is_refused(plaintext: bytes, edit: str, data: Any) -> None:
    token = SEALER.seal(plaintext, NOW)
    i = data.draw(st.integers(0, len(token) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    char = data.draw(st.sampled_from(alphabet))
    if edit == "replace":
        edited = token[:i] + char + token[i + 1 :]
    elif edit == "insert":
        edited = token[:i] + char + token[i:]
    elif edit == "delete":
        edited = token[:i] + token[i + 1 :]
    else:
        j = data.draw(st.integers(0, len(token) - 1))
        chars = list(token)
        chars[i], chars[j] = chars[j], chars[i]
        edited = "".join(chars)
    if edited == token:
        return
    with pytest.raises(BadToken):
        SEALER.unseal(edited, NOW)


# ---------------------------------------------------------------- bytes


RAW_HEADERS = [
    b"__Host-session=\xff\xfe\x00abc",
    b"\x00__Host-session=abc",
    b"__Host-session=abc\x00def",
    b"\xff\xff=\xff; __Host-visitor=\x80\x81",
    b"__Host-session=" + b"\xc3\x28" * 100,
    b"__Host-session=\xed\xa0\x80",  # an encoded surrogate
    b"=\x00; ;=;==;" * 50,
    bytes(range(256)),
]


@pytest.mark.asvs("2.2.1", "16.5.3", "SK-HOSTILE-INPUT")
@pytest.mark.parametrize("raw", RAW_HEADERS, ids=range(len(RAW_HEADERS)))
def test_non_utf8_and_nul_bytes_never_raise(make_kit: MakeKit, raw: bytes) -> None:
    kit = make_kit(require_cookies=["/app"])
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["session"].user_id, dict(scope["session"])))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = sessionkit.asgi.SessionMiddleware(app, kit=kit)
    for path in ("/", "/app/x"):
        status, _, _ = call_asgi(middleware, path=path, headers=[(b"cookie", raw)])
        assert status in (200, 303), (path, status)
    assert seen
    assert all(s == (None, {}) for s in seen), "nothing of these bytes reaches the app"
    good = logged_in(kit).encode()
    status, _, _ = call_asgi(
        middleware, headers=[(b"cookie", raw), (b"cookie", b"__Host-session=" + good)]
    )
    assert status == 200
    assert seen[-1] in ((None, {}), ("alice", {})), "either refused as a duplicate, or found"
    with_nul = call_asgi(middleware, headers=[(b"cookie", b"__Host-session=" + good + b"\x00")])
    assert with_nul[0] == 200
    assert seen[-1] == (None, {}), "a NUL makes a genuine token someone else's bytes"


# ---------------------------------------------------------------- bombs and linear cost


@pytest.mark.asvs("15.2.2", "16.3.3")
def test_a_cookie_bomb_costs_one_event_and_no_decryption(
    make_kit: MakeKit, events: list[Any]
) -> None:
    kit = make_kit(on_security_event=events.append)
    good = logged_in(kit)
    unrelated = "; ".join(f"c{i}={'x' * 20}" for i in range(8_000))
    assert user_of(kit, f"{unrelated}; {SESSION}={good}") == "alice"
    assert events == []
    bomb = "; ".join(f"{SESSION}={good}" for _ in range(2_000))
    visitors = "; ".join(f"{VISITOR}=x{i}" for i in range(2_000))
    ex = kit.open(f"{bomb}; {visitors}")
    assert ex.session.user_id is None
    assert ex.visitor is not None  # a new id, not one of the 2,000
    assert sorted(e.reason for e in events) == ["duplicate", "duplicate"]


def _profile_calls(func: Callable[[], Any]) -> int:
    """Python and C function calls made by ``func`` (``sys.setprofile`` events)."""
    count = 0

    def profiler(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profiler)
    try:
        func()
    finally:
        sys.setprofile(None)
    return count


def _best_time(func: Callable[[], Any], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - started)
    return best


def _shape(kind: str, size: int, good: str) -> str:
    """An adversarial Cookie header of about ``size`` bytes."""
    unit = {
        "many pairs": "a=b; ",
        "our name repeated": f"{SESSION}=x; ",
        "empty pairs": ";",
        "equals signs": "=",
        "whitespace": " \t",
        "commas": "a=b,",
        "one long value": "A",
    }[kind]
    body = unit * (size // len(unit))
    if kind == "one long value":
        return f"{SESSION}={body}"
    return f"{body}; {SESSION}={good}"


SHAPES = [
    "many pairs",
    "our name repeated",
    "empty pairs",
    "equals signs",
    "whitespace",
    "commas",
    "one long value",
]


@pytest.mark.asvs("SK-LINEAR-PARSING", "15.2.2")
@pytest.mark.parametrize("shape", SHAPES)
def test_core_cost_grows_linearly_with_the_header(make_kit: MakeKit, shape: str) -> None:
    """64x the bytes: under 100x the calls; 8x the bytes: under 24x the time.

    The time ratio is taken between two large headers, where the per-byte cost dominates
    the fixed cost of opening the session: linear work gives about 8x, quadratic 64x, so
    the bound holds on a loaded machine and still catches a quadratic parser.
    """
    kit = make_kit(require_cookies=["/app"])
    good = logged_in(kit)
    small, large = _shape(shape, 1024, good), _shape(shape, 65536, good)

    def run(header: str) -> Callable[[], Any]:
        return lambda: kit.open(header, path="/app/inbox", query="a=1").response_headers([])

    calls_small, calls_large = _profile_calls(run(small)), _profile_calls(run(large))
    assert calls_large <= 100 * max(calls_small, 1), (calls_small, calls_large)
    medium, huge = _shape(shape, 16384, good), _shape(shape, 131072, good)
    time_medium, time_huge = _best_time(run(medium), 7), _best_time(run(huge), 5)
    assert time_huge <= 24 * time_medium, (time_medium, time_huge)


def _asgi_cost(kit: SessionKit, headers: list[tuple[bytes, bytes]]) -> float:
    """Best time of a few requests with ``headers`` through the ASGI middleware.

    Each request adds one short line of its own, so none is answered from the kit's
    memory of recent ``Cookie`` headers: every one is parsed. The time is this thread's
    CPU time, which other work on the machine does not inflate.
    """

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = sessionkit.asgi.SessionMiddleware(app, kit=kit)
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "query_string": b"",
        "headers": headers,
        "client": ("203.0.113.7", 1),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    async def measure() -> float:
        best = float("inf")
        for i in range(15):
            own = {**scope, "headers": [*headers, (headers[0][0], b"own%d=1" % i)]}
            started = time.thread_time()
            await middleware(own, receive, send)
            best = min(best, time.thread_time() - started)
        return best

    return asyncio.run(measure())


def _pairs(size: int) -> list[bytes]:
    return [b"c%011d=x" % i for i in range(size // 16)]


@pytest.mark.asvs("SK-LINEAR-PARSING", "15.2.2")
def test_asgi_cost_of_one_long_cookie_header_is_linear(make_kit: MakeKit) -> None:
    kit = make_kit(visitor_cookie=None)
    small = _asgi_cost(kit, [(b"cookie", b"; ".join(_pairs(1024)))])
    large = _asgi_cost(kit, [(b"cookie", b"; ".join(_pairs(65536)))])
    assert large <= 100 * small, (small, large)


@pytest.mark.asvs("SK-LINEAR-PARSING", "15.2.2")
@pytest.mark.parametrize("header", [b"cookie", b"x-forwarded-for"])
def test_asgi_cost_of_many_header_lines_is_linear(make_kit: MakeKit, header: bytes) -> None:
    """64x the lines (4 KiB -> 256 KiB of 16-byte lines): under 300x the time, where a
    quadratic join takes about 4,000x (a busy machine inflates the large request's CPU
    time more than the small one's: 112x was seen on a loaded machine, 51x on a quiet one).

    Found by this suite: the ASGI front end used to join repeated lines by string
    concatenation in a loop, quadratic in their number (about 1 s of event-loop time for
    a 1.5 MB request of 65,536 ``Cookie:`` lines under uvicorn with httptools).
    """
    kit = make_kit(visitor_cookie=None)
    small = _asgi_cost(kit, [(header, pair) for pair in _pairs(4096)])
    large = _asgi_cost(kit, [(header, pair) for pair in _pairs(4096 * 64)])
    assert large <= 300 * small, (small, large)
