"""Cells run one after another, each result written as soon as it exists; a host that
stops answering stops the sequence."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from orchestrator.errors import HostError
from orchestrator.measure.cell import Cell, run_cell
from orchestrator.measure.context import RunContext
from orchestrator.results.cell_result import CellResult

CellCallback = Callable[[int, Cell], None]
DoneCallback = Callable[[int, Cell, CellResult], None]


class HostLost(HostError):
    """A host stopped answering and a reconnection failed: the run cannot go on."""


def check_hosts(ctx: RunContext) -> None:
    """Raise HostLost unless every host answers a trivial command (an SSH host reconnects
    once if its connection dropped)."""
    loads = [member.host for member in ctx.load_members] or [ctx.load]
    for host in dict.fromkeys((ctx.target, *loads)):
        try:
            host.run(["true"], timeout=30)
        except HostError as exc:
            raise HostLost(str(exc)) from None


def run_plan(
    ctx: RunContext,
    cells: Sequence[Cell],
    on_start: CellCallback,
    on_done: DoneCallback,
    first_index: int = 0,
) -> list[CellResult]:
    """Run cells in order, writing each result as soon as it exists.

    After a failed cell both hosts must still answer; when one does not, HostLost stops
    the plan (the failed cell is on disk first).
    """
    results = []
    for index, cell in enumerate(cells, start=first_index):
        on_start(index, cell)
        result = run_cell(ctx, cell)
        ctx.run_dir.write_cell(result)
        results.append(result)
        on_done(index, cell, result)
        if result.status == "failed":
            check_hosts(ctx)
    return results
