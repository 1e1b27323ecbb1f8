"""Run one cell (start server pinned, warm up, sample, load, sample, stop), then a whole plan."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.deploy.deploy import DeployResult
from orchestrator.errors import HostError
from orchestrator.hosts.base import STOP_GRACE_SECONDS, Host, describe_exit
from orchestrator.inventory import Inventory
from orchestrator.load.k6 import SUMMARY_FILE
from orchestrator.load.points import Profile
from orchestrator.load.result import LoadResult
from orchestrator.load.tool import LoadTool
from orchestrator.results.cell import (
    CellResult,
    CoreCpu,
    LoadCpu,
    RunDirectory,
    utc_now,
    write_atomic,
)
from orchestrator.run.cores import core_between
from orchestrator.run.counters import Sample, cpu_between, nic_between, sample
from orchestrator.run.orphans import forget_server, record_server
from orchestrator.run.plan import Cell
from orchestrator.run.ports import port_in_use, wait_port_free

READY_TIMEOUT_SECONDS = 10.0
READY_POLL_SECONDS = 0.02
# An io_uring server's listening socket outlives its process for a few milliseconds (the
# ring is torn down asynchronously), so a busy port gets a moment to free up.
PORT_FREE_WAIT_SECONDS = 3.0
LOG_TAIL_LINES = 15
LOAD_TIME_LIMIT_MARGIN = 60.0
SERVER_LOG = "server.log"
WARMUP_PREFIX = "warmup-"


@dataclass
class BenchContext:
    """What every cell of a run shares."""

    inventory: Inventory
    target: Host
    load: Host
    deployed: DeployResult
    profile: Profile
    tool: LoadTool
    run_dir: RunDirectory
    run_id: str
    interface: str | None

    @property
    def port(self) -> int:
        """The port the servers listen on."""
        return self.inventory.target.listen.port

    @property
    def url(self) -> str:
        """What the load tool requests."""
        return f"http://{self.inventory.dial_address}:{self.port}/"


class ServerDied(HostError):
    """The server ended while a cell was still using it."""


def _log_tail(host: Host, path: str, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = host.read_text(path)
    except HostError:
        return "(no server log)"
    tail = text.strip().splitlines()[-lines:]
    return " | ".join(tail) if tail else "(empty server log)"


def wait_until_ready(ctx: BenchContext, pid: int, log_path: str) -> None:
    """Wait for the `listening on` line and a successful TCP connect from the load host."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    target = ctx.target
    while time.monotonic() < deadline:
        status = target.exit_status(pid)
        if status is not None:
            raise ServerDied(
                f"server {describe_exit(status)} before it was ready: {_log_tail(target, log_path)}"
            )
        listening = "listening on" in target.read_text(log_path)
        if listening and ctx.load.tcp_probe(ctx.inventory.dial_address, ctx.port):
            return
        time.sleep(READY_POLL_SECONDS)
    raise HostError(
        f"server not ready within {READY_TIMEOUT_SECONDS:.0f} s "
        f"(no answer on {ctx.inventory.dial_address}:{ctx.port}): "
        f"{_log_tail(target, log_path)}"
    )


def _check_port_free(ctx: BenchContext) -> None:
    holder = wait_port_free(ctx.inventory, ctx.target, ctx.load, PORT_FREE_WAIT_SECONDS)
    if holder is not None:
        raise HostError(
            f"{port_in_use(ctx.inventory, ctx.target, holder)}, before the server started"
        )


def _check_alive(
    ctx: BenchContext, pid: int, log_path: str, phase: str, load: LoadResult | None
) -> None:
    """Raise ServerDied when the server ended during `phase` (the load keeps going and
    only counts failed requests when its server dies, so this is asked after each pass)."""
    status = ctx.target.exit_status(pid)
    if status is None:
        return
    failed = ""
    if load is not None and load.failed_requests:
        failed = f"; {load.tool} counted {load.failed_requests:,} failed requests"
    raise ServerDied(
        f"server {describe_exit(status)} during the {phase}{failed}: "
        f"{_log_tail(ctx.target, log_path)}"
    )


def _run_load(
    ctx: BenchContext, profile: Profile, remote_dir: str, local_dir: Path, prefix: str
) -> tuple[LoadResult, LoadCpu | None]:
    """One pass of the load tool, pinned; its raw output kept under `local_dir`."""
    tool = ctx.tool
    summary_name = f"{prefix}{SUMMARY_FILE}"
    command = tool.command(ctx.url, profile, f"{remote_dir}/{summary_name}")
    ran = ctx.load.run(
        command.argv,
        env=command.env,
        cpus=ctx.inventory.load.cpus,
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
        ctx.load.get_file(command.summary_path, local_dir / summary_name)
        summary = (local_dir / summary_name).read_text(encoding="utf-8")
    result = tool.parse(ran.stdout, summary, profile, f"{local_dir.parent.name} {tool.kind}")
    result.load_cpu_seconds = ran.cpu_seconds
    cpu = None
    if ran.cpu_seconds is not None:
        cpu = LoadCpu(
            cpu_seconds=ran.cpu_seconds,
            wall_seconds=ran.wall_seconds,
            cpus=len(ctx.inventory.load.cpus),
        )
    return result, cpu


def run_cell(ctx: BenchContext, cell: Cell) -> CellResult:
    """Measure one cell; failures are recorded in the result, never raised.

    A warm-up pass of the same tool runs first and is not measured: the server CPU
    counters are read only around the measured pass. A failed cell keeps what is known:
    the server's exit status and log tail, and the load result when the load finished.
    """
    server = cell.server
    started = utc_now()
    cell_dir = ctx.run_dir.cell_dir(server.name, cell.repetition)
    remote_dir = f"runs/{ctx.run_id}/{server.name}/{cell.repetition}"
    log_path = f"{ctx.deployed.target_workdir}/{remote_dir}/{SERVER_LOG}"
    load_dir = f"{ctx.deployed.load_workdir}/{remote_dir}"
    warmup = ctx.profile.warmup_seconds
    base: dict[str, Any] = {
        "server": server.name,
        "api": server.api,
        "language": server.language,
        "repetition": cell.repetition,
        "started_at": started,
        "warmup_seconds": warmup,
    }

    build_failure = ctx.deployed.build_failures.get(server.name)
    if build_failure is not None:
        last = build_failure.splitlines()[-1] if build_failure else ""
        return CellResult(
            **base, status="failed", error=f"build failed: {last}", finished_at=utc_now()
        )
    pid: int | None = None
    load: LoadResult | None = None
    try:
        _check_port_free(ctx)
        argv = [
            ctx.deployed.binary(server),
            "--host",
            ctx.inventory.target.listen.address,
            "--port",
            str(ctx.port),
        ]
        pid = ctx.target.start_background(argv, log_path=log_path, cpus=ctx.inventory.target.cpus)
        record_server(cell_dir, ctx.target, pid, argv[0])
        wait_until_ready(ctx, pid, log_path)
        ctx.load.run(["mkdir", "-p", load_dir], timeout=30)
        if warmup > 0:
            _run_load(ctx, ctx.profile.warmup_profile(), load_dir, cell_dir, WARMUP_PREFIX)
            _check_alive(ctx, pid, log_path, "warm-up", None)
        cores = ctx.inventory.target.cpus
        before = sample(ctx.target, pid, cores, ctx.interface)
        load, load_cpu = _run_load(ctx, ctx.profile, load_dir, cell_dir, "")
        _check_alive(ctx, pid, log_path, "load", load)
        after = sample(ctx.target, pid, cores, ctx.interface)
        exit_status = ctx.target.stop(pid)
        pid = None
        busy = core_between(before.cores, after.cores, cores, ctx.deployed.target_facts.clock_ticks)
        result = _measured(base, load, load_cpu, busy, before, after, ctx, exit_status)
        if exit_status != 0:
            tail = _log_tail(ctx.target, log_path)
            result = result.model_copy(update={"server_log_tail": tail})
    except HostError as exc:
        failed, stopped = _failed(ctx, base, exc, pid, log_path, load)
        if stopped:
            pid = None
        return failed
    finally:
        if pid is not None:
            # On Ctrl-C/SIGTERM, or when stopping it failed above.
            with contextlib.suppress(HostError):
                ctx.target.stop(pid)
                pid = None
        if pid is None:
            forget_server(cell_dir)
        _fetch_log(ctx.target, log_path, cell_dir / SERVER_LOG)
    return result


def _failed(
    ctx: BenchContext,
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
            status = ctx.target.stop(pid)
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
        server_log_tail=None if pid is None else _log_tail(ctx.target, log_path),
    )
    return result, stopped


def _measured(
    base: dict[str, Any],
    load: LoadResult,
    load_cpu: LoadCpu | None,
    cores: CoreCpu,
    before: Sample,
    after: Sample,
    ctx: BenchContext,
    exit_status: int | None,
) -> CellResult:
    cpu = cpu_between(before, after, ctx.deployed.target_facts.clock_ticks).model_copy(
        update={"active_seconds": load.duration_seconds}
    )
    nic = nic_between(ctx.interface, before, after) if ctx.interface else None
    status = "ok" if exit_status == 0 else "failed"
    error = None
    if exit_status != 0:
        error = f"server {describe_exit(exit_status)} on SIGTERM (expected: exit status 0)"
        if exit_status == -9:
            error = f"server did not exit within {STOP_GRACE_SECONDS:g} s of SIGTERM and was killed"
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


def _fetch_log(host: Host, remote: str, local: Path) -> None:
    with contextlib.suppress(HostError, OSError):
        host.get_file(remote, local)


CellCallback = Callable[[int, Cell], None]
DoneCallback = Callable[[int, Cell, CellResult], None]


class HostLost(HostError):
    """A host stopped answering and a reconnection failed: the run cannot go on."""


def check_hosts(ctx: BenchContext) -> None:
    """Raise HostLost unless both hosts answer a trivial command (an SSH host reconnects
    once if its connection dropped)."""
    for host in dict.fromkeys((ctx.target, ctx.load)):
        try:
            host.run(["true"], timeout=30)
        except HostError as exc:
            raise HostLost(str(exc)) from None


def run_plan(
    ctx: BenchContext, cells: Sequence[Cell], on_start: CellCallback, on_done: DoneCallback
) -> list[CellResult]:
    """Run cells in order, writing each result as soon as it exists.

    After a failed cell both hosts must still answer; when one does not, HostLost stops
    the plan (the failed cell is on disk first).
    """
    results = []
    for index, cell in enumerate(cells):
        on_start(index, cell)
        result = run_cell(ctx, cell)
        ctx.run_dir.write_cell(result)
        results.append(result)
        on_done(index, cell, result)
        if result.status == "failed":
            check_hosts(ctx)
    return results
