"""The documentation site builds with warnings as errors and documents every public module.

``mkdocs build --strict`` (as ``scripts/docs`` runs it) fails on a broken link, a missing
page, an unresolvable cross-reference or a docstring mkdocstrings cannot read.
"""

from __future__ import annotations

import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sessionkit

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once for this module."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    return out


def text_of(page: Path) -> str:
    return re.sub(r"<[^>]+>", "", page.read_text())


def test_every_page_is_built(site: Path) -> None:
    for page in (
        "index.html",
        "getting-started/index.html",
        "demo/index.html",
        "frameworks/index.html",
        "configuration/index.html",
        "stores/index.html",
        "deploying/index.html",
        "concepts/sessions/index.html",
        "concepts/gate/index.html",
        "concepts/privacy/index.html",
        "migrating/starlette/index.html",
        "migrating/flask/index.html",
        "migrating/django/index.html",
        "security/index.html",
        "compatibility/index.html",
        "token-format/index.html",
        "changelog/index.html",
        "reference/sessionkit/index.html",
        "reference/cli/index.html",
    ):
        assert (site / page).is_file(), page
    assert "Reporting a vulnerability" in text_of(site / "security/index.html")
    assert "Unreleased" in text_of(site / "changelog/index.html")
    for shot in ("home", "login", "app", "gate", "sessions", "events"):
        assert (site / "images" / f"{shot}.png").is_file(), shot
        assert f'src="../images/{shot}.png"' in (site / "demo/index.html").read_text(), shot


def public_modules() -> list[str]:
    found = ["sessionkit"]
    for info in pkgutil.walk_packages(sessionkit.__path__, "sessionkit."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            found.append(info.name)
    return found


def test_the_api_reference_covers_every_public_module(site: Path) -> None:
    directives = {
        line.removeprefix("::: ").strip()
        for page in (DOCS / "reference").glob("*.md")
        for line in page.read_text().splitlines()
        if line.startswith("::: ")
    }
    assert set(public_modules()) - directives == set()
    html = (site / "reference/sessionkit/index.html").read_text()
    for name in sessionkit.__all__:
        assert f'id="sessionkit.{name}"' in html, name


def test_docstrings_render_as_markdown(site: Path) -> None:
    for page in (site / "reference").glob("*/index.html"):
        text = text_of(page)
        # Sphinx roles became links, literal blocks became code blocks.
        assert not re.search(r":(class|meth|func|attr|mod|data):`", text), page
        assert "::\n" not in text, page
    core = (site / "reference/core/index.html").read_text()
    # A constant documented by a #: comment in the source has its entry.
    assert 'id="sessionkit.lifetime.DEFAULT_IDLE_TIMEOUT"' in core
