"""The mutation runner (scripts/mutation) judged on a tiny module whose verdicts are known."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = Path(__file__).parent / "sample"


def test_runner_kills_known_mutants_and_reports_known_survivors(tmp_path: Path) -> None:
    equivalent = tmp_path / "equivalent.txt"
    equivalent.write_text(
        (SAMPLE / "equivalent.txt").read_text()
        + "mutation_sample: clamp: return `return low` -> `return None` :: wrongly listed\n"
        + "mutation_sample: clamp: delete `print(value)` :: no such mutant\n"
    )
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "mutation" / "runner.py"),
            "--module-file",
            str(SAMPLE / "mutation_sample.py"),
            "--module-name",
            "mutation_sample",
            "--tests",
            str(SAMPLE / "check_sample.py"),
            "--equivalent",
            str(equivalent),
            "--timeout",
            "3",
            # the sample needs none of the suite's fixtures
            "--pytest-arg=--noconftest",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    lines = run.stdout.splitlines()
    assert run.returncode == 1, run.stdout + run.stderr
    # 17 mutants, 1 set aside as equivalent; the entry naming a killed mutant counts again.
    assert lines[0].startswith(
        "mutation_sample: 81.2% killed (13 of 16 mutants, 2 by timeout; 1 equivalent,"
    ), lines[0]
    assert lines[1:] == [
        "  survived: line 10: mutation_sample: clamp: delete `if value > high: return high`",
        "  survived: line 10: mutation_sample: clamp: compare `value > high` -> `value >= high`",
        "  survived: line 11: mutation_sample: clamp: return `return high` -> `return None`"
        " (no test reaches this line)",
        "  stale equivalent entry (is killed): mutation_sample: clamp: return `return low`"
        " -> `return None`",
        "  stale equivalent entry (matches no mutant): mutation_sample: clamp:"
        " delete `print(value)`",
    ]


def test_every_hand_made_mutant_still_applies_to_its_module() -> None:
    namespace: dict[str, object] = {}
    exec((Path(__file__).parent / "handmade.py").read_text(), namespace)
    entries = namespace["HANDMADE"]
    assert isinstance(entries, list)
    assert entries
    for module, what, old, new in entries:
        source = (ROOT / "src" / "sessionkit" / f"{module}.py").read_text()
        assert source.count(old) == 1, f"{module} ({what}): the replaced text moved"
        assert old != new, what
