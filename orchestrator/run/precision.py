"""A run to a precision: interleaved rounds are added, each planned in run.json before it
runs, until every compared pair's interval is as narrow as asked (after the minimum
rounds) or the next round would not fit in the time budget left.

Each round visits every point where a pair still needs rounds, with only the servers of
those pairs (every server in the minimum rounds), ordered as any round is (run/plan.py).
The rule that stops a pair is `PairPrecision.reached` (results/precision.py): the
verdict's own interval, never its side of no change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from orchestrator.catalogue.spec import ServerSpec
from orchestrator.load.points import LoadPoint
from orchestrator.measure.cell import Cell
from orchestrator.measure.context import RunContext
from orchestrator.results.aggregate import build_rows
from orchestrator.results.cell_result import CellResult
from orchestrator.results.precision import (
    Outlook,
    PairPrecision,
    cell_seconds,
    outlook,
    pair_precisions,
    round_seconds,
)
from orchestrator.results.precision_record import PrecisionOutcome, PrecisionRecord
from orchestrator.run.plan import plan_round
from orchestrator.run.record_keeper import RecordKeeper
from orchestrator.run.sequence import CellCallback, DoneCallback, run_plan

CELL_OVERHEAD_GUESS = 1.0  # seconds a cell takes beyond its load, before one has run


@dataclass(frozen=True)
class RoundReport:
    """Where a run to a precision stands after a round."""

    round: int
    pairs: list[PairPrecision]
    precision: PrecisionRecord
    outlook: Outlook


RoundCallback = Callable[[RoundReport], None]


def _failing(pair: PairPrecision, results: Sequence[CellResult], min_rounds: int) -> bool:
    """A pair with a failed cell in more than half of its rounds after the minimum: more
    rounds would spend the budget on failures."""
    mine = [c for c in results if c.point == pair.point and c.server in (pair.epoll, pair.io_uring)]
    rounds = {c.repetition for c in mine}
    failed = {c.repetition for c in mine if c.status != "ok"}
    return len(rounds) >= min_rounds and len(failed) * 2 > len(rounds)


def _due(
    pairs: Sequence[PairPrecision],
    results: Sequence[CellResult],
    points: Sequence[LoadPoint],
    servers: Sequence[ServerSpec],
    precision: PrecisionRecord,
    next_round: int,
) -> list[tuple[LoadPoint, list[ServerSpec]]]:
    """The servers the next round visits at each point."""
    if next_round <= precision.min_rounds:
        return [(point, list(servers)) for point in points]
    names: dict[str, set[str]] = {}
    for pair in pairs:
        if pair.reached(precision.target, precision.min_rounds):
            continue
        if _failing(pair, results, precision.min_rounds):
            continue
        names.setdefault(pair.point, set()).update((pair.epoll, pair.io_uring))
    due = []
    for point in points:
        chosen = [server for server in servers if server.name in names.get(point.key, set())]
        if chosen:
            due.append((point, chosen))
    return due


class CellClock:
    """Each cell's wall time in this session, on the monotonic clock: from its start to
    the next cell's (or to the end of its round), so set-up and gaps count."""

    def __init__(self) -> None:
        self.spans: dict[tuple[str, str], list[float]] = {}
        self._open: tuple[tuple[str, str], float] | None = None

    def started(self, cell: Cell) -> None:
        """A cell starts: the one before it ends here."""
        now = time.monotonic()
        self.stop(now)
        self._open = ((cell.server.name, cell.point.key), now)

    def stop(self, now: float | None = None) -> None:
        """The last cell started ends now."""
        if self._open is not None:
            key, since = self._open
            self.spans.setdefault(key, []).append((now or time.monotonic()) - since)
            self._open = None

    def means(self) -> dict[tuple[str, str], float]:
        """The mean wall time of each (server, point) timed so far."""
        return {key: sum(spans) / len(spans) for key, spans in self.spans.items()}


@dataclass
class PrecisionDriver:
    """Adds rounds to a run and keeps its precision record current in run.json."""

    ctx: RunContext
    keeper: RecordKeeper
    servers: Sequence[ServerSpec]
    results: list[CellResult]  # every cell of the run so far
    on_start: CellCallback
    on_done: DoneCallback
    on_round: RoundCallback | None = None
    clock: CellClock = field(default_factory=CellClock)

    def _started(self, index: int, cell: Cell) -> None:
        self.clock.started(cell)
        self.on_start(index, cell)

    def _measure(self, cells: Sequence[Cell], index: int) -> None:
        try:
            self.results += run_plan(self.ctx, cells, self._started, self.on_done, index)
        finally:
            self.clock.stop()

    @property
    def precision(self) -> PrecisionRecord:
        """The run's precision record as run.json has it now."""
        found = self.keeper.record.precision
        if found is None:
            raise ValueError("the run asks for no precision")
        return found

    def _pairs(self, points: Sequence[LoadPoint]) -> list[PairPrecision]:
        record = self.keeper.record
        keys = [point.key for point in record.ordered_points]
        rows = build_rows(self.results, None, keys, record.server_order, record.unverified)
        return pair_precisions(self.results, rows, points)

    def _costs(self) -> dict[tuple[str, str], float]:
        """Cell times: this session's on the monotonic clock, earlier ones from the cells'
        own timestamps (whole seconds)."""
        record = self.keeper.record
        sessions = [record.started_at, *(r.at for r in record.resumed)]
        return {**cell_seconds(self.results, sessions), **self.clock.means()}

    def _guess(self, visits: Sequence[tuple[LoadPoint, Sequence[ServerSpec]]]) -> float:
        """A round's wall time: from the cells so far, else from the profile."""
        known = round_seconds(
            self._costs(), {point.key: [s.name for s in chosen] for point, chosen in visits}
        )
        if known is not None:
            return known
        total = 0.0
        for point, chosen in visits:
            profile = self.ctx.profile_for(point.key)
            cell = profile.duration + profile.warmup_seconds + CELL_OVERHEAD_GUESS
            total += cell * len(chosen)
        return total

    def _save(self, spent: float, outcome: PrecisionOutcome = "running") -> PrecisionRecord:
        updated = self.precision.model_copy(update={"spent_seconds": spent, "outcome": outcome})
        self.keeper.set_precision(updated)
        return updated

    def run(self, pending: Sequence[Cell] = (), first_index: int = 0) -> PrecisionRecord:
        """Measure `pending` (an interrupted round's cells), then add rounds until every
        pair reached the precision or the budget would be overspent; the record of how
        it ended."""
        started = time.monotonic()
        spent_before = self.precision.spent_seconds
        index = first_index

        def spent() -> float:
            return spent_before + time.monotonic() - started

        if pending:
            self._measure(pending, index)
            index += len(pending)
            self._save(spent())
        points = [self.keeper.record.point(key) for key in self.precision.points]
        keys = set(self.precision.points)
        while True:
            precision = self.precision
            pairs = self._pairs(points)
            planned = [key.repetition for key in self.keeper.record.plan if key.point in keys]
            next_round = max(planned, default=0) + 1
            visits = _due(pairs, self.results, points, self.servers, precision, next_round)
            if not visits:
                return self._save(spent(), "reached")
            if spent() + self._guess(visits) > precision.budget_seconds:
                return self._save(spent(), "budget")
            cells = plan_round(visits, next_round - 1)
            self.keeper.plan_cells(cells)
            self._measure(cells, index)
            index += len(cells)
            saved = self._save(spent())
            if self.on_round is not None:
                pairs = self._pairs(points)
                ahead = outlook(pairs, saved.target, self._costs(), saved.min_rounds)
                self.on_round(RoundReport(next_round, pairs, saved, ahead))


def measure_to_precision(
    ctx: RunContext,
    keeper: RecordKeeper,
    servers: Sequence[ServerSpec],
    earlier: Sequence[CellResult],
    on_start: CellCallback,
    on_done: DoneCallback,
    on_round: RoundCallback | None = None,
    table: Sequence[Cell] = (),
    pending: Sequence[Cell] = (),
) -> PrecisionRecord:
    """A run to a precision: the main job's `table` round first (outside the budget), the
    `pending` cells a resumed run lacks (inside it), then rounds until the precision or
    the budget; `earlier` are the cells the run already has."""
    results = list(earlier)
    if table:
        results += run_plan(ctx, table, on_start, on_done)
    driver = PrecisionDriver(ctx, keeper, servers, results, on_start, on_done, on_round)
    return driver.run(pending=pending, first_index=len(table))
