"""Run Django's session tests against sessionkit with Django's own test runner.

Usage: ``python peer_django_run.py REPORT DJANGO_TESTS_DIR``. ``DJANGO_TESTS_DIR`` is the
``tests`` directory of Django's unpacked sdist (it holds ``sessions_tests``). The runner
is Django's :class:`~django.test.runner.DiscoverRunner` (test database, test
environment, system checks), with a result class that also records every test's outcome;
they are written to ``REPORT`` as JSON: ``{"tests": {id: {"outcome", "message"}}}`` with
outcome ``passed``, ``failed``, ``error``, ``skipped``, ``xfailed`` or ``xpassed``. The
exit status is Django's: 0 when every test passed.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import unittest
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

ExcInfo = tuple[type[BaseException], BaseException, TracebackType]

SETTINGS = "peer_django_settings"
SUITE = "peer_django_tests"


def _short_id(test: unittest.TestCase) -> str:
    # "peer_django_tests.SessionKitStoreTests.test_cycle" -> "SessionKitStoreTests.test_cycle"
    return test.id().removeprefix(f"{SUITE}.")


def _message(err: ExcInfo) -> str:
    lines = traceback.format_exception_only(err[0], err[1])
    return "".join(lines).strip().splitlines()[-1][:500]


class RecordingResult(unittest.TextTestResult):
    """Django's text result that also keeps each test's outcome for the JSON report."""

    #: Every test's outcome, by short id (one run per process, so one shared record).
    outcomes: ClassVar[dict[str, dict[str, str]]] = {}

    def _record(self, test: unittest.TestCase, outcome: str, message: str = "") -> None:
        name = _short_id(test)
        previous = self.outcomes.get(name)
        if previous is not None and previous["outcome"] in ("failed", "error"):
            return  # a failed subtest decides the test's outcome
        self.outcomes[name] = {"outcome": outcome, "message": message}

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self._record(test, "failed", _message(err))

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        # setUpClass errors come with a placeholder "test"; keep them under its name
        self._record(test, "error", _message(err))

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        self._record(test, "skipped", reason)

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._record(test, "xfailed", _message(err))

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        super().addUnexpectedSuccess(test)
        self._record(test, "xpassed")

    def addSubTest(self, test: unittest.TestCase, subtest: unittest.TestCase, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self.outcomes[_short_id(test)] = {
                "outcome": "failed" if failed else "error",
                "message": f"{subtest.id()}: {_message(err)}",
            }


def main(argv: list[str]) -> int:
    """Run the suite, write the report, return Django's exit status."""
    report, tests_dir = Path(argv[0]), Path(argv[1])
    sys.path.insert(0, str(tests_dir))
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    import django
    from django.test.runner import DiscoverRunner

    django.setup()

    class Runner(DiscoverRunner):
        def get_resultclass(self) -> type[unittest.TextTestResult]:
            return RecordingResult

    failures = Runner(verbosity=1, interactive=False).run_tests([SUITE])
    report.write_text(json.dumps({"tests": RecordingResult.outcomes}, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
