"""`--rates auto`: step the offered rate up until each server (or the load tool) stops
keeping up, then narrow down where.

Every server still keeping up is measured at each rate of a geometric staircase (shared
rates, so epoll and io_uring are compared at the same points); a server leaves the
staircase at its first rate not sustained (dropped iterations, VUs exhausted, failed
requests, less than 99% of the rate achieved, or more than 0.01% of its requests late).
Then each server's interval between its last sustained and first missed rate is halved a
few times, at rates of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from orchestrator.catalogue.spec import ServerSpec
from orchestrator.load.points import LoadPoint
from orchestrator.measure.cell import Cell
from orchestrator.measure.context import RunContext
from orchestrator.results.cell_result import CellResult
from orchestrator.results.knees import held
from orchestrator.run.sequence import CellCallback, DoneCallback, run_plan

START_RATE = 1000  # req/s
GROWTH = 1.5  # each step offers this many times the rate before
REFINE_STEPS = 2  # halvings of the interval where a server fell behind
MAX_STEPS = 16  # staircase steps at most (1,000 * 1.5^15 is about 438,000 req/s)

ExtendPlan = Callable[[LoadPoint, Sequence[Cell]], None]
PointAt = Callable[[int], LoadPoint]  # the open-model point of a rate (k6 or h2load)


def nice_rate(value: float) -> int:
    """A rate rounded to two significant digits (1,000, 1,500, 2,200, 3,400 ...)."""
    digits = max(0, math.floor(math.log10(max(value, 1))) - 1)
    scale: int = 10**digits
    return round(value / scale) * scale


def staircase(start: int = START_RATE, growth: float = GROWTH, steps: int = MAX_STEPS) -> list[int]:
    """The shared rates, ascending and distinct."""
    rates: list[int] = []
    value = float(start)
    while len(rates) < steps:
        rate = nice_rate(value)
        if not rates or rate > rates[-1]:
            rates.append(rate)
        value *= growth
    return rates


@dataclass
class Search:
    """One server's progress: the highest rate it sustained and the lowest it missed."""

    server: ServerSpec
    sustained: int | None = None
    missed: int | None = None
    tried: list[int] = field(default_factory=list)

    def next_refinement(self) -> int | None:
        """The midpoint of its last sustained and first missed rate, if one is left."""
        if self.missed is None:
            return None
        low = self.sustained or 0
        mid = nice_rate((low + self.missed) / 2)
        return mid if low < mid < self.missed and mid not in self.tried else None


def _kept_up(results: Sequence[CellResult], server: str, rate: int) -> bool:
    return held([r for r in results if r.server == server], rate)


def _rotated(searches: Sequence[Search], shift: int) -> list[Search]:
    if not searches:
        return []
    shift %= len(searches)
    return [*searches[shift:], *searches[:shift]]


def search_rates(
    ctx: RunContext,
    servers: Sequence[ServerSpec],
    point_at: PointAt,
    repetitions: int,
    extend_plan: ExtendPlan,
    on_start: CellCallback,
    on_done: DoneCallback,
) -> list[Search]:
    """Measure the staircase, then refine each server's knee; each step's point and cells
    are added to the run's plan (`extend_plan`) before they run."""
    searches = [Search(server) for server in servers]
    index = 0

    def measure(rate: int, who: Sequence[Search]) -> list[CellResult]:
        nonlocal index
        point = point_at(rate)
        cells = [
            Cell(search.server, point, repetition)
            for repetition in range(1, repetitions + 1)
            for search in _rotated(who, repetition - 1)
        ]
        extend_plan(point, cells)
        results = run_plan(ctx, cells, on_start, on_done, first_index=index)
        index += len(cells)
        for search in who:
            search.tried.append(rate)
            if _kept_up(results, search.server.name, rate):
                search.sustained = rate
            else:
                search.missed = rate
        return results

    for rate in staircase():
        climbing = [s for s in searches if s.missed is None]
        if not climbing:
            break
        measure(rate, climbing)
    for _ in range(REFINE_STEPS):
        by_rate: dict[int, list[Search]] = {}
        for search in searches:
            mid = search.next_refinement()
            if mid is not None:
                by_rate.setdefault(mid, []).append(search)
        for rate, who in sorted(by_rate.items()):
            measure(rate, who)
    return searches
