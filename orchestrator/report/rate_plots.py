"""Plots of a rate sweep whose load tool counts late requests (h2load), against the
offered rate on a numeric axis, one line per server, each server's knee marked:

- rate-latency: p99 (top) and p50 (bottom) latency; a point the server did not hold
  (below 99% of the rate achieved, failed or late requests) drawn hollow: its latency is
  not comparable;
- rate-cpu: server CPU µs per request with its 95% interval as a band, the same marks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from orchestrator.load.points import LoadPoint
from orchestrator.report.plots import COLOURS, OTHER_COLOUR, RowFigure, cpu_panels, save_figure
from orchestrator.report.sweep_plots import MARKERS, STYLES
from orchestrator.results.aggregate import Row
from orchestrator.results.cell_result import CellResult
from orchestrator.results.knees import Knee
from orchestrator.results.rate_verdict import holding

HOLLOW_NOTE = "hollow: not held, i.e. short of the rate, failed or late requests"


def _rated(points: Sequence[LoadPoint]) -> list[LoadPoint]:
    return sorted((p for p in points if p.is_open and p.rate), key=lambda p: p.rate or 0)


def _draw(
    ax: Axes,
    rows: Sequence[Row],
    cells: Sequence[CellResult],
    points: Sequence[LoadPoint],
    knees: Sequence[Knee],
    figure: RowFigure,
    band: bool = False,
    label_knees: bool = True,
) -> None:
    """One line per server of `figure` against the offered rate, its knee a dotted line
    (labelled unless `label_knees` is False)."""
    by_key = {(row.server, row.point): row for row in rows}
    stacked: dict[int, int] = {}  # rate -> knee labels there already
    for server in dict.fromkeys(row.server for row in rows):
        present = []
        for point in points:
            row = by_key.get((server, point.key))
            value = figure(row) if row is not None else None
            if row is not None and value is not None:
                held = holding(cells, server, point).held
                present.append((point.rate or 0, row, value, held))
        if not present:
            continue
        first = present[0][1]
        colour = COLOURS.get(first.language, OTHER_COLOUR)
        xs = [x for x, _, _, _ in present]
        ys = [est.value for _, _, est, _ in present]
        ax.plot(xs, ys, color=colour, linestyle=STYLES.get(first.api, ":"), label=server)
        for x, row, est, held in present:
            ax.plot(
                [x],
                [est.value],
                marker=MARKERS.get(row.api, "^"),
                color=colour,
                markerfacecolor=colour if held else "white",
                markersize=6,
            )
        with_interval = [(x, est) for x, _, est, _ in present if est.low is not None]
        if band and with_interval:
            ax.fill_between(
                [x for x, _ in with_interval],
                [est.low or est.value for _, est in with_interval],
                [est.high or est.value for _, est in with_interval],
                color=colour,
                alpha=0.15,
                linewidth=0,
            )
        knee = next((k for k in knees if k.server == server and k.sustained), None)
        if knee is not None and knee.sustained in xs:
            at = stacked.get(knee.sustained, 0)
            stacked[knee.sustained] = at + 1
            ax.axvline(knee.sustained, color=colour, linestyle=":", linewidth=1, alpha=0.7)
            if label_knees:  # stacked down from the top: one line per server there
                ax.annotate(
                    f"{server} knee {knee.sustained:,}",
                    (knee.sustained, 1),
                    xycoords=("data", "axes fraction"),
                    textcoords="offset points",
                    xytext=(3, -10 - 10 * at),
                    fontsize=7,
                    color=colour,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
                )
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:,.0f}"))
    ax.grid(alpha=0.3, which="both")


def _ms(field: str) -> RowFigure:
    return lambda row: getattr(row, field)


def rate_latency_figure(
    rows: Sequence[Row],
    cells: Sequence[CellResult],
    points: Sequence[LoadPoint],
    knees: Sequence[Knee],
    title: str,
) -> Figure:
    """p99 (top) and p50 (bottom) latency against the offered rate."""
    fig = Figure(figsize=(8, 6.4), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    rated = _rated(points)
    _draw(top, rows, cells, rated, knees, _ms("latency_p99_ms"))
    _draw(bottom, rows, cells, rated, knees, _ms("latency_p50_ms"), label_knees=False)
    for ax, name in ((top, "p99"), (bottom, "p50")):
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda value, _pos: ""))
        ax.set_ylabel(f"{name} latency (ms, median)")
    bottom.set_xlabel("offered rate (req/s)")
    top.set_title(
        f"Latency by offered rate; knee: the highest rate held ({HOLLOW_NOTE})", fontsize=9
    )
    fig.suptitle(title, fontsize=8, wrap=True)
    if top.lines:
        top.legend(fontsize=7, ncols=2)
    return fig


def rate_cpu_figure(
    rows: Sequence[Row],
    cells: Sequence[CellResult],
    points: Sequence[LoadPoint],
    knees: Sequence[Knee],
    title: str,
) -> Figure:
    """CPU per request against the offered rate, with interval bands: the server
    process's, and the whole target's beside it (the verdict's figure) when measured."""
    fig, panels = cpu_panels(rows)
    for i, (ax, figure, label) in enumerate(panels):
        _draw(ax, rows, cells, _rated(points), knees, figure, band=True, label_knees=i == 0)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("offered rate (req/s)")
        ax.set_ylabel(f"{label} (median, 95% band)")
        ax.set_title(f"CPU cost per request by offered rate ({HOLLOW_NOTE})", fontsize=9)
        if ax.lines:
            ax.legend(fontsize=7, ncols=2)
    fig.suptitle(title, fontsize=8, wrap=True)
    return fig


def write_rate_plots(
    folder: Path,
    rows: Sequence[Row],
    cells: Sequence[CellResult],
    points: Sequence[LoadPoint],
    knees: Sequence[Knee],
    title: str,
) -> list[Path]:
    """Write rate-latency and rate-cpu into `folder` (nothing below two rates)."""
    if len(_rated(points)) < 2:
        return []
    paths = save_figure(
        rate_latency_figure(rows, cells, points, knees, title), folder, "rate-latency"
    )
    return paths + save_figure(
        rate_cpu_figure(rows, cells, points, knees, title), folder, "rate-cpu"
    )
