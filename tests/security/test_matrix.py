"""The requirement matrix itself: complete, consistent, and the same as in SECURITY.md.

These tests check the matrix rather than sessionkit, so they name no requirement (the
one exception: SECURITY.md's content is what ASVS 7.1.1 and 11.1.1 ask to document).

- every requirement listed in ``asvs.py`` as applicable has at least one test;
- every test in ``tests/security`` carries ``pytest.mark.security`` and names at least one
  requirement, and only requirements that ``asvs.py`` lists;
- SECURITY.md's matrix is the one ``python tests/security/asvs.py --write`` generates;
- the report plugin prints the matrix and writes it as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asvs
import pytest

pytestmark = pytest.mark.security

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


@pytest.fixture(scope="module")
def collected() -> dict[str, Any]:
    """The collection of tests/security (in a subprocess, whatever this run selected)."""
    return asvs.collect()


def test_every_applicable_requirement_has_a_test(collected: dict[str, Any]) -> None:
    missing = [rid for rid in asvs.REQUIREMENTS if not collected["matrix"].get(rid)]
    assert missing == [], f"requirements listed in asvs.py without a test: {missing}"


def test_every_security_test_is_marked_and_traced(collected: dict[str, Any]) -> None:
    assert collected["unmarked"] == [], "tests without pytest.mark.security"
    assert collected["unknown"] == {}, "ids not listed in tests/security/asvs.py"
    untraced = [t for t in collected["untraced"] if "/test_matrix.py::" not in t]
    assert untraced == [], "tests that name no requirement"
    assert len(collected["items"]) > 100


def test_applicable_and_not_applicable_do_not_overlap() -> None:
    assert not set(asvs.REQUIREMENTS) & set(asvs.NOT_APPLICABLE)
    for rid, req in asvs.REQUIREMENTS.items():
        assert req.id == rid
        assert rid.startswith("SK-") == (req.level is None), rid


def test_security_md_holds_the_current_matrix(collected: dict[str, Any]) -> None:
    text = (ROOT / "SECURITY.md").read_text()
    expected = asvs.markdown(collected["matrix"], collected["xfail"])
    assert asvs.security_md_block(text) == expected, (
        "SECURITY.md's matrix is out of date: run python tests/security/asvs.py --write"
    )


@pytest.mark.asvs("11.1.1", "7.1.1")
def test_security_md_covers_what_a_reviewer_needs() -> None:
    text = (ROOT / "SECURITY.md").read_text()
    for heading in (
        "## Reporting a vulnerability",
        "## Threat model",
        "## Key management",
        "## Requirement matrix",
        "### What sessionkit does not protect",
    ):
        assert heading in text, heading
    assert f"ASVS {asvs.ASVS_VERSION}" in text
    assert "pytest -m security" in text
    assert "python -m sessionkit keygen" in text


def test_the_report_plugin_prints_and_writes_the_matrix(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(HERE / "test_sessions.py"),
            "-m",
            "security",
            "-k",
            "documented",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        env={**os.environ, asvs.REPORT_ENV: str(report)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"security requirements (OWASP ASVS {asvs.ASVS_VERSION}" in done.stdout
    assert "7.1.1" in done.stdout
    data = json.loads(report.read_text())
    verdicts = {r["id"]: r["verdict"] for r in data["requirements"]}
    assert verdicts["7.1.1"] == "PASS"
    assert verdicts["SK-LOAD"] == "NOT COLLECTED"
    assert verdicts["SK-ROTATE-TIMER"] == "NOT RUN"  # collected, deselected by -k
