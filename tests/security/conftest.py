"""The security suite's plugin: ASVS markers, the requirement matrix, and shared fixtures.

Every test here carries ``pytest.mark.security`` and ``pytest.mark.asvs("7.2.4", ...)``
with the ids (see ``asvs.py``) it proves. At the end of any run that included security
tests, the terminal summary prints the matrix requirement -> tests -> result. Set
``SESSIONKIT_ASVS_REPORT=path`` to also get it as JSON; ``SESSIONKIT_ASVS_DUMP=path``
writes the collected matrix (``asvs.py`` and ``test_matrix.py`` use it).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    # The suite's helper modules (asvs, sksec) live beside the tests; test directories are
    # not packages (pytest runs with --import-mode=importlib).
    sys.path.insert(0, str(HERE))

import asvs  # noqa: E402

_MATRIX = pytest.StashKey[dict[str, list[str]]]()
_ITEMS = pytest.StashKey[set[str]]()
_RESULTS = pytest.StashKey[dict[str, str]]()
_NOTES = pytest.StashKey[dict[str, list[str]]]()
_WHOLE = pytest.StashKey[bool]()


def _ours(item: pytest.Item) -> bool:
    return HERE in Path(str(item.path)).resolve().parents


def requirement_ids(item: pytest.Item) -> list[str]:
    """The ids an item names through its ``asvs`` markers, in order, without repeats."""
    ids: list[str] = []
    for mark in item.iter_markers("asvs"):
        ids.extend(str(arg) for arg in mark.args if str(arg) not in ids)
    return ids


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    matrix: dict[str, list[str]] = {}
    ours: set[str] = set()
    unmarked: list[str] = []
    untraced: list[str] = []
    unknown: dict[str, list[str]] = {}
    xfail: list[str] = []
    for item in items:
        if not _ours(item):
            continue
        ours.add(item.nodeid)
        if item.get_closest_marker("xfail") is not None:
            xfail.append(item.nodeid)
        if item.get_closest_marker("security") is None:
            unmarked.append(item.nodeid)
        ids = requirement_ids(item)
        if not ids:
            untraced.append(item.nodeid)
        for rid in ids:
            matrix.setdefault(rid, []).append(item.nodeid)
            if rid not in asvs.REQUIREMENTS:
                unknown.setdefault(rid, []).append(item.nodeid)
    config.stash[_MATRIX] = matrix
    config.stash[_ITEMS] = ours
    files = {Path(str(item.path)).name for item in items if _ours(item)}
    config.stash[_WHOLE] = files >= {p.name for p in HERE.glob("test_*.py")}
    config.stash.setdefault(_RESULTS, {})
    config.stash.setdefault(_NOTES, {})
    dump = os.environ.get(asvs.DUMP_ENV)
    if dump:
        Path(dump).write_text(
            json.dumps(
                {
                    "matrix": matrix,
                    "items": sorted(ours),
                    "unmarked": unmarked,
                    "untraced": untraced,
                    "unknown": unknown,
                    "xfail": xfail,
                },
                indent=1,
            )
        )


_CONFIG: dict[str, pytest.Config] = {}


def pytest_configure(config: pytest.Config) -> None:
    _CONFIG["config"] = config


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    config = _CONFIG.get("config")
    if config is None or report.nodeid not in config.stash.get(_ITEMS, set()):
        return
    results = config.stash[_RESULTS]
    wasxfail = hasattr(report, "wasxfail")
    if report.when == "setup":
        if report.skipped:
            results[report.nodeid] = "xfailed" if wasxfail else "skipped"
        elif report.failed:
            results[report.nodeid] = "error"
    elif report.when == "call":
        if wasxfail:
            results[report.nodeid] = "xpassed" if report.passed else "xfailed"
        else:
            results[report.nodeid] = report.outcome
        for name, value in report.user_properties:
            if name == "security_note":
                config.stash[_NOTES].setdefault(report.nodeid, []).append(str(value))
    elif report.failed:  # teardown
        results[report.nodeid] = "error"


_RANK = {"failed": 5, "error": 5, "xpassed": 5, "xfailed": 3, "passed": 1, "skipped": 0}
_VERDICT = {5: "FAIL", 3: "KNOWN BUG (xfail)", 1: "PASS", 0: "SKIPPED"}


def verdicts(
    matrix: dict[str, list[str]], results: dict[str, str], whole: bool = True
) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Per requirement: its verdict and each test's result (``not run`` when deselected).

    ``whole`` says whether every test file of the suite was collected: only then does a
    requirement without tests mean "NO TEST" rather than "NOT COLLECTED".
    """
    rows = []
    for rid in [*asvs.REQUIREMENTS, *sorted(set(matrix) - set(asvs.REQUIREMENTS))]:
        tests = [(nodeid, results.get(nodeid, "not run")) for nodeid in matrix.get(rid, [])]
        ran = [_RANK[outcome] for _, outcome in tests if outcome in _RANK]
        if rid not in asvs.REQUIREMENTS:
            verdict = "UNKNOWN ID"
        elif not tests:
            verdict = "NO TEST" if whole else "NOT COLLECTED"
        elif not ran:
            verdict = "NOT RUN"
        else:
            verdict = _VERDICT[max(ran)]
        rows.append((rid, verdict, tests))
    return rows


def _grouped(
    tests: list[tuple[str, str]], notes: dict[str, list[str]]
) -> list[tuple[str, str, str]]:
    """Parametrized cases of one test function on one line: name, outcomes, notes."""
    groups: dict[str, dict[str, int]] = {}
    extras: dict[str, list[str]] = {}
    for nodeid, outcome in tests:
        name = nodeid.removeprefix("tests/security/").split("[", 1)[0]
        counts = groups.setdefault(name, {})
        counts[outcome] = counts.get(outcome, 0) + 1
        for note in notes.get(nodeid, []):
            if note not in extras.setdefault(name, []):
                extras[name].append(note)
    return [
        (
            name,
            ", ".join(o if n == 1 else f"{o} x{n}" for o, n in counts.items()),
            "".join(f"  [{note}]" for note in extras.get(name, [])),
        )
        for name, counts in groups.items()
    ]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    results = config.stash.get(_RESULTS, {})
    if not results:
        return  # no security test ran
    matrix = config.stash.get(_MATRIX, {})
    notes = config.stash.get(_NOTES, {})
    rows = verdicts(matrix, results, config.stash.get(_WHOLE, False))
    write = terminalreporter.write_line
    terminalreporter.section(f"security requirements (OWASP ASVS {asvs.ASVS_VERSION} + SK-)")
    for rid, verdict, tests in rows:
        title = asvs.REQUIREMENTS[rid].title if rid in asvs.REQUIREMENTS else "not in asvs.py"
        write(f"{rid:<22} {verdict:<18} {title}")
        for name, outcomes, extra in _grouped(tests, notes):
            write(f"{'':<22}   {outcomes:<18} {name}{extra}")
    counts: dict[str, int] = {}
    for _, verdict, _ in rows:
        counts[verdict] = counts.get(verdict, 0) + 1
    write("requirements: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
    report = os.environ.get(asvs.REPORT_ENV)
    if report:
        Path(report).write_text(
            json.dumps(
                {
                    "asvs_version": asvs.ASVS_VERSION,
                    "requirements": [
                        {
                            "id": rid,
                            "title": asvs.REQUIREMENTS[rid].title
                            if rid in asvs.REQUIREMENTS
                            else None,
                            "verdict": verdict,
                            "tests": [{"test": n, "result": o} for n, o in tests],
                        }
                        for rid, verdict, tests in rows
                    ],
                    "not_applicable": asvs.NOT_APPLICABLE,
                },
                indent=1,
            )
        )


# ---------------------------------------------------------------- shared fixtures


@pytest.fixture
def events() -> list[Any]:
    """Security events a kit reports; pass ``on_security_event=events.append``."""
    return []


@pytest.fixture
def redis_up(redis_server: Any) -> Iterator[Any]:
    """The session's Redis server, started again after a test that stopped it."""
    try:
        yield redis_server
    finally:
        if not redis_server.running:
            redis_server.start()
