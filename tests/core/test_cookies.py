from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionkit import ConfigurationError
from sessionkit.cookies import (
    MAX_COOKIE_BYTES,
    MAX_PICKED_HEADER_CHARS,
    PICKED_CACHE_SIZE,
    SPELLINGS,
    CookieSpec,
    Found,
    PickedCookies,
    pick_cookies,
)
from support import parse_set_cookie

NAMES = frozenset({"__Host-session", "__Host-visitor"})
# Every character Python calls whitespace except the two a Cookie header may pad with.
OTHER_WHITESPACE = [c for c in map(chr, range(0x3001)) if c.isspace() and c not in " \t"]


def test_picks_only_wanted_names_and_keeps_every_copy() -> None:
    header = "a=1; __Host-session=x; b=2;__Host-session = y ;__Host-visitor=v"
    assert pick_cookies(header, NAMES) == {"__Host-session": ["x", "y"], "__Host-visitor": ["v"]}


def _count(found: Found) -> int:
    return sum(len(v) for v in found.values())


@given(st.text(alphabet="_Hostevin-=; \tab1"))
def test_picked_cookies_answers_as_pick_cookies_read_only(header: str) -> None:
    picked = PickedCookies(NAMES, _count)
    found, count = picked(header)
    assert {n: list(v) for n, v in found.items()} == pick_cookies(header, NAMES)
    assert count == _count(found), "what derives from the answer comes with it"
    assert picked(header) == (found, count)
    assert all(type(v) is tuple for v in found.values()), "shared between requests: immutable"


def test_picked_cookies_remembers_a_bounded_number_of_short_headers() -> None:
    derived: list[Found] = []
    picked = PickedCookies(NAMES, derived.append)
    header = "a=1; __Host-session=x"
    assert picked(header) is picked(header), "the same header again is not parsed again"
    assert derived == [{}, {"__Host-session": ("x",)}], "derived once per header (and for none)"
    for i in range(PICKED_CACHE_SIZE):
        picked(f"n{i}=1")
    assert len(picked._seen) <= PICKED_CACHE_SIZE
    long = "__Host-session=x; " + "a" * MAX_PICKED_HEADER_CHARS
    assert picked(long)[0] == {"__Host-session": ("x",)}
    assert long not in picked._seen
    assert picked(None) == ({}, None)
    assert picked("") == ({}, None)


@pytest.mark.parametrize(
    "header",
    [
        "__host-session=x",
        "__HOST-session=x",
        "__Host-Session=x",
        "__Host-sessionx=x",
        "x__Host-session=x",
        "X__Host-session=x",
        "__Host-sessionX=x",
        "__Host-session",
        "",
    ],
)
def test_case_variants_and_lookalikes_are_not_ours(header: str) -> None:
    assert pick_cookies(header, NAMES) == {}


def test_spaces_and_tabs_around_names_and_values_are_dropped() -> None:
    assert pick_cookies(" \t__Host-session \t= \tx\t ;\t__Host-visitor=v ", NAMES) == {
        "__Host-session": ["x"],
        "__Host-visitor": ["v"],
    }


@pytest.mark.parametrize("char", OTHER_WHITESPACE, ids=lambda c: f"U+{ord(c):04X}")
def test_no_other_whitespace_is_dropped(char: str) -> None:
    assert pick_cookies(f"{char}__Host-session=x", NAMES) == {}
    assert pick_cookies(f"__Host-session{char}=x", NAMES) == {}
    assert pick_cookies(f"a=1;{char} __Host-session =x", NAMES) == {}
    assert pick_cookies(f"__Host-session={char}x{char}", NAMES) == {
        "__Host-session": [f"{char}x{char}"]
    }


def test_commas_do_not_split_pairs() -> None:
    """Django CVE-2016-7401: a comma must not let one cookie smuggle in another."""
    assert pick_cookies("a=b,__Host-session=evil", NAMES) == {}
    assert pick_cookies("__Host-session=good,__Host-session=evil", NAMES) == {
        "__Host-session": ["good,__Host-session=evil"]
    }


def test_quotes_and_equals_stay_in_the_value() -> None:
    assert pick_cookies('__Host-session="a=b"', NAMES) == {"__Host-session": ['"a=b"']}


@given(st.text())
def test_any_header_text_never_raises(header: str) -> None:
    found = pick_cookies(header, NAMES)
    assert set(found) <= NAMES


@given(st.binary())
def test_any_header_bytes_never_raise(raw: bytes) -> None:
    pick_cookies(raw.decode("latin-1"), NAMES)


def test_set_cookie_has_secure_defaults() -> None:
    spec = CookieSpec("__Host-session")
    assert spec.set("abc", 60) == (
        "__Host-session=abc; Max-Age=60; Path=/; Secure; HttpOnly; SameSite=Lax"
    )
    assert spec.set("abc", None) == "__Host-session=abc; Path=/; Secure; HttpOnly; SameSite=Lax"
    assert spec.delete().startswith("__Host-session=; Max-Age=0; Expires=Thu, 01 Jan 1970")


def test_attributes_follow_settings() -> None:
    spec = CookieSpec(
        "s", path="/app", domain="example.org", secure=False, http_only=False, same_site="strict"
    )
    assert spec.set("v", 5) == "s=v; Max-Age=5; Path=/app; Domain=example.org; SameSite=Strict"


@pytest.mark.parametrize(
    ("settings", "fix"),
    [
        ({"name": "__Host-s", "domain": "example.org"}, "__Secure- prefix"),
        ({"name": "__Host-s", "path": "/app"}, "__Secure- prefix"),
        ({"name": "__Host-s", "secure": False}, "insecure_development"),
        ({"name": "__Secure-s", "secure": False}, "insecure_development"),
        ({"name": "s", "same_site": "none", "secure": False}, "keep secure=True"),
        ({"name": "s", "same_site": "sometimes"}, "one of"),
        ({"name": "bad name"}, "not a valid cookie name"),
        ({"name": "s;x"}, "not a valid cookie name"),
        ({"name": "s", "path": "app"}, "start with '/'"),
        ({"name": "s", "path": "/a;b"}, "other than ';'"),
        ({"name": "s", "domain": "a;b"}, "not allowed"),
        ({"name": "s", "secure": False, "partitioned": True}, "keep secure=True"),
        ({"name": "s", "spelling": "Starlette"}, "'standard', 'starlette'"),
    ],
)
def test_unsafe_cookie_settings_fail_naming_the_fix(settings: dict[str, object], fix: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(fix)):
        CookieSpec(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    ["\r", "\n", "\r\n", "\x00", ";", "\x7f", "\x1f", "\x0b", "\xe9", "\u2028"],
    ids=repr,
)
def test_control_characters_in_path_or_domain_are_refused(bad: str) -> None:
    """A configured Path or Domain cannot end the header or add an attribute."""
    with pytest.raises(ConfigurationError, match="printable ASCII"):
        CookieSpec("s", path=f"/app{bad}Set-Cookie: evil=1")
    with pytest.raises(ConfigurationError, match="printable ASCII"):
        CookieSpec("s", domain=f"example.org{bad}evil=1")
    with pytest.raises(ConfigurationError, match="printable ASCII"):
        CookieSpec("s", path=f"/{bad}")


def test_partitioned_adds_the_chips_attribute() -> None:
    spec = CookieSpec("__Host-embed", same_site="none", partitioned=True)
    assert spec.set("v", 60) == (
        "__Host-embed=v; Max-Age=60; Path=/; Secure; HttpOnly; SameSite=None; Partitioned"
    )
    assert spec.delete().endswith("; SameSite=None; Partitioned")
    assert "Partitioned" not in CookieSpec("__Host-embed", same_site="none").set("v", 60)
    with pytest.raises(ConfigurationError, match="Partitioned but not Secure") as caught:
        CookieSpec("embed", same_site="lax", secure=False, partitioned=True)
    assert "keep secure=True" in str(caught.value)


def test_expires_is_written_with_max_age_when_the_time_is_given() -> None:
    spec = CookieSpec("__Host-session")
    assert spec.set("abc", 60, 1_800_000_000.5) == (
        "__Host-session=abc; Max-Age=60; Expires=Fri, 15 Jan 2027 08:01:00 GMT; Path=/; "
        "Secure; HttpOnly; SameSite=Lax"
    )
    # A browser-session cookie has neither; Starlette writes no Expires, nor its spelling.
    assert spec.set("abc", None, 1_800_000_000) == spec.set("abc", None)
    starlette = CookieSpec("s", spelling="starlette")
    assert starlette.set("v", 60, 1_800_000_000) == starlette.set("v", 60)
    assert "expires" not in starlette.set("v", 60, 1_800_000_000).lower()


def test_starlette_spelling_writes_the_attributes_as_starlette_does() -> None:
    spec = CookieSpec(
        "s", domain="example.org", same_site="none", partitioned=True, spelling="starlette"
    )
    assert spec.set("v", 60) == (
        "s=v; path=/; Max-Age=60; httponly; samesite=none; secure; domain=example.org; partitioned"
    )
    assert spec.set("v", None) == (
        "s=v; path=/; httponly; samesite=none; secure; domain=example.org; partitioned"
    )
    assert spec.delete() == (
        "s=; path=/; Max-Age=0; expires=Thu, 01 Jan 1970 00:00:00 GMT; httponly; "
        "samesite=none; secure; domain=example.org; partitioned"
    )
    plain = CookieSpec("s", path="/app", secure=False, http_only=False, spelling="starlette")
    assert plain.set("v", 5) == "s=v; path=/app; Max-Age=5; samesite=lax"


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"path": "/app", "domain": "example.org", "same_site": "strict"},
        {"secure": False, "http_only": False},
        {"same_site": "none", "partitioned": True},
    ],
)
def test_every_spelling_sends_the_same_attributes(settings: dict[str, object]) -> None:
    """Attribute names and the SameSite value are case-insensitive (RFC 6265 section 5.2)."""

    def read(header: str) -> tuple[str, str, dict[str, str | None]]:
        name, value, attrs = parse_set_cookie(header)
        if attrs.get("samesite") is not None:
            attrs["samesite"] = str(attrs["samesite"]).lower()
        return name, value, attrs

    standard, starlette = (CookieSpec("s", spelling=s, **settings) for s in SPELLINGS)  # type: ignore[arg-type]
    assert read(standard.set("v", 60)) == read(starlette.set("v", 60))
    assert read(standard.set("v", None)) == read(starlette.set("v", None))
    assert read(standard.delete()) == read(starlette.delete())
    assert standard.set("v", 60) != starlette.set("v", 60)


def test_a_spelling_keeps_the_prefix_rules() -> None:
    with pytest.raises(ConfigurationError, match="__Secure- prefix"):
        CookieSpec("__Host-s", path="/app", spelling="starlette")
    with pytest.raises(ConfigurationError, match="insecure_development"):
        CookieSpec("__Secure-s", secure=False, spelling="starlette")


def test_same_site_is_case_insensitive() -> None:
    spec = CookieSpec("s", same_site="STRICT")  # type: ignore[arg-type]
    assert spec.set("v", 1).endswith("SameSite=Strict")
    assert spec.same_site == "strict"


def test_size_counts_name_and_value() -> None:
    assert CookieSpec("__Host-session").size("abc") == len("__Host-session=abc")


def _split_reference(header: str, names: frozenset[str]) -> dict[str, list[str]]:
    """The obvious reading: split on ";", then on the first "=", strip, keep our names."""
    found: dict[str, list[str]] = {}
    for pair in header.split(";"):
        name, eq, value = pair.partition("=")
        name = name.strip(" \t")
        if eq and name in names:
            found.setdefault(name, []).append(value.strip(" \t"))
    return found


_NAMES = frozenset({"__Host-session", "session", "__Host-visitor", "v"})


@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [*_NAMES, ";", "=", " ", "\t", "; ", "a", "-", "__Host-", "x=1", "\x00", "é"]
            ),
            st.text(max_size=8),
        ),
        max_size=40,
    ).map("".join)
)
def test_picking_reads_the_header_as_splitting_it_would(header: str) -> None:
    assert pick_cookies(header, _NAMES) == _split_reference(header, _NAMES)


def test_no_cookie_header_finds_nothing() -> None:
    assert pick_cookies(None, NAMES) == {}
    assert pick_cookies("", NAMES) == {}


def test_letters_around_a_value_are_kept() -> None:
    assert pick_cookies("__Host-session=XxX", NAMES) == {"__Host-session": ["XxX"]}


def test_a_checked_spec_cannot_be_changed_afterwards() -> None:
    """The prefix checks ran at construction: no later edit can make the cookie unsafe."""
    spec = CookieSpec("__Host-session")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.secure = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.domain = "example.com"  # type: ignore[misc]
    assert "Secure" in spec.set("v", 1)


def test_repr_shows_the_settings_not_the_header_text() -> None:
    assert repr(CookieSpec("sid", secure=False)) == (
        "CookieSpec(name='sid', path='/', domain=None, secure=False, http_only=True,"
        " same_site='lax', partitioned=False, spelling='standard')"
    )


def test_the_size_limit_is_the_one_browsers_apply() -> None:
    """RFC 6265bis: a browser drops a cookie whose name and value exceed 4096 bytes."""
    assert MAX_COOKIE_BYTES == 4096


def test_an_empty_value_ends_at_the_next_semicolon() -> None:
    assert pick_cookies("__Host-session=;b=2", NAMES) == {"__Host-session": [""]}
    assert pick_cookies("a=1; __Host-session=", NAMES) == {"__Host-session": [""]}
