"""run.json of a run about to start: the command, the commit, the hosts' facts, the tool,
the points and the plan."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Sequence

from orchestrator import __version__
from orchestrator.deploy.deploy import DeployResult
from orchestrator.errors import UserError
from orchestrator.hosts.base import Host
from orchestrator.inventory import Inventory
from orchestrator.load import h2load, wrk
from orchestrator.load.h2load import H2load
from orchestrator.load.tool import LoadTool
from orchestrator.load.wrk import Wrk
from orchestrator.measure.cell import Cell
from orchestrator.paths import project_root
from orchestrator.results.cell_result import utc_now
from orchestrator.results.cost import MeasurementRecord
from orchestrator.results.record import K6Provision, LoadToolRecord, RunFacts, RunRecord
from orchestrator.run.options import RunOptions
from orchestrator.split_pass.members import LoadMember, load_model
from orchestrator.system.model import SystemRecord


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


def command_line() -> str:
    """The orch command line as the user typed it."""
    return shlex.join(["orch", *sys.argv[1:]])


def _placement(inv: Inventory) -> str:
    loads = ", ".join(f"CPU {m.cpus} on {m.host}" for m in inv.load_members)
    several = f" on {len(inv.load_members)} load hosts" if inv.several_load_hosts else ""
    return (
        f"Server pinned to CPU {inv.target.cpus} on {inv.target.host}, load tool{several} "
        f"pinned to {loads}."
    )


def peer_address(inv: Inventory) -> str:
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


def _tool_versions(
    deployed: DeployResult, load: Host, inv: Inventory, tool: LoadTool
) -> dict[str, str]:
    tools = {**deployed.target_facts.tools, "k6": deployed.load_facts.tools.get("k6", "")}
    if "liburing headers" in deployed.toolchains:  # the C io_uring server's library
        tools["liburing"] = deployed.toolchains["liburing headers"]
    try:
        tools["wrk"] = wrk.wrk_version(load, wrk.find_wrk(inv.load.wrk_path, load))
    except UserError:
        tools["wrk"] = "not installed"
    if isinstance(tool, H2load):  # the run's tool: its version is known already
        tools["h2load"] = tool.version
    else:
        try:
            tools["h2load"] = h2load.h2load_version(
                load, h2load.find_h2load(inv.load.h2load_path, load)
            )
        except UserError:
            tools["h2load"] = "not installed"
    return tools


def new_record(
    inv: Inventory,
    opts: RunOptions,
    deployed: DeployResult,
    tool: LoadTool,
    members: Sequence[LoadMember],
    cells: Sequence[Cell],
    run_id: str,
    interface: str | None,
    load: Host,
    measurement: MeasurementRecord,
    system: SystemRecord | None = None,
) -> RunRecord:
    """run.json of a run about to start."""
    pipeline = opts.pipeline if tool.kind == "wrk" else 1
    threads = tool.threads if isinstance(tool, (Wrk, H2load)) else 1
    return RunRecord(
        id=run_id,
        command=command_line(),
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
        tools=_tool_versions(deployed, load, inv, tool),
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
        load_models={
            point.key: load_model(
                tool, members, opts.point_profiles.get(point.key, opts.profile), point
            )
            for point in opts.points
        },
        repetitions=opts.repetitions,
        baseline=opts.baseline,
        interface=interface,
        placement=_placement(inv),
        traffic_note=_traffic_note(inv, interface),
        plan=[cell.key for cell in cells],
        servers={server.name: server.entry for server in opts.servers},
        allow_unverified=opts.allow_unverified,
        measurement=measurement,
        precision=None
        if opts.precision is None
        else opts.precision.record(opts.points, opts.table_points),
        point_profiles=opts.point_profiles,
        table_points=opts.table_points,
        system=system,
    )
