"""End to end: uvicorn serving the same Starlette app bare, with sessionkit, with Starlette's.

One uvicorn process (one worker) per variant and HTTP implementation (httptools, h11),
all started at once on free 127.0.0.1 ports and pinned to one CPU with ``taskset``; wrk
runs pinned to the other CPU. Runs are interleaved: every repeat visits every server.
Before each run a fresh session cookie is fetched from the server's ``/login`` (so no
touch or rotation ever falls inside a run) and checked; wrk sends it with every request
and any non-2xx answer or socket error stops the run. The headline is requests/s
relative to the bare app's, from the same repeat.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import sessionkit

from . import core
from .core import Mode, Summary, ratios
from .report import Headline, Row, Section, Table, Target

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("bare", "sessionkit", "starlette")
HTTPS = ("httptools", "h11")
WORKLOADS = {"rw": "read+write", "ro": "read-only"}
CONNECTIONS = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpus() -> tuple[list[str], list[str]]:
    """taskset prefixes for the server and for wrk (empty when pinning is not possible)."""
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return [], []
    return ["taskset", "-c", "1"], ["taskset", "-c", "0"]


@dataclass
class Server:
    variant: str
    http: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def label(self) -> str:
        return f"{self.variant} ({self.http})"

    def get(self, path: str, cookie: str | None = None) -> tuple[int, list[str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
            resp = conn.getresponse()
            return resp.status, resp.headers.get_all("Set-Cookie") or [], resp.read()
        finally:
            conn.close()

    def cookie(self) -> str:
        """A fresh session cookie from /login, checked on both workloads."""
        if self.variant == "bare":
            status, _, _ = self.get("/login")
            core._require(status == 200, f"{self.label}: /login answered {status}")
            return "theme=dark"
        status, set_cookies, _ = self.get("/login")
        core._require(status == 200 and bool(set_cookies), f"{self.label}: /login failed")
        cookie = "; ".join(c.split(";", 1)[0] for c in set_cookies)
        status, again, _ = self.get("/app/rw", cookie)
        core._require(status == 200, f"{self.label}: /app/rw answered {status}")
        core._require(len(again) == 1, f"{self.label}: /app/rw set {again}")
        core._require("max-age=0" not in again[0].lower(), f"{self.label}: /app/rw deleted it")
        status, again, _ = self.get("/app/ro", cookie)
        core._require(status == 200, f"{self.label}: /app/ro answered {status}")
        core._require(not again, f"{self.label}: /app/ro set {again}")
        return cookie


def start_servers(key: str) -> list[Server]:
    server_cpu, _ = _cpus()
    servers = []
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["SESSIONKIT_BENCH_KEY"] = key
    for http_impl in HTTPS:
        for variant in VARIANTS:
            port = free_port()
            cmd = [
                *server_cpu,
                sys.executable,
                "-m",
                "uvicorn",
                "benchmarks.e2e_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--http",
                http_impl,
                "--loop",
                "auto",
                "--no-access-log",
                "--log-level",
                "warning",
            ]
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env={**env, "SESSIONKIT_BENCH_VARIANT": variant},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            servers.append(Server(variant, http_impl, port, proc))
    deadline = time.monotonic() + 30
    for s in servers:
        while True:
            if s.proc.poll() is not None:
                err = s.proc.stderr.read().decode() if s.proc.stderr else ""
                stop_servers(servers)
                raise RuntimeError(f"uvicorn for {s.label} exited: {err[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", s.port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    stop_servers(servers)
                    raise RuntimeError(f"uvicorn for {s.label} did not start") from None
                time.sleep(0.05)
    return servers


def stop_servers(servers: list[Server]) -> None:
    for s in servers:
        if s.proc.poll() is None:
            s.proc.send_signal(signal.SIGTERM)
    for s in servers:
        try:
            s.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            s.proc.kill()
            s.proc.wait()


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_TOTAL = re.compile(r"(\d+) requests in ")
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_ERRORS = re.compile(r"Socket errors:.*")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(server: Server, path: str, cookie: str, seconds: float) -> tuple[float, float]:
    """Requests/s of one wrk run and the server's CPU µs per request.

    Stops the benchmark on any error answer. CPU time per request is what throughput
    would be the inverse of on an otherwise idle CPU; it moves much less than
    requests/s when other work shares the machine.
    """
    cpu_before = cpu_seconds(server.proc.pid)
    _, wrk_cpu = _cpus()
    cmd = [
        *wrk_cpu,
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{seconds:g}s",
        "-H",
        f"Cookie: {cookie}",
        f"http://127.0.0.1:{server.port}{path}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(server.proc.pid) - cpu_before
    bad = _NON2XX.search(out)
    errors = _ERRORS.search(out)
    core._require(bad is None, f"{server.label} {path}: {bad.group(0) if bad else ''}")
    core._require(errors is None, f"{server.label} {path}: {errors.group(0) if errors else ''}")
    found = _RPS.search(out)
    total = _TOTAL.search(out)
    core._require(found is not None, f"{server.label}: no Requests/sec in wrk output: {out}")
    core._require(total is not None, f"{server.label}: no request count in wrk output: {out}")
    assert found is not None
    assert total is not None
    return float(found.group(1)), cpu * 1e6 / max(1, int(total.group(1)))


def run(mode: Mode) -> Section:
    t0 = time.perf_counter()
    section = Section("e2e", "End to end: uvicorn and wrk on 127.0.0.1")
    if shutil.which("wrk") is None:
        section.lines = ["wrk is not installed (`apt-get install wrk`): section skipped."]
        section.headlines.append(
            Headline(
                "uvicorn httptools, read+write: sessionkit req/s ÷ bare",
                None,
                "throughput",
                Target(0.70, at_least=True),
                status="not measured: wrk not installed",
            )
        )
        section.headlines.append(
            Headline(
                "uvicorn httptools, read+write: sessionkit ÷ Starlette's",
                None,
                "throughput",
                Target(1.3, at_least=True),
                status="not measured: wrk not installed",
            )
        )
        return section
    workloads = ("rw", "ro") if mode.name == "full" else ("rw",)
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    server_cpu, _ = _cpus()
    try:
        import uvloop  # noqa: F401

        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"
    section.lines = [
        f"uvicorn {core._version('uvicorn')} (`--loop auto` = {loop_name}, one worker, access "
        f"log off), {wrk_version.split(' [')[0].strip() or 'wrk'} with 1 thread and "
        f"{CONNECTIONS} connections, {mode.e2e_repeats} x {mode.e2e_seconds:g} s per server "
        f"and workload, interleaved; "
        + (
            "server pinned to CPU 1, wrk to CPU 0 (taskset)."
            if server_cpu
            else "no CPU pinning (taskset or a second CPU is missing)."
        ),
        "The app: Starlette, one route per workload; sessionkit with its defaults (visitor "
        "cookie on), Starlette's SessionMiddleware with its defaults. Every request carries "
        "the session cookie (and sessionkit's visitor cookie) fetched from /login before the "
        "run; read+write requests re-issue the session cookie, read-only ones do not.",
        "Server CPU µs/request is the uvicorn process's user + system time over the run "
        "divided by the requests wrk completed; its inverse ratio to the bare app's is what "
        "the requests/s ratio would be on otherwise idle CPUs, and it moves much less when "
        "other work shares the machine.",
    ]
    key = sessionkit.generate_key()
    servers = start_servers(key)
    rps: dict[tuple[str, str, str], list[float]] = {}
    cpu: dict[tuple[str, str, str], list[float]] = {}
    try:
        warm = min(1.0, mode.e2e_seconds / 2)
        for s in servers:  # warm-up (imports, first connections, JIT-free but caches)
            for w in workloads:
                wrk(s, f"/app/{w}", s.cookie(), warm)
        for r in range(mode.e2e_repeats):
            for w in workloads:
                for http_impl in HTTPS:
                    group = [s for s in servers if s.http == http_impl]
                    k = r % len(group)
                    for s in group[k:] + group[:k]:
                        value, cpu_us = wrk(s, f"/app/{w}", s.cookie(), mode.e2e_seconds)
                        rps.setdefault((w, http_impl, s.variant), []).append(value)
                        cpu.setdefault((w, http_impl, s.variant), []).append(cpu_us)
            print(
                f"  e2e repeat {r + 1}/{mode.e2e_repeats} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    finally:
        stop_servers(servers)
    for w in workloads:
        for http_impl in HTTPS:
            bare = rps[(w, http_impl, "bare")]
            bare_cpu = cpu[(w, http_impl, "bare")]
            rows = [Row("bare app", Summary.of(bare), overhead=Summary.of(bare_cpu))]
            for variant in VARIANTS[1:]:
                values = rps[(w, http_impl, variant)]
                cpu_us = cpu[(w, http_impl, variant)]
                rows.append(
                    Row(
                        variant,
                        Summary.of(values),
                        overhead=Summary.of(cpu_us),
                        ratio=Summary.of(ratios(values, bare)),
                        extra=Summary.of(ratios(bare_cpu, cpu_us)),
                    )
                )
                label = "sessionkit" if variant == "sessionkit" else "Starlette's"
                target = (
                    Target(0.70, at_least=True)
                    if variant == "sessionkit" and http_impl == "httptools"
                    else None
                )
                section.headlines.append(
                    Headline(
                        f"uvicorn {http_impl}, {WORKLOADS[w]}: {label} ÷ bare",
                        Summary.of(ratios(values, bare)),
                        "throughput",
                        target,
                        alt=Summary.of(ratios(bare_cpu, cpu_us)),
                        alt_label="from server CPU time per request (bare's ÷ this)",
                    )
                )
            sk = rps[(w, http_impl, "sessionkit")]
            st = rps[(w, http_impl, "starlette")]
            section.headlines.append(
                Headline(
                    f"uvicorn {http_impl}, {WORKLOADS[w]}: sessionkit ÷ Starlette's",
                    Summary.of(ratios(sk, st)),
                    "throughput",
                    Target(1.3, at_least=True) if http_impl == "httptools" else None,
                    alt=Summary.of(
                        ratios(cpu[(w, http_impl, "starlette")], cpu[(w, http_impl, "sessionkit")])
                    ),
                    alt_label="from server CPU time per request (Starlette's ÷ sessionkit's)",
                )
            )
            section.tables.append(
                Table(
                    f"uvicorn --http {http_impl}, {WORKLOADS[w]}: requests per second",
                    "req/s",
                    "req/s ÷ bare",
                    rows,
                    overhead_label="server CPU µs/request",
                    extra_label="bare's CPU/request ÷ this",
                )
            )
    section.seconds = time.perf_counter() - t0
    return section
