"""What a benchmark section hands back, and how it becomes markdown, JSON and a PNG plot."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core import Summary


@dataclass(frozen=True)
class Target:
    """A goal for a ratio: at most ``value`` (costs) or at least ``value`` (throughput)."""

    value: float
    at_least: bool = False
    unit: str = "x"

    def met(self, ratio: Summary) -> bool:
        return ratio.median >= self.value if self.at_least else ratio.median <= self.value

    def text(self) -> str:
        value = f"{self.value:.2f}" if self.unit == "x" else f"{self.value:g}"
        return f"{'≥' if self.at_least else '≤'} {value}{self.unit}"


@dataclass
class Row:
    """One variant of one group: its value, its overhead over the bare app, its ratio."""

    variant: str
    value: Summary | None
    overhead: Summary | None = None
    ratio: Summary | None = None
    note: str = ""
    extra: Summary | None = None  # a second difference, e.g. over sessionkit without a store


@dataclass
class Table:
    """One group of interleaved variants, rendered as one markdown table."""

    title: str
    value_label: str  # "µs/request", "req/s", ...
    ratio_label: str  # what the ratio divides by, e.g. "÷ starlette overhead"
    rows: list[Row]
    overhead_label: str = "overhead µs"
    notes: list[str] = field(default_factory=list)
    extra_label: str = ""


@dataclass
class Headline:
    """A ratio for the headline table and the plot."""

    label: str
    ratio: Summary | None  # None: not measured (see status)
    panel: str  # "cost" (lower is better) or "throughput" (higher is better)
    target: Target | None = None
    status: str = ""  # why there is no ratio ("not available: ...")
    detail: str = ""  # one line of context for the table
    unit: str = "x"  # "x" for ratios; "" for counts
    alt: Summary | None = None  # a second estimate of the same ratio, drawn as a diamond
    alt_label: str = ""


@dataclass
class Curve:
    """A line of a scaling panel: x values and per-x summaries."""

    label: str
    x: list[float]
    y: list[Summary]


@dataclass
class Panel:
    """A plot panel of curves (log x)."""

    title: str
    xlabel: str
    ylabel: str
    curves: list[Curve]


@dataclass
class Section:
    name: str
    title: str
    tables: list[Table] = field(default_factory=list)
    headlines: list[Headline] = field(default_factory=list)
    panels: list[Panel] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # free text under the section title
    seconds: float = 0.0


# ---------------------------------------------------------------------------- markdown


def fmt(s: Summary | None, digits: int = 2) -> str:
    if s is None:
        return ""
    return f"{s.median:.{digits}f} [{s.q1:.{digits}f}..{s.q3:.{digits}f}]"


def _digits(s: Summary | None) -> int:
    if s is None:
        return 2
    return 0 if s.median >= 1000 else 1 if s.median >= 100 else 2


def render_headlines(headlines: list[Headline]) -> list[str]:
    out = [
        "| headline | measured, median [IQR] | target | met |",
        "|---|---:|---:|:---:|",
    ]
    for h in headlines:
        target = "" if h.target is None else h.target.text()
        if h.ratio is None:
            out.append(f"| {h.label} | {h.status or 'not measured'} | {target} | |")
            continue
        met = ""
        if h.target is not None:
            met = "yes" if h.target.met(h.ratio) else "**no**"
        value = f"{fmt(h.ratio, 3)}x" if h.unit == "x" else f"{h.ratio.median:g} {h.unit}"
        if h.alt is not None:
            value += f" (server CPU: {h.alt.median:.3f}x)"
        out.append(f"| {h.label} | {value} | {target} | {met} |")
    return out


def render_table(t: Table) -> list[str]:
    has_overhead = any(r.overhead is not None for r in t.rows)
    has_extra = any(r.extra is not None for r in t.rows)
    has_ratio = any(r.ratio is not None for r in t.rows)
    has_note = any(r.note for r in t.rows)
    head = ["variant", t.value_label]
    if has_overhead:
        head.append(t.overhead_label)
    if has_extra:
        head.append(t.extra_label)
    if has_ratio:
        head.append(t.ratio_label)
    if has_note:
        head.append("note")
    out = [f"**{t.title}**", "", "| " + " | ".join(head) + " |"]
    out.append("|---|" + "---:|" * (len(head) - 1 - has_note) + ("---|" if has_note else ""))
    for r in t.rows:
        cells = [r.variant, fmt(r.value, _digits(r.value))]
        if has_overhead:
            cells.append(fmt(r.overhead, _digits(r.overhead)))
        if has_extra:
            if r.extra is not None and "÷" in t.extra_label:
                cells.append(f"{fmt(r.extra, 3)}x")
            else:
                cells.append(fmt(r.extra, _digits(r.extra)))
        if has_ratio:
            cells.append("" if r.ratio is None else f"{fmt(r.ratio, 3)}x")
        if has_note:
            cells.append(r.note)
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out += [f"- {n}" for n in t.notes]
    if t.notes:
        out.append("")
    return out


def render(
    header: list[str], sections: list[Section], plot_name: str | None, total_s: float
) -> str:
    out = ["# sessionkit benchmark", ""]
    out += [f"- {line}" for line in header]
    out += [f"- total run time {total_s:.0f} s", ""]
    out += [
        "Medians over interleaved repeats, [IQR] in brackets. Each ratio is computed within one "
        "repeat (so machine noise hits both sides alike) and then summarised. Overhead = the "
        "variant's time minus the bare app's time in the same repeat.",
        "",
    ]
    headlines = [h for s in sections for h in s.headlines]
    if headlines:
        out += ["## Headline ratios", ""]
        out += render_headlines(headlines)
        out.append("")
        if plot_name:
            out += [f"![headline ratios]({plot_name})", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        if s.lines:
            out += [*s.lines, ""]
        for t in s.tables:
            out += render_table(t)
        out += [f"_{s.name}: {s.seconds:.0f} s_", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------- JSON


def to_json(header: list[str], sections: list[Section], total_s: float = 0.0) -> str:
    def default(o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        raise TypeError(type(o).__name__)

    return json.dumps(
        {"machine": header, "total_s": total_s, "sections": sections}, default=default, indent=1
    )


def from_json(text: str) -> tuple[list[str], list[Section], float]:
    """Read back what :func:`to_json` wrote (to render it again without measuring)."""
    doc = json.loads(text)

    def summary(d: dict[str, float] | None) -> Summary | None:
        return None if d is None else Summary(**d)

    def target(d: dict[str, Any] | None) -> Target | None:
        return None if d is None else Target(**d)

    sections = []
    for s in doc["sections"]:
        section = Section(s["name"], s["title"], lines=s["lines"], seconds=s["seconds"])
        for t in s["tables"]:
            rows = [
                Row(
                    r["variant"],
                    summary(r["value"]),
                    summary(r["overhead"]),
                    summary(r["ratio"]),
                    r["note"],
                    summary(r["extra"]),
                )
                for r in t["rows"]
            ]
            section.tables.append(
                Table(
                    t["title"],
                    t["value_label"],
                    t["ratio_label"],
                    rows,
                    t["overhead_label"],
                    t["notes"],
                    t["extra_label"],
                )
            )
        for h in s["headlines"]:
            section.headlines.append(
                Headline(
                    h["label"],
                    summary(h["ratio"]),
                    h["panel"],
                    target(h["target"]),
                    h["status"],
                    h["detail"],
                    h["unit"],
                    summary(h["alt"]),
                    h["alt_label"],
                )
            )
        for p in s["panels"]:
            curves = [
                Curve(c["label"], c["x"], [Summary(**y) for y in c["y"]]) for c in p["curves"]
            ]
            section.panels.append(Panel(p["title"], p["xlabel"], p["ylabel"], curves))
        sections.append(section)
    return doc["machine"], sections, float(doc.get("total_s", 0.0))


# ---------------------------------------------------------------------------- plot


def plot(header: list[str], sections: list[Section], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    headlines = [h for s in sections for h in s.headlines if h.ratio is not None]
    cost = [h for h in headlines if h.panel == "cost"]
    throughput = [h for h in headlines if h.panel == "throughput"]
    panels: list[tuple[str, Any]] = []
    if cost:
        panels.append(("cost", cost))
    if throughput:
        panels.append(("throughput", throughput))
    for s in sections:
        panels += [("curves", p) for p in s.panels if p.curves]
    if not panels:
        return
    heights = []
    for kind, content in panels:
        heights.append(max(2.2, 0.36 * len(content) + 1.2) if kind != "curves" else 3.6)
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(11, sum(heights) + 0.8),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
        layout="constrained",
    )
    for ax, (kind, content) in zip(axes[:, 0], panels, strict=True):
        if kind == "curves":
            _plot_curves(ax, content)
        else:
            _plot_bars(ax, content, kind)
    machine = next((line for line in header if line.startswith("cpu:")), "")
    python = next((line for line in header if line.startswith("python:")), "")
    mode = next((line for line in header if line.startswith("mode:")), "")
    fig.suptitle(f"sessionkit vs its peers\n{machine}; {python}; {mode}", fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_bars(ax: Any, headlines: list[Headline], kind: str) -> None:
    labels = [h.label for h in headlines]
    ys = list(range(len(headlines)))[::-1]
    med = [h.ratio.median for h in headlines if h.ratio is not None]
    lo = [h.ratio.median - h.ratio.q1 for h in headlines if h.ratio is not None]
    hi = [h.ratio.q3 - h.ratio.median for h in headlines if h.ratio is not None]
    colors = []
    for h in headlines:
        assert h.ratio is not None
        if h.target is None:
            colors.append("#8da0cb")
        else:
            colors.append("#66c2a5" if h.target.met(h.ratio) else "#fc8d62")
    ax.barh(ys, med, xerr=[lo, hi], color=colors, capsize=3, height=0.62)
    alt_label = ""
    for y, h in zip(ys, headlines, strict=True):
        assert h.ratio is not None
        right_end = max(h.ratio.q3, h.alt.median if h.alt else 0.0)
        ax.text(right_end + 0.01, y, f" {h.ratio.median:.2f}x", va="center", fontsize=8)
        if h.target is not None:
            ax.plot([h.target.value] * 2, [y - 0.42, y + 0.42], color="black", lw=1.6)
        if h.alt is not None:
            ax.plot([h.alt.median], [y], marker="D", color="#333333", ms=4, ls="none")
            alt_label = h.alt_label
    if alt_label:
        ax.plot([], [], marker="D", color="#333333", ms=4, ls="none", label=alt_label)
        ax.legend(fontsize=7, loc="lower right")
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    ax.axvline(1.0, color="grey", lw=0.8, ls=":")
    ends = [h.ratio.q3 for h in headlines if h.ratio is not None]
    ends += [h.alt.median for h in headlines if h.alt is not None]
    right = max([*ends, *(h.target.value for h in headlines if h.target), 1.0]) * 1.15
    ax.set_xlim(0, right)
    if kind == "cost":
        ax.set_title(
            "cost relative to the peer (lower is better); black tick = target, "
            "green = target met, orange = not met",
            fontsize=9,
        )
        ax.set_xlabel("sessionkit ÷ peer (time or overhead per request)", fontsize=8)
    else:
        ax.set_title(
            "uvicorn + wrk on 127.0.0.1: requests/s ratios (higher is better)",
            fontsize=9,
        )
        ax.set_xlabel("requests/s ÷ the requests/s named in the label", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)


def _plot_curves(ax: Any, panel: Panel) -> None:
    for c in panel.curves:
        med = [s.median for s in c.y]
        lo = [s.median - s.q1 for s in c.y]
        hi = [s.q3 - s.median for s in c.y]
        ax.errorbar(c.x, med, yerr=[lo, hi], marker="o", capsize=3, label=c.label)
    ax.set_xscale("log")
    if all(s.median > 0 for c in panel.curves for s in c.y):
        from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_title(panel.title, fontsize=9)
    ax.set_xlabel(panel.xlabel, fontsize=8)
    ax.set_ylabel(panel.ylabel, fontsize=8)
    if ax.get_yscale() == "linear":
        ax.set_ylim(bottom=0)
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.tick_params(labelsize=8)
