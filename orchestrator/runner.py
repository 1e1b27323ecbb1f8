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
from orchestrator.inventory import Inventory
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


def _run_record(
    inv: Inventory,
    opts: RunOptions,
    deployed: DeployResult,
    cells: Sequence[Cell],
    run_id: str,
    interface: str | None,
) -> dict[str, Any]:
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
        "tools": {**deployed.target_facts.tools, "k6": deployed.load_facts.tools.get("k6", "")},
        "k6": {"path": deployed.k6_path, "source": deployed.k6_source},
        "profile": {
            "name": opts.profile.name,
            "stages": opts.profile.k6_stages(),
            "duration_seconds": opts.profile.duration,
            "max_vus": opts.profile.max_vus,
            "description": f"{opts.profile.duration:g} s, up to {opts.profile.max_vus} VUs",
            "model": "closed (k6 ramping VUs, one request per iteration)",
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
        cells = build_plan(opts.servers, opts.repetitions)
        peer = inv.dial_address if inv.is_loopback else inv.load_host.address
        interface = inv.target.interface or detect_interface(target, peer)
        run_dir = RunDirectory.create(opts.out, opts.label)
        record = _run_record(inv, opts, deployed, cells, run_dir.path.name, interface)
        run_dir.write_run(record)
        ctx = BenchContext(
            inventory=inv,
            target=target,
            load=load,
            deployed=deployed,
            profile=opts.profile,
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
