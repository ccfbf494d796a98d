"""The frameworks' own session tests, run against sessionkit.

"Drop-in" is measured by Starlette's, Flask's and Django's own session tests, taken from
the sdists of the installed versions (``python tests/peers/fetch.py`` unpacks them; these
tests never touch the network). Each suite runs in a subprocess through the adapters in
``tests/peers/adapters`` (each module says what it changes, and none touches an
assertion), and its per-test outcomes are checked against two things:

- at least :data:`MIN_PASSED` of its tests pass (raise a number when sessionkit closes a
  gap, so it cannot reopen unnoticed);
- ``docs/compatibility.md`` lists every test that does not pass, with its reason, and
  lists no test that passes, so the document cannot go stale.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import pytest
from peers import fetch

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = Path(__file__).resolve().parent / "adapters"
DOC = ROOT / "docs" / "compatibility.md"
#: Where fetch.py unpacked the peers' tests (``SESSIONKIT_PEERS_CACHE`` overrides it).
CACHE = Path(os.environ.get("SESSIONKIT_PEERS_CACHE", fetch.DEFAULT_DEST))
FRAMEWORKS = ("starlette", "flask", "django")

#: The least number of tests of each suite that must pass against sessionkit.
MIN_PASSED = {"starlette": 12, "flask": 20, "django": 64}

#: How many tests each suite runs: a change means the peer's tests changed (a new
#: version was installed) and the selection and the document need a look.
EXPECTED_TOTAL = {"starlette": 15, "flask": 26, "django": 77}

#: Flask's session tests: every test of Flask's test suite whose name says ``session`` or
#: ``flash`` (flashed messages live in the session); fetch.py unpacks the files that hold
#: them.
FLASK_TESTS = (
    "test_basic.py::test_session_accessed",
    "test_basic.py::test_session_path",
    "test_basic.py::test_session_using_application_root",
    "test_basic.py::test_session_using_session_settings",
    "test_basic.py::test_session_using_samesite_attribute",
    "test_basic.py::test_missing_session",
    "test_basic.py::test_session_secret_key_fallbacks",
    "test_basic.py::test_session_expiration",
    "test_basic.py::test_session_stored_last",
    "test_basic.py::test_session_special_types",
    "test_basic.py::test_session_cookie_setting",
    "test_basic.py::test_session_vary_cookie",
    "test_basic.py::test_session_refresh_vary",
    "test_basic.py::test_flashes",
    "test_basic.py::test_extended_flashing",
    "test_config.py::test_session_lifetime",
    "test_helpers.py::TestStreaming::test_stream_keeps_session",
    "test_reqctx.py::test_session_error_pops_context",
    "test_reqctx.py::test_session_dynamic_cookie_name",
    "test_session_interface.py::test_open_session_with_endpoint",
    "test_signals.py::test_flash_signal",
    "test_testing.py::test_redirect_session",
    "test_testing.py::test_session_transactions",
    "test_testing.py::test_session_transactions_no_null_sessions",
    "test_testing.py::test_session_transactions_keep_context",
    "test_testing.py::test_session_transaction_needs_cookies",
)

_TIMEOUT = 120


@dataclass(frozen=True)
class Outcome:
    """One test's result: ``passed``, ``failed``, ``error``, ``skipped``, ... and why."""

    outcome: str
    message: str = ""


@dataclass
class PeerRun:
    """The result of one framework's suite: per-test outcomes and the run's output."""

    framework: str
    command: list[str]
    returncode: int
    output: str
    seconds: float
    outcomes: dict[str, Outcome]

    @property
    def passed(self) -> set[str]:
        """Names of the tests that passed."""
        return {name for name, o in self.outcomes.items() if o.outcome == "passed"}

    @property
    def not_passed(self) -> dict[str, Outcome]:
        """Every test that did not pass (failed, errored, skipped, ...), by name."""
        return {n: o for n, o in self.outcomes.items() if o.outcome != "passed"}

    def tail(self, lines: int = 40) -> str:
        """The end of the run's output, for assertion messages."""
        return "\n".join(self.output.splitlines()[-lines:])


def fetch_command() -> str:
    """The command that fills :data:`CACHE`."""
    if CACHE.resolve() == fetch.DEFAULT_DEST.resolve():
        return "python tests/peers/fetch.py"
    return f"python tests/peers/fetch.py {CACHE}"


def peer_dirs() -> dict[str, Path]:
    """Each framework's unpacked tests, or a failure naming the command to run."""
    missing = [
        f"{peer.name} {peer.version}"
        for peer in fetch.PEERS.values()
        if not fetch.is_complete(CACHE, peer)
    ]
    if missing:
        pytest.fail(
            f"the peer suites' tests ({', '.join(missing)}) are not in {CACHE}: run "
            f"`{fetch_command()}` first (./scripts/test does)",
            pytrace=False,
        )
    return {name: fetch.peer_dir(CACHE, fetch.PEERS[name]) for name in FRAMEWORKS}


def _environment() -> dict[str, str]:
    # Only this checkout's sessionkit and the adapters: an inherited PYTHONPATH (often
    # relative, as in PYTHONPATH=src) would mean something else in the peer's directory.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ADAPTERS)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # nothing written into the cache
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only the plugins named below
    return env


def _pytest_command(where: Path, report: Path, plugin: str, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(where / "pyproject.toml"),  # the framework's own pytest settings
        "--rootdir",
        str(where),
        "-p",
        plugin,
        "-p",
        "no:cacheprovider",
        "--junitxml",
        str(report),
        "-q",
        "--tb=short",
        *args,
    ]


def parse_junit(report: Path) -> dict[str, Outcome]:
    """Per-test outcomes from pytest's JUnit XML, named ``file.py::test`` (or ``test``).

    A test in a class is ``file.py::Class::test``: the JUnit ``classname`` is the dotted
    module path followed by the class, whose name starts with ``Test`` (pytest's default
    ``python_classes``, which the peers keep).
    """
    outcomes: dict[str, Outcome] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        parts = case.get("classname", "").split(".")
        classes: list[str] = []
        while parts and parts[-1].startswith("Test"):
            classes.insert(0, parts.pop())
        module = parts[-1] if parts else ""
        name = case.get("name", "")
        key = "::".join([f"{module}.py", *classes, name]) if module else name
        outcome = Outcome("passed")
        for child in case:
            tag = child.tag
            if tag in ("failure", "error", "skipped"):
                kind = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                outcome = Outcome(kind, (child.get("message") or "").strip()[:500])
                break
        outcomes[key] = outcome
    return outcomes


def parse_django(report: Path) -> dict[str, Outcome]:
    """Per-test outcomes from the JSON report of ``adapters/peer_django_run.py``."""
    tests = json.loads(report.read_text())["tests"]
    return {name: Outcome(t["outcome"], t["message"]) for name, t in tests.items()}


def _start(command: list[str], cwd: Path) -> tuple[subprocess.Popen[str], float]:
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, time.perf_counter()


def run_suites(scratch: Path) -> dict[str, PeerRun]:
    """Run the three suites side by side, each in its own subprocess."""
    dirs = peer_dirs()
    starlette, flask, django = (dirs[name] for name in FRAMEWORKS)
    reports = {name: scratch / f"{name}.report" for name in FRAMEWORKS}
    commands = {
        "starlette": (
            _pytest_command(
                starlette,
                reports["starlette"],
                "peer_starlette",
                "-p",
                "anyio.pytest_plugin",
                "tests/middleware/test_session.py",
            ),
            starlette,
        ),
        "flask": (
            _pytest_command(
                flask,
                reports["flask"],
                "peer_flask",
                *(f"tests/{test}" for test in FLASK_TESTS),
            ),
            flask,
        ),
        "django": (
            [
                sys.executable,
                str(ADAPTERS / "peer_django_run.py"),
                str(reports["django"]),
                str(django / "tests"),
            ],
            django,
        ),
    }
    started = {name: (*_start(command, cwd), command) for name, (command, cwd) in commands.items()}
    runs: dict[str, PeerRun] = {}
    try:
        for name, (process, start, command) in started.items():
            try:
                output, _ = process.communicate(timeout=_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
                pytest.fail(f"the {name} peer suite ran over {_TIMEOUT}s:\n{output[-4000:]}")
            seconds = time.perf_counter() - start
            report = reports[name]
            if not report.is_file():
                pytest.fail(f"the {name} peer suite wrote no report; its output:\n{output[-4000:]}")
            outcomes = parse_django(report) if name == "django" else parse_junit(report)
            runs[name] = PeerRun(name, command, process.returncode, output, seconds, outcomes)
    finally:
        for process, _, _ in started.values():
            if process.poll() is None:  # only when an earlier suite failed to report
                process.kill()
                process.communicate()
    return runs


def documented_failures(framework: str) -> dict[str, str]:
    """The tests ``docs/compatibility.md`` lists as failing for ``framework``: name -> row.

    A row is a table line whose first cell is a test name in backticks, under the
    ``## <Framework>`` heading.
    """
    section = re.search(
        rf"^## {framework}\b(.*?)(?=^## |\Z)", DOC.read_text(), re.MULTILINE | re.DOTALL | re.I
    )
    assert section is not None, f"{DOC} has no '## {framework.capitalize()}' section"
    rows = re.findall(r"^\|\s*`([^`]+)`\s*\|(.*)$", section.group(1), re.MULTILINE)
    names = [name for name, _ in rows]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"{DOC} lists these {framework} tests twice: {duplicates}"
    return {name: rest.strip() for name, rest in rows}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PeerRun]:
    """The three peer suites' results, run once for this module."""
    return run_suites(tmp_path_factory.mktemp("peers"))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_suite_runs_every_selected_test(runs: dict[str, PeerRun], framework: str) -> None:
    run = runs[framework]
    assert run.returncode in (0, 1), (
        f"{framework}: exit status {run.returncode} (not a test outcome):\n{run.tail()}"
    )
    if framework == "flask":
        assert sorted(run.outcomes) == sorted(FLASK_TESTS), run.tail()
    assert len(run.outcomes) == EXPECTED_TOTAL[framework], (
        f"{framework} ran {len(run.outcomes)} tests, not {EXPECTED_TOTAL[framework]}: "
        f"{sorted(run.outcomes)}\n{run.tail()}"
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_enough_tests_pass(runs: dict[str, PeerRun], framework: str) -> None:
    run = runs[framework]
    passed = len(run.passed)
    assert passed >= MIN_PASSED[framework], (
        f"{framework}: {passed}/{len(run.outcomes)} peer tests pass, fewer than "
        f"MIN_PASSED[{framework!r}] = {MIN_PASSED[framework]}; now failing: "
        f"{sorted(run.not_passed)}"
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_failure_is_documented(runs: dict[str, PeerRun], framework: str) -> None:
    run = runs[framework]
    documented = documented_failures(framework)
    missing = {n: o for n, o in run.not_passed.items() if n not in documented}
    assert not missing, f"{framework} tests that do not pass and are missing from {DOC}:\n" + (
        "\n".join(f"  {name}: {o.outcome}: {o.message}" for name, o in sorted(missing.items()))
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_no_documented_failure_passes(runs: dict[str, PeerRun], framework: str) -> None:
    run = runs[framework]
    documented = documented_failures(framework)
    unknown = sorted(set(documented) - set(run.outcomes))
    assert not unknown, f"{DOC} lists {framework} tests that do not exist: {unknown}"
    passing = sorted(set(documented) & run.passed)
    assert not passing, (
        f"{framework} tests listed in {DOC} as failing now pass: remove them from the "
        f"document and raise MIN_PASSED[{framework!r}] to {len(run.passed)}: {passing}"
    )
