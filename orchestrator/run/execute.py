"""`orch run` end to end: deploy, plan, measure every cell, record how the run ended; and
`--resume`, which measures the cells a run lacks."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator import __version__
from orchestrator.deploy.deploy import DeployResult, deploy
from orchestrator.errors import HostError, UserError
from orchestrator.hosts.base import Host
from orchestrator.hosts.connect import close_hosts, open_hosts
from orchestrator.inventory import Inventory
from orchestrator.load import wrk
from orchestrator.load.k6 import K6
from orchestrator.load.points import LoadPoint, Profile
from orchestrator.load.tool import LoadTool
from orchestrator.load.wrk import Wrk
from orchestrator.paths import project_root
from orchestrator.results.cell import CellResult, utc_now
from orchestrator.results.record import (
    K6Provision,
    LoadToolRecord,
    Resumption,
    RunFacts,
    RunRecord,
)
from orchestrator.results.rundir import RunDirectory
from orchestrator.run.cell import run_cell
from orchestrator.run.context import RunContext
from orchestrator.run.counters import detect_interface
from orchestrator.run.orphans import stop_orphans
from orchestrator.run.plan import Cell, build_plan
from orchestrator.run.ports import port_in_use, wait_port_free
from orchestrator.run.signals import (
    Interrupted,
    RunInterrupted,
    RunStopped,
    signal_name,
    stop_on_signals,
)
from orchestrator.servers import ServerSpec

CellCallback = Callable[[int, Cell], None]
DoneCallback = Callable[[int, Cell, CellResult], None]
Log = Callable[[str], None]


@dataclass
class RunOptions:
    """What the user asked `orch run` for."""

    servers: list[ServerSpec]
    profile: Profile
    points: list[LoadPoint]
    repetitions: int
    baseline: str | None
    out: Path
    label: str
    load_tool: str  # k6, wrk or wrk-pipelined
    pipeline: int = 1  # the run's default wrk depth
    accept_new_host_keys: bool = False
    auto_rates: bool = False  # search the rate each server sustains (points grow as it goes)


class HostLost(HostError):
    """A host stopped answering and a reconnection failed: the run cannot go on."""


def orch_commit() -> str:
    """The checkout's git commit (with -dirty), or 'unknown'."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=project_root(),
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _command_line() -> str:
    return shlex.join(["orch", *sys.argv[1:]])


def _placement(inv: Inventory) -> str:
    return (
        f"Server pinned to CPU {inv.target.cpus} on {inv.target.host}, load tool pinned to "
        f"CPU {inv.load.cpus} on {inv.load.host}."
    )


def _traffic_note(inv: Inventory, interface: str | None) -> str:
    if inv.is_loopback:
        return (
            f"Loopback mode: load and server share one machine; traffic crossed "
            f"{interface or 'the loopback device'}, no NIC was exercised."
        )
    return f"Two machines: traffic crossed the target's interface {interface or 'unknown'}."


def choose_load_tool(
    inv: Inventory, opts: RunOptions, load: Host, deployed: DeployResult
) -> LoadTool:
    """The load tool the run uses, found on the load host, with its version."""
    if opts.load_tool == "k6":
        version = deployed.load_facts.tools.get("k6", "")
        return K6(deployed.k6_path, deployed.k6_script, version=version)
    path = wrk.find_wrk(inv.load.wrk_path, load)
    return Wrk(
        path,
        f"{deployed.load_workdir}/{wrk.SCRIPT}",
        threads=wrk.threads_for(inv.load.cpus),
        version=wrk.wrk_version(load, path),
        name=opts.load_tool,
        pipeline=opts.pipeline,
    )


def _tool_versions(deployed: DeployResult, load: Host, inv: Inventory) -> dict[str, str]:
    tools = {**deployed.target_facts.tools, "k6": deployed.load_facts.tools.get("k6", "")}
    try:
        tools["wrk"] = wrk.wrk_version(load, wrk.find_wrk(inv.load.wrk_path, load))
    except UserError:
        tools["wrk"] = "not installed"
    return tools


def new_record(
    inv: Inventory,
    opts: RunOptions,
    deployed: DeployResult,
    tool: LoadTool,
    cells: Sequence[Cell],
    run_id: str,
    interface: str | None,
    load: Host,
) -> RunRecord:
    """run.json of a run about to start."""
    pipeline = opts.pipeline if tool.kind == "wrk" else 1
    threads = tool.threads if isinstance(tool, Wrk) else 1
    return RunRecord(
        id=run_id,
        command=_command_line(),
        orch_version=__version__,
        orch_commit=orch_commit(),
        started_at=utc_now(),
        inventory=inv,
        facts=RunFacts(target=deployed.target_facts, load=deployed.load_facts),
        tools=_tool_versions(deployed, load, inv),
        k6=K6Provision(path=deployed.k6_path, source=deployed.k6_source),
        load_tool=LoadToolRecord.model_validate(
            {
                "name": opts.load_tool,
                "kind": tool.kind,
                "label": tool.label,
                "path": tool.path,
                "version": tool.version,
                "threads": threads,
                "pipeline": pipeline,
            }
        ),
        profile=opts.profile,
        points=opts.points,
        load_models={point.key: tool.model(opts.profile, point) for point in opts.points},
        repetitions=opts.repetitions,
        baseline=opts.baseline,
        interface=interface,
        placement=_placement(inv),
        traffic_note=_traffic_note(inv, interface),
        plan=[cell.key for cell in cells],
    )


def check_hosts(ctx: RunContext) -> None:
    """Raise HostLost unless both hosts answer a trivial command (an SSH host reconnects
    once if its connection dropped)."""
    for host in dict.fromkeys((ctx.target, ctx.load)):
        try:
            host.run(["true"], timeout=30)
        except HostError as exc:
            raise HostLost(str(exc)) from None


def run_plan(
    ctx: RunContext, cells: Sequence[Cell], on_start: CellCallback, on_done: DoneCallback
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


def _prepare(
    inv: Inventory, opts: RunOptions, target: Host, load: Host, log: Log
) -> tuple[DeployResult, LoadTool]:
    """Deploy, pick the load tool, and make sure nothing else holds the servers' port."""
    deployed = deploy(inv, target, load, opts.servers, log)
    tool = choose_load_tool(inv, opts, load, deployed)
    holder = wait_port_free(inv, target, load, 0)
    if holder is not None:
        raise UserError(
            f"inventory target.listen.port: {port_in_use(inv, target, holder)}; stop that "
            "process or choose another port"
        )
    return deployed, tool


def _measure(
    ctx: RunContext,
    record: RunRecord,
    cells: Sequence[Cell],
    on_start: CellCallback,
    on_done: DoneCallback,
) -> None:
    """Run `cells` and leave run.json saying how the run ended."""
    run_dir = ctx.run_dir
    try:
        run_plan(ctx, cells, on_start, on_done)
    except (KeyboardInterrupt, Interrupted) as stop:
        name = signal_name(stop)
        run_dir.write_run(record.ended("interrupted", interrupted_by=name, finished_at=utc_now()))
        raise RunInterrupted(run_dir, name) from None
    except HostLost as lost:
        run_dir.write_run(record.ended("stopped", stop_reason=str(lost), finished_at=utc_now()))
        raise RunStopped(run_dir, str(lost)) from None
    run_dir.write_run(record.ended("complete", finished_at=utc_now()))


def execute_run(
    inv: Inventory, opts: RunOptions, log: Log, on_start: CellCallback, on_done: DoneCallback
) -> RunDirectory:
    """Deploy, run every cell, write run.json and the cells; return the run directory."""
    with stop_on_signals():
        target, load = open_hosts(inv, opts.accept_new_host_keys)
        try:
            try:
                deployed, tool = _prepare(inv, opts, target, load, log)
                cells = build_plan(opts.servers, opts.points, opts.repetitions)
                peer = inv.dial_address if inv.is_loopback else inv.load_host.address
                interface = inv.target.interface or detect_interface(target, peer)
            except (KeyboardInterrupt, Interrupted) as stop:
                raise RunInterrupted(None, signal_name(stop)) from None
            run_dir = RunDirectory.create(opts.out, opts.label)
            with run_dir.lock():
                run_id = run_dir.path.name
                record = new_record(inv, opts, deployed, tool, cells, run_id, interface, load)
                run_dir.write_run(record)
                ctx = RunContext(
                    inventory=inv,
                    target=target,
                    load=load,
                    deployed=deployed,
                    profile=opts.profile,
                    tool=tool,
                    run_dir=run_dir,
                    run_id=run_id,
                    interface=interface,
                )
                _measure(ctx, record, cells, on_start, on_done)
            return run_dir
        finally:
            close_hosts(target, load)


def resume_run(
    run_dir: RunDirectory,
    opts: RunOptions,
    cells: Sequence[Cell],
    log: Log,
    on_start: CellCallback,
    on_done: DoneCallback,
) -> RunDirectory:
    """Measure the `cells` a run lacks, with its recorded inventory, profile and tool."""
    with stop_on_signals(), run_dir.lock():
        record = run_dir.read_run()
        inv = record.inventory
        run_dir.remove_stale_temporaries()
        target, load = open_hosts(inv, opts.accept_new_host_keys)
        try:
            stop_orphans(run_dir, target, cells, log)
            for cell in cells:
                run_dir.clear_unfinished(cell.key)
            try:
                deployed, tool = _prepare(inv, opts, target, load, log)
            except (KeyboardInterrupt, Interrupted) as stop:
                raise RunInterrupted(run_dir, signal_name(stop)) from None
            resumption = Resumption(
                at=utc_now(),
                command=_command_line(),
                orch_commit=orch_commit(),
                cells=[cell.key for cell in cells],
            )
            record = record.model_copy(
                update={"resumed": [*record.resumed, resumption], "status": "running"}
            )
            run_dir.write_run(record)
            ctx = RunContext(
                inventory=inv,
                target=target,
                load=load,
                deployed=deployed,
                profile=opts.profile,
                tool=tool,
                run_dir=run_dir,
                run_id=record.id,
                interface=record.interface,
            )
            _measure(ctx, record, cells, on_start, on_done)
            return run_dir
        finally:
            close_hosts(target, load)
