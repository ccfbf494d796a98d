"""``gate.safe_location``: the path round-trips and never becomes a query, fragment or host."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes, urljoin, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionkit.gate import safe_location


def path_seen_by_the_server(location: str) -> bytes:
    return unquote_to_bytes(urlsplit(location).path)


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/a?b", "/a%3Fb"),
        ("/a?b=1&c", "/a%3Fb=1&c"),
        ("/a#b", "/a%23b"),
        ("/a#b?c", "/a%23b%3Fc"),
        ("/100%", "/100%25"),
        ("/%41", "/%2541"),
        ("/%2F%2Fevil.example", "/%252F%252Fevil.example"),
        ("/a%", "/a%25"),
        ("//evil.example/x", "/evil.example/x"),
        ("///evil.example", "/evil.example"),
        ("////", "/"),
        ("", "/"),
        ("app", "/app"),
        ("/\\evil.example", "/%5Cevil.example"),
        ("/a\udcff", "/a%ED%B3%BF"),
    ],
)
def test_path_characters_that_would_change_the_url_are_escaped(path: str, location: str) -> None:
    assert safe_location(path, "") == location


@pytest.mark.parametrize("path", ["/a?b", "/a#b", "/%41", "//evil.example", "/a/?/#/%/"])
def test_a_path_never_becomes_a_query_a_fragment_or_a_host(path: str) -> None:
    parts = urlsplit(safe_location(path, ""))
    assert (parts.scheme, parts.netloc, parts.query, parts.fragment) == ("", "", "", "")
    assert path_seen_by_the_server(safe_location(path, "")) == ("/" + path.lstrip("/")).encode()


def test_the_query_is_kept_and_cannot_start_a_fragment() -> None:
    assert safe_location("/p", "a=1&b=%41") == "/p?a=1&b=%41"
    assert safe_location("/p", "x=#frag") == "/p?x=%23frag"
    assert safe_location("/p?q", "a=1") == "/p%3Fq?a=1"
    assert safe_location("/p", "") == "/p"


@given(st.text(), st.text())
def test_the_server_sees_the_same_path_and_no_fragment(path: str, query: str) -> None:
    location = safe_location(path, query)
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.fragment) == ("", "", "")
    assert not location.startswith("//")
    assert path_seen_by_the_server(location) == ("/" + path.lstrip("/")).encode()
    assert bool(parts.query) == bool(query)
    assert urlsplit(urljoin("https://site.example/page", location)).netloc == "site.example"


@given(st.text(alphabet="/?#%\\ab", max_size=12))
def test_paths_made_of_the_dangerous_characters(path: str) -> None:
    location = safe_location(path, "")
    assert location.count("/") == ("/" + path.lstrip("/")).count("/")
    assert "?" not in location
    assert "#" not in location
    assert path_seen_by_the_server(location) == ("/" + path.lstrip("/")).encode()


def test_lone_surrogates_in_the_query_are_encoded_not_raised() -> None:
    """An ASGI server may decode bytes with "surrogateescape": such a query still encodes."""
    assert safe_location("/app", "q=\udcff") == "/app?q=%ED%B3%BF"
