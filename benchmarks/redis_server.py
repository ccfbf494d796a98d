"""A throw-away ``redis-server`` on a free 127.0.0.1 port, and counting what reaches it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from types import TracebackType


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``with RedisServer() as r:`` runs redis-server (no persistence) until the block ends."""

    def __init__(self) -> None:
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="sessionkit-bench-redis-")

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def __enter__(self) -> RedisServer:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir.name,
                "--databases",
                "16",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.command("PING") == "PONG":
                    return self
            except (OSError, subprocess.SubprocessError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self._dir.cleanup()

    def command(self, *args: str) -> str:
        """Run one command with redis-cli; return its output."""
        out = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return out.stdout.strip()

    def commandstats(self) -> dict[str, tuple[int, int]]:
        """``INFO commandstats``: command name -> (calls, server µs) since the server started."""
        out: dict[str, tuple[int, int]] = {}
        for line in self.command("INFO", "commandstats").splitlines():
            if not line.startswith("cmdstat_"):
                continue
            name, _, fields = line[len("cmdstat_") :].partition(":")
            values = dict(f.split("=", 1) for f in fields.split(","))
            out[name] = (int(values["calls"]), int(values["usec"]))
        return out

    def count_commands(self, run: Callable[[], object]) -> dict[str, tuple[int, int]]:
        """Calls and server µs of each command while ``run()`` ran, from ``INFO commandstats``.

        Redis counts a command called inside a script under its own name too, so the caller
        tells client commands from script calls by name. The ``INFO`` that took the first
        snapshot is counted in the second, and is taken off here.
        """
        before = self.commandstats()
        run()
        after = self.commandstats()
        diff: dict[str, tuple[int, int]] = {}
        for name, (calls, usec) in after.items():
            calls0, usec0 = before.get(name, (0, 0))
            if name == "info":
                calls0 += 1
            if calls > calls0:
                diff[name] = (calls - calls0, usec - usec0)
        return diff
