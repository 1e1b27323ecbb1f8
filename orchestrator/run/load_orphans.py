"""Load agents a split pass could not stop (a load host lost mid-cell, or orch killed):
recorded per cell, stopped by PID when the host answers again or on `--resume`.

An agent stopped by SIGTERM passes it to its load tool; one killed takes the tool with it
(the tool's parent-death signal), so stopping the agent stops the load.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from orchestrator.errors import HostError
from orchestrator.hosts.base import Host
from orchestrator.results.rundir import RunDirectory, write_json_atomic

RECORD_FILE = "load-agents.json"

# $1 PID, $2 the agent's spec: only that process, only while it still runs that spec.
_STOP_SCRIPT = (
    'tr "\\0" " " <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2" || exit 3\n'
    'kill -TERM "$1" 2>/dev/null; n=0\n'
    'while kill -0 "$1" 2>/dev/null && [ "$n" -lt 150 ]; do sleep 0.02; n=$((n+1)); done\n'
    'kill -KILL "$1" 2>/dev/null; exit 0\n'
)


def record_agents(cell_dir: Path, agents: Sequence[tuple[str, int, str]]) -> None:
    """Note the agents (host, PID, spec path) a cell's pass runs."""
    write_json_atomic(
        cell_dir / RECORD_FILE, [{"host": h, "pid": pid, "spec": spec} for h, pid, spec in agents]
    )


def forget_agents(cell_dir: Path) -> None:
    """Every agent of the cell is known to be stopped."""
    (cell_dir / RECORD_FILE).unlink(missing_ok=True)


def recorded_agents(cell_dir: Path) -> list[tuple[str, int, str]]:
    """The agents a cell recorded (none when it recorded nothing readable)."""
    try:
        data = json.loads((cell_dir / RECORD_FILE).read_text(encoding="utf-8"))
        return [(str(a["host"]), int(a["pid"]), str(a["spec"])) for a in data]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def stop_agent(host: Host, pid: int, spec: str) -> bool:
    """Stop one recorded agent by PID (only if it still runs that spec); True when it ran."""
    argv = ["sh", "-c", _STOP_SCRIPT, "orch-stop", str(pid), spec]
    return host.run(argv, timeout=30, check=False).ok


def stop_load_orphans(
    run_dir: RunDirectory, hosts: Mapping[str, Host], log: Callable[[str], None]
) -> list[int]:
    """Stop every recorded agent of the run still running on a host in `hosts`; the
    records of cells whose agents are all accounted for are removed. Returns the PIDs."""
    stopped = []
    for record in sorted((run_dir.path / "cells").glob(f"**/{RECORD_FILE}")):
        left = False
        for name, pid, spec in recorded_agents(record.parent):
            host = hosts.get(name)
            if host is None:
                left = True
                continue
            try:
                if stop_agent(host, pid, spec):
                    log(f"stopped the load agent (PID {pid}) left running on {name}")
                    stopped.append(pid)
            except HostError:
                left = True
        if not left:
            with contextlib.suppress(OSError):
                record.unlink()
    return stopped
