"""`orch run` end to end: deploy, plan, measure every cell, record and report."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from orchestrator import __version__
from orchestrator.bench import BenchContext, run_plan
from orchestrator.connect import open_hosts
from orchestrator.counters import detect_interface
from orchestrator.deploy import DeployResult, deploy
from orchestrator.errors import UserError
from orchestrator.hosts import Host
from orchestrator.inventory import Inventory
from orchestrator.loadgen import wrk
from orchestrator.loadgen.driver import LoadTool, check_combination
from orchestrator.paths import project_root
from orchestrator.plan import Cell, build_plan
from orchestrator.profiles import Profile
from orchestrator.results import CellResult, RunDirectory, utc_now
from orchestrator.servers import ServerSpec

DEFAULT_BASELINE = "rust-epoll"  # the seed's baseline row (epoll, Rust)


@dataclass
class RunOptions:
    """What the user asked `orch run` for."""

    servers: list[ServerSpec]
    profile: Profile
    repetitions: int
    baseline: str | None
    out: Path
    label: str
    accept_new_host_keys: bool = False
    load_tool: str | None = None  # k6, wrk or wrk-pipelined; None: the inventory's load.tool
    pipeline: int | None = None  # wrk pipeline depth; None: 16 for wrk-pipelined, else 1


class Interrupted(Exception):
    """SIGTERM arrived during a run."""


class RunInterrupted(Exception):
    """The run stopped early on SIGINT/SIGTERM; what was measured is in `run_dir`."""

    def __init__(self, run_dir: RunDirectory) -> None:
        super().__init__(str(run_dir.path))
        self.run_dir = run_dir


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


def default_repetitions(profile_name: str) -> int:
    """Repetitions when the user gives none: 3 for the seed profile, else 1."""
    return 3 if profile_name == "seed" else 1


def choose_load_tool(
    inv: Inventory, opts: RunOptions, load: Host, deployed: DeployResult
) -> LoadTool:
    """The load tool the run uses, found on the load host, with its version."""
    name = opts.load_tool or inv.load.tool
    pipeline = check_combination(name, opts.pipeline, opts.profile)
    if name == "k6":
        return LoadTool(
            "k6",
            deployed.k6_path,
            deployed.k6_script,
            version=deployed.load_facts.tools.get("k6", ""),
        )
    path = wrk.find_wrk(inv, load)
    return LoadTool(
        "wrk",
        path,
        f"{deployed.load_workdir}/{wrk.SCRIPT}",
        threads=wrk.threads_for(inv.load.cpus),
        pipeline=pipeline,
        version=wrk.wrk_version(load, path),
    )


def _tool_versions(deployed: DeployResult, load: Host, inv: Inventory) -> dict[str, str]:
    tools = {**deployed.target_facts.tools, "k6": deployed.load_facts.tools.get("k6", "")}
    try:
        tools["wrk"] = wrk.wrk_version(load, wrk.find_wrk(inv, load))
    except UserError:
        tools["wrk"] = "not installed"
    return tools


def _run_record(
    inv: Inventory,
    opts: RunOptions,
    deployed: DeployResult,
    cells: Sequence[Cell],
    run_id: str,
    interface: str | None,
    tool: LoadTool,
    tools: dict[str, str],
) -> dict[str, Any]:
    profile = opts.profile
    return {
        "id": run_id,
        "command": shlex.join(["orch", *sys.argv[1:]]),
        "orch_version": __version__,
        "orch_commit": orch_commit(),
        "started_at": utc_now(),
        "status": "running",
        "inventory": inv.model_dump(mode="json"),
        "facts": {
            "target": deployed.target_facts.model_dump(mode="json"),
            "load": deployed.load_facts.model_dump(mode="json"),
        },
        "tools": tools,
        "k6": {"path": deployed.k6_path, "source": deployed.k6_source},
        "load_tool": {
            "name": tool.label,
            "kind": tool.kind,
            "path": tool.path,
            "version": tool.version,
            "threads": tool.threads,
            "pipeline": tool.pipeline,
        },
        "profile": {
            "name": profile.name,
            "stages": profile.k6_stages(),
            "duration_seconds": profile.duration,
            "max_vus": profile.max_vus,
            "warmup_seconds": profile.warmup_seconds,
            "rate": profile.rate,
            "description": f"{profile.duration:g} s, up to {profile.max_vus} VUs",
            "model_kind": "open" if profile.is_open else "closed",
            "model": tool.model(profile),
        },
        "repetitions": opts.repetitions,
        "baseline": opts.baseline,
        "interface": interface,
        "placement": _placement(inv),
        "traffic_note": _traffic_note(inv, interface),
        "plan": [cell.key for cell in cells],
    }


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def execute_run(
    inv: Inventory,
    opts: RunOptions,
    log: Callable[[str], None],
    on_start: Callable[[int, Cell], None],
    on_done: Callable[[int, Cell, CellResult], None],
) -> RunDirectory:
    """Deploy, run every cell, write run.json, cells and reports; return the run directory."""
    target, load = open_hosts(inv, opts.accept_new_host_keys)
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        deployed = deploy(inv, target, load, opts.servers, log)
        tool = choose_load_tool(inv, opts, load, deployed)
        tools = _tool_versions(deployed, load, inv)
        cells = build_plan(opts.servers, opts.repetitions)
        peer = inv.dial_address if inv.is_loopback else inv.load_host.address
        interface = inv.target.interface or detect_interface(target, peer)
        run_dir = RunDirectory.create(opts.out, opts.label)
        record = _run_record(inv, opts, deployed, cells, run_dir.path.name, interface, tool, tools)
        run_dir.write_run(record)
        ctx = BenchContext(
            inventory=inv,
            target=target,
            load=load,
            deployed=deployed,
            profile=opts.profile,
            tool=tool,
            run_dir=run_dir,
            run_id=run_dir.path.name,
            interface=interface,
        )
        try:
            run_plan(ctx, cells, on_start, on_done)
            record["status"] = "complete"
        except (KeyboardInterrupt, Interrupted):
            record["status"] = "interrupted"
            record["finished_at"] = utc_now()
            run_dir.write_run(record)
            raise RunInterrupted(run_dir) from None
        record["finished_at"] = utc_now()
        run_dir.write_run(record)
        return run_dir
    finally:
        signal.signal(signal.SIGTERM, previous)
        target.close()
        if load is not target:
            load.close()
