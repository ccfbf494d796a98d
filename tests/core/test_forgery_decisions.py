"""The forgery core's finer decisions: paths, proxies, forms, tokens and the refusal itself."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

import sessionkit
from sessionkit.forgery import (
    EXEMPT_MARK,
    MAX_FORM_PREFIX,
    TOKEN_MARKER,
    Forgery,
    ForgeryPolicy,
    Provenance,
    TokenCheck,
    check_origin,
    check_websocket,
    csrf_exempt,
    form_token,
    reads_form,
    request_origin,
    token_scope,
)
from sessionkit.keys import KeyRing
from sessionkit.seal import b64decode

APP = "https://app.example"
HOST = "app.example"
FAMILY = "f" * 22
#: A request that reached the app through one proxy, which says it was https://app.example.
BEHIND = Provenance(
    origin=APP, host="10.0.0.5:8000", scheme="http", forwarded_host=HOST, forwarded_proto="https"
)


def here(**headers: Any) -> Provenance:
    """A request to https://app.example with the given origin headers."""
    headers.setdefault("host", HOST)
    return Provenance(**headers)


def forgery(policy: ForgeryPolicy | None = None, key: str | None = None) -> Forgery:
    return Forgery(policy or ForgeryPolicy(), KeyRing([key or sessionkit.generate_key()]))


# --------------------------------------------------------------------------- the policy


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "post", "Delete"])
def test_no_method_that_changes_things_can_be_declared_safe(method: str) -> None:
    with pytest.raises(sessionkit.ConfigurationError) as caught:
        ForgeryPolicy(safe_methods=["GET", method])
    assert str(caught.value).startswith(f"safe_methods lists {method.upper()}, which change")


def test_a_bad_prefix_is_refused_naming_its_setting() -> None:
    with pytest.raises(sessionkit.ConfigurationError) as exempt:
        ForgeryPolicy(exempt=["hooks"])
    assert str(exempt.value) == "csrf_exempt entry 'hooks' must be a path starting with '/'"
    with pytest.raises(sessionkit.ConfigurationError) as tokens:
        ForgeryPolicy(token_paths=[3])  # type: ignore[list-item]
    assert str(tokens.value) == "token_paths entry 3 must be a path starting with '/'"
    with pytest.raises(sessionkit.ConfigurationError) as single:
        ForgeryPolicy(token_paths="/app")
    assert str(single.value).startswith("token_paths takes a list of path prefixes")


def test_a_prefix_loses_its_trailing_slashes_only() -> None:
    policy = ForgeryPolicy(exempt=["/hooks/X/", "/X//"], token_paths=["/"])
    assert policy.exempt == ("/hooks/X", "/X")
    assert policy.token_paths == ("",)


@pytest.mark.parametrize(
    "entry", ["https://[::1", "https://[app.example]", "https://app.example:99999"]
)
def test_an_origin_that_does_not_parse_is_refused_naming_the_fix(entry: str) -> None:
    with pytest.raises(sessionkit.ConfigurationError, match=r"scheme://host\[:port\]"):
        ForgeryPolicy(trusted_origins=[entry])


def test_exempts_says_true_or_false() -> None:
    assert ForgeryPolicy().exempts("/hooks") is False
    policy = ForgeryPolicy(exempt=["/hooks"])
    assert policy.exempts("/hooks/pay") is True
    assert policy.exempts("/account") is False


# --------------------------------------------------------------------------- paths


def test_a_path_is_also_judged_once_its_slashes_are_collapsed() -> None:
    policy = ForgeryPolicy(token_paths=["/app"])
    assert token_scope(policy, "//app/pay") == "/app"
    assert token_scope(policy, "/x//..//app/pay") == "/app"
    assert token_scope(ForgeryPolicy(token_paths=["/X"]), "//X/y") == "/X"


def test_a_path_covered_as_written_keeps_that_scope() -> None:
    policy = ForgeryPolicy(token_paths=["/app", "/adm"])
    assert token_scope(policy, "/app/../x") == "/app"
    assert token_scope(policy, "/app/../adm/x") == "/app", "a tie keeps the path as written"
    assert token_scope(ForgeryPolicy(token_paths=["/a", "/app"]), "/a/../app/x") == "/app"


def test_an_empty_path_gets_a_decision() -> None:
    everywhere = ForgeryPolicy(token_paths=["/"], exempt=["/hooks"])
    assert token_scope(everywhere, "") == ""
    assert everywhere.exempts("") is False


def test_the_root_prefix_covers_a_path_without_a_leading_slash() -> None:
    assert ForgeryPolicy(exempt=["/"]).exempts("pay") is True
    assert ForgeryPolicy(exempt=["/"]).exempts("") is True


# --------------------------------------------------------------------------- origins


def test_proxy_headers_count_only_for_the_hops_given() -> None:
    assert check_origin(ForgeryPolicy(), "POST", "/", BEHIND) == "origin_mismatch"
    assert check_origin(ForgeryPolicy(), "POST", "/", BEHIND, 1) is None
    assert check_websocket(ForgeryPolicy(), "/ws", BEHIND) == "origin_mismatch"
    assert check_websocket(ForgeryPolicy(), "/ws", BEHIND, 1) is None
    assert forgery().decide("POST", "/", BEHIND) == ("origin_mismatch", None)
    assert forgery().decide("POST", "/", BEHIND, 1) == (None, None)


def test_trusted_hops_without_proxy_headers_use_the_request_itself() -> None:
    assert request_origin(here(), trusted_hops=1) == APP
    assert request_origin(here(forwarded_host="", forwarded_proto=""), trusted_hops=1) == APP


def test_a_host_with_a_path_or_user_part_has_no_origin() -> None:
    assert request_origin(Provenance(host="evil.example/x")) is None
    assert request_origin(Provenance(host="app.example@evil.example")) is None
    assert request_origin(here()) == APP


def test_origin_null_never_matches_even_a_request_without_host() -> None:
    hostless = Provenance(origin="null", host=None)
    assert check_origin(ForgeryPolicy(), "POST", "/", hostless) == "origin_mismatch"
    assert check_websocket(ForgeryPolicy(), "/ws", hostless) == "origin_mismatch"
    assert check_origin(ForgeryPolicy(), "POST", "/", here(origin=" NULL ")) == "origin_mismatch"


# --------------------------------------------------------------------------- forms


def test_which_content_types_are_forms_is_true_or_false() -> None:
    assert reads_form("application/x-www-form-urlencoded;charset=utf-8") is True
    assert reads_form("multipart/form-data ; boundary=a;b") is True
    assert reads_form("") is False
    assert reads_form(None) is False
    assert reads_form("text/plain; x=multipart/form-data") is False


def test_a_multipart_part_without_a_body_is_skipped() -> None:
    kind = "multipart/form-data; boundary=B; charset=utf-8"
    body = (
        b'--B\r\nContent-Disposition: form-data; name="csrf_token"\r\n'
        b'--B\r\nContent-Type: text/plain\r\nContent-Disposition: form-data; name="csrf_token"'
        b"\r\n\r\ngood\r\n--B--\r\n"
    )
    assert form_token(body, kind, "csrf_token") == "good"


def test_a_token_field_that_is_not_utf8_reads_with_replacement_characters() -> None:
    body = b'--B\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\nab\xff\r\n--B--\r\n'
    assert form_token(body, "multipart/form-data; boundary=B", "csrf_token") == "ab\ufffd"


def test_the_form_prefix_read_is_64_kib() -> None:
    """The front ends read this much of a form body; the docs tell users to put the field first."""
    assert MAX_FORM_PREFIX == 65536


# --------------------------------------------------------------------------- tokens


def test_a_token_is_the_mac_under_the_rings_forgery_subkey_masked() -> None:
    key = sessionkit.generate_key()
    ring = KeyRing([key])
    raw = b64decode(forgery(key=key).mint(FAMILY, 7, "/app"))
    mac = bytes(a ^ b for a, b in zip(raw[:32], raw[32:], strict=True))
    subkey = ring.subkeys("forgery")[ring.key_ids[0]]
    assert mac == hmac.digest(subkey, f"{FAMILY}\x007\x00/app".encode(), hashlib.sha256)


def test_a_scope_of_any_text_mints_and_verifies() -> None:
    tokens = forgery()
    for scope in ("/caf\u00e9", "/\ud800"):
        assert tokens.verify(tokens.mint(FAMILY, 1, scope), FAMILY, 1, scope) is None


def test_the_exempt_mark_and_the_token_marker_keep_their_names() -> None:
    """Apps and their sessions see these names: they must not change between releases."""

    def view() -> None:
        """A view."""

    csrf_exempt(view)
    assert getattr(view, "__sessionkit_csrf_exempt__") is True  # noqa: B009
    assert EXEMPT_MARK == "__sessionkit_csrf_exempt__"
    assert TOKEN_MARKER == "sessionkit.csrf"


def test_the_marker_keeps_the_session_a_token_was_made_for(
    make_kit: Any,
) -> None:
    page = make_kit(forgery=ForgeryPolicy(token_paths=["/"])).open(None)
    page.csrf_token()
    assert list(page.session) == ["sessionkit.csrf"]


# --------------------------------------------------------------------------- Forgery


def test_a_forgery_defaults_to_configured_with_the_root_as_home() -> None:
    plain = forgery()
    assert plain.configured is True
    assert plain.home == "/"
    assert b'href="/"' in plain.refusal("cross_site", "text/html").body
    ring = KeyRing([sessionkit.generate_key()])
    assert Forgery(ForgeryPolicy(), ring, configured=False).configured is False


def test_which_methods_are_checked() -> None:
    assert forgery().checks("POST") is True
    assert forgery().checks("WEBSOCKET") is True
    assert forgery().checks("GET") is False
    assert forgery(ForgeryPolicy(enabled=False)).checks("POST") is False
    assert not forgery(ForgeryPolicy(enabled=False))


def test_a_safe_method_needs_nothing_even_on_a_token_path() -> None:
    tokens = forgery(ForgeryPolicy(token_paths=["/"]))
    evil = here(origin="https://evil.example")
    assert tokens.decide("GET", "/form", evil) == (None, None)
    assert tokens.decide("HEAD", "/form", here()) == (None, None)


def test_an_exempt_token_path_asks_for_no_token() -> None:
    tokens = forgery(ForgeryPolicy(token_paths=["/"], exempt=["/hooks"]))
    assert tokens.decide("POST", "/hooks/pay", here(origin=APP)) == (None, None)
    assert tokens.decide("POST", "/pay", here(origin=APP, token="t")) == (
        None,
        TokenCheck("", "t", False),
    )


def test_a_fine_websocket_handshake_never_asks_the_exemption() -> None:
    asked: list[bool] = []

    def exempt() -> bool:
        asked.append(True)
        return False

    tokens = forgery(ForgeryPolicy(token_paths=["/"]))
    assert tokens.decide("WEBSOCKET", "/ws", here(origin=APP), exempt=exempt) == (None, None)
    assert asked == []


@pytest.mark.parametrize("site", ["same-origin", "none"])
def test_a_websocket_handshake_is_judged_by_its_origin_whatever_its_fetch_site(site: str) -> None:
    """``Sec-Fetch-Site`` is not relied on for a handshake: its ``Origin`` decides."""
    plain = forgery()
    foreign = here(origin="https://evil.example", fetch_site=site)
    assert plain.decide("WEBSOCKET", "/ws", foreign) == ("origin_mismatch", None)
    assert plain.decide("WEBSOCKET", "/ws", here(origin=APP, fetch_site=site)) == (None, None)
    assert plain.decide("POST", "/form", foreign) == (None, None)


def test_a_path_outside_the_token_paths_gets_the_site_wide_scope() -> None:
    tokens = forgery(ForgeryPolicy(token_paths=["/app"]))
    assert tokens.scope_for("/public/form") == ""
    assert tokens.scope_for("/app/form") == "/app"


def test_the_json_refusal_in_full() -> None:
    refusal = forgery().refusal("origin_mismatch", "application/json")
    assert json.loads(refusal.body) == {
        "error": "forbidden",
        "reason": "origin_mismatch",
        "detail": "This request did not come from this site; reload the page and try again.",
    }
    assert refusal.headers == [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(refusal.body))),
        ("Cache-Control", "no-store"),
        ("Vary", "Accept"),
    ]
