"""Where a rate sweep stopped keeping up: each server's knee (the highest arrival rate it
sustained) and whose limit the next rate hit, the server's or the load tool's (with
h2load, whose late requests are counted, possibly neither's: a server whose core was not
saturated answered late while the load tool had CPU to spare)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from orchestrator.load.points import LoadPoint
from orchestrator.results.aggregate import Row
from orchestrator.results.cell_result import CellResult
from orchestrator.results.saturation import load_host_at_limit

SUSTAIN_SHARE = 0.99  # achieved Req/s at or above this share of the offered rate
# Late requests (h2load) a server may have over its cells at a rate and still hold it: a
# tenth of p99.9's tail, so that none of p50, p99 and p99.9 can move by more than a tenth
# of its tail's ranks (one hiccup of the machine, not the server's pace).
LATE_SHARE_TOLERATED = 1e-4
Whose = Literal["server", "load tool", "neither"]


def sustained(cell: CellResult, rate: int) -> bool:
    """Whether a cell kept up with `rate`: it ran, dropped no iteration, failed no request
    and achieved at least 99% of the rate."""
    load = cell.load
    return (
        cell.status == "ok"
        and load is not None
        and load.dropped_iterations == 0
        and load.failed_requests == 0
        and load.requests_per_second >= SUSTAIN_SHARE * rate
    )


def late_share(cells: Sequence[CellResult]) -> float:
    """Late requests over all requests of `cells` (0 where the tool counts none)."""
    loads = [c.load for c in cells if c.load is not None]
    requests = sum(load.requests for load in loads)
    late = sum(load.late_requests or 0 for load in loads)
    return late / requests if requests else 0.0


def held(cells: Sequence[CellResult], rate: int) -> bool:
    """Whether a server held `rate` over its `cells` there: each kept up with it, and at
    most LATE_SHARE_TOLERATED of their requests were late."""
    return (
        bool(cells)
        and all(sustained(cell, rate) for cell in cells)
        and late_share(cells) <= LATE_SHARE_TOLERATED
    )


@dataclass(frozen=True)
class Knee:
    """One server's knee in a rate sweep."""

    server: str
    sustained: int | None  # the highest rate sustained in every repetition, below failed_at
    failed_at: int | None  # the lowest rate not sustained (None: it kept up with all)
    whose: Whose | None  # whose limit failed_at was

    def describe(self) -> str:
        """The knee in words."""
        if self.failed_at is None:
            top = f"{self.sustained:,} req/s" if self.sustained else "no rate"
            return f"{self.server} sustained every rate offered (up to {top}): no knee found"
        below = (
            f"sustained {self.sustained:,} req/s"
            if self.sustained
            else "sustained none of the rates"
        )
        if self.whose == "neither":
            return (
                f"{self.server} {below}; at {self.failed_at:,} req/s it fell behind with "
                "neither its core nor the load tool saturated (late answers or failed "
                "requests: see its cells)"
            )
        return (
            f"{self.server} {below}; at {self.failed_at:,} req/s it fell behind, the "
            f"{self.whose}'s limit"
            + (
                " (its core was saturated)"
                if self.whose == "server"
                else " (the server's core had idle time)"
            )
        )


def find_knees(
    cells: Sequence[CellResult], rows: Sequence[Row], points: Sequence[LoadPoint]
) -> list[Knee]:
    """Knees of every server measured at the open-model `points` (by ascending rate)."""
    by_rate = sorted((p for p in points if p.rate is not None), key=lambda p: p.rate or 0)
    if not by_rate:
        return []
    row_at = {(row.server, row.point): row for row in rows}
    knees = []
    for server in dict.fromkeys(row.server for row in rows):
        best: int | None = None
        failed: LoadPoint | None = None
        for point in by_rate:
            rate = point.rate or 0
            group = [c for c in cells if c.server == server and c.point == point.key]
            if not group:
                continue
            if held(group, rate):
                best = rate
            else:
                failed = point
                break
        whose: Whose | None = None
        if failed is not None:
            row = row_at.get((server, failed.key))
            late_counted = any(c.load and c.load.late_requests is not None for c in cells)
            whose = _whose(row, late_counted)
        knees.append(Knee(server, best, None if failed is None else failed.rate, whose))
    return knees


def _whose(row: Row | None, late_counted: bool) -> Whose:
    """Whose limit a rate not sustained was: the load tool's where the server's core sat
    idle. With late requests counted (h2load), the load tool's only where it used its CPUs
    to the limit, the server's where its core was saturated, else neither's."""
    if not late_counted:
        return "load tool" if row is None or row.load_bound else "server"
    if row is None:
        return "neither"
    if row.load_cpu is not None and load_host_at_limit(row.load_cpu.value):
        return "load tool"
    return "neither" if row.load_bound else "server"
