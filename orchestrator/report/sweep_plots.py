"""Plots of a run over several load points (SVG and PNG, like plots.py):

- sweep-requests: Req/s against the load point, one line per server, 95% whiskers;
  load-bound points drawn hollow.
- sweep-cpu: CPU µs per request against the load point, the 95% interval as a band: the
  server process's, and beside it the whole target's where the run measured it.
- latency-distribution: latency against percentile at one point, the percentile axis on a
  1/(1-p) log scale as HdrHistogram plots it, one line per server (all its repetitions'
  histograms merged; the percentiles the tool reported where it gave no histogram).
- rate-p99 (rate sweeps): p99 latency against the offered rate, each server's knee marked
  (h2load's rate sweeps: rate-latency and rate-cpu of rate_plots.py instead).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter

from orchestrator.load.points import LoadPoint
from orchestrator.load.result import LatencyHistogram
from orchestrator.report.plots import COLOURS, OTHER_COLOUR, RowFigure, cpu_panels, save_figure
from orchestrator.results.aggregate import Row
from orchestrator.results.cell_result import CellResult
from orchestrator.results.knees import Knee
from orchestrator.results.rate_verdict import counts_late

STYLES = {"epoll": "-", "io_uring": "--"}
MARKERS = {"epoll": "o", "io_uring": "s"}
PERCENTILE_TICKS = (50.0, 90.0, 99.0, 99.9, 99.99, 99.999)


def _colour(row: Row) -> str:
    return COLOURS.get(row.language, OTHER_COLOUR)


def _series(rows: Sequence[Row], points: Sequence[LoadPoint]) -> dict[str, list[Row | None]]:
    """Each server's rows in the order of `points` (None where it has none)."""
    by_key = {(row.server, row.point): row for row in rows}
    servers = list(dict.fromkeys(row.server for row in rows))
    return {s: [by_key.get((s, p.key)) for p in points] for s in servers}


def _point_axis(ax: Axes, points: Sequence[LoadPoint]) -> None:
    ax.set_xticks(range(len(points)), [p.describe() for p in points], rotation=20, fontsize=8)
    ax.set_xlim(-0.4, len(points) - 0.6)
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)


def _lines(
    ax: Axes, rows: Sequence[Row], points: Sequence[LoadPoint], figure: RowFigure, band: bool
) -> None:
    for server, series in _series(rows, points).items():
        present = [(i, r, figure(r)) for i, r in enumerate(series) if r is not None and figure(r)]
        if not present:
            continue
        first = present[0][1]
        xs = [i for i, _, _ in present]
        ys = [est.value for _, _, est in present if est is not None]
        style = dict(color=_colour(first), linestyle=STYLES.get(first.api, ":"), label=server)
        ax.plot(xs, ys, marker=None, **style)  # type: ignore[arg-type]
        for (x, row, est), y in zip(present, ys, strict=True):
            hollow = row.load_bound
            ax.plot(
                [x],
                [y],
                marker=MARKERS.get(row.api, "^"),
                color=_colour(row),
                markerfacecolor="white" if hollow else _colour(row),
                markersize=6,
            )
            if not band and est is not None and est.low is not None and est.high is not None:
                ax.errorbar(
                    x,
                    y,
                    yerr=[[y - est.low], [est.high - y]],
                    color=_colour(row),
                    capsize=3,
                    linewidth=1,
                )
        if band:
            with_interval = [
                (x, est) for x, _, est in present if est is not None and est.low is not None
            ]
            if with_interval:
                ax.fill_between(
                    [x for x, _ in with_interval],
                    [est.low or est.value for _, est in with_interval],
                    [est.high or est.value for _, est in with_interval],
                    color=_colour(first),
                    alpha=0.15,
                    linewidth=0,
                )


def sweep_requests_figure(rows: Sequence[Row], points: Sequence[LoadPoint], title: str) -> Figure:
    """Req/s against the load point."""
    fig = Figure(figsize=(8, 4.6), layout="constrained")
    ax = fig.add_subplot()
    _lines(ax, rows, points, lambda row: row.requests_per_second, band=False)
    _point_axis(ax, points)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("requests per second (median, 95% whiskers)")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:,.0f}"))
    ax.set_title("Req/s by load point (hollow: load-bound, the load tool set the pace)", fontsize=9)
    fig.suptitle(title, fontsize=8, wrap=True)
    ax.legend(fontsize=7, ncols=2)
    return fig


def sweep_cpu_figure(rows: Sequence[Row], points: Sequence[LoadPoint], title: str) -> Figure:
    """CPU per request against the load point, with interval bands: the server process's,
    and the whole target's beside it when the run measured it."""
    fig, panels = cpu_panels(rows)
    for ax, figure, label in panels:
        _lines(ax, rows, points, figure, band=True)
        _point_axis(ax, points)
        ax.set_ylim(bottom=0)
        ax.set_ylabel(f"{label} (median, 95% band)")
        ax.set_title("CPU cost per request by load point (lower is cheaper)", fontsize=9)
        ax.legend(fontsize=7, ncols=2)
    fig.suptitle(title, fontsize=8, wrap=True)
    return fig


def _nines(percent: float) -> float:
    """1/(1-p): the HdrHistogram percentile axis (50% -> 2, 99% -> 100, 99.9% -> 1000)."""
    return 1 / (1 - min(percent, 99.9999) / 100)


def _distribution(cells: Sequence[CellResult]) -> list[tuple[float, float]]:
    """(percentile, latency ms) of a server's cells at one point: from their merged
    histograms, else from the percentiles the tool reported."""
    histograms = [c.load.histogram for c in cells if c.load and c.load.histogram]
    if histograms:
        merged = LatencyHistogram.merged(histograms)
        total = merged.total
        steps = [100 * (1 - 10 ** (-k / 20)) for k in range(0, 121)]
        return [
            (p, merged.percentile(p) / 1000) for p in steps if p > 0 and total * (1 - p / 100) >= 1
        ]
    known = [c.load.latency for c in cells if c.load and c.load.latency.p50]
    if not known:
        return []
    latency = known[len(known) // 2]
    pairs = [
        (50.0, latency.p50),
        (75.0, latency.p75),
        (90.0, latency.p90),
        (95.0, latency.p95),
        (99.0, latency.p99),
        (99.9, latency.p999),
        (99.99, latency.p9999),
    ]
    return [(p, v) for p, v in pairs if v is not None]


def distribution_figure(
    cells: Sequence[CellResult], rows: Sequence[Row], point: LoadPoint, title: str
) -> Figure:
    """Latency against percentile for every server at `point` (in the order of `rows`)."""
    fig = Figure(figsize=(8, 4.6), layout="constrained")
    ax = fig.add_subplot()
    at_point = [c for c in cells if c.point == point.key and c.status == "ok"]
    for row in rows:
        if row.point != point.key:
            continue
        curve = _distribution([c for c in at_point if c.server == row.server])
        if not curve:
            continue
        ax.plot(
            [_nines(p) for p, _ in curve],
            [v for _, v in curve],
            color=_colour(row),
            linestyle=STYLES.get(row.api, ":"),
            label=row.server,
        )
    ax.set_xscale("log")
    ticks = [_nines(p) for p in PERCENTILE_TICKS]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda v, _pos: f"{100 * (1 - 1 / v):.{_decimals(v)}f}%")
    )
    ax.xaxis.set_minor_locator(FixedLocator([]))
    ax.set_xlim(left=_nines(0))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.grid(alpha=0.3)
    ax.set_title(f"Latency by percentile at {point.describe()}", fontsize=9)
    fig.suptitle(title, fontsize=8, wrap=True)
    if ax.lines:
        ax.legend(fontsize=7, ncols=2)
    else:
        ax.text(0.5, 0.5, "no latency measured", ha="center", transform=ax.transAxes)
    return fig


def _decimals(nines: float) -> int:
    return max(0, round(math.log10(nines)) - 2)


def rate_figure(
    rows: Sequence[Row], points: Sequence[LoadPoint], knees: Sequence[Knee], title: str
) -> Figure:
    """p99 latency against the offered rate; each server's knee marked."""
    fig = Figure(figsize=(8, 4.6), layout="constrained")
    ax = fig.add_subplot()
    by_rate = sorted((p for p in points if p.rate), key=lambda p: p.rate or 0)
    knees_marked: dict[int, int] = {}  # rate -> labels already there (stacked, not overlaid)
    for server, series in _series(rows, by_rate).items():
        xs = [p.rate or 0 for p, r in zip(by_rate, series, strict=True) if r and r.latency_p99_ms]
        ys = [r.latency_p99_ms.value for r in series if r and r.latency_p99_ms]
        first = next((r for r in series if r is not None), None)
        if not xs or first is None:
            continue
        ax.plot(
            xs,
            ys,
            color=_colour(first),
            linestyle=STYLES.get(first.api, ":"),
            marker=MARKERS.get(first.api, "^"),
            label=server,
        )
        knee = next((k for k in knees if k.server == server and k.sustained), None)
        if knee is not None and knee.sustained in xs:
            y = ys[xs.index(knee.sustained)]
            stacked = knees_marked.get(knee.sustained, 0)
            knees_marked[knee.sustained] = stacked + 1
            ax.annotate(
                f"{server} knee {knee.sustained:,}",
                (knee.sustained, y),
                textcoords="offset points",
                xytext=(0, 10 + 11 * stacked),
                ha="center",
                fontsize=7,
                color=_colour(first),
                arrowprops={"arrowstyle": "->", "color": _colour(first)},
            )
    ax.set_yscale("log")
    ax.set_xlabel("offered rate (req/s)")
    ax.set_ylabel("p99 latency (ms)")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:,.0f}"))
    ax.grid(alpha=0.3, which="both")
    ax.set_title("p99 latency by offered rate; knee: the highest rate sustained", fontsize=9)
    fig.suptitle(title, fontsize=8, wrap=True)
    if ax.lines:
        ax.legend(fontsize=7, ncols=2)
    return fig


def latency_point(cells: Sequence[CellResult], points: Sequence[LoadPoint]) -> LoadPoint | None:
    """The point the distribution plot shows: the last one where every server has latency."""
    servers = {c.server for c in cells}
    for point in reversed(points):
        with_latency = {
            c.server for c in cells if c.point == point.key and c.load and c.load.latency.p50
        }
        if with_latency and with_latency == servers:
            return point
    return None


def write_sweep_plots(
    folder: Path,
    rows: Sequence[Row],
    cells: Sequence[CellResult],
    points: Sequence[LoadPoint],
    knees: Sequence[Knee],
    title: str,
) -> list[Path]:
    """Write the sweep's plots into `folder`; return their paths."""
    paths = save_figure(sweep_requests_figure(rows, points, title), folder, "sweep-requests")
    paths += save_figure(sweep_cpu_figure(rows, points, title), folder, "sweep-cpu")
    shown = latency_point(cells, points)
    if shown is not None:
        paths += save_figure(
            distribution_figure(cells, rows, shown, title), folder, "latency-distribution"
        )
    if counts_late(cells):  # h2load: latency and CPU against the rate, holding marked
        from orchestrator.report.rate_plots import write_rate_plots

        paths += write_rate_plots(folder, rows, cells, points, knees, title)
    elif len({p.rate for p in points if p.rate}) > 1:
        paths += save_figure(rate_figure(rows, points, knees, title), folder, "rate-p99")
    return paths
