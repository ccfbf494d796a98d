"""A throw-away ``redis-server`` on a free 127.0.0.1 port, and counting what reaches it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
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

    def count_commands(self, run: Callable[[], object]) -> tuple[Counter[str], Counter[str]]:
        """Commands that clients sent while ``run()`` ran, and commands Lua scripts ran.

        MONITOR prints every command with its origin: ``[db 127.0.0.1:port]`` for a
        client's command (one round trip each, since sessionkit does not pipeline) and
        ``[db lua]`` for a call made inside a script. (``INFO``'s
        ``total_commands_processed`` counts both, so it cannot tell them apart.)
        """
        monitor = subprocess.Popen(
            ["redis-cli", "-p", str(self.port), "MONITOR"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert monitor.stdout is not None
        lines: list[str] = []
        done = threading.Event()
        ready = threading.Event()

        def read() -> None:
            assert monitor.stdout is not None
            for line in monitor.stdout:
                if line.strip() == "OK":
                    ready.set()
                    continue
                lines.append(line)
                if '"bench-end-marker"' in line:
                    done.set()
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            if not ready.wait(10):
                raise RuntimeError("redis-cli MONITOR did not start")
            self.command("ECHO", "bench-start-marker")
            run()
            self.command("ECHO", "bench-end-marker")
            if not done.wait(30):
                raise RuntimeError("MONITOR did not see the end marker")
        finally:
            monitor.terminate()
            monitor.wait()
        client: Counter[str] = Counter()
        lua: Counter[str] = Counter()
        started = False
        for line in lines:
            if '"bench-start-marker"' in line:
                started = True
                continue
            if not started or '"bench-end-marker"' in line:
                continue
            try:
                origin = line.split("[", 1)[1].split("]", 1)[0]
                name = line.split("]", 1)[1].split('"')[1].upper()
            except IndexError:
                continue
            (lua if origin.endswith(" lua") else client)[name] += 1
        return client, lua
