"""Processes on this machine by PID: is it alive, stop it (SIGTERM, then SIGKILL).

For processes that are not a `subprocess.Popen` of ours (daemons such as the lab's
sshds, or what an interrupted run left behind); `LocalHost` stops its own children
through their Popen objects so it gets their exit status.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from orchestrator.hosts.base import STOP_GRACE_SECONDS

POLL_SECONDS = 0.05


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def terminate(pids: Sequence[int], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the PIDs, SIGKILL whatever still runs after `grace` s, reap own children."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        _reap(pids)
        time.sleep(POLL_SECONDS)
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    _reap(pids)


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by `pid` (gone already is fine)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _reap(pids: Sequence[int]) -> None:
    # Children of ours would stay zombies (and so "alive" to a PID check) until reaped.
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
