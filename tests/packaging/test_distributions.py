"""The sdist and the wheel, built once from this tree, checked and installed in clean venvs.

The sdist and the wheel are built offline with the ``build`` front end and the installed
``hatchling`` (``--no-isolation``), the wheel from the sdist as a publisher builds it, so a
file the sdist lacks breaks the wheel too. The venvs are made without pip; this test run's
pip installs into them (``pip --python``), resolving the wheel's dependencies as a user's
``pip install`` would, from wheels downloaded from the package index once and kept.
"""

from __future__ import annotations

import email.message
import email.parser
import re
import subprocess
import sys
import tarfile
import venv
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

import sessionkit

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = REPO / ".cache" / "packaging-wheels"
INSTALL_TIMEOUT = 300.0


@dataclass(frozen=True)
class Dists:
    """The built sdist and wheel."""

    sdist: Path
    wheel: Path


@dataclass(frozen=True)
class Venv:
    """A virtualenv made for one test module: its interpreter and its scripts folder."""

    root: Path

    @property
    def bin(self) -> Path:
        return self.root / ("Scripts" if sys.platform == "win32" else "bin")

    @property
    def python(self) -> Path:
        return self.bin / ("python.exe" if sys.platform == "win32" else "python")

    def install(self, *requirements: str) -> None:
        """``pip install`` into this venv, the dependencies from the wheelhouse.

        The wheelhouse (``.cache/packaging-wheels``, kept between runs) holds the wheels a
        previous run downloaded, so pip resolves the requirements offline; when it lacks
        one, pip downloads what the requirements need from the package index into it first.
        """
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
        offline = ["--no-index", "--find-links", str(WHEELHOUSE)]
        install = [*pip, "--python", str(self.python), "install", "--no-compile", *offline]
        if _pip([*install, *requirements]).returncode == 0:
            return
        done = _pip([*pip, "download", "--dest", str(WHEELHOUSE), *requirements])
        assert done.returncode == 0, f"pip download failed:\n{done.stdout}\n{done.stderr}"
        for ours in WHEELHOUSE.glob("sessionkit_secure-*"):
            ours.unlink()  # always installed from the wheel this run built
        done = _pip([*install, *requirements])
        assert done.returncode == 0, f"pip install failed:\n{done.stdout}\n{done.stderr}"

    def run(self, argv: Sequence[str], **env: str) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` (a script of this venv by name, or ``python``) in an empty folder."""
        program = self.python if argv[0] == "python" else self.bin / argv[0]
        return subprocess.run(
            [str(program), *argv[1:]],
            capture_output=True,
            text=True,
            cwd=self.root,  # not the repository: its src/ must not be importable
            env={"PATH": str(self.bin), **env},
            timeout=60,
            check=False,
        )


def _pip(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
    )


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """Build the sdist, then the wheel from it, into a temporary folder."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"the build failed:\n{done.stdout}\n{done.stderr}"
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Dists(sdist, wheel)


def _new_venv(path: Path) -> Venv:
    venv.create(path, with_pip=False, clear=True)
    return Venv(path)


@pytest.fixture(scope="module")
def bare_venv(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A clean venv holding the wheel alone, with its own dependencies and no extra."""
    env = _new_venv(tmp_path_factory.mktemp("bare") / "venv")
    env.install(str(dists.wheel))
    return env


@pytest.fixture(scope="module")
def extras_venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A clean, empty venv for the wheel with its extras."""
    return _new_venv(tmp_path_factory.mktemp("extras") / "venv")


# ---------------------------------------------------------------- what was built

NAME = "sessionkit-secure"
USER_EXTRAS = {"redis", "flask", "django", "fastapi", "devices", "otel", "demo", "bench"}
#: Each extra and the import it makes work.
EXTRA_IMPORTS = [
    ("redis", "from sessionkit.stores import RedisStore; import redis.asyncio"),
    ("flask", "from sessionkit.integrations.flask import init_app"),
    ("django", "from sessionkit.integrations.django import SessionKitMiddleware"),
    ("fastapi", "from sessionkit.integrations.fastapi import SessionDep, VisitorDep"),
    (
        "devices",
        "from sessionkit.devices import device_label, labels_available; "
        "assert labels_available(), device_label('curl/8.5.0')",
    ),
    ("otel", "from sessionkit.metrics import otel_available; assert otel_available()"),
    ("demo", "import uvicorn, fastapi"),
]


def wheel_metadata(dists: Dists) -> email.message.Message:
    with zipfile.ZipFile(dists.wheel) as whl:
        text = whl.read(f"sessionkit_secure-{sessionkit.__version__}.dist-info/METADATA")
    return email.parser.BytesParser().parsebytes(text)


def wheel_names(dists: Dists) -> list[str]:
    with zipfile.ZipFile(dists.wheel) as whl:
        return whl.namelist()


def sdist_names(dists: Dists) -> list[str]:
    with tarfile.open(dists.sdist) as sdist:
        names = sdist.getnames()
    top = f"sessionkit_secure-{sessionkit.__version__}/"
    assert all(name.startswith(top) for name in names)
    return [name.removeprefix(top) for name in names]


def test_the_files_are_named_for_the_distribution(dists: Dists) -> None:
    version = sessionkit.__version__
    assert dists.sdist.name == f"sessionkit_secure-{version}.tar.gz"
    assert dists.wheel.name == f"sessionkit_secure-{version}-py3-none-any.whl"


def test_metadata_names_the_package_its_licence_and_its_places(dists: Dists) -> None:
    meta = wheel_metadata(dists)
    assert meta["Name"] == NAME
    assert meta["Version"] == sessionkit.__version__
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().startswith("# sessionkit\n")
    urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Source", "Issues", "Changelog"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values())
    assert "Typing :: Typed" in meta.get_all("Classifier")


def test_requirements_are_the_runtime_ones_and_the_user_extras(dists: Dists) -> None:
    meta = wheel_metadata(dists)
    requires = meta.get_all("Requires-Dist")
    assert sorted(r for r in requires if "extra ==" not in r) == [
        "cryptography>=44",
        "orjson>=3.10",
    ]
    assert set(meta.get_all("Provides-Extra")) == USER_EXTRAS
    # Development tools are a dependency group, never published: no pins, no linters.
    assert not [r for r in requires if "==" in r.split(";")[0]]
    assert not [r for r in requires if r.split(">")[0] in ("mypy", "ruff", "pytest")]


def test_the_wheel_holds_the_package_and_nothing_else(dists: Dists) -> None:
    names = wheel_names(dists)
    info = f"sessionkit_secure-{sessionkit.__version__}.dist-info/"
    package = sorted(n for n in names if not n.startswith(info))
    source = REPO / "src"
    expected = sorted(
        str(path.relative_to(source))
        for path in (source / "sessionkit").rglob("*")
        if path.is_file() and path.suffix in (".py", ".typed")
    )
    assert package == expected
    assert "sessionkit/py.typed" in package
    assert sorted(n.removeprefix(info) for n in names if n.startswith(info)) == [
        "METADATA",
        "RECORD",
        "WHEEL",
        "entry_points.txt",
        "licenses/LICENSE",
    ]
    with zipfile.ZipFile(dists.wheel) as whl:
        assert whl.read(info + "licenses/LICENSE") == (REPO / "LICENSE").read_bytes()
        entry_points = whl.read(info + "entry_points.txt").decode()
    assert entry_points.split() == ["[console_scripts]", "sessionkit", "=", "sessionkit.cli:main"]


def test_the_sdist_holds_the_source_and_no_ci_files_or_results(dists: Dists) -> None:
    names = sdist_names(dists)
    for needed in (
        "LICENSE",
        "CHANGELOG.md",
        "README.md",
        "SECURITY.md",
        "pyproject.toml",
        "PKG-INFO",
        "src/sessionkit/py.typed",
        "tests/conftest.py",
        "docs/index.md",
        "mkdocs.yml",
    ):
        assert needed in names
    for unwanted in (".ci/", "benchmarks/results/", "site/", ".cache/", ".venv/", ".git/"):
        assert not [n for n in names if n.startswith(unwanted)], unwanted
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".tmp"))]


def test_twine_check_strict_passes(dists: Dists) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dists.sdist), str(dists.wheel)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------- installed from the wheel


def test_the_installed_wheel_imports_and_runs_its_command(bare_venv: Venv) -> None:
    done = bare_venv.run(
        [
            "python",
            "-c",
            "import importlib.metadata as m, sessionkit; "
            "print(sessionkit.__file__); print(m.version('sessionkit-secure'))",
        ]
    )
    assert done.returncode == 0, done.stderr
    where, version = done.stdout.split()
    assert Path(where).is_relative_to(bare_venv.root)
    assert version == sessionkit.__version__
    assert bare_venv.run(["sessionkit", "--version"]).stdout == (
        f"sessionkit {sessionkit.__version__}\n"
    )
    keygen = bare_venv.run(["sessionkit", "keygen"])
    assert keygen.returncode == 0, keygen.stderr
    check = bare_venv.run(["sessionkit", "check"], SESSIONKIT_SECRET_KEYS=keygen.stdout.strip())
    assert check.returncode == 0, check.stdout + check.stderr
    assert "verdict: sound" in check.stdout


def test_the_bare_wheel_pulls_in_no_framework(bare_venv: Venv) -> None:
    done = bare_venv.run(["python", "-c", "import sessionkit.integrations.flask"])
    assert done.returncode == 1
    assert "No module named 'flask'" in done.stderr


def test_each_extra_requires_what_its_part_imports(dists: Dists) -> None:
    requires = wheel_metadata(dists).get_all("Requires-Dist")
    by_extra: dict[str, set[str]] = {}
    for requirement in requires:
        if "; extra == " in requirement:
            spec, extra = requirement.split("; extra == ")
            name = re.match(r"[A-Za-z0-9._-]+(\[[^\]]*\])?", spec)
            assert name is not None, requirement
            by_extra.setdefault(extra.strip("'\""), set()).add(name.group(0))
    assert by_extra["redis"] == {"redis"}
    assert by_extra["flask"] == {"flask"}
    assert by_extra["django"] == {"django"}
    assert by_extra["fastapi"] == {"fastapi"}
    assert by_extra["devices"] == {"ua-parser"}
    assert by_extra["otel"] == {"opentelemetry-api"}
    assert by_extra["demo"] == {"fastapi", "uvicorn[standard]", "ua-parser"}


def test_the_wheel_with_its_extras_installs_and_each_part_imports(
    extras_venv: Venv, dists: Dists
) -> None:
    extras = ",".join(extra for extra, _ in EXTRA_IMPORTS)
    extras_venv.install(f"{NAME}[{extras}] @ {dists.wheel.as_uri()}")
    for extra, statement in EXTRA_IMPORTS:
        done = extras_venv.run(["python", "-c", statement])
        assert done.returncode == 0, f"[{extra}]: {statement}\n{done.stderr}"
