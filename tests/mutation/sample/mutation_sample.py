"""A tiny module for the mutation runner's own test (tests/mutation/test_runner.py)."""

from __future__ import annotations


def clamp(value: int, low: int, high: int) -> int:
    """``value`` moved into ``[low, high]``; only the lower bound is tested."""
    if value < low:
        return low
    if value > high:
        return high
    return value


def halvings(n: int) -> int:
    """How often ``n`` halves before it reaches 1; one mutant of it never ends."""
    count = 0
    while n > 1:
        n //= 2
        count += 1
    return count
