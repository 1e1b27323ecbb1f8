"""Run one cell (start server pinned, sample, load, sample, stop) and then a whole plan."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.counters import Sample, cpu_between, nic_between, sample
from orchestrator.deploy import DeployResult
from orchestrator.errors import HostError
from orchestrator.hosts import Host
from orchestrator.inventory import Inventory
from orchestrator.loadgen.base import LoadResult
from orchestrator.loadgen.k6 import SUMMARY_FILE, k6_command, k6_environment, parse_k6_summary
from orchestrator.plan import Cell
from orchestrator.profiles import Profile
from orchestrator.results import CellResult, RunDirectory, utc_now

READY_TIMEOUT_SECONDS = 10.0
READY_POLL_SECONDS = 0.02
LOAD_TIME_LIMIT_MARGIN = 60.0
SERVER_LOG = "server.log"


@dataclass
class BenchContext:
    """What every cell of a run shares."""

    inventory: Inventory
    target: Host
    load: Host
    deployed: DeployResult
    profile: Profile
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


def _log_tail(host: Host, path: str, lines: int = 15) -> str:
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
            raise HostError(
                f"server exited with status {status} before it was ready: "
                f"{_log_tail(target, log_path)}"
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
    if ctx.load.tcp_probe(ctx.inventory.dial_address, ctx.port, timeout=0.5):
        raise HostError(
            f"port {ctx.port} on {ctx.inventory.dial_address} is already in use on "
            f"target {ctx.target.name} before the server started"
        )


def run_cell(ctx: BenchContext, cell: Cell) -> CellResult:
    """Measure one cell; failures are recorded in the result, never raised."""
    server = cell.server
    started = utc_now()
    cell_dir = ctx.run_dir.cell_dir(server.name, cell.repetition)
    remote_dir = f"runs/{ctx.run_id}/{server.name}/{cell.repetition}"
    log_path = f"{ctx.deployed.target_workdir}/{remote_dir}/{SERVER_LOG}"
    summary_path = f"{ctx.deployed.load_workdir}/{remote_dir}/{SUMMARY_FILE}"
    base: dict[str, Any] = {
        "server": server.name,
        "api": server.api,
        "language": server.language,
        "repetition": cell.repetition,
        "started_at": started,
    }

    def failed(message: str, exit_status: int | None = None) -> CellResult:
        return CellResult(
            **base,
            status="failed",
            error=message,
            finished_at=utc_now(),
            server_exit_status=exit_status,
        )

    build_failure = ctx.deployed.build_failures.get(server.name)
    if build_failure is not None:
        return failed(f"build failed: {build_failure.splitlines()[-1] if build_failure else ''}")
    pid: int | None = None
    exit_status: int | None = None
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
        wait_until_ready(ctx, pid, log_path)
        ctx.load.run(["mkdir", "-p", summary_path.rsplit("/", 1)[0]], timeout=30)
        before = sample(ctx.target, pid, ctx.interface)
        k6 = ctx.load.run(
            k6_command(ctx.deployed.k6_path, ctx.deployed.k6_script, summary_path),
            env=k6_environment(ctx.url, ctx.profile),
            cpus=ctx.inventory.load.cpus,
            timeout=ctx.profile.duration + LOAD_TIME_LIMIT_MARGIN,
            check=False,
        )
        after = sample(ctx.target, pid, ctx.interface)
        (cell_dir / "k6-output.txt").parent.mkdir(parents=True, exist_ok=True)
        (cell_dir / "k6-output.txt").write_text(k6.stdout + k6.stderr, encoding="utf-8")
        if not k6.ok and k6.exit_code != 99:  # 99: thresholds crossed, the summary is still valid
            return failed(f"k6 exited {k6.exit_code}: {_last_line(k6.stderr or k6.stdout)}")
        ctx.load.get_file(summary_path, cell_dir / SUMMARY_FILE)
        load = parse_k6_summary(
            (cell_dir / SUMMARY_FILE).read_text(encoding="utf-8"),
            ctx.profile.duration,
            source=f"{server.name} k6 summary",
        )
        load.load_cpu_seconds = k6.cpu_seconds
        exit_status = ctx.target.stop(pid)
        pid = None
        result = _measured(base, load, before, after, ctx, exit_status)
    except HostError as exc:
        if pid is not None:
            exit_status = ctx.target.stop(pid)
            pid = None
        return failed(str(exc), exit_status)
    finally:
        if pid is not None:
            ctx.target.stop(pid)
        _fetch_log(ctx.target, log_path, cell_dir / SERVER_LOG)
    return result


def _measured(
    base: dict[str, Any],
    load: LoadResult,
    before: Sample,
    after: Sample,
    ctx: BenchContext,
    exit_status: int | None,
) -> CellResult:
    cpu = cpu_between(before, after, ctx.deployed.target_facts.clock_ticks)
    nic = nic_between(ctx.interface, before, after) if ctx.interface else None
    status = "ok" if exit_status == 0 else "failed"
    error = None if exit_status == 0 else f"server exited with status {exit_status} on SIGTERM"
    return CellResult.model_validate(
        {
            **base,
            "status": status,
            "error": error,
            "finished_at": utc_now(),
            "load": load,
            "server_cpu": cpu,
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


def run_plan(
    ctx: BenchContext, cells: Sequence[Cell], on_start: CellCallback, on_done: DoneCallback
) -> list[CellResult]:
    """Run cells in order, writing each result as soon as it exists."""
    results = []
    for index, cell in enumerate(cells):
        on_start(index, cell)
        result = run_cell(ctx, cell)
        ctx.run_dir.write_cell(result)
        results.append(result)
        on_done(index, cell, result)
    return results
