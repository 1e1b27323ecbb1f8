"""Running `orch` as its users do (a subprocess) and a loopback inventory for tests."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

from server_helpers import free_port

REPO = Path(__file__).resolve().parent.parent
ORCH = [sys.executable, "-m", "orchestrator"]


def no_core_dumps() -> None:
    """preexec_fn: no core file from a crashed child (fault tests crash servers)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def orch(
    *args: str, timeout: float = 120.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m orchestrator ARGS` to completion; every call has a time limit."""
    return subprocess.run(
        [*ORCH, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
        preexec_fn=no_core_dumps,
    )


def write_loopback_inventory(base: Path) -> Path:
    """base/hosts.yaml: server on CPU 0, load on CPU 1, a free port, workdir base/work."""
    inventory = base / "hosts.yaml"
    inventory.write_text(
        "hosts:\n  local: {connection: local}\n"
        f"target: {{host: local, cpus: [0], listen: {{address: 127.0.0.1, "
        f"port: {free_port('127.0.0.1')}}}}}\n"
        "load: {host: local, cpus: [1]}\n"
        f"workdir: {base / 'work'}\n",
        encoding="utf-8",
    )
    return inventory
