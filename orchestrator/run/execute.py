"""`orch run` end to end: deploy, plan, measure every cell, record how the run ended; and
`--resume`, which measures the cells a run lacks."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator.deploy.deploy import DeployResult, deploy
from orchestrator.deploy.load_provision import provide_h2load_reducer
from orchestrator.errors import UserError
from orchestrator.hosts.base import Host
from orchestrator.hosts.connect import RunHosts, open_run_hosts
from orchestrator.inventory import Inventory
from orchestrator.leftovers import stop_agents_left, stop_servers_left
from orchestrator.load import h2load, wrk
from orchestrator.load.descriptors import raise_for_points
from orchestrator.load.h2load import H2load
from orchestrator.load.k6 import K6
from orchestrator.load.tool import KEEP_SAMPLES_ENV, LoadTool
from orchestrator.load.wrk import Wrk
from orchestrator.log import Log
from orchestrator.measure.cell import Cell
from orchestrator.measure.context import RunContext
from orchestrator.measure.cost_plan import BASELINE_SECONDS, CostPlan, plan_costs
from orchestrator.measure.interface import detect_interface
from orchestrator.measure.ports import port_in_use, wait_port_free
from orchestrator.results.cell_result import utc_now
from orchestrator.results.record import ResumeRecord, RunRecord
from orchestrator.results.rundir import RunDirectory
from orchestrator.run.options import RunOptions
from orchestrator.run.plan import build_plan
from orchestrator.run.precision import RoundCallback, measure_to_precision
from orchestrator.run.rate_search import search_rates
from orchestrator.run.record_keeper import RecordKeeper
from orchestrator.run.sequence import CellCallback, DoneCallback, HostLost, run_plan
from orchestrator.run.signals import (
    Interrupted,
    RunInterrupted,
    RunStopped,
    signal_name,
    stop_on_signals,
)
from orchestrator.run.start_record import command_line, new_record, orch_commit, peer_address
from orchestrator.run.system_state import (
    Placement,
    hosts_by_name,
    run_system,
    system_hosts,
)
from orchestrator.split_pass.members import LoadMember, load_members
from orchestrator.system.session import restore_left_by_runs


def choose_load_tool(
    inv: Inventory, opts: RunOptions, load: Host, deployed: DeployResult
) -> LoadTool:
    """The load tool the run uses, found on the load host, with its version."""
    if opts.load_tool == "k6":
        version = deployed.load_facts.tools.get("k6", "")
        return K6(deployed.k6_path, deployed.k6_script, version=version)
    if opts.load_tool == "h2load":
        found = h2load.find_h2load(inv.load.h2load_path, load)
        return H2load(
            found,
            provide_h2load_reducer(load, deployed.load_workdir),
            python=load.python,
            threads=len(inv.first_load.cpus),
            version=h2load.h2load_version(load, found),
            keep_log=os.environ.get(KEEP_SAMPLES_ENV) == "1",
        )
    path = wrk.find_wrk(inv.load.wrk_path, load)
    return Wrk(
        path,
        f"{deployed.load_workdir}/{wrk.SCRIPT}",
        threads=wrk.threads_for(inv.first_load.cpus),
        version=wrk.wrk_version(load, path),
        name=opts.load_tool,
        pipeline=opts.pipeline,
    )


@dataclass(frozen=True)
class Prepared:
    """What a run has once its hosts are ready: the deployment, the load tool, the load
    host's descriptor limit (None: its own is enough) and, when the load is split, every
    load host as a member."""

    deployed: DeployResult
    tool: LoadTool
    load_nofile: int | None
    members: list[LoadMember]


def _prepare(
    inv: Inventory, opts: RunOptions, target: Host, loads: Sequence[Host], log: Log
) -> Prepared:
    """Deploy, pick the load tool, check the load hosts can hold the connections, and make
    sure nothing else holds the servers' port. With several load hosts, each becomes a
    member running its share."""
    load = loads[0]
    deployed = deploy(inv, target, loads, opts.servers, log)
    tool = choose_load_tool(inv, opts, load, deployed)
    members = load_members(inv, loads, deployed.load_hosts, tool, opts.busiest_points)
    nofile = None if members else raise_for_points(load, opts.busiest_points)
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
    return Prepared(deployed, tool, nofile, members)


def load_cpus_on_target(inv: Inventory, deployed: DeployResult) -> list[int]:
    """The load CPUs of load hosts that are the target's machine (one boot id: loopback,
    or the lab's namespaces): the target's cost leaves them out."""
    machine = deployed.target_facts.boot_id
    cpus: set[int] = set()
    for member in inv.load_members:
        here = deployed.load_hosts.get(member.host)
        facts = here.facts if here is not None else deployed.load_facts
        if machine and facts.boot_id == machine:
            cpus.update(member.cpus)
    return sorted(cpus)


def _cost_plan(
    inv: Inventory, target: Host, prepared: Prepared, interface: str | None, perf: bool, log: Log
) -> CostPlan:
    """What every cell measures of the target, with the idle baseline measured now."""
    log(f"measuring the target's idle baseline ({BASELINE_SECONDS:g} s)")
    return plan_costs(
        target,
        inv.target.cpus,
        load_cpus_on_target(inv, prepared.deployed),
        interface,
        prepared.deployed.target_facts.clock_ticks,
        perf,
    )


def _context(
    inv: Inventory,
    hosts: RunHosts,
    prepared: Prepared,
    opts: RunOptions,
    keeper: RecordKeeper,
    interface: str | None,
    cost_plan: CostPlan,
    log: Log,
) -> RunContext:
    """What every cell of the run shares; each server is verified (once) through `keeper`,
    which keeps what verify found in run.json."""
    return RunContext(
        inventory=inv,
        target=hosts.target,
        load=hosts.load,
        deployed=prepared.deployed,
        profile=opts.profile,
        tool=prepared.tool,
        run_dir=keeper.run_dir,
        run_id=keeper.record.id,
        interface=interface,
        load_nofile=prepared.load_nofile,
        verify=keeper.verifier(log),
        allow_unverified=opts.allow_unverified,
        load_members=prepared.members,
        cost_plan=cost_plan,
        point_profiles=opts.point_profiles,
    )


def _measure(keeper: RecordKeeper, measure: Callable[[], object]) -> None:
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


def first_plan(opts: RunOptions) -> list[Cell]:
    """The cells planned before the run starts. A rate search and a run to a precision
    plan as they go; the main job plans the round of its table first."""
    if opts.auto_rates:
        return []
    if opts.precision is not None:
        table = [point for point in opts.points if point.key in opts.table_points]
        return build_plan(opts.servers, table, 1) if table else []
    return build_plan(opts.servers, opts.points, opts.repetitions)


def extend_budget(record: RunRecord, more_seconds: float | None) -> RunRecord:
    """The record of a run to a precision given `more_seconds` from now (None: as it is)."""
    if more_seconds is None or record.precision is None:
        return record
    budget = record.precision.spent_seconds + more_seconds
    precision = record.precision.model_copy(update={"budget_seconds": budget, "outcome": "running"})
    return record.model_copy(update={"precision": precision})


def execute_run(
    inv: Inventory,
    opts: RunOptions,
    log: Log,
    on_start: CellCallback,
    on_done: DoneCallback,
    on_round: RoundCallback | None = None,
) -> RunDirectory:
    """Deploy, run every cell, write run.json and the cells; return the run directory."""
    with stop_on_signals():
        hosts = open_run_hosts(inv, opts.accept_new_host_keys)
        target, load = hosts.target, hosts.load
        try:
            try:
                systems = system_hosts(inv, hosts_by_name(inv, hosts))
                restore_left_by_runs(systems, log)
                prepared = _prepare(inv, opts, target, hosts.loads, log)
                cells = first_plan(opts)
                peer = peer_address(inv)
                interface = inv.target.interface or detect_interface(target, peer)
            except (KeyboardInterrupt, Interrupted) as stop:
                raise RunInterrupted(None, signal_name(stop)) from None
            # Tuned (with --tune) before the idle baseline, which must see the run's settings.
            placement = Placement(opts.receive_work, interface, tuple(inv.target.cpus))
            with run_system(systems, opts.tune, log, placement=placement) as system:
                try:
                    costs = _cost_plan(inv, target, prepared, interface, opts.perf, log)
                except (KeyboardInterrupt, Interrupted) as stop:
                    raise RunInterrupted(None, signal_name(stop)) from None
                run_dir = RunDirectory.create(opts.out, opts.label)
                with run_dir.lock():
                    record = new_record(
                        inv,
                        opts,
                        prepared.deployed,
                        prepared.tool,
                        prepared.members,
                        cells,
                        run_dir.path.name,
                        interface,
                        load,
                        costs.record,
                        system,
                    )
                    run_dir.write_run(record)
                    keeper = RecordKeeper(run_dir, record, prepared.tool, prepared.members)
                    ctx = _context(inv, hosts, prepared, opts, keeper, interface, costs, log)
                    noted = keeper.noting(on_done)
                    if opts.auto_rates:
                        _measure(
                            keeper,
                            lambda: search_rates(
                                ctx,
                                opts.servers,
                                opts.rate_point,
                                opts.repetitions,
                                keeper.extend,
                                on_start,
                                noted,
                            ),
                        )
                    elif opts.precision is not None:
                        _measure(
                            keeper,
                            lambda: measure_to_precision(
                                ctx,
                                keeper,
                                opts.servers,
                                [],
                                on_start,
                                noted,
                                on_round,
                                table=cells,
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
    on_round: RoundCallback | None = None,
    more_seconds: float | None = None,
) -> RunDirectory:
    """Measure the `cells` a run lacks, with its recorded inventory, profile and tool; a
    run to a precision then goes on adding rounds while it may (`more_seconds`: that much
    more time than it has spent, also after its budget ran out)."""
    with stop_on_signals(), run_dir.lock():
        record = extend_budget(run_dir.read_run(), more_seconds)
        inv = record.inventory
        run_dir.remove_stale_temporaries()
        hosts = open_run_hosts(inv, opts.accept_new_host_keys)
        target = hosts.target
        try:
            stop_servers_left(run_dir, target, [cell.key for cell in cells], log)
            stop_agents_left(run_dir, {host.name: host for host in hosts.loads}, log)
            for cell in cells:
                run_dir.clear_unfinished(cell.key)
            try:
                systems = system_hosts(inv, hosts_by_name(inv, hosts))
                restore_left_by_runs(systems, log)
                prepared = _prepare(inv, opts, target, hosts.loads, log)
            except (KeyboardInterrupt, Interrupted) as stop:
                raise RunInterrupted(run_dir, signal_name(stop)) from None
            placement = Placement(opts.receive_work, record.interface, tuple(inv.target.cpus))
            with run_system(systems, opts.tune, log, run_dir, placement) as system:
                try:
                    costs = _cost_plan(inv, target, prepared, record.interface, opts.perf, log)
                except (KeyboardInterrupt, Interrupted) as stop:
                    raise RunInterrupted(run_dir, signal_name(stop)) from None
                resumption = ResumeRecord(
                    at=utc_now(),
                    command=command_line(),
                    orch_commit=orch_commit(),
                    cells=[cell.key for cell in cells],
                    measurement=costs.record,
                    system=system,
                )
                record = record.model_copy(
                    update={"resumed": [*record.resumed, resumption], "status": "running"}
                )
                run_dir.write_run(record)
                keeper = RecordKeeper(run_dir, record, prepared.tool, prepared.members)
                ctx = _context(inv, hosts, prepared, opts, keeper, record.interface, costs, log)
                noted = keeper.noting(on_done)
                if record.precision is not None and record.precision.outcome == "running":
                    earlier = run_dir.read_cells()
                    _measure(
                        keeper,
                        lambda: measure_to_precision(
                            ctx, keeper, opts.servers, earlier, on_start, noted, on_round,
                            pending=cells,
                        ),
                    )  # fmt: skip
                else:
                    _measure(keeper, lambda: run_plan(ctx, cells, on_start, noted))
            return run_dir
        finally:
            hosts.close()
