"""Progress display for a run: cell i of N, the server, elapsed and remaining time."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from orchestrator.measure.cell import Cell
from orchestrator.results.cell_result import CellResult
from orchestrator.results.precision import PairPrecision
from orchestrator.results.precision_record import duration_text, percent_text
from orchestrator.run.precision import RoundReport


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
        self.estimate: tuple[float, float] | None = None  # (seconds left, when said)
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
        if self.estimate is not None:
            seconds, said = self.estimate
            return seconds - (time.monotonic() - said)
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

    def expect(self, seconds: float) -> None:
        """The run's time left, as far as it is known (a run to a precision)."""
        self.estimate = (seconds, time.monotonic())
        self._progress.update(self._task, remaining=self._format(self._remaining()))

    def round_done(self, report: RoundReport) -> None:
        """After a round of a run to a precision: each point's intervals and the time to
        the target (bounded by the budget left)."""
        precision = report.precision
        left = precision.budget_seconds - precision.spent_seconds
        ahead = report.outlook.seconds_left
        seconds = left if ahead is None else min(ahead, left)
        self.estimate = (max(0.0, seconds), time.monotonic())
        self._progress.update(self._task, remaining=self._format(self._remaining()))
        self._progress.console.print(round_line(report), highlight=False, soft_wrap=True)


def _interval(pair: PairPrecision, target: float, min_rounds: int) -> str:
    """`C -2.1% (-3.0…-1.2) ±0.9% ✓`: io_uring's CPU per request against epoll's."""
    ratio = pair.ratio
    if ratio is None:
        return f"{pair.language} -"
    text = f"{pair.language} {(1 / ratio.value - 1) * 100:+.1f}%"
    width = pair.half_width
    if ratio.low is None or ratio.high is None or width is None:
        return text
    text += f" ({(1 / ratio.high - 1) * 100:+.1f}…{(1 / ratio.low - 1) * 100:+.1f}) "
    text += percent_text(width)
    return text + (" ✓" if pair.reached(target, min_rounds) else "")


def round_line(report: RoundReport) -> str:
    """One line after a round: where each point stands and how long the rest may take."""
    precision = report.precision
    by_point: dict[str, list[str]] = {}
    for pair in report.pairs:
        by_point.setdefault(pair.point, []).append(
            _interval(pair, precision.target, precision.min_rounds)
        )
    points = " | ".join(f"{key}: {', '.join(texts)}" for key, texts in by_point.items())
    spent = f"{duration_text(precision.spent_seconds)} of {duration_text(precision.budget_seconds)}"
    ahead = report.outlook
    if ahead.rounds_left == 0:
        tail = f"{percent_text(precision.target)} reached"
    else:
        when = "" if ahead.seconds_left is None else f" ~{duration_text(ahead.seconds_left)},"
        tail = f"{percent_text(precision.target)} in{when} ~{ahead.rounds_left} more rounds"
        if (
            ahead.seconds_left is not None
            and ahead.seconds_left > precision.budget_seconds - precision.spent_seconds
        ):
            tail += " (beyond the budget)"
    return f"  round {report.round} ({spent}): {points or 'no pair compared yet'}; {tail}"
