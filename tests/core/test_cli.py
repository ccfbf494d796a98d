"""The command line, run the ways a user runs it: the console script and ``python -m``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import sessionkit
from sessionkit import SessionKit
from sessionkit.cli import main

Run = Callable[..., "subprocess.CompletedProcess[str]"]
SCRIPT = Path(sys.executable).with_name("sessionkit")
# The subprocesses import the same copy of sessionkit as this test run.
ENV = {**os.environ, "PYTHONPATH": str(Path(sessionkit.__file__).parent.parent)}


def console_script(*args: str) -> subprocess.CompletedProcess[str]:
    if not SCRIPT.exists():
        pytest.skip(
            f"the sessionkit console script is not installed at {SCRIPT} (pip install -e .)"
        )
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, env=ENV, check=False
    )


def module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sessionkit", *args],
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
    )


RUNNERS = pytest.mark.parametrize(
    ("run", "prog"), [(console_script, "sessionkit"), (module, "python -m sessionkit")]
)


@RUNNERS
def test_version_prints_the_package_version(run: Run, prog: str) -> None:
    done = run("--version")
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"sessionkit {sessionkit.__version__}\n",
        "",
    )


@RUNNERS
def test_usage_names_the_program_as_it_was_run(run: Run, prog: str) -> None:
    done = run("--help")
    assert done.returncode == 0
    assert done.stdout.startswith(f"usage: {prog} [-h] [--version] command ...\n")
    assert "keygen" in done.stdout
    assert "`" not in done.stdout
    keygen = run("keygen", "--help")
    assert keygen.stdout.startswith(f"usage: {prog} keygen [-h] [-n N]\n")
    assert "`" not in keygen.stdout
    missing = run()
    assert missing.returncode == 2
    assert missing.stderr.startswith(f"usage: {prog} ")
    assert f"{prog}: error:" in missing.stderr


@RUNNERS
def test_keygen_prints_usable_keys(run: Run, prog: str) -> None:
    done = run("keygen", "-n", "3")
    assert done.returncode == 0
    keys = done.stdout.split("\n")
    assert keys[-1] == ""
    assert len(set(keys[:-1])) == 3
    SessionKit(secret_keys=keys[:-1])


@pytest.mark.parametrize(("count", "says"), [("0", "must be at least 1"), ("x", "not a whole")])
def test_keygen_refuses_a_bad_count(count: str, says: str) -> None:
    done = module("keygen", "-n", count)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("usage: python -m sessionkit keygen")
    assert says in done.stderr


def test_keygen_prints_one_key_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    SessionKit(secret_keys=[out.strip()])
