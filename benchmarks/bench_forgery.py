"""Cost of the cross-site request forgery checks per request, in process.

Run from the repository root::

    python -m benchmarks.bench_forgery            # about 10 s
    python -m benchmarks.bench_forgery --quick    # about 2 s

Every case is timed in batches, interleaved with the others, and the median of the
repeats is printed in nanoseconds per call. The target is at most 1 µs for the check of
a safe GET (what nearly every request pays) and for a same-origin POST from a current
browser; the token rows show what a token path adds. Nothing here asserts: the numbers
are printed, with the target beside the two that have one. The first row, one empty Python
call, shows how
loaded the machine is: on a busy one every row grows by the same factor.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import sessionkit
from sessionkit.forgery import ForgeryPolicy, Provenance

APP = "https://app.example"
FAMILY = "f" * 22
TARGET_NS = 1000.0


def nothing() -> None:
    """The reference row: what one Python call costs on this machine right now."""


def cases() -> dict[str, tuple[Callable[[], object], float | None]]:
    """Each case: a call to time, and its target in ns (None: no target)."""
    key = sessionkit.generate_key()
    kit = sessionkit.SessionKit(secret_keys=[key])
    forgery = kit.forgery
    tokens = sessionkit.SessionKit(
        secret_keys=[key], forgery=ForgeryPolicy(token_paths=["/app"])
    ).forgery
    safe = Provenance(host="app.example")
    current = Provenance(origin=APP, fetch_site="same-origin", host="app.example")
    old_safari = Provenance(origin=APP, host="app.example")
    cross = Provenance(origin="https://evil.example", fetch_site="cross-site", host="app.example")
    token = tokens.mint(FAMILY, 1, "/app")
    decide = forgery.decide

    def refused() -> object:
        reason, _ = decide("POST", "/transfer", cross)
        return forgery.refusal(reason or "", "text/html")

    return {
        "reference: call a function that returns None": (nothing, None),
        "decide: safe GET": (lambda: decide("GET", "/page", safe), TARGET_NS),
        "decide: POST, Sec-Fetch-Site same-origin": (
            lambda: decide("POST", "/transfer", current),
            TARGET_NS,
        ),
        "decide: POST, Origin only (old Safari)": (
            lambda: decide("POST", "/transfer", old_safari),
            None,
        ),
        "decide + 403 page: POST, cross-site": (refused, None),
        "decide: POST to a token path": (
            lambda: tokens.decide("POST", "/app/save", current),
            None,
        ),
        "mint a token": (lambda: tokens.mint(FAMILY, 1, "/app"), None),
        "verify a token": (lambda: tokens.verify(token, FAMILY, 1, "/app"), None),
        "Provenance(...) built by a front end": (
            lambda: Provenance(APP, None, "same-origin", "app.example", "https"),
            None,
        ),
        "kit.open, GET, no provenance": (lambda: kit.open(None, method="GET"), None),
        "kit.open, GET, with provenance": (
            lambda: kit.open(None, method="GET", provenance=safe),
            None,
        ),
    }


def batch(call: Callable[[], object], n: int) -> float:
    """Nanoseconds per call over ``n`` calls."""
    start = time.perf_counter_ns()
    for _ in range(n):
        call()
    return (time.perf_counter_ns() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    args = parser.parse_args()
    repeats, n = (3, 20_000) if args.quick else (9, 50_000)
    table = cases()
    for call, _ in table.values():
        batch(call, 1000)  # warm caches (origin_of, the key schedule)
    timings: dict[str, list[float]] = {name: [] for name in table}
    names = list(table)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            timings[name].append(batch(table[name][0], n))
    width = max(map(len, names))
    print(f"{'case':<{width}}  {'ns/call':>9}  {'IQR':>13}  target")
    for name in names:
        values = sorted(timings[name])
        median = statistics.median(values)
        low, high = values[len(values) // 4], values[(3 * len(values)) // 4]
        target = table[name][1]
        verdict = ""
        if target is not None:
            verdict = f"<= {target:.0f} ns: {'met' if median <= target else 'MISSED'}"
        print(f"{name:<{width}}  {median:9.0f}  [{low:5.0f}, {high:5.0f}]  {verdict}")
    opened = statistics.median(timings["kit.open, GET, with provenance"])
    bare = statistics.median(timings["kit.open, GET, no provenance"])
    print(f"\nforgery share of kit.open for a safe GET: {opened - bare:.0f} ns")


if __name__ == "__main__":
    main()
