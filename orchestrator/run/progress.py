"""Progress display for a run: cell i of N, the server, elapsed and remaining time."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from orchestrator.measure.cell import Cell
from orchestrator.results.cell_result import CellResult


class RunProgress:
    """A rich progress bar over the cells; the remaining time comes from the cells so far."""

    def __init__(
        self, console: Console, total: int, load_seconds: float, with_point: bool = False
    ) -> None:
        """`load_seconds`: the load time of one cell (warm-up included), for the first
        estimate; `with_point`: name cells with their load point (runs of several)."""
        self.console = console
        self.with_point = with_point
        self.total = total
        self.load_seconds = load_seconds
        self.started = time.monotonic()
        self.done = 0
        self._progress = Progress(
            TextColumn("[bold]cell {task.fields[cell]}/{task.total}[/] {task.fields[server]}"),
            BarColumn(),
            TimeElapsedColumn(),
            TextColumn("remaining ~{task.fields[remaining]}"),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task(
            "run", total=total, cell=0, server="", remaining=self._format(total * load_seconds)
        )

    def __enter__(self) -> RunProgress:
        self._progress.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._progress.__exit__(kind, value, trace)

    @staticmethod
    def _format(seconds: float) -> str:
        seconds = max(0, int(seconds))
        return f"{seconds // 60}m{seconds % 60:02d}s"

    def _remaining(self) -> float:
        left = self.total - self.done
        if self.done == 0:
            return left * self.load_seconds
        return left * (time.monotonic() - self.started) / self.done

    def cell_started(self, index: int, cell: Cell) -> None:
        """Show which cell runs now (a rate search plans more cells as it goes)."""
        if index >= self.total:
            self.total = index + 1
            self._progress.update(self._task, total=self.total)
        self._progress.update(
            self._task,
            cell=index + 1,
            server=cell.key.label(self.with_point),
            remaining=self._format(self._remaining()),
        )

    def cell_done(self, index: int, cell: Cell, result: CellResult) -> None:
        """Advance and print a one-line outcome for the cell."""
        self.done += 1
        name = cell.key.label(self.with_point)
        if result.status == "ok" and result.load is not None:
            cpu = result.server_cpu.utilisation if result.server_cpu else 0.0
            line = (
                f"  {name}: {result.load.requests_per_second:,.0f} req/s, "
                f"server CPU {cpu * 100:.0f}%"
            )
            if result.load_cpu is not None:
                line += f", load CPU {result.load_cpu.share * 100:.0f}%"
            if result.load_by_host and result.load.start_skew_seconds is not None:
                line += (
                    f" on {len(result.load_by_host)} load hosts (start skew "
                    f"{result.load.start_skew_seconds * 1000:.1f} ms)"
                )
            if result.load_bound:
                line += " [yellow](load-bound)[/]"
            if result.failed_requests:
                line += f" [red]{result.failed_requests:,} failed requests[/]"
        elif result.status == "skipped":
            line = f"  [yellow]{name}: skipped[/]: {escape(result.error or '')}"
        else:
            line = f"  [red]{name}: failed[/]: {escape(result.error or '')}"
        self._progress.console.print(line, highlight=False, markup=True, soft_wrap=True)
        self._progress.update(self._task, advance=1, remaining=self._format(self._remaining()))
