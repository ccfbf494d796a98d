"""Hostile input at volume: the coverage-guided fuzz target, run for a bounded time.

``fuzz_headers.py`` runs under atheris (libFuzzer) in a subprocess for
:data:`FUZZ_SECONDS`; any crash or failed invariant there fails this test, with the
crashing input's path in the message. Where atheris is not installed (it ships wheels for
CPython 3.11-3.13 on x86-64 Linux), the same target is fed by hypothesis instead, and the
matrix says which engine ran: nothing is skipped silently.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import load_module

pytestmark = pytest.mark.security

HERE = Path(__file__).resolve().parent
TARGET = HERE / "fuzz_headers.py"
FUZZ_SECONDS = int(os.environ.get("SESSIONKIT_FUZZ_SECONDS", "20"))
FALLBACK_EXAMPLES = 20_000


fuzz = load_module("sessionkit_fuzz_headers", TARGET)
#: SESSIONKIT_FUZZ_ENGINE=hypothesis forces the stand-in (to check it still works).
HAVE_ATHERIS = (
    importlib.util.find_spec("atheris") is not None
    and os.environ.get("SESSIONKIT_FUZZ_ENGINE", "atheris") == "atheris"
)


@pytest.mark.asvs("SK-HOSTILE-INPUT")
def test_the_seeds_pass_and_the_invariants_bite() -> None:
    """The target accepts its seeds, and its checks catch what they are meant to."""
    for seed in fuzz.seeds():
        fuzz.one_input(seed)
    good = next(iter(fuzz.ISSUED)).encode()
    fuzz.one_input(b"\x00\x00__Host-session=" + good + b"\n\n/\n\n")  # logged in, allowed
    # a bug that adopted a lookalike name would be caught
    original = fuzz._NAME
    fuzz._NAME = b"__host-session"
    try:
        with pytest.raises(AssertionError, match="did not issue"):
            fuzz.one_input(b"\x00\x00__Host-session=" + good + b"\n\n/\n\n")
    finally:
        fuzz._NAME = original


@pytest.mark.asvs("SK-HOSTILE-INPUT", "2.2.1", "16.5.3", "1.2.1")
@pytest.mark.skipif(not HAVE_ATHERIS, reason="atheris missing: test_fuzz_fallback runs")
def test_coverage_guided_fuzzing_finds_no_crash(
    tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    corpus = tmp_path / "corpus"
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    dictionary = tmp_path / "headers.dict"
    fuzz.write_dictionary(dictionary)
    argv = [
        sys.executable,
        str(TARGET),
        f"-max_total_time={FUZZ_SECONDS}",
        "-timeout=10",
        "-rss_limit_mb=2048",
        "-max_len=4096",
        "-print_final_stats=1",
        f"-dict={dictionary}",
        f"-artifact_prefix={artifacts}/",
        str(corpus),
    ]
    started = time.monotonic()
    done = subprocess.run(
        argv,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 120,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    crashes = sorted(artifacts.iterdir())
    assert not crashes, f"crashing inputs: {[str(c) for c in crashes]}\n" + output[-6000:]
    assert done.returncode == 0, f"the fuzzer failed (exit {done.returncode})\n" + output[-6000:]
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", output)
    assert runs is not None, output[-3000:]
    executed = int(runs.group(1))
    assert executed > 1000, f"only {executed} inputs ran in {elapsed:.0f}s"
    record_property("security_note", f"atheris: {executed} inputs in {elapsed:.0f}s")


@pytest.mark.asvs("SK-HOSTILE-INPUT", "2.2.1", "16.5.3", "1.2.1")
@pytest.mark.skipif(HAVE_ATHERIS, reason="atheris is installed: the coverage-guided run is used")
def test_fuzz_fallback_without_atheris(record_property: pytest.RecordProperty) -> None:
    """The same target and invariants, fed by hypothesis (atheris could not be imported)."""
    record_property(
        "security_note",
        f"atheris unavailable or disabled: hypothesis fallback, {FALLBACK_EXAMPLES} examples",
    )
    seeds = fuzz.seeds()

    @settings(
        max_examples=FALLBACK_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        base=st.sampled_from(seeds) | st.binary(max_size=600),
        edits=st.lists(st.tuples(st.integers(0, 600), st.binary(max_size=8)), max_size=6),
        cut=st.integers(0, 600),
    )
    def run(base: bytes, edits: list[tuple[int, bytes]], cut: int) -> None:
        data = bytearray(base)
        for at, chunk in edits:
            at = min(at, len(data))
            data[at : at + len(chunk)] = chunk
        fuzz.one_input(bytes(data[: max(cut, 1)] if cut < len(data) else data))

    run()
