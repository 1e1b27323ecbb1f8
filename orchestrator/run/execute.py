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
from orchestrator.catalogue.spec import ServerSpec
from orchestrator.deploy.deploy import DeployResult, deploy
from orchestrator.errors import UserError
from orchestrator.hosts.base import Host
from orchestrator.hosts.connect import open_run_hosts
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
    RunStatus,
)
from orchestrator.results.rundir import RunDirectory
from orchestrator.results.verification import Verification
from orchestrator.run.context import RunContext
from orchestrator.run.counters import detect_interface
from orchestrator.run.descriptors import raise_for_points
from orchestrator.run.load_members import LoadMember, SplitTool, load_members
from orchestrator.run.load_orphans import stop_load_orphans
from orchestrator.run.orphans import stop_orphans
from orchestrator.run.plan import Cell, build_plan
from orchestrator.run.ports import port_in_use, wait_port_free
from orchestrator.run.rate_search import search_rates
from orchestrator.run.sequence import CellCallback, DoneCallback, HostLost, run_plan
from orchestrator.run.signals import (
    Interrupted,
    RunInterrupted,
    RunStopped,
    signal_name,
    stop_on_signals,
)
from orchestrator.run.verify import Verifier

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
    allow_unverified: bool = False  # measure servers that failed verify (rows marked)


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
    loads = ", ".join(f"CPU {m.cpus} on {m.host}" for m in inv.load_members)
    several = f" on {len(inv.load_members)} load hosts" if inv.several_load_hosts else ""
    return (
        f"Server pinned to CPU {inv.target.cpus} on {inv.target.host}, load tool{several} "
        f"pinned to {loads}."
    )


def _peer(inv: Inventory) -> str:
    """Where the target's traffic goes: the first load host on another machine."""
    for member in inv.load_members:
        if not inv.same_machine(inv.target.host, member.host):
            return inv.hosts[member.host].address
    return inv.dial_address


def _traffic_note(inv: Inventory, interface: str | None) -> str:
    if inv.several_load_hosts and not inv.is_loopback:
        return (
            f"{len(inv.load_members)} load hosts: traffic crossed the target's interface "
            f"{interface or 'unknown'}."
        )
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
        threads=wrk.threads_for(inv.first_load.cpus),
        version=wrk.wrk_version(load, path),
        name=opts.load_tool,
        pipeline=opts.pipeline,
    )


def _tool_versions(deployed: DeployResult, load: Host, inv: Inventory) -> dict[str, str]:
    tools = {**deployed.target_facts.tools, "k6": deployed.load_facts.tools.get("k6", "")}
    if "liburing headers" in deployed.toolchains:  # the C io_uring server's library
        tools["liburing"] = deployed.toolchains["liburing headers"]
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
        facts=RunFacts(
            target=deployed.target_facts,
            load=deployed.load_facts,
            load_hosts={name: d.facts for name, d in deployed.load_hosts.items()}
            if inv.several_load_hosts
            else {},
        ),
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
        servers={server.name: server.entry for server in opts.servers},
        allow_unverified=opts.allow_unverified,
    )


def _prepare(
    inv: Inventory, opts: RunOptions, target: Host, loads: Sequence[Host], log: Log
) -> tuple[DeployResult, LoadTool, int | None, list[LoadMember]]:
    """Deploy, pick the load tool, check the load hosts can hold the connections, and make
    sure nothing else holds the servers' port. With several load hosts, each becomes a
    member running its share (the tool then describes the split)."""
    load = loads[0]
    deployed = deploy(inv, target, loads, opts.servers, log)
    tool = choose_load_tool(inv, opts, load, deployed)
    members = load_members(inv, loads, deployed.load_hosts, tool, opts.points)
    nofile = None if members else raise_for_points(load, opts.points)
    holder = wait_port_free(inv, target, load, 0)
    if holder is not None:
        raise UserError(
            f"inventory target.listen.port: {port_in_use(inv, target, holder)}; stop that "
            "process or choose another port"
        )
    for server in opts.servers:
        port = server.entry.port
        if port is not None and (holder := wait_port_free(inv, target, load, 0, port)) is not None:
            raise UserError(
                f"servers.{server.name}.port: {port_in_use(inv, target, holder, port)}, and "
                f"{server.name} can only listen there; stop that process"
            )
    return deployed, SplitTool(tool, members) if members else tool, nofile, members


class PlanKeeper:
    """run.json of a run in progress: the plan grows (a rate search adds points as it
    goes) and the record says how the run ended."""

    def __init__(self, run_dir: RunDirectory, record: RunRecord, tool: LoadTool) -> None:
        self.run_dir = run_dir
        self.record = record
        self.tool = tool

    def extend(self, point: LoadPoint, cells: Sequence[Cell]) -> None:
        """Add `point` (when new) and `cells` to the plan before they run."""
        record = self.record
        points, models = list(record.points), dict(record.load_models)
        if point.key not in models:
            points.append(point)
            models[point.key] = self.tool.model(record.profile, point)
        plan = [*record.plan, *(cell.key for cell in cells)]
        self.record = record.model_copy(
            update={"points": points, "load_models": models, "plan": plan}
        )
        self.run_dir.write_run(self.record)

    def note(self, result: CellResult) -> None:
        """Keep the first start-up line each server printed (its API and ring setup)."""
        line = result.server_startup
        if line and result.server not in self.record.server_startup:
            lines = {**self.record.server_startup, result.server: line}
            self.record = self.record.model_copy(update={"server_startup": lines})
            self.run_dir.write_run(self.record)

    def verified(self, found: Verification) -> None:
        """Keep what verify found of a server (a resumed run's replaces the earlier)."""
        found_by_name = {**self.record.verification, found.server: found}
        self.record = self.record.model_copy(update={"verification": found_by_name})
        self.run_dir.write_run(self.record)

    def verifier(self, log: Log) -> Verifier:
        """A Verifier that keeps each result in run.json and says it."""

        def keep(found: Verification) -> None:
            self.verified(found)
            log(f"verify {found.server}: {found.summary()}")

        return Verifier(keep)

    def noting(self, on_done: DoneCallback) -> DoneCallback:
        """`on_done` that first notes what the cell says about its server."""

        def done(index: int, cell: Cell, result: CellResult) -> None:
            self.note(result)
            on_done(index, cell, result)

        return done

    def end(self, status: RunStatus, **why: str) -> None:
        """Write how the run ended."""
        self.run_dir.write_run(self.record.ended(status, finished_at=utc_now(), **why))


def _measure(keeper: PlanKeeper, measure: Callable[[], object]) -> None:
    """Run `measure` and leave run.json saying how the run ended."""
    try:
        measure()
    except (KeyboardInterrupt, Interrupted) as stop:
        name = signal_name(stop)
        keeper.end("interrupted", interrupted_by=name)
        raise RunInterrupted(keeper.run_dir, name) from None
    except HostLost as lost:
        keeper.end("stopped", stop_reason=str(lost))
        raise RunStopped(keeper.run_dir, str(lost)) from None
    keeper.end("complete")


def execute_run(
    inv: Inventory, opts: RunOptions, log: Log, on_start: CellCallback, on_done: DoneCallback
) -> RunDirectory:
    """Deploy, run every cell, write run.json and the cells; return the run directory."""
    with stop_on_signals():
        hosts = open_run_hosts(inv, opts.accept_new_host_keys)
        target, load = hosts.target, hosts.load
        try:
            try:
                deployed, tool, nofile, members = _prepare(inv, opts, target, hosts.loads, log)
                # A rate search plans each step as it goes.
                cells = (
                    []
                    if opts.auto_rates
                    else build_plan(opts.servers, opts.points, opts.repetitions)
                )
                peer = _peer(inv)
                interface = inv.target.interface or detect_interface(target, peer)
            except (KeyboardInterrupt, Interrupted) as stop:
                raise RunInterrupted(None, signal_name(stop)) from None
            run_dir = RunDirectory.create(opts.out, opts.label)
            with run_dir.lock():
                run_id = run_dir.path.name
                record = new_record(inv, opts, deployed, tool, cells, run_id, interface, load)
                run_dir.write_run(record)
                keeper = PlanKeeper(run_dir, record, tool)
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
                    load_nofile=nofile,
                    verify=keeper.verifier(log),
                    allow_unverified=opts.allow_unverified,
                    load_members=members,
                )
                noted = keeper.noting(on_done)
                if opts.auto_rates:
                    vus = opts.points[0].vus
                    _measure(
                        keeper,
                        lambda: search_rates(
                            ctx,
                            opts.servers,
                            vus,
                            opts.repetitions,
                            keeper.extend,
                            on_start,
                            noted,
                        ),
                    )
                else:
                    _measure(keeper, lambda: run_plan(ctx, cells, on_start, noted))
            return run_dir
        finally:
            hosts.close()


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
        hosts = open_run_hosts(inv, opts.accept_new_host_keys)
        target, load = hosts.target, hosts.load
        try:
            stop_orphans(run_dir, target, cells, log)
            stop_load_orphans(run_dir, {host.name: host for host in hosts.loads}, log)
            for cell in cells:
                run_dir.clear_unfinished(cell.key)
            try:
                deployed, tool, nofile, members = _prepare(inv, opts, target, hosts.loads, log)
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
                load_nofile=nofile,
                allow_unverified=opts.allow_unverified,
                load_members=members,
            )
            keeper = PlanKeeper(run_dir, record, tool)
            ctx.verify = keeper.verifier(log)
            _measure(keeper, lambda: run_plan(ctx, cells, on_start, keeper.noting(on_done)))
            return run_dir
        finally:
            hosts.close()
