"""Tests of mutation_sample, run by the mutation runner only (the name keeps pytest off it)."""

from __future__ import annotations

from mutation_sample import clamp, halvings


def test_values_below_are_raised_to_the_lower_bound() -> None:
    assert clamp(-5, 0, 10) == 0
    assert clamp(0, 0, 10) == 0


def test_values_inside_are_kept() -> None:
    assert clamp(5, 0, 10) == 5


def test_halvings() -> None:
    assert halvings(1) == 0
    assert halvings(8) == 3
