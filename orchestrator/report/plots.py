"""Plots written with every report (SVG and PNG, matplotlib's Agg renderer, no display).

- requests.svg/png: Req/s per server, grouped by API, with 95% confidence whiskers;
  load-bound bars hatched. A whisker cut at the top of the plot ends in an arrowhead.
- latency.svg/png: median, p(99) and p(99.9) latency per server, grouped by API, with
  95% confidence whiskers.
- cost.svg/png (runs that measured the whole target): target, server process and
  irq+softirq CPU µs per request per server, grouped by API, with 95% whiskers.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from orchestrator.catalogue.spec import APIS
from orchestrator.results.aggregate import Row
from orchestrator.results.stats import Estimate

FORMATS = ("svg", "png")
PNG_DPI = 120
# One colour per language, the same in every plot.
COLOURS = {"C": "#4C72B0", "Rust": "#DD8452", "Zig": "#55A868"}
OTHER_COLOUR = "#8C8C8C"
BAR_GROUP_WIDTH = 0.8
WHISKER_CAP = 2.5  # the y axis reaches at most this multiple of the tallest bar

RowFigure = Callable[[Row], Estimate | None]


def _apis(rows: Sequence[Row]) -> list[str]:
    present = {row.api for row in rows}
    return [api for api in APIS if api in present] + sorted(present - set(APIS))


def _series(rows: Sequence[Row]) -> dict[str, str]:
    """Each row's bar series, by server: its language, or `language: server` where two
    servers of one language share an API (a server of your own beside a reference one)."""
    shared = Counter((row.api, row.language) for row in rows)
    return {
        row.server: row.language
        if shared[(row.api, row.language)] == 1
        else f"{row.language}: {row.server}"
        for row in rows
    }


def _languages(rows: Sequence[Row]) -> list[tuple[str, str]]:
    """(series, language) in the order the rows first show them."""
    series = _series(rows)
    return list(dict.fromkeys((series[row.server], row.language) for row in rows))


def _bars(ax: Axes, rows: Sequence[Row], figure: RowFigure, hatch_load_bound: bool) -> None:
    """Grouped bars of one figure with asymmetric CI whiskers.

    Whiskers far above the bars (a few repetitions give wide intervals) would flatten
    every bar, so the axis stops at WHISKER_CAP times the tallest bar and a cut whisker
    ends in an arrowhead at the edge.
    """
    apis, languages, series = _apis(rows), _languages(rows), _series(rows)
    width = BAR_GROUP_WIDTH / max(1, len(languages))
    bars: list[tuple[float, Row, float, float | None, float | None]] = []
    for index, (label, _) in enumerate(languages):
        for group, api in enumerate(apis):
            row = next((r for r in rows if r.api == api and series[r.server] == label), None)
            if row is None:
                continue
            est = figure(row)
            if est is not None:
                x = group - BAR_GROUP_WIDTH / 2 + width * (index + 0.5)
                bars.append((x, row, est.value, est.low, est.high))
    tallest = max((value for _, _, value, _, _ in bars), default=0.0)
    reach = [min(high, tallest * WHISKER_CAP) for *_, high in bars if high is not None]
    top = max([tallest, *reach]) * 1.08 or 1.0
    for x, row, value, low, high in bars:
        ax.bar(
            x,
            value,
            width * 0.92,
            color=COLOURS.get(row.language, OTHER_COLOUR),
            hatch="//" if hatch_load_bound and row.load_bound else None,
            edgecolor="white",
        )
        if low is None or high is None:
            continue
        shown = min(high, top)
        ax.errorbar(
            x,
            value,
            yerr=[[max(0.0, value - low)], [max(0.0, shown - value)]],
            color="black",
            capsize=0 if shown < high else 4,
            linewidth=1,
        )
        if shown < high:
            ax.plot([x], [top], marker="^", color="black", markersize=6, clip_on=False)
    ax.set_ylim(0, top)
    ax.set_xticks(range(len(apis)), apis)
    ax.set_xlim(-0.6, len(apis) - 0.4)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _legend(fig: Figure, rows: Sequence[Row], load_bound_note: bool) -> None:
    handles = [
        Patch(color=COLOURS.get(language, OTHER_COLOUR), label=label)
        for label, language in _languages(rows)
    ]
    if load_bound_note and any(r.load_bound for r in rows):
        handles.append(
            Patch(facecolor="#cccccc", hatch="//", edgecolor="white", label="load-bound")
        )
    fig.legend(
        handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False
    )


def save_figure(fig: Figure, folder: Path, stem: str) -> list[Path]:
    """Write `fig` as STEM.svg and STEM.png into `folder`, atomically; return the paths."""
    FigureCanvasAgg(fig)
    written = []
    for fmt in FORMATS:
        path = folder / f"{stem}.{fmt}"
        tmp = folder / f".{stem}.tmp.{fmt}"
        # No timestamp and fixed element ids in the SVG: re-rendering an unchanged run
        # gives the same file.
        metadata = {"Date": None} if fmt == "svg" else None
        with rc_context({"svg.hashsalt": "orch"}):
            fig.savefig(tmp, format=fmt, dpi=PNG_DPI, metadata=metadata)
        os.replace(tmp, path)
        written.append(path)
    return written


def requests_figure(rows: Sequence[Row], title: str) -> Figure:
    """Req/s per server grouped by API, whiskers at the 95% interval."""
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    _bars(ax, rows, lambda row: row.requests_per_second, hatch_load_bound=True)
    ax.set_ylabel("requests per second (median)")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:,.0f}"))
    ax.set_title("Req/s per server, 95% confidence whiskers", fontsize=10)
    fig.suptitle(title, fontsize=8, wrap=True)
    _legend(fig, rows, load_bound_note=True)
    return fig


def latency_figure(rows: Sequence[Row], title: str) -> Figure:
    """Median, p(99) and p(99.9) latency per server grouped by API, one panel each."""
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    panels: tuple[tuple[RowFigure, str], ...] = (
        (lambda row: row.latency_p50_ms, "median"),
        (lambda row: row.latency_p99_ms, "p(99)"),
        (lambda row: row.latency_p999_ms, "p(99.9)"),
    )
    measured = any(r.latency_p50_ms is not None for r in rows)
    for ax, (figure, label) in zip(axes, panels, strict=True):
        _bars(ax, rows, figure, hatch_load_bound=False)
        ax.set_title(f"{label} latency", fontsize=10)
        ax.set_ylabel("milliseconds")
        if not measured:
            ax.text(0.5, 0.5, "no latency measured", ha="center", transform=ax.transAxes)
    fig.suptitle(title, fontsize=8, wrap=True)
    _legend(fig, rows, load_bound_note=False)
    return fig


def cost_figure(rows: Sequence[Row], title: str) -> Figure:
    """What a request cost: the target, the server process, irq+softirq, one panel each."""
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    panels: tuple[tuple[RowFigure, str], ...] = (
        (lambda row: row.cost.target_cpu_us if row.cost else None, "target (above idle)"),
        (lambda row: row.cpu_us_per_request, "server process"),
        (lambda row: row.cost.interrupt_us if row.cost else None, "irq + softirq"),
    )
    for ax, (figure, label) in zip(axes, panels, strict=True):
        _bars(ax, rows, figure, hatch_load_bound=False)
        ax.set_title(f"{label} CPU", fontsize=10)
        ax.set_ylabel("µs per request (median)")
    fig.suptitle(title, fontsize=8, wrap=True)
    _legend(fig, rows, load_bound_note=False)
    return fig


def cpu_panels(rows: Sequence[Row]) -> tuple[Figure, list[tuple[Axes, RowFigure, str]]]:
    """A figure with CPU per request side by side: the server process's, and the whole
    target's beside it when the run measured it; each panel's axes, figure and label."""
    panels: list[tuple[RowFigure, str]] = [
        (lambda row: row.cpu_us_per_request, "server process CPU µs per request")
    ]
    if any(row.cost is not None and row.cost.target_cpu_us is not None for row in rows):
        panels.append(
            (
                lambda row: row.cost.target_cpu_us if row.cost else None,
                "target CPU µs per request (above idle)",
            )
        )
    fig = Figure(figsize=(8 * len(panels), 4.6), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    return fig, [(ax, figure, label) for ax, (figure, label) in zip(axes, panels, strict=True)]


def write_plots(folder: Path, rows: Sequence[Row], title: str) -> list[Path]:
    """Write requests, latency and (when measured) cost plots into `folder` as SVG and
    PNG; return their paths."""
    paths = save_figure(requests_figure(rows, title), folder, "requests")
    paths += save_figure(latency_figure(rows, title), folder, "latency")
    if any(row.cost is not None for row in rows):
        paths += save_figure(cost_figure(rows, title), folder, "cost")
    return paths
