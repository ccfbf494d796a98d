"""Shared fixtures: keys, a movable clock and a SessionKit factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import sessionkit


class Clock:
    """A clock tests move by hand; pass ``clock=clock`` to SessionKit."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def key() -> str:
    return sessionkit.generate_key()


@pytest.fixture
def make_kit(key: str, clock: Clock) -> Callable[..., sessionkit.SessionKit]:
    """Build a SessionKit with the test key and clock; keyword arguments override."""

    def make(**settings: Any) -> sessionkit.SessionKit:
        settings.setdefault("secret_keys", [key])
        settings.setdefault("clock", clock)
        return sessionkit.SessionKit(**settings)

    return make
