"""Servers an orch killed outright (kill -9) left running: recorded per cell, stopped on resume.

orch stops what it starts by PID on every path it lives through. When it is killed with
no chance to run a handler, a server on a remote target outlives it (remote processes are
detached so that a dropped SSH connection does not end them). Each cell records its
server's PID while it runs; `orch run --resume` stops the ones still alive, by PID, after
checking the PID still runs that server's binary.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from orchestrator.errors import HostError
from orchestrator.hosts.base import Host
from orchestrator.results.rundir import RunDirectory, write_json_atomic
from orchestrator.run.plan import Cell

RECORD_FILE = "server-process.json"

# $1 PID, $2 the binary: only that process, only while it still runs that binary.
_STOP_SCRIPT = (
    'exe=$(readlink "/proc/$1/exe" 2>/dev/null) || exit 3\n'
    '[ "$exe" = "$(readlink -f "$2")" ] || exit 3\n'
    'kill -TERM "$1" 2>/dev/null; n=0\n'
    'while kill -0 "$1" 2>/dev/null && [ "$n" -lt 150 ]; do sleep 0.02; n=$((n+1)); done\n'
    'kill -KILL "$1" 2>/dev/null; exit 0\n'
)


def record_server(cell_dir: Path, host: Host, pid: int, binary: str) -> None:
    """Note that `binary` runs as `pid` on `host` for this cell."""
    write_json_atomic(cell_dir / RECORD_FILE, {"host": host.name, "pid": pid, "binary": binary})


def forget_server(cell_dir: Path) -> None:
    """The cell's server was stopped: nothing to clean up later."""
    (cell_dir / RECORD_FILE).unlink(missing_ok=True)


def stop_orphans(
    run_dir: RunDirectory, target: Host, cells: Sequence[Cell], log: Callable[[str], None]
) -> list[int]:
    """Stop the servers recorded by `cells` (or by a verify, which runs before a server's
    first cell) that are still running on `target`; return their PIDs."""
    stopped = []
    found = [(cell.server.name, run_dir.cell_dir(cell.key) / RECORD_FILE) for cell in cells]
    found += [(p.parent.name, p) for p in sorted(run_dir.path.glob(f"verify/*/{RECORD_FILE}"))]
    for name, path in found:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            pid, binary, host = int(record["pid"]), str(record["binary"]), record["host"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if host != target.name:
            continue
        argv = ["sh", "-c", _STOP_SCRIPT, "orch-stop", str(pid), binary]
        with contextlib.suppress(HostError):
            if target.run(argv, timeout=30, check=False).ok:
                log(
                    f"stopped {name} (PID {pid}), left running on {target.name} by an orch "
                    "that was killed"
                )
                stopped.append(pid)
                path.unlink(missing_ok=True)
    return stopped
