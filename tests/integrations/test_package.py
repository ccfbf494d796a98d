"""The integrations package itself imports no framework; each submodule imports its own."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FRAMEWORKS = ("flask", "django", "fastapi", "starlette", "werkzeug")


def imported_frameworks(statement: str) -> list[str]:
    code = (
        f"import json, sys; {statement}; "
        f"print(json.dumps(sorted(set({FRAMEWORKS!r}) & {{m.split('.')[0] for m in sys.modules}})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    found: list[str] = json.loads(out)
    return found


def test_the_package_imports_no_framework() -> None:
    assert imported_frameworks("import sessionkit.integrations") == []


@pytest.mark.parametrize(
    ("module", "framework"),
    [("flask", "flask"), ("django", "django"), ("fastapi", "fastapi")],
)
def test_each_integration_imports_only_what_it_needs(module: str, framework: str) -> None:
    found = imported_frameworks(f"import sessionkit.integrations.{module}")
    assert framework in found
    assert not {"flask", "django", "fastapi"} - {framework} & set(found)
