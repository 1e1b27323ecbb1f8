"""Measure one cell: start the server pinned, warm up, sample the counters, run the load,
sample again, stop the server by PID, and say what happened (failures included)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from orchestrator.catalogue.spec import ServerSpec
from orchestrator.errors import HostError
from orchestrator.hosts.base import STOP_GRACE_SECONDS, describe_exit
from orchestrator.load.points import Profile
from orchestrator.load.result import LoadResult
from orchestrator.results.cell import CellResult, CoreCpu, LoadCpu, utc_now
from orchestrator.results.rundir import write_atomic
from orchestrator.run.context import RunContext
from orchestrator.run.cores import core_between
from orchestrator.run.counters import Sample, cpu_between, nic_between, sample
from orchestrator.run.descriptors import with_limit
from orchestrator.run.load_pass import run_together
from orchestrator.run.orphans import forget_server, record_server
from orchestrator.run.plan import Cell
from orchestrator.run.server_process import (
    ServerDied,
    check_alive,
    check_port_free,
    fetch_log,
    log_tail,
    start_server,
    stop_server,
    wait_until_ready,
)
from orchestrator.startup import find_startup_line

LOAD_TIME_LIMIT_MARGIN = 60.0
SERVER_LOG = "server.log"
WARMUP_PREFIX = "warmup-"


def _run_load(
    ctx: RunContext,
    cell: Cell,
    profile: Profile,
    remote_dir: str,
    local_dir: Path,
    prefix: str,
) -> tuple[LoadResult, LoadCpu | None, list[LoadResult]]:
    """One pass of the load tool, pinned; its raw output kept under `local_dir`. With
    several load hosts, every one runs its share at once: the merged result, the load
    CPU of them all and each host's result."""
    if ctx.load_members:
        split = run_together(ctx, ctx.load_members, cell, profile, remote_dir, local_dir, prefix)
        return split.merged, split.cpu, split.by_host
    tool = ctx.tool
    point = cell.point
    cpus = ctx.inventory.first_load.cpus
    load_dir = f"{ctx.deployed.load_workdir}/{remote_dir}"
    command = tool.command(ctx.url, profile, point, load_dir, prefix)
    ran = ctx.load.run(
        with_limit(command.argv, ctx.load_nofile),
        env=command.env,
        cpus=cpus,
        timeout=profile.duration + LOAD_TIME_LIMIT_MARGIN,
        check=False,
    )
    write_atomic(local_dir / f"{prefix}{tool.raw_output_name}", ran.stdout + ran.stderr)
    if not tool.succeeded(ran):
        what = "warm-up" if prefix else "load"
        last = _last_line(ran.stderr or ran.stdout)
        raise HostError(
            f"{tool.kind} {what} pass on {ctx.load.name} {describe_exit(ran.exit_code)}: {last}"
        )
    summary = None
    if command.summary_path is not None:
        local_summary = local_dir / Path(command.summary_path).name
        ctx.load.get_file(command.summary_path, local_summary)
        summary = local_summary.read_text(encoding="utf-8")
    source = f"{cell.server.name} {tool.kind}"
    parsed = tool.parse(ran.stdout, summary, profile, point, source)
    result = parsed.model_copy(update={"host": ctx.load.name, "cpu_seconds": ran.cpu_seconds})
    cpu = None
    if ran.cpu_seconds is not None:
        cpu = LoadCpu(
            cpu_seconds=ran.cpu_seconds,
            wall_seconds=ran.wall_seconds,
            cpus=len(cpus),
        )
    return result, cpu, []


def run_cell(ctx: RunContext, cell: Cell) -> CellResult:
    """Measure one cell; failures are recorded in the result, never raised.

    A warm-up pass of the same tool runs first and is not measured: the server CPU
    counters are read only around the measured pass. A failed cell keeps what is known:
    the server's exit status and log tail, and the load result when the load finished.
    """
    server = cell.server
    ctx = ctx.for_server(server)
    started = utc_now()
    cell_dir = ctx.run_dir.cell_dir(cell.key)
    remote_dir = f"runs/{ctx.run_id}/{server.name}/{cell.point.key}/{cell.repetition}"
    log_path = f"{ctx.deployed.target_workdir}/{remote_dir}/{SERVER_LOG}"
    load_dir = f"{ctx.deployed.load_workdir}/{remote_dir}"
    warmup = ctx.profile.warmup_seconds
    base: dict[str, Any] = {
        "server": server.name,
        "api": server.api,
        "language": server.language,
        "point": cell.point.key,
        "repetition": cell.repetition,
        "started_at": started,
        "warmup_seconds": warmup,
    }

    problem = ctx.deployed.problem(server)
    if problem is not None:
        return CellResult(**base, status="failed", error=problem, finished_at=utc_now())
    verified = ctx.verify(ctx, server) if ctx.verify is not None else None
    if verified is not None and verified.refused and not ctx.allow_unverified:
        error = f"not measured: verify {verified.summary()}"
        return CellResult(**base, status="skipped", error=error, finished_at=utc_now())
    pid: int | None = None
    load: LoadResult | None = None
    try:
        check_port_free(ctx)
        folder = f"{ctx.deployed.target_workdir}/{remote_dir}"
        pid, argv = start_server(ctx, server, folder, log_path)
        record_server(cell_dir, ctx.target, pid, argv[0])
        wait_until_ready(ctx, server, pid, log_path)
        base["server_startup"] = find_startup_line(ctx.target.read_text(log_path))
        ctx.load.run(["mkdir", "-p", load_dir], timeout=30)
        if warmup > 0:
            _run_load(ctx, cell, ctx.profile.warmup_profile(), remote_dir, cell_dir, WARMUP_PREFIX)
            check_alive(ctx, pid, log_path, "warm-up", None)
        cores = ctx.inventory.target.cpus
        before = sample(ctx.target, pid, cores, ctx.interface)
        load, load_cpu, by_host = _run_load(ctx, cell, ctx.profile, remote_dir, cell_dir, "")
        check_alive(ctx, pid, log_path, "load", load)
        after = sample(ctx.target, pid, cores, ctx.interface)
        exit_status = stop_server(ctx, server, pid)
        pid = None
        busy = core_between(before.cores, after.cores, cores, ctx.deployed.target_facts.clock_ticks)
        result = _measured(base, load, load_cpu, busy, before, after, ctx, exit_status, server)
        result = result.model_copy(update={"load_by_host": by_host})
        if result.status != "ok":
            tail = log_tail(ctx.target, log_path)
            result = result.model_copy(update={"server_log_tail": tail})
    except HostError as exc:
        failed, stopped = _failed(ctx, server, base, exc, pid, log_path, load)
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
            forget_server(cell_dir)
        fetch_log(ctx.target, log_path, cell_dir / SERVER_LOG)
    return result


def _failed(
    ctx: RunContext,
    server: ServerSpec,
    base: dict[str, Any],
    exc: HostError,
    pid: int | None,
    log_path: str,
    load: LoadResult | None,
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
            status = stop_server(ctx, server, pid)
            stopped = True
        except HostError as stop_error:
            message += f"; and the server could not be stopped: {stop_error}"
    result = CellResult(
        **base,
        status="failed",
        error=message,
        finished_at=utc_now(),
        load=load,
        server_exit_status=status,
        # Without a started server the log on disk is an earlier attempt's, if any.
        server_log_tail=None if pid is None else log_tail(ctx.target, log_path),
    )
    return result, stopped


def _measured(
    base: dict[str, Any],
    load: LoadResult,
    load_cpu: LoadCpu | None,
    cores: CoreCpu,
    before: Sample,
    after: Sample,
    ctx: RunContext,
    exit_status: int | None,
    server: ServerSpec,
) -> CellResult:
    cpu = cpu_between(before, after, ctx.deployed.target_facts.clock_ticks).model_copy(
        update={"active_seconds": load.duration_seconds}
    )
    nic = nic_between(ctx.interface, before, after) if ctx.interface else None
    clean = server.entry.stopped_cleanly(exit_status)
    status = "ok" if clean else "failed"
    error = None
    if not clean:
        sig = f"SIG{server.entry.stop_signal}"
        expected = "exit status 0"
        if server.entry.response != "exact":
            expected += f" or {sig}"
        error = f"server {describe_exit(exit_status)} on {sig} (expected: {expected})"
        if exit_status == -9:
            error = f"server did not exit within {STOP_GRACE_SECONDS:g} s of {sig} and was killed"
    return CellResult.model_validate(
        {
            **base,
            "status": status,
            "error": error,
            "finished_at": utc_now(),
            "load": load,
            "server_cpu": cpu,
            "server_cores": cores,
            "load_cpu": load_cpu,
            "nic": nic,
            "server_exit_status": exit_status,
        }
    )


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"
