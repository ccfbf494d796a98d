"""sessionkit against its peers, on this machine, in one run: ``python -m benchmarks``.

Sections (``--only`` takes their names, comma-separated): ``codec`` (seal + open against
Starlette's, Flask's, Django's and Fernet codecs), ``asgi`` (raw ASGI and Starlette apps
called in-process: bare, sessionkit, Starlette's SessionMiddleware, starsessions with
Fernet), ``wsgi`` (Flask and Django apps, their own sessions against sessionkit),
``e2e`` (uvicorn with httptools and h11, loaded by wrk on 127.0.0.1) and ``stores``
(Memory, SQLite, Redis: cost per request, Redis round trips, live sessions, session
size). Writes ``benchmarks/results/latest.md``, ``latest.png`` and ``latest.json``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

from . import bench_asgi, bench_codec, bench_e2e, bench_stores, bench_wsgi, core, report

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS: dict[str, Callable[[core.Mode], report.Section]] = {
    "codec": bench_codec.run,
    "asgi": bench_asgi.run,
    "wsgi": bench_wsgi.run,
    "e2e": bench_e2e.run,
    "stores": bench_stores.run,
}


def write(
    header: list[str], sections: list[report.Section], total: float, name: str, *, plot: bool
) -> None:
    """Write ``name``.md, .png and .json under benchmarks/results/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    png = RESULTS / f"{name}.png"
    plotted = False
    if plot:
        try:
            report.plot(header, sections, png)
            plotted = png.exists()
        except ImportError as exc:
            print(f"no plot: {exc} (pip install matplotlib)")
    md = RESULTS / f"{name}.md"
    md.write_text(
        report.render(header, sections, png.name if plotted else None, total), encoding="utf-8"
    )
    (RESULTS / f"{name}.json").write_text(report.to_json(header, sections, total), encoding="utf-8")
    print(f"written: {md}" + (f", {png}" if plotted else "") + f" (run time {total:.0f} s)")


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer, shorter repeats: under a minute in all"
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated sections to run, of: {', '.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--name",
        default="latest",
        help="base name of the files written under benchmarks/results/ (default: latest; "
        "the committed reference run uses 'reference')",
    )
    parser.add_argument(
        "--clock",
        choices=sorted(core.CLOCKS),
        default="wall",
        help="what the codec, ASGI and WSGI sections time: wall time (default) or this "
        "thread's CPU time, which other work on a shared machine does not inflate (stores "
        "and e2e are always wall time)",
    )
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib)")
    parser.add_argument(
        "--render",
        metavar="FILE.json",
        type=Path,
        help="measure nothing: write the markdown and the plot again from a run's JSON",
    )
    args = parser.parse_args(argv)
    if args.render is not None:
        header, sections, total = report.from_json(args.render.read_text(encoding="utf-8"))
        write(header, sections, total, args.render.stem, plot=not args.no_plot)
        return 0
    mode = core.QUICK if args.quick else core.FULL
    core.use_clock(args.clock)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")

    header = core.machine_lines()
    header.append(
        f"mode: {mode.name} ({mode.repeats} interleaved repeats in-process, "
        f"{mode.store_repeats} for stores, {mode.e2e_repeats} x {mode.e2e_seconds:g} s wrk runs)"
    )
    what = "this thread's CPU time (`--clock cpu`)" if args.clock == "cpu" else "wall time"
    header.append(f"clock of the codec, ASGI and WSGI sections: {what}; stores and e2e: wall time")
    header.append(f"load average at start: {_load()}")
    for line in header:
        print(line, flush=True)
    t0 = time.perf_counter()
    sections = []
    for name in names:
        print(f"{name} ...", flush=True)
        section = SECTIONS[name](mode)
        sections.append(section)
        print(f"{name} done in {section.seconds:.0f} s", flush=True)
    total = time.perf_counter() - t0
    header.append(
        f"load average at end: {_load()} (this run's own processes count in it; other work "
        "on the machine widens the IQRs and moves the end-to-end numbers most)"
    )

    write(header, sections, total, args.name, plot=not args.no_plot)
    print()
    print("\n".join(report.render_headlines([h for s in sections for h in s.headlines])))
    return 0
