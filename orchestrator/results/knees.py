"""Where a rate sweep stopped keeping up: each server's knee (the highest arrival rate it
sustained) and whose limit the next rate hit, the server's or the load tool's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from orchestrator.load.points import LoadPoint
from orchestrator.results.aggregate import Row
from orchestrator.results.cell_result import CellResult

SUSTAIN_SHARE = 0.99  # achieved Req/s at or above this share of the offered rate


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


@dataclass(frozen=True)
class Knee:
    """One server's knee in a rate sweep."""

    server: str
    sustained: int | None  # the highest rate sustained in every repetition, below failed_at
    failed_at: int | None  # the lowest rate not sustained (None: it kept up with all)
    whose: Literal["server", "load tool"] | None  # whose limit failed_at was

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
            if all(sustained(c, rate) for c in group):
                best = rate
            else:
                failed = point
                break
        whose: Literal["server", "load tool"] | None = None
        if failed is not None:
            row = row_at.get((server, failed.key))
            whose = "load tool" if row is None or row.load_bound else "server"
        knees.append(Knee(server, best, None if failed is None else failed.rate, whose))
    return knees
