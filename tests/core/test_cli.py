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
from sessionkit.cli import main, weaknesses

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


# ---------------------------------------------------------------- sessionkit check


def check_in(folder: Path, *args: str, keys: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m sessionkit check ARGS`` run in ``folder``, with SESSIONKIT_SECRET_KEYS=keys."""
    env = {k: v for k, v in ENV.items() if k != "SESSIONKIT_SECRET_KEYS"}
    if keys is not None:
        env["SESSIONKIT_SECRET_KEYS"] = keys
    return subprocess.run(
        [sys.executable, "-m", "sessionkit", "check", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=folder,
        check=False,
    )


def test_check_prints_the_policy_from_the_environment_and_never_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    new, old = sessionkit.generate_key(), sessionkit.generate_key()
    monkeypatch.setenv("SESSIONKIT_SECRET_KEYS", f"{new}, {old}")
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    new_id, old_id = (kid.hex() for kid in SessionKit(secret_keys=[new, old]).keys.key_ids)
    lines = out.splitlines()
    assert lines[0] == "policy of SessionKit.from_env() (SESSIONKIT_SECRET_KEYS)"
    assert f"  keys              2, newest first, by key id: {new_id} (seals) {old_id}" in lines
    assert "  session cookie    __Host-session; Path=/; Secure; HttpOnly; SameSite=Lax" in lines
    assert "  timeouts          idle 30 min, absolute 12 h, longest 30 days" in lines
    assert "  id rotation       every 15 min, old id kept 10 s" in lines
    assert any(line.startswith("note: no store") for line in lines)
    assert lines[-1] == "verdict: sound, no weakness found"
    assert new not in out
    assert old not in out


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        (None, "SESSIONKIT_SECRET_KEYS is not set"),
        ("0123456789abcdef" * 2, "holds 16 bytes"),
    ],
)
def test_check_refuses_a_policy_that_would_not_start(
    tmp_path: Path, keys: str | None, says: str
) -> None:
    done = check_in(tmp_path, keys=keys)
    assert done.returncode == 1
    assert done.stdout.startswith("verdict: refused, this policy would not start: ")
    assert says in done.stdout
    assert done.stdout.count("\n") == 1


APP = """
import sessionkit

KEY = {key!r}
kit = sessionkit.SessionKit(
    secret_keys=[KEY],
    insecure_development=True,
    idle_timeout=2 * 60 * 60,
    rotate_every=None,
    client_address="full",
)


def make_kit():
    return sessionkit.SessionKit(secret_keys=[KEY], require_cookies=["/app"])


def weak_key():
    return sessionkit.SessionKit(secret_keys=["0123456789abcdef" * 4])


not_a_kit = 42
"""


def test_check_names_each_weakness_of_an_applications_kit(tmp_path: Path, key: str) -> None:
    (tmp_path / "myapp.py").write_text(APP.format(key=key))
    done = check_in(tmp_path, "myapp:kit")
    assert done.returncode == 3, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "policy of myapp:kit"
    assert "  session cookie    session; Path=/; HttpOnly; SameSite=Lax" in lines
    assert [line.split(":")[1].split("=")[0].strip() for line in lines if "weakness:" in line] == [
        "insecure_development",
        "idle_timeout",
        "rotate_every",
        "client_address",
    ]
    assert "weakness: idle_timeout=7200: over the 30 min of inactivity" in done.stdout
    assert lines[-1] == "verdict: weak, 4 weaknesses named above"
    factory = check_in(tmp_path, "myapp:make_kit")
    assert factory.returncode == 0, factory.stderr
    assert "  cookies required  on the protected paths, public home /" in factory.stdout


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("myapp", "'myapp' is not MODULE:NAME"),
        ("nosuchmodule:kit", "cannot import nosuchmodule"),
        ("myapp:nothing", "myapp has no nothing"),
        ("myapp:not_a_kit", "myapp:not_a_kit is a int, not a SessionKit"),
    ],
)
def test_check_explains_a_target_it_cannot_use(
    tmp_path: Path, key: str, target: str, says: str
) -> None:
    (tmp_path / "myapp.py").write_text(APP.format(key=key))
    done = check_in(tmp_path, target)
    assert done.returncode == 2
    assert done.stdout == ""
    # Importing myapp builds its kit: insecure_development's start-up warning may come first.
    usage = done.stderr[done.stderr.find("usage: ") :]
    assert usage.startswith("usage: python -m sessionkit check [-h] [MODULE:NAME]\n")
    assert says in usage


def test_check_of_a_kit_that_fails_to_build_is_refused(tmp_path: Path, key: str) -> None:
    (tmp_path / "myapp.py").write_text(APP.format(key=key))
    done = check_in(tmp_path, "myapp:weak_key")
    assert done.returncode == 1
    assert done.stdout.startswith("verdict: refused, this policy would not start: ")
    assert "is a pattern, not random bytes" in done.stdout
    # An app that builds its kit at import, from an environment that lacks the keys.
    (tmp_path / "envapp.py").write_text(
        "import sessionkit\nkit = sessionkit.SessionKit.from_env()\n"
    )
    done = check_in(tmp_path, "envapp:kit")
    assert done.returncode == 1
    assert "SESSIONKIT_SECRET_KEYS is not set" in done.stdout


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({}, []),
        ({"insecure_development": True}, ["insecure_development=True"]),
        ({"http_only": False}, ["http_only=False"]),
        ({"same_site": "none"}, ["same_site='none'"]),
        ({"domain": "example.com"}, ["domain='example.com'"]),
        ({"idle_timeout": 1801}, ["idle_timeout=1801"]),
        ({"absolute_timeout": 13 * 3600}, ["absolute_timeout=46800"]),
        ({"rotate_every": None}, ["rotate_every=None"]),
        ({"client_address": "full"}, ["client_address='full'"]),
        ({"idle_timeout": 600, "absolute_timeout": 3600, "client_address": "off"}, []),
    ],
)
def test_weaknesses_are_the_settings_weaker_than_the_defaults(
    make_kit: Callable[..., SessionKit], settings: dict[str, object], named: list[str]
) -> None:
    found = weaknesses(make_kit(**settings))
    assert [weakness.split(":")[0] for weakness in found] == named


def test_check_help_is_plain_text() -> None:
    done = module("check", "--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: python -m sessionkit check [-h] [MODULE:NAME]\n")
    assert "`" not in done.stdout
    assert "exit status 0: sound, 3: weak, 1: refused" in " ".join(done.stdout.split())


STORES_APP = """
import sessionkit
from sessionkit.stores import MemoryStore, RedisStore, SQLiteStore

KEY = {key!r}
memory = sessionkit.SessionKit(secret_keys=[KEY], store=MemoryStore())
sqlite = sessionkit.SessionKit(secret_keys=[KEY], store=SQLiteStore("sessions.db"))
redis = sessionkit.SessionKit(
    secret_keys=[KEY], store=RedisStore("redis://:hunter2@127.0.0.1:1/0")
)
"""


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("memory", "MemoryStore"),
        ("sqlite", "SQLiteStore('{folder}/sessions.db')"),
        ("redis", "RedisStore("),
    ],
)
def test_check_names_the_store_and_never_its_password(
    tmp_path: Path, key: str, name: str, shown: str
) -> None:
    (tmp_path / "stores_app.py").write_text(STORES_APP.format(key=key))
    done = check_in(tmp_path, f"stores_app:{name}")
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = (line for line in done.stdout.splitlines() if line.startswith("  store "))
    assert line.split(None, 1)[1].startswith(shown.format(folder=tmp_path.resolve()))
    assert "hunter2" not in done.stdout
    assert "note: no store" not in done.stdout
