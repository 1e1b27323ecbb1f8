"""`orch run` end to end: deploy, plan, measure every cell, record and report."""

from __future__ import annotations

import contextlib
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from orchestrator import __version__
from orchestrator.deploy.deploy import DeployResult, deploy
from orchestrator.errors import UserError
from orchestrator.hosts.base import Host
from orchestrator.hosts.connect import close_hosts, open_hosts
from orchestrator.inventory import Inventory
from orchestrator.load import wrk
from orchestrator.load.points import Profile
from orchestrator.load.tool import LoadTool, check_combination
from orchestrator.paths import project_root
from orchestrator.results.cell import CellResult, RunDirectory, utc_now
from orchestrator.run.cell import BenchContext, HostLost, run_plan
from orchestrator.run.counters import detect_interface
from orchestrator.run.orphans import stop_orphans
from orchestrator.run.plan import Cell, build_plan
from orchestrator.run.ports import port_in_use, wait_port_free
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
    """SIGTERM or SIGHUP arrived during a run; the message is the signal's name."""


class RunInterrupted(Exception):
    """The run stopped early on a signal; what was measured is in `run_dir` (None when
    the signal came before the run directory existed)."""

    def __init__(self, run_dir: RunDirectory | None, signal_name: str = "SIGINT") -> None:
        super().__init__(signal_name)
        self.run_dir = run_dir
        self.signal_name = signal_name

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a death by that signal."""
        return 128 + signal.Signals[self.signal_name].value


class RunStopped(Exception):
    """A host could not be reached any more, so the run stopped; `reason` names it."""

    def __init__(self, run_dir: RunDirectory, reason: str) -> None:
        super().__init__(reason)
        self.run_dir = run_dir
        self.reason = reason


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


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Interrupted, SIGINT KeyboardInterrupt (even when orch was
    started with SIGINT ignored), so every path stops what it started by PID."""
    handlers = {
        signal.SIGTERM: _raise_interrupted,
        signal.SIGHUP: _raise_interrupted,
        signal.SIGINT: signal.default_int_handler,
    }
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _signal_name(stop: BaseException) -> str:
    return str(stop) if isinstance(stop, Interrupted) else "SIGINT"


def _prepare(
    inv: Inventory, opts: RunOptions, target: Host, load: Host, log: Callable[[str], None]
) -> tuple[DeployResult, LoadTool, dict[str, str]]:
    """Deploy, pick the load tool, and make sure nothing else holds the servers' port."""
    deployed = deploy(inv, target, load, opts.servers, log)
    tool = choose_load_tool(inv, opts, load, deployed)
    tools = _tool_versions(deployed, load, inv)
    holder = wait_port_free(inv, target, load, 0)
    if holder is not None:
        raise UserError(
            f"inventory target.listen.port: {port_in_use(inv, target, holder)}; stop that "
            "process or choose another port"
        )
    return deployed, tool, tools


def _measure(
    ctx: BenchContext,
    record: dict[str, Any],
    cells: Sequence[Cell],
    on_start: Callable[[int, Cell], None],
    on_done: Callable[[int, Cell, CellResult], None],
) -> None:
    """Run `cells` and leave run.json saying how the run ended."""
    run_dir = ctx.run_dir
    try:
        run_plan(ctx, cells, on_start, on_done)
    except (KeyboardInterrupt, Interrupted) as stop:
        name = _signal_name(stop)
        _finish(run_dir, record, "interrupted", {"interrupted_by": name})
        raise RunInterrupted(run_dir, name) from None
    except HostLost as lost:
        _finish(run_dir, record, "stopped", {"stop_reason": str(lost)})
        raise RunStopped(run_dir, str(lost)) from None
    _finish(run_dir, record, "complete", {})


def _finish(
    run_dir: RunDirectory, record: dict[str, Any], status: str, extra: dict[str, Any]
) -> None:
    for key in ("interrupted_by", "stop_reason"):
        record.pop(key, None)
    record.update(status=status, finished_at=utc_now(), **extra)
    run_dir.write_run(record)


def execute_run(
    inv: Inventory,
    opts: RunOptions,
    log: Callable[[str], None],
    on_start: Callable[[int, Cell], None],
    on_done: Callable[[int, Cell, CellResult], None],
) -> RunDirectory:
    """Deploy, run every cell, write run.json, cells and reports; return the run directory."""
    with _stop_on_signals():
        target, load = open_hosts(inv, opts.accept_new_host_keys)
        try:
            try:
                deployed, tool, tools = _prepare(inv, opts, target, load, log)
                cells = build_plan(opts.servers, opts.repetitions)
                peer = inv.dial_address if inv.is_loopback else inv.load_host.address
                interface = inv.target.interface or detect_interface(target, peer)
            except (KeyboardInterrupt, Interrupted) as stop:
                raise RunInterrupted(None, _signal_name(stop)) from None
            run_dir = RunDirectory.create(opts.out, opts.label)
            with run_dir.lock():
                record = _run_record(
                    inv, opts, deployed, cells, run_dir.path.name, interface, tool, tools
                )
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
                _measure(ctx, record, cells, on_start, on_done)
            return run_dir
        finally:
            close_hosts(target, load)


def resume_run(
    run_dir: RunDirectory,
    inv: Inventory,
    opts: RunOptions,
    cells: Sequence[Cell],
    log: Callable[[str], None],
    on_start: Callable[[int, Cell], None],
    on_done: Callable[[int, Cell, CellResult], None],
) -> RunDirectory:
    """Measure the `cells` a run lacks, with its recorded inventory, profile and tool."""
    with _stop_on_signals(), run_dir.lock():
        record = run_dir.read_run()
        run_dir.remove_stale_temporaries()
        target, load = open_hosts(inv, opts.accept_new_host_keys)
        try:
            stop_orphans(run_dir, target, cells, log)
            for cell in cells:
                run_dir.clear_unfinished(cell.server.name, cell.repetition)
            try:
                deployed, tool, _ = _prepare(inv, opts, target, load, log)
            except (KeyboardInterrupt, Interrupted) as stop:
                raise RunInterrupted(run_dir, _signal_name(stop)) from None
            resumes = record.setdefault("resumed", [])
            resumes.append(
                {
                    "at": utc_now(),
                    "command": shlex.join(["orch", *sys.argv[1:]]),
                    "orch_commit": orch_commit(),
                    "cells": [cell.key for cell in cells],
                }
            )
            record["status"] = "running"
            run_dir.write_run(record)
            ctx = BenchContext(
                inventory=inv,
                target=target,
                load=load,
                deployed=deployed,
                profile=opts.profile,
                tool=tool,
                run_dir=run_dir,
                run_id=str(record.get("id") or run_dir.path.name),
                interface=record.get("interface"),
            )
            _measure(ctx, record, cells, on_start, on_done)
            return run_dir
        finally:
            close_hosts(target, load)
