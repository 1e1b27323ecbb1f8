"""How precise the verdict is, when adding rounds may stop, and how many rounds (and how
much time) a precision would take.

The stopping rule (METHOD.md, *Precision on demand*): a compared pair at a point stops
once it has at least `MIN_ROUNDS` rounds and the half-width of the verdict's own interval
(the same figure, the same pairs, the same Hodges-Lehmann/Wilcoxon interval) is no wider
than asked. It looks at the width only, never at which side of no change the interval
lies: a fixed-width sequential interval in the manner of Chow and Robbins (1965), whose
coverage at stopping stays close to the nominal 95% (tests/test_precision.py simulates
it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import stdev

from orchestrator.load.points import LoadPoint
from orchestrator.results.aggregate import Row
from orchestrator.results.cell_result import CellResult
from orchestrator.results.stats import Estimate, paired_ratio_ci, t_quantile_975
from orchestrator.results.verdict import CpuFigure, comparable_pairs, cpu_pairs

# Rounds before a pair may stop. Below 6 the verdict has only a t interval, and a stop
# soon after that trusts a scatter seen in a handful of rounds: simulated coverage at
# stopping was up to a point lower with 6 than with 10 (METHOD.md).
MIN_ROUNDS = 10
# The Wilcoxon interval of the Hodges-Lehmann estimate is about sqrt(pi/3) times as wide
# as the t interval on normal data (its asymptotic efficiency is 3/pi).
WILCOXON_WIDTH = math.sqrt(math.pi / 3)


def half_width(ratio: Estimate | None) -> float | None:
    """Half the width of a ratio's interval on the log scale, (ln high - ln low) / 2: the
    `±` of `--precision` as a fraction (0.01: the interval spans about ±1% around its
    centre). None without an interval."""
    if ratio is None or ratio.low is None or ratio.high is None:
        return None
    return (math.log(ratio.high) - math.log(ratio.low)) / 2


@dataclass(frozen=True)
class PairPrecision:
    """One compared pair (epoll, io_uring of a language) at one point, as the verdict
    sees it now."""

    point: str
    language: str  # as the verdict names it: C, Rust, `C (a vs b)`
    epoll: str
    io_uring: str
    figure: CpuFigure
    ratio: Estimate | None  # epoll's CPU per request over io_uring's: the verdict's
    log_ratios: tuple[float, ...]  # one per round where both cells succeeded

    @property
    def rounds(self) -> int:
        """Rounds that gave a ratio."""
        return len(self.log_ratios)

    @property
    def half_width(self) -> float | None:
        """The interval's half-width as a fraction (None below two rounds)."""
        return half_width(self.ratio)

    @property
    def sd(self) -> float | None:
        """The sample standard deviation of the log ratios (None below two rounds)."""
        return stdev(self.log_ratios) if len(self.log_ratios) >= 2 else None

    @property
    def scatter(self) -> float | None:
        """The per-round scatter of the log ratio as the verdict's interval sees it. From
        6 rounds (the Wilcoxon interval), the standard deviation a t interval as wide
        would imply, widened as the Wilcoxon interval is: h * sqrt(n) / (t(0.975, n-1)
        * sqrt(pi/3)); on normal rounds that is the sample sd, but an odd round the
        interval shrugs off does not inflate it. Below 6 rounds, the sample sd."""
        width = self.half_width
        n = self.rounds
        if width is None or n < 6:
            return self.sd
        return width * math.sqrt(n) / (t_quantile_975(n - 1) * WILCOXON_WIDTH)

    def reached(self, target: float, min_rounds: int = MIN_ROUNDS) -> bool:
        """The stopping rule: enough rounds, and an interval no wider than `target`."""
        width = self.half_width
        return self.rounds >= min_rounds and width is not None and width <= target

    @property
    def includes_no_change(self) -> bool:
        """True when the interval includes 1 (or there is none)."""
        return self.ratio is None or not self.ratio.excludes(1.0)


def pair_precisions(
    cells: Sequence[CellResult], rows: Sequence[Row], points: Sequence[LoadPoint]
) -> list[PairPrecision]:
    """Every pair the verdict compares at `points`, with the verdict's own ratio."""
    found = []
    for point in points:
        key = point.key
        for language, epoll, io_uring in comparable_pairs([r for r in rows if r.point == key]):
            figure, values = cpu_pairs(cells, epoll.server, io_uring.server, key)
            ratio = paired_ratio_ci(values) if values else None
            logs = tuple(math.log(a / b) for a, b in values if a > 0 and b > 0)
            found.append(
                PairPrecision(key, language, epoll.server, io_uring.server, figure, ratio, logs)
            )
    return found


def rounds_needed(sd: float, target: float, min_rounds: int = MIN_ROUNDS) -> int:
    """The rounds a pair with per-round scatter `sd` (of the log ratio) needs for an
    interval of half-width `target`: the least n (at least `min_rounds`) with
    t(0.975, n-1) * sd * sqrt(pi/3) / sqrt(n) <= target, the t interval's half-width
    widened as the Wilcoxon interval is on normal data."""
    if target <= 0:
        raise ValueError("the target half-width must be positive")
    z = 1.959963984540054
    n = max(min_rounds, 2, math.ceil((z * sd * WILCOXON_WIDTH / target) ** 2))
    while t_quantile_975(n - 1) * sd * WILCOXON_WIDTH / math.sqrt(n) > target:
        n += 1
    return n


def _instant(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def cell_seconds(
    cells: Sequence[CellResult], session_starts: Sequence[str] = ()
) -> dict[tuple[str, str], float]:
    """The wall time one cell takes here, by (server, point): the mean time from a cell's
    start to the next cell's, so set-up, verify and the gaps between cells count (cells
    record whole seconds: over many cells the mean is right). A gap across a session
    start (`--resume`) does not count; the last cell of a session counts its own length."""
    if not cells:
        return {}
    breaks = sorted(_instant(at) for at in session_starts)
    ordered = sorted(cells, key=lambda c: (_instant(c.started_at), c.finished_at))
    spans: dict[tuple[str, str], list[float]] = {}
    for cell, after in zip(ordered, [*ordered[1:], None], strict=True):
        start = _instant(cell.started_at)
        end = None if after is None else _instant(after.started_at)
        if end is None or any(start < moment <= end for moment in breaks):
            end = _instant(cell.finished_at)
        spans.setdefault((cell.server, cell.point), []).append(max(0.0, end - start))
    return {key: sum(values) / len(values) for key, values in spans.items()}


def round_seconds(
    costs: Mapping[tuple[str, str], float], servers_by_point: Mapping[str, Sequence[str]]
) -> float | None:
    """One round of these servers at these points (None: a cell never measured yet)."""
    total = 0.0
    for point, servers in servers_by_point.items():
        for server in servers:
            cost = costs.get((server, point))
            if cost is None:
                return None
            total += cost
    return total


def schedule_seconds(
    needs: Sequence[tuple[int, str, Sequence[str]]], costs: Mapping[tuple[str, str], float]
) -> float | None:
    """The wall time of rounds for pairs that each need some more: `needs` holds (rounds,
    point, servers); a pair leaves the rounds once it has its own, so later rounds are
    cheaper. None when a server's cells at a point were never timed."""
    total = 0.0
    for step in range(1, max((rounds for rounds, _, _ in needs), default=0) + 1):
        visits: dict[str, list[str]] = {}
        for rounds, point, servers in needs:
            if rounds >= step:
                chosen = visits.setdefault(point, [])
                chosen += [server for server in servers if server not in chosen]
        cost = round_seconds(costs, visits)
        if cost is None:
            return None
        total += cost
    return total


@dataclass(frozen=True)
class Outlook:
    """How far a run to a precision is from its target."""

    rounds_left: int  # more rounds the slowest pending pair needs
    seconds_left: float | None  # their wall time here (None: unknown)


def outlook(
    pairs: Sequence[PairPrecision],
    target: float,
    costs: Mapping[tuple[str, str], float],
    min_rounds: int = MIN_ROUNDS,
) -> Outlook:
    """Rounds and time to the target from each pending pair's scatter so far. A pair with
    fewer than two rounds is taken to need `min_rounds`."""
    needs: list[tuple[int, str, Sequence[str]]] = []
    for pair in pairs:
        if pair.reached(target, min_rounds):
            continue
        scatter = pair.scatter
        needed = min_rounds if scatter is None else rounds_needed(scatter, target, min_rounds)
        needs.append((max(1, needed - pair.rounds), pair.point, (pair.epoll, pair.io_uring)))
    if not needs:
        return Outlook(0, 0.0)
    return Outlook(max(rounds for rounds, _, _ in needs), schedule_seconds(needs, costs))
