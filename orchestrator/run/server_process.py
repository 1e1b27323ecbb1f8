"""The server of a cell as a process on the target: ready, still alive, its log."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from orchestrator.errors import HostError
from orchestrator.hosts.base import Host, describe_exit
from orchestrator.load.result import LoadResult
from orchestrator.run.context import RunContext
from orchestrator.run.ports import port_in_use, wait_port_free

READY_TIMEOUT_SECONDS = 10.0
READY_POLL_SECONDS = 0.02
# A server whose io_uring still holds its listener as it exits (the ring is torn down
# asynchronously; orch's own servers close it first) frees the port a moment later.
PORT_FREE_WAIT_SECONDS = 3.0
LOG_TAIL_LINES = 15


class ServerDied(HostError):
    """The server ended while a cell was still using it."""


def log_tail(host: Host, path: str, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = host.read_text(path)
    except HostError:
        return "(no server log)"
    tail = text.strip().splitlines()[-lines:]
    return " | ".join(tail) if tail else "(empty server log)"


def wait_until_ready(ctx: RunContext, pid: int, log_path: str) -> None:
    """Wait for the `listening on` line and a successful TCP connect from the load host."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    target = ctx.target
    while time.monotonic() < deadline:
        status = target.exit_status(pid)
        if status is not None:
            raise ServerDied(
                f"server {describe_exit(status)} before it was ready: {log_tail(target, log_path)}"
            )
        listening = "listening on" in target.read_text(log_path)
        if listening and ctx.load.tcp_probe(ctx.inventory.dial_address, ctx.port):
            return
        time.sleep(READY_POLL_SECONDS)
    raise HostError(
        f"server not ready within {READY_TIMEOUT_SECONDS:.0f} s "
        f"(no answer on {ctx.inventory.dial_address}:{ctx.port}): "
        f"{log_tail(target, log_path)}"
    )


def check_port_free(ctx: RunContext) -> None:
    holder = wait_port_free(ctx.inventory, ctx.target, ctx.load, PORT_FREE_WAIT_SECONDS)
    if holder is not None:
        raise HostError(
            f"{port_in_use(ctx.inventory, ctx.target, holder)}, before the server started"
        )


def check_alive(
    ctx: RunContext, pid: int, log_path: str, phase: str, load: LoadResult | None
) -> None:
    """Raise ServerDied when the server ended during `phase` (the load keeps going and
    only counts failed requests when its server dies, so this is asked after each pass)."""
    status = ctx.target.exit_status(pid)
    if status is None:
        return
    failed = ""
    if load is not None and load.failed_requests:
        failed = f"; {load.tool} counted {load.failed_requests:,} failed requests"
    raise ServerDied(
        f"server {describe_exit(status)} during the {phase}{failed}: "
        f"{log_tail(ctx.target, log_path)}"
    )


def fetch_log(host: Host, remote: str, local: Path) -> None:
    """Copy the server's log into the cell's folder, if there is one."""
    with contextlib.suppress(HostError, OSError):
        host.get_file(remote, local)
