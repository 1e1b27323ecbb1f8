"""`orch compare`'s verdicts: for each point and language both runs compared, whether
their intervals of epoll's CPU per request over io_uring's can tell the runs apart.

The two runs are independent: their per-round ratios are two samples, and Welch's t
interval of the difference of their mean logarithms (stats.welch_ratio_ci) says whether
the runs' ratios differ. An interval that includes no change means that, with the rounds
they have, the two runs cannot be told apart at that point, whatever each verdict says.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from orchestrator.results.aggregate import build_rows
from orchestrator.results.cell_result import CellResult
from orchestrator.results.precision import PairPrecision, pair_precisions
from orchestrator.results.record import RunRecord
from orchestrator.results.stats import Estimate, welch_ratio_ci
from orchestrator.results.verdict import FIGURE_NAMES


def _pairs(record: RunRecord, cells: Sequence[CellResult]) -> list[PairPrecision]:
    keys = [point.key for point in record.ordered_points]
    rows = build_rows(cells, None, keys, record.server_order, record.unverified)
    return pair_precisions(cells, rows, record.verdict_points)


def _change(ratio: Estimate) -> str:
    """io_uring's CPU per request against epoll's: `-2.5% (-3.4…-1.6)`."""
    text = f"{(1 / ratio.value - 1) * 100:+.1f}%"
    if ratio.low is None or ratio.high is None:
        return text + " (no interval)"
    return f"{text} ({(1 / ratio.high - 1) * 100:+.1f}…{(1 / ratio.low - 1) * 100:+.1f})"


def _apart(a: PairPrecision, b: PairPrecision) -> str:
    if a.figure != b.figure:
        return (
            f"not comparable: A compares the {FIGURE_NAMES[a.figure]}, B the "
            f"{FIGURE_NAMES[b.figure]}"
        )
    if a.rounds < 2 or b.rounds < 2:
        return "a run with one round cannot be compared"
    ratios_a = [math.exp(x) for x in a.log_ratios]
    ratios_b = [math.exp(x) for x in b.log_ratios]
    found = welch_ratio_ci(ratios_b, ratios_a)
    if found.low is None or found.high is None:
        return "no interval of the difference"
    # The point is the ratio of geometric means, the centre of Welch's interval.
    centre = math.sqrt(found.low * found.high)
    span = f"B's ratio over A's {(centre - 1) * 100:+.1f}%, {(found.low - 1) * 100:+.1f}…"
    span += f"{(found.high - 1) * 100:+.1f}%"
    if found.excludes(1.0):
        return f"**the runs differ** ({span})"
    return f"the runs cannot tell these apart ({span})"


def verdict_comparison_lines(
    record_a: RunRecord,
    cells_a: Sequence[CellResult],
    record_b: RunRecord,
    cells_b: Sequence[CellResult],
) -> list[str]:
    """The Verdicts section of `orch compare` (nothing when no pair is in both runs)."""
    found_b = {(p.point, p.epoll, p.io_uring): p for p in _pairs(record_b, cells_b)}
    lines = []
    for a in _pairs(record_a, cells_a):
        b = found_b.get((a.point, a.epoll, a.io_uring))
        if b is None or a.ratio is None or b.ratio is None:
            continue
        where = record_a.point(a.point).describe()
        lines.append(
            f"- At {where}, {a.language}: io_uring's CPU per request {_change(a.ratio)} in A "
            f"({a.rounds} rounds), {_change(b.ratio)} in B ({b.rounds} rounds): {_apart(a, b)}."
        )
    if not lines:
        return []
    return [
        "",
        "## Verdicts",
        "",
        *lines,
        "",
        "Each run's interval is its verdict's (per-round ratios of epoll's CPU per request "
        "over io_uring's); whether the runs differ is Welch's t interval of the ratio of "
        "their geometric-mean ratios (independent runs). An interval that includes no "
        "change: with these rounds the runs cannot be told apart.",
    ]
