"""Processes an orch could not stop (killed outright, or a host lost mid-cell): recorded
per cell while they run, stopped by PID later, after checking the PID is still theirs.

orch stops what it starts by PID on every path it lives through. When it is killed with
no chance to run a handler, a server on a remote target outlives it (remote processes are
detached so that a dropped SSH connection does not end them), and a split pass's load
agents may outlive a host that stopped answering. Each cell records its server (and each
split pass its agents) while they run; `orch run --resume` stops the ones still alive,
and a split pass stops its hosts' leftover agents before it starts. An agent stopped by
SIGTERM passes it to its load tool; one killed takes the tool with it (the tool's
parent-death signal), so stopping the agent stops the load.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from orchestrator.errors import HostError
from orchestrator.hosts.base import Host
from orchestrator.log import Log
from orchestrator.results.cell_result import CellKey
from orchestrator.results.rundir import RunDirectory, write_json_atomic

SERVER_RECORD_FILE = "server-process.json"
AGENTS_RECORD_FILE = "load-agents.json"

# $1 PID, $2 what identifies it: TERM, wait up to 3 s, KILL; exit 3 when it is not ours.
_STOP_SCRIPT = (
    "{identity}"
    'kill -TERM "$1" 2>/dev/null; n=0\n'
    'while kill -0 "$1" 2>/dev/null && [ "$n" -lt 150 ]; do sleep 0.02; n=$((n+1)); done\n'
    'kill -KILL "$1" 2>/dev/null; exit 0\n'
)
# A server: only while the PID still runs that binary.
_RUNS_BINARY = (
    'exe=$(readlink "/proc/$1/exe" 2>/dev/null) || exit 3\n'
    '[ "$exe" = "$(readlink -f "$2")" ] || exit 3\n'
)
# A load agent: only while the PID's command line still names that spec file.
_RUNS_SPEC = 'tr "\\0" " " <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2" || exit 3\n'


class ServerLeftover(BaseModel):
    """A cell's (or a verify's) server while it runs: where, its PID and its binary."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    pid: int
    binary: str


class AgentLeftover(BaseModel):
    """One load agent of a split pass while it runs: where, its PID and its spec file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    pid: int
    spec: str


_AGENTS = TypeAdapter(list[AgentLeftover])


def _stop(host: Host, pid: int, identity: str, check: str) -> bool:
    """TERM then KILL `pid` on `host` if `check` (an identity script) says it is still
    ours; True when it was."""
    argv = ["sh", "-c", _STOP_SCRIPT.format(identity=check), "orch-stop", str(pid), identity]
    return host.run(argv, timeout=30, check=False).ok


def record_server(cell_dir: Path, host: Host, pid: int, binary: str) -> None:
    """Note that `binary` runs as `pid` on `host` for this cell."""
    record = ServerLeftover(host=host.name, pid=pid, binary=binary)
    write_json_atomic(cell_dir / SERVER_RECORD_FILE, record.model_dump())


def forget_server(cell_dir: Path) -> None:
    """The cell's server was stopped: nothing to clean up later."""
    (cell_dir / SERVER_RECORD_FILE).unlink(missing_ok=True)


def _recorded_server(path: Path) -> ServerLeftover | None:
    try:
        return ServerLeftover.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


def stop_servers_left(
    run_dir: RunDirectory, target: Host, cells: Sequence[CellKey], log: Log
) -> list[int]:
    """Stop the servers recorded by `cells` (or by a verify, which runs before a server's
    first cell) that are still running on `target`; return their PIDs."""
    stopped = []
    found = [(key.server, run_dir.cell_dir(key) / SERVER_RECORD_FILE) for key in cells]
    found += [
        (p.parent.name, p) for p in sorted(run_dir.path.glob(f"verify/*/{SERVER_RECORD_FILE}"))
    ]
    for name, path in found:
        record = _recorded_server(path)
        if record is None or record.host != target.name:
            continue
        with contextlib.suppress(HostError):
            if _stop(target, record.pid, record.binary, _RUNS_BINARY):
                log(
                    f"stopped {name} (PID {record.pid}), left running on {target.name} by an "
                    "orch that was killed"
                )
                stopped.append(record.pid)
                path.unlink(missing_ok=True)
    return stopped


def record_agents(cell_dir: Path, agents: Sequence[AgentLeftover]) -> None:
    """Note the agents a cell's pass runs."""
    write_json_atomic(cell_dir / AGENTS_RECORD_FILE, [a.model_dump() for a in agents])


def forget_agents(cell_dir: Path) -> None:
    """Every agent of the cell is known to be stopped."""
    (cell_dir / AGENTS_RECORD_FILE).unlink(missing_ok=True)


def recorded_agents(cell_dir: Path) -> list[AgentLeftover]:
    """The agents a cell recorded (none when it recorded nothing readable)."""
    try:
        return _AGENTS.validate_json((cell_dir / AGENTS_RECORD_FILE).read_bytes())
    except (OSError, ValidationError):
        return []


def stop_agents_left(run_dir: RunDirectory, hosts: Mapping[str, Host], log: Log) -> list[int]:
    """Stop every recorded agent of the run still running on a host in `hosts`; the
    records of cells whose agents are all accounted for are removed. Returns the PIDs."""
    stopped = []
    for record in sorted((run_dir.path / "cells").glob(f"**/{AGENTS_RECORD_FILE}")):
        left = False
        for agent in recorded_agents(record.parent):
            host = hosts.get(agent.host)
            if host is None:
                left = True
                continue
            try:
                if _stop(host, agent.pid, agent.spec, _RUNS_SPEC):
                    log(f"stopped the load agent (PID {agent.pid}) left running on {agent.host}")
                    stopped.append(agent.pid)
            except HostError:
                left = True
        if not left:
            with contextlib.suppress(OSError):
                record.unlink()
    return stopped
