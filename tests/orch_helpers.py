"""Running `orch` as its users do (a subprocess), reading what it printed, and loopback
inventories for tests."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from server_helpers import REPO, free_port

ORCH = [sys.executable, "-m", "orchestrator"]
# Short cells: the load must run, the figures need not be worth keeping.
SHORT_CELL = ("--profile", "smoke", "--duration", "3s", "--warmup", "0")


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


def last_line(text: str) -> str:
    """The last line orch printed (on stderr: how the run ended)."""
    return text.strip().splitlines()[-1]


def only_line(text: str) -> str:
    """The one line orch printed, asserting it is one line and no traceback."""
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def require_two_cores() -> None:
    """Fail the test on a machine of one core: loopback mode pins the server and the load
    tool to CPUs 0 and 1."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.fail("loopback mode needs two cores: one for the server, one for the load")


def loopback_inventory(
    workdir: Path,
    port: int,
    *,
    hosts: Sequence[str] = ("local",),
    target: str = "",
    load: str = "",
    more: str = "",
) -> str:
    """hosts.yaml text: `hosts` all this machine, the server on CPU 0 of `local` listening
    on 127.0.0.1:`port`, the load on its CPU 1, `workdir`; `target` and `load` replace
    those entries, `more` is appended."""
    machines = "".join(f"  {name}: {{connection: local}}\n" for name in hosts)
    target = target or f"{{host: local, cpus: [0], listen: {{address: 127.0.0.1, port: {port}}}}}"
    load = load or "{host: local, cpus: [1]}"
    return f"hosts:\n{machines}target: {target}\nload: {load}\nworkdir: {workdir}\n{more}"


def write_loopback_inventory(base: Path) -> Path:
    """base/hosts.yaml: server on CPU 0, load on CPU 1, a free port, workdir base/work."""
    inventory = base / "hosts.yaml"
    inventory.write_text(
        loopback_inventory(base / "work", free_port("127.0.0.1")), encoding="utf-8"
    )
    return inventory
