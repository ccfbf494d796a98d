"""Fetch the frameworks' own session tests for the peer suites in ``tests/peers``.

Usage: ``python tests/peers/fetch.py [DEST]`` (``DEST`` defaults to ``.cache/peers`` at
the repository root, a directory git ignores).

For each of Starlette, Flask and Django it downloads the source distribution of the
version installed in this environment (``pip download --no-deps --no-binary :all:``,
the version read with :mod:`importlib.metadata`) and unpacks only the files the peer
suites run, into ``DEST/<name>-<version>/``. A directory that is already complete is
left alone, so running the script again costs nothing and needs no network. The tests
themselves never touch the network: they read what this script unpacked.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_DEST", "PEERS", "Peer", "fetch", "main", "peer_dir"]

ROOT = Path(__file__).resolve().parents[2]
#: Where the peer sources go unless told otherwise (listed in ``.gitignore``).
DEFAULT_DEST = ROOT / ".cache" / "peers"
#: Written last into a peer's directory: the sdist's name, then every file unpacked, one a
#: line. A directory whose list is not the peer's current one is fetched again.
COMPLETE = ".complete"


@dataclass(frozen=True)
class Peer:
    """One framework whose own tests run against sessionkit."""

    #: The distribution name on the package index.
    name: str
    #: Paths inside the sdist (below its top directory) that the peer suite needs.
    files: tuple[str, ...]

    @property
    def version(self) -> str:
        """The version installed in this environment."""
        return importlib.metadata.version(self.name)


PEERS: dict[str, Peer] = {
    "starlette": Peer(
        "starlette",
        (
            "pyproject.toml",
            "tests/__init__.py",
            "tests/conftest.py",
            "tests/types.py",
            "tests/middleware/__init__.py",
            "tests/middleware/test_session.py",
        ),
    ),
    "flask": Peer(
        "flask",
        (
            "pyproject.toml",
            "tests/conftest.py",
            "tests/test_basic.py",
            "tests/test_config.py",
            "tests/test_helpers.py",
            "tests/test_reqctx.py",
            "tests/test_session_interface.py",
            "tests/test_signals.py",
            "tests/test_testing.py",
        ),
    ),
    "django": Peer(
        "django",
        (
            "tests/sessions_tests/__init__.py",
            "tests/sessions_tests/models.py",
            "tests/sessions_tests/no_clear_expired.py",
            "tests/sessions_tests/tests.py",
        ),
    ),
}


def peer_dir(dest: Path, peer: Peer) -> Path:
    """The directory holding ``peer``'s files for the installed version."""
    return dest / f"{peer.name}-{peer.version}"


def is_complete(dest: Path, peer: Peer) -> bool:
    """Whether ``peer``'s files for the installed version are all unpacked in ``dest``."""
    marker = peer_dir(dest, peer) / COMPLETE
    if not marker.is_file():
        return False
    return marker.read_text().splitlines()[1:] == sorted(peer.files)


def _download(peer: Peer, into: Path) -> Path:
    requirement = f"{peer.name}=={peer.version}"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--dest",
            str(into),
            requirement,
        ],
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"pip download {requirement} failed (exit status {result.returncode}): the peer "
            "suites need the package index once, to fetch the sdists of the installed versions"
        )
    found = sorted(into.glob("*.tar.gz"))
    if len(found) != 1:
        raise SystemExit(f"pip download {requirement} left {found}, not one .tar.gz")
    return found[0]


def _unpack(sdist: Path, peer: Peer, target: Path) -> None:
    with tarfile.open(sdist) as archive:
        members = {}
        for member in archive.getmembers():
            _top, _, inner = member.name.partition("/")
            if inner in peer.files and member.isfile():
                members[inner] = member
        missing = sorted(set(peer.files) - set(members))
        if missing:
            raise SystemExit(f"{sdist.name} lacks {', '.join(missing)}")
        for inner, member in members.items():
            source = archive.extractfile(member)
            assert source is not None
            path = target / inner
            path.parent.mkdir(parents=True, exist_ok=True)
            with source, path.open("wb") as out:
                shutil.copyfileobj(source, out)


def fetch(dest: Path, peer: Peer) -> Path:
    """Make sure ``peer``'s test files are unpacked under ``dest``; return their directory."""
    target = peer_dir(dest, peer)
    if is_complete(dest, peer):
        print(f"{target.name}: already there")
        return target
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{peer.name}-", dir=dest) as scratch:
        work = Path(scratch)
        sdist = _download(peer, work / "sdist")
        staged = work / target.name
        _unpack(sdist, peer, staged)
        lines = (sdist.name, *sorted(peer.files))
        (staged / COMPLETE).write_text("".join(f"{line}\n" for line in lines))
        if target.exists():
            shutil.rmtree(target)  # a run interrupted before it was complete
        staged.rename(target)
    print(f"{target.name}: unpacked {len(peer.files)} files from its sdist")
    return target


def main(argv: list[str] | None = None) -> int:
    """Fetch every peer's test files; the command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", nargs="?", type=Path, default=DEFAULT_DEST, help="cache directory")
    args = parser.parse_args(argv)
    for peer in PEERS.values():
        fetch(args.dest.resolve(), peer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
