"""The kit's timeouts and the per-session lifetime (sessionkit.lifetime)."""

from __future__ import annotations

import datetime

import pytest

from sessionkit import ConfigurationError
from sessionkit.lifetime import Lifetime, Timeouts

NOW = 1_800_000_000
T = Timeouts()
DAY = 24 * 3600


@pytest.mark.parametrize(
    ("settings", "fix"),
    [
        ({"idle": 0}, "idle_timeout must be a positive"),
        ({"idle": 1.5}, "idle_timeout must be a positive"),
        ({"absolute": 100, "idle": 200, "touch": 50}, "raise absolute_timeout"),
        ({"max_lifetime": 100}, "raise max_lifetime"),
        ({"touch": 1000}, "at most half of idle_timeout"),
        ({"grace": 61}, "meant to be seconds"),
        ({"rotate_every": 0}, "rotate_every must be a positive"),
    ],
)
def test_bad_timeouts_fail_at_start_up_naming_the_fix(
    settings: dict[str, object], fix: str
) -> None:
    with pytest.raises(ConfigurationError, match=fix):
        Timeouts(**settings)  # type: ignore[arg-type]


def test_defaults_are_asvs_level_two() -> None:
    assert (T.idle, T.absolute, T.rotate_every, T.grace) == (1800, 43200, 900, 10)
    assert T.max_lifetime == 30 * DAY


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (0, Lifetime(0, 0, False)),
        (0.0, Lifetime(0, 0, False)),
        (600, Lifetime(600, NOW + T.absolute, True)),  # shorter idle; absolute stays
        (datetime.timedelta(minutes=10), Lifetime(600, NOW + T.absolute, True)),
        (600.2, Lifetime(601, NOW + T.absolute, True)),
        (14 * DAY, Lifetime(14 * DAY, NOW + 14 * DAY, True)),  # remember me
        (90 * DAY, Lifetime(30 * DAY, NOW + 30 * DAY, True)),  # capped by max_lifetime
    ],
)
def test_set_expiry_has_djangos_meanings(value: object, expected: Lifetime | None) -> None:
    assert T.lifetime_for(value, NOW, NOW) == expected  # type: ignore[arg-type]


def test_a_datetime_ends_the_session_at_that_moment() -> None:
    moment = datetime.datetime.fromtimestamp(NOW + 3 * DAY, tz=datetime.timezone.utc)
    lifetime = T.lifetime_for(moment, NOW, NOW)
    assert lifetime is not None
    assert T.end_of(lifetime, NOW) == NOW + 3 * DAY
    assert T.lifetime_for(moment.replace(tzinfo=None), NOW, NOW) == lifetime  # naive is UTC


def test_a_negative_expiry_ends_the_session_on_its_next_request() -> None:
    lifetime = T.lifetime_for(-1, NOW, NOW)
    assert T.seconds_left(lifetime, NOW, NOW, NOW) == 0


@pytest.mark.parametrize("value", ["600", True, [1]])
def test_set_expiry_refuses_other_types(value: object) -> None:
    with pytest.raises(TypeError, match="set_expiry takes"):
        T.lifetime_for(value, NOW, NOW)  # type: ignore[arg-type]


def test_the_cookie_lives_until_the_first_bound_due() -> None:
    assert T.max_age(None, NOW, NOW, NOW) == T.idle
    assert T.max_age(None, NOW, NOW + T.absolute - 5, NOW + T.absolute - 5) == 5
    assert T.max_age(Lifetime(0, 0, False), NOW, NOW, NOW) is None
    remembered = Lifetime(14 * DAY, NOW + 14 * DAY, True)
    assert T.max_age(remembered, NOW, NOW, NOW) == 14 * DAY


def test_lowering_the_kits_timeouts_applies_to_sessions_on_the_defaults() -> None:
    stricter = Timeouts(idle=600, absolute=3600)
    assert stricter.seconds_left(None, NOW, NOW, NOW) == 600
    # and max_lifetime caps even a session's own lifetime
    capped = Timeouts(max_lifetime=DAY)
    assert capped.end_of(Lifetime(10 * DAY, NOW + 10 * DAY, True), NOW) == NOW + DAY
