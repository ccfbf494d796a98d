"""``sessionkit.devices``: labels, handles, the listing, ending one session, fresh logins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sessionkit
from sessionkit import ConfigurationError
from sessionkit.devices import (
    ENDED,
    FOREIGN,
    GONE,
    MAX_LABEL_CHARS,
    UNKNOWN_DEVICE,
    DevicePolicy,
    FreshLogin,
    Handles,
    SessionInfo,
    check_fresh_login,
    describe,
    device_label,
    labels_available,
    revoke_steps,
    safe_next,
)
from sessionkit.families import Ended, FamilyRef, Record, new_record
from sessionkit.gate import safe_location
from sessionkit.keys import KeyRing
from sessionkit.lifetime import Timeouts
from sessionkit.session import State, new_session_id
from support import CHROME_ANDROID, FIREFOX_WINDOWS, HOSTILE_TARGETS, SAFARI_IPHONE

NOW = 1_800_000_000

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


# ----------------------------------------------------------------------------- labels


def test_ua_parser_is_installed_for_the_tests() -> None:
    assert labels_available()


@pytest.mark.parametrize(
    ("agent", "label"),
    [
        (FIREFOX_WINDOWS, "Firefox on Windows"),
        (SAFARI_IPHONE, "Mobile Safari on iOS"),
        (CHROME_ANDROID, "Chrome Mobile on Android"),
        (CHROME_MAC, "Chrome on Mac OS X"),
        ("curl/8.5.0", "curl"),
        ("", UNKNOWN_DEVICE),
        (None, UNKNOWN_DEVICE),
        ("nothing anyone knows", UNKNOWN_DEVICE),
    ],
)
def test_device_label_is_browser_family_and_system(agent: str | None, label: str) -> None:
    assert device_label(agent) == label


def test_a_label_carries_no_version() -> None:
    assert not any(ch.isdigit() for ch in device_label(FIREFOX_WINDOWS))


@given(st.text(max_size=2000))
def test_any_user_agent_gives_a_short_printable_label(agent: str) -> None:
    label = device_label(agent)
    assert 0 < len(label) <= MAX_LABEL_CHARS
    assert label.isprintable()
    assert label.isascii()
    assert label == label.strip()


def test_a_huge_user_agent_is_read_only_in_its_first_part() -> None:
    assert device_label(FIREFOX_WINDOWS + "x" * 100_000) == "Firefox on Windows"
    assert device_label("x" * 100_000 + FIREFOX_WINDOWS) == UNKNOWN_DEVICE


# ---------------------------------------------------------------------------- handles


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing([sessionkit.generate_key()])


def test_a_handle_names_its_family_among_the_candidates(ring: KeyRing) -> None:
    handles = Handles(ring)
    families = [new_session_id() for _ in range(5)]
    for family in families:
        handle = handles.handle_for(family)
        assert handles.family_for(handle, families) == family
        assert len(handle) == 22


def test_a_handle_reveals_neither_the_family_nor_depends_on_anything_else(ring: KeyRing) -> None:
    handles = Handles(ring)
    family = new_session_id()
    handle = handles.handle_for(family)
    assert handle != family
    assert family not in handle
    assert handles.handle_for(family) == handle  # stable: the same family, the same handle
    assert Handles(KeyRing([sessionkit.generate_key()])).handle_for(family) != handle


def test_a_handle_names_nothing_outside_the_candidates(ring: KeyRing) -> None:
    handles = Handles(ring)
    mine, theirs = new_session_id(), new_session_id()
    assert handles.family_for(handles.handle_for(theirs), [mine]) is None


def test_a_handle_made_under_another_ring_names_nothing(ring: KeyRing) -> None:
    family = new_session_id()
    other = Handles(KeyRing([sessionkit.generate_key()]))
    assert Handles(ring).family_for(other.handle_for(family), [family]) is None


def test_a_handle_made_before_a_key_rotation_still_works(ring: KeyRing) -> None:
    old_key, new_key = sessionkit.generate_key(), sessionkit.generate_key()
    family = new_session_id()
    before = Handles(KeyRing([old_key])).handle_for(family)
    after = Handles(KeyRing([new_key, old_key]))
    assert after.family_for(before, [family]) == family
    assert after.handle_for(family) != before
    assert Handles(KeyRing([new_key])).family_for(before, [family]) is None


@pytest.mark.parametrize(
    "handle",
    [None, 42, b"bytes", "", "short", "x" * 22, "!" * 22, "é" * 22, "A" * 23, "A" * 10_000],
)
def test_malformed_handles_name_nothing(ring: KeyRing, handle: Any) -> None:
    family = new_session_id()
    assert Handles(ring).family_for(handle, [family]) is None


# ---------------------------------------------------------------------------- listing

TIMEOUTS = Timeouts()


def _record(
    user: str = "alice",
    *,
    created: int = NOW - 100,
    seen: int = NOW - 10,
    device: str | None = "Firefox on Windows",
    address: str | None = "192.0.2.0",
) -> tuple[str, Record]:
    family = new_session_id()
    state = State(new_session_id(), family, user, created, seen, created, created, 1, None)
    return family, new_record(state, {}, created, device, address)


def test_describe_gives_each_session_without_its_ids(ring: KeyRing) -> None:
    handles = Handles(ring)
    family, record = _record()
    [info] = describe([(family, record)], handles, TIMEOUTS, NOW)
    assert info == SessionInfo(
        handle=handles.handle_for(family),
        device="Firefox on Windows",
        address="192.0.2.0",
        created_at=NOW - 100,
        last_seen=NOW - 10,
        auth_time=NOW - 100,
        current=False,
    )
    assert family not in repr(info)
    assert record.state.id not in repr(info)


def test_describe_puts_the_current_session_first_then_the_most_recent(ring: KeyRing) -> None:
    handles = Handles(ring)
    old, recent, current = _record(seen=NOW - 500), _record(seen=NOW - 5), _record(seen=NOW - 50)
    listed = describe([old, recent, current], handles, TIMEOUTS, NOW, current[0])
    assert [i.handle for i in listed] == [handles.handle_for(f) for f, _ in (current, recent, old)]
    assert [i.current for i in listed] == [True, False, False]


def test_describe_leaves_out_sessions_that_timed_out(ring: KeyRing) -> None:
    idle = _record(seen=NOW - TIMEOUTS.idle - 1)
    too_old = _record(created=NOW - TIMEOUTS.absolute - 1, seen=NOW)
    live = _record()
    listed = describe([idle, too_old, live], Handles(ring), TIMEOUTS, NOW)
    assert [i.handle for i in listed] == [Handles(ring).handle_for(live[0])]


# ---------------------------------------------------------------------------- revoking


def _drive(steps: Any, answers: Callable[[str, tuple[Any, ...]], Any]) -> tuple[str, list[str]]:
    """Run a store conversation against ``answers``; return its outcome and the calls."""
    calls: list[str] = []
    answer: Any = None
    try:
        while True:
            name, args = steps.send(answer)
            calls.append(name)
            answer = answers(name, args)
    except StopIteration as stop:
        return stop.value, calls


def test_revoke_steps_write_a_tombstone_over_the_named_family(ring: KeyRing) -> None:
    handles = Handles(ring)
    mine, other = _record(), _record()
    saved: list[tuple[FamilyRef, int | None, Any]] = []

    def answers(name: str, args: tuple[Any, ...]) -> Any:
        if name == "families_of":
            assert args[0] == "alice"
            return [mine, other]
        ref, expected, stored, until, _ = args
        saved.append((ref, expected, stored))
        assert until > NOW
        return True

    steps = revoke_steps("alice", handles.handle_for(mine[0]), handles, ("ns",), TIMEOUTS, NOW)
    assert _drive(steps, answers) == (ENDED, ["families_of", "save"])
    [(ref, expected, stored)] = saved
    assert ref == FamilyRef(mine[0], "alice", ("ns",))
    assert expected == mine[1].version
    assert stored == Ended(mine[1].version + 1, NOW, "revoked")


def test_revoke_steps_refuse_a_handle_of_another_users_session(ring: KeyRing) -> None:
    handles = Handles(ring)
    mine, theirs = _record(), _record("bob")

    def answers(name: str, args: tuple[Any, ...]) -> Any:
        assert name == "families_of"
        return [mine]

    steps = revoke_steps("alice", handles.handle_for(theirs[0]), handles, ("ns",), TIMEOUTS, NOW)
    assert _drive(steps, answers) == (FOREIGN, ["families_of"])


def test_revoke_steps_retry_over_a_parallel_write_and_stop_when_it_ended(ring: KeyRing) -> None:
    handles = Handles(ring)
    family, record = _record()
    newer = Record(record.version + 1, record.state, (), NOW, b"{}")
    loads = iter([newer, None])
    expected: list[int] = []

    def answers(name: str, args: tuple[Any, ...]) -> Any:
        if name == "families_of":
            return [(family, record)]
        if name == "load":
            return next(loads)
        expected.append(args[1])
        return False

    steps = revoke_steps("alice", handles.handle_for(family), handles, ("ns",), TIMEOUTS, NOW)
    outcome, calls = _drive(steps, answers)
    assert (outcome, calls) == (GONE, ["families_of", "save", "load", "save", "load"])
    assert expected == [record.version, newer.version]


# ------------------------------------------------------------------------ fresh logins


def test_a_fresh_login_passes_and_a_stale_one_goes_to_reauth() -> None:
    rule = FreshLogin(300, "/reauth")
    assert rule.decide(0.0, "/account", "") is None
    assert rule.decide(300.0, "/account", "") is None
    assert rule.decide(300.5, "/account", "tab=keys") == "/reauth?next=%2Faccount%3Ftab%3Dkeys"
    assert rule.decide(None, "/account", "") == "/reauth?next=%2Faccount"


def test_the_next_parameter_can_be_renamed() -> None:
    assert FreshLogin(60, "/login", "back").decide(None, "/a", "") == "/login?back=%2Fa"


def _next_of(location: str) -> str:
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path) == ("", "", "/reauth")
    [value] = parse_qs(parts.query, strict_parsing=True)["next"]
    return value


def _assert_same_origin(location: str) -> None:
    assert location.startswith("/")
    assert not location.startswith("//")
    assert all(0x21 <= ord(ch) < 0x7F for ch in location), location
    assert "\\" not in location
    parts = urlsplit(location)
    assert parts.scheme == ""
    assert parts.netloc == ""


@pytest.mark.parametrize(("path", "query"), HOSTILE_TARGETS)
def test_next_survives_the_hostile_targets(path: str, query: str) -> None:
    """The gate's table of hostile request targets (tests/core/test_gate.py)."""
    location = FreshLogin(300, "/reauth").decide(None, path, query)
    assert location is not None
    _assert_same_origin(location)
    back = _next_of(location)
    _assert_same_origin(back)
    # The re-authentication page accepts the value it is sent back, unchanged.
    assert safe_next(back) == back == safe_location(path, query)


@given(st.text(), st.text())
def test_next_is_always_a_same_origin_path_that_safe_next_accepts(path: str, query: str) -> None:
    location = FreshLogin(1, "/reauth").decide(None, path, query)
    assert location is not None
    back = _next_of(location)
    _assert_same_origin(back)
    assert safe_next(back) == back


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        "",
        "evil.example",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "http://evil.example/",
        "https:evil.example",
        "javascript:alert(1)",
        "/app\r\nSet-Cookie: x=1",
        "/app\x00",
        "/app#frag",
        "/app/ünïcödé",
        " /app",
        "/\t/evil.example",
        "/app?x=\\evil",
    ],
)
def test_safe_next_refuses_what_could_leave_the_site(value: Any) -> None:
    assert safe_next(value) == "/"
    assert safe_next(value, "/home") == "/home"


@pytest.mark.parametrize("value", ["/", "/app", "/app/%C3%BC?q=%C3%BC&a=1", "/a/../b", "/%2F%2Fx"])
def test_safe_next_keeps_relative_paths_on_this_site(value: str) -> None:
    assert safe_next(value) == value


@given(st.text())
def test_whatever_safe_next_accepts_stays_on_this_site(value: str) -> None:
    _assert_same_origin(safe_next(value))


@pytest.mark.parametrize(
    ("settings", "fix"),
    [
        ({"max_age": 0}, "max_age must be a positive whole number"),
        ({"max_age": -5}, "max_age must be a positive whole number"),
        ({"max_age": 1.5}, "max_age must be a positive whole number"),
        ({"max_age": True}, "max_age must be a positive whole number"),
        ({"max_age": 60, "reauth_path": "login"}, "must be a path on this site"),
        ({"max_age": 60, "reauth_path": "//evil.example"}, "must be a path on this site"),
        ({"max_age": 60, "reauth_path": "https://evil.example/"}, "must be a path on this site"),
        ({"max_age": 60, "reauth_path": "/login?x=1"}, "without a query"),
        ({"max_age": 60, "next_param": ""}, "next_param"),
        ({"max_age": 60, "next_param": "a b"}, "next_param"),
    ],
)
def test_bad_fresh_login_settings_fail_naming_the_fix(settings: dict[str, Any], fix: str) -> None:
    with pytest.raises(ConfigurationError, match=fix):
        FreshLogin(**settings)
    if "next_param" not in settings:
        with pytest.raises(ConfigurationError, match=fix):
            check_fresh_login(settings["max_age"], settings.get("reauth_path"))


def test_device_policy_checks_its_settings() -> None:
    with pytest.raises(ConfigurationError, match="reauth_path"):
        DevicePolicy(reauth_path="//evil.example")
    with pytest.raises(ConfigurationError, match="on_new_device must be a callable"):
        DevicePolicy(on_new_device="send mail")  # type: ignore[arg-type]
    assert DevicePolicy(reauth_path="/reauth").fresh_login(60) == FreshLogin(60, "/reauth")
    assert DevicePolicy().fresh_login(60, "/other") == FreshLogin(60, "/other")


def test_the_kit_checks_the_device_settings_at_start_up(
    make_kit: Callable[..., sessionkit.SessionKit],
) -> None:
    with pytest.raises(ConfigurationError, match="reauth_path"):
        make_kit(reauth_path="https://evil.example/login")
    with pytest.raises(ConfigurationError, match="on_new_device"):
        make_kit(on_new_device=42)
    kit = make_kit(reauth_path="/reauth")
    assert kit.fresh_login(30) == FreshLogin(30, "/reauth")


def test_the_list_needs_a_store(make_kit: Callable[..., sessionkit.SessionKit]) -> None:
    kit = make_kit()
    with pytest.raises(ConfigurationError, match="sessions_of needs a server-side store"):
        kit.sessions_of("alice")
    with pytest.raises(ConfigurationError, match="revoke_session needs a server-side store"):
        kit.revoke_session("alice", "A" * 22)
