"""Measure one cell: start the server pinned, warm up, sample the counters, run the load,
sample again, stop the server by PID, and say what happened (failures included)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from orchestrator.catalogue.spec import ServerSpec
from orchestrator.errors import HostError
from orchestrator.hosts.base import STOP_GRACE_SECONDS, describe_exit
from orchestrator.leftovers import forget_server, record_server
from orchestrator.load.points import LoadPoint
from orchestrator.measure.context import RunContext
from orchestrator.measure.counters import CellCounters, counters_between
from orchestrator.measure.load_run import LoadRun, run_load
from orchestrator.measure.server_process import (
    ServerDied,
    check_alive,
    check_port_free,
    fetch_log,
    log_tail,
    start_server,
    stop_server,
    wait_until_ready,
)
from orchestrator.measure.snapshot import SnapshotPlan, take_snapshot
from orchestrator.measure.warmup import WARMUP_PREFIX, warm_up
from orchestrator.results.cell_result import (
    CellKey,
    CellResult,
    CellStatus,
    utc_now,
)
from orchestrator.split_pass.together import PassRequest
from orchestrator.startup import find_startup_line

SERVER_LOG = "server.log"


@dataclass(frozen=True)
class Cell:
    """One measurement: a server at a load point, at one repetition."""

    server: ServerSpec
    point: LoadPoint
    repetition: int  # 1-based: the round it belongs to

    @property
    def key(self) -> CellKey:
        """Which cell this is, as results name it."""
        return CellKey(server=self.server.name, point=self.point.key, repetition=self.repetition)


@dataclass
class CellStart:
    """What a cell knows from its start: which cell, when, its warm-up, and (once its
    server has started) the line the server printed about itself."""

    cell: Cell
    started_at: str
    warmup_seconds: float
    server_startup: str | None = None

    def ended(
        self,
        status: CellStatus,
        error: str | None = None,
        *,
        load: LoadRun | None = None,
        counters: CellCounters | None = None,
        server_exit_status: int | None = None,
        server_log_tail: str | None = None,
    ) -> CellResult:
        """The cell's result, finished now."""
        server = self.cell.server
        return CellResult(
            server=server.name,
            api=server.api,
            language=server.language,
            point=self.cell.point.key,
            repetition=self.cell.repetition,
            status=status,
            error=error,
            started_at=self.started_at,
            finished_at=utc_now(),
            load=load.result if load is not None else None,
            load_by_host=load.by_host if load is not None else [],
            server_cpu=counters.server_cpu if counters is not None else None,
            server_cores=counters.server_cores if counters is not None else None,
            load_cpu=load.cpu if load is not None else None,
            nic=counters.nic if counters is not None else None,
            cost=counters.cost if counters is not None else None,
            server_exit_status=server_exit_status,
            server_log_tail=server_log_tail,
            warmup_seconds=self.warmup_seconds,
            server_startup=self.server_startup,
        )


def run_cell(ctx: RunContext, cell: Cell) -> CellResult:
    """Measure one cell; failures are recorded in the result, never raised.

    A warm-up pass of the same tool runs first and is not measured (perf counts over it):
    the target's counters are read only around the measured pass. A failed cell keeps
    what is known: the server's exit status and log tail, and the load result when the
    load finished.
    """
    server = cell.server
    ctx = ctx.for_server(server)
    paths = ctx.cell_paths(server.name, cell.point.key, cell.repetition)
    log_path = paths.server_log
    warmup = ctx.profile.warmup_seconds
    start = CellStart(cell, utc_now(), warmup)

    problem = ctx.deployed.problem(server)
    if problem is not None:
        return start.ended("failed", problem)
    verified = ctx.verify(ctx, server) if ctx.verify is not None else None
    if verified is not None and verified.refused and not ctx.allow_unverified:
        return start.ended("skipped", f"not measured: verify {verified.summary()}")
    plan = ctx.cost_plan
    if plan is None:
        raise ValueError("a run measures its cells with a cost plan")
    pid: int | None = None
    load: LoadRun | None = None
    try:
        check_port_free(ctx)
        pid, argv = start_server(ctx, server, paths.target_folder, log_path)
        record_server(paths.local, ctx.target, pid, argv[0])
        wait_until_ready(ctx, server, pid, log_path)
        start.server_startup = find_startup_line(ctx.target.read_text(log_path))
        ctx.load.run(["mkdir", "-p", f"{ctx.deployed.load_workdir}/{paths.remote}"], timeout=30)
        perf = None
        if warmup > 0:
            warm = PassRequest(server.name, cell.point, ctx.profile.warmup_profile(), WARMUP_PREFIX)
            perf = warm_up(ctx, warm, pid, paths)
            check_alive(ctx, pid, log_path, "warm-up", None)
        reading = SnapshotPlan(pid, plan.interface, plan.record.interface_irqs)
        before = take_snapshot(ctx.target, reading)
        measured = PassRequest(server.name, cell.point, ctx.profile, "")
        load = run_load(ctx, measured, paths.remote, paths.local)
        check_alive(ctx, pid, log_path, "load", load.result)
        after = take_snapshot(ctx.target, reading)
        exit_status = stop_server(ctx, server, pid)
        pid = None
        counters = counters_between(plan, before, after, load.result, reading.pid, perf)
        error = _unclean_stop(server, exit_status)
        result = start.ended(
            "failed" if error else "ok",
            error,
            load=load,
            counters=counters,
            server_exit_status=exit_status,
            server_log_tail=log_tail(ctx.target, log_path) if error else None,
        )
    except HostError as exc:
        failed, stopped = _failed(ctx, start, exc, pid, log_path, load)
        if stopped:
            pid = None
        return failed
    finally:
        if pid is not None:
            # On Ctrl-C/SIGTERM, or when stopping it failed above.
            with contextlib.suppress(HostError):
                stop_server(ctx, server, pid)
                pid = None
        if pid is None:
            forget_server(paths.local)
        fetch_log(ctx.target, log_path, paths.local / SERVER_LOG)
    return result


def _failed(
    ctx: RunContext,
    start: CellStart,
    exc: HostError,
    pid: int | None,
    log_path: str,
    load: LoadRun | None,
) -> tuple[CellResult, bool]:
    """The failed cell (what went wrong, how the server ended, the tail of its log), and
    whether its server is known to be stopped."""
    message = str(exc)
    status: int | None = None
    stopped = pid is None
    if pid is not None:
        # A load pass or a counter read often fails *because* the server died: say so.
        with contextlib.suppress(HostError):
            died = ctx.target.exit_status(pid)
            if died is not None and not isinstance(exc, ServerDied):
                message = f"server {describe_exit(died)} during the cell ({message})"
        try:
            status = stop_server(ctx, start.cell.server, pid)
            stopped = True
        except HostError as stop_error:
            message += f"; and the server could not be stopped: {stop_error}"
    # Only the load's own result: a failed cell keeps no split or CPU of the load.
    kept = LoadRun(load.result, None, []) if load is not None else None
    result = start.ended(
        "failed",
        message,
        load=kept,
        server_exit_status=status,
        # Without a started server the log on disk is an earlier attempt's, if any.
        server_log_tail=None if pid is None else log_tail(ctx.target, log_path),
    )
    return result, stopped


def _unclean_stop(server: ServerSpec, exit_status: int | None) -> str | None:
    """Why the server's exit on its stop signal was not clean (None: it was)."""
    if server.entry.stopped_cleanly(exit_status):
        return None
    sig = f"SIG{server.entry.stop_signal}"
    if exit_status == -9:
        return f"server did not exit within {STOP_GRACE_SECONDS:g} s of {sig} and was killed"
    expected = "exit status 0"
    if server.entry.response != "exact":
        expected += f" or {sig}"
    return f"server {describe_exit(exit_status)} on {sig} (expected: {expected})"
