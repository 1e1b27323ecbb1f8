"""The server of a cell as a process on the target: started from its catalogue entry, ready,
still alive, stopped by PID, its log."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

from orchestrator.catalogue.entry import fill
from orchestrator.catalogue.spec import ServerSpec
from orchestrator.errors import HostError
from orchestrator.hosts.base import STOP_GRACE_SECONDS, Host, describe_exit
from orchestrator.load.result import LoadResult
from orchestrator.measure.context import RunContext
from orchestrator.measure.http_client import answers_once
from orchestrator.measure.ports import port_in_use, wait_port_free

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


def start_server(
    ctx: RunContext, server: ServerSpec, folder: str, log_path: str
) -> tuple[int, list[str]]:
    """Write the server's generated files into `folder` (its own, on the target), start it
    pinned to the target's CPUs, in its sources (else `folder`); return its PID and argv."""
    values = {
        "host": ctx.inventory.target.listen.address,
        "port": str(ctx.port),
        "dir": folder,
        "sources": ctx.deployed.sources_dir(server) or "",
    }
    ctx.target.run(["mkdir", "-p", folder], timeout=30)
    for name, template in server.entry.files.items():
        text = Path(template).read_text(encoding="utf-8")
        ctx.target.write_text(f"{folder}/{name}", fill(text, values))
    argv = ctx.deployed.start_argv(server, values)
    pid = ctx.target.start_background(
        argv,
        log_path=log_path,
        cpus=ctx.inventory.target.cpus,
        cwd=ctx.deployed.sources_dir(server) or folder,
    )
    return pid, argv


def wait_until_ready(ctx: RunContext, server: ServerSpec, pid: int, log_path: str) -> None:
    """Wait for the server's ready line (when its entry names one) and a successful TCP
    connect from the load host; without a ready line, for one answered request."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    target = ctx.target
    line = server.entry.ready.line
    while time.monotonic() < deadline:
        status = target.exit_status(pid)
        if status is not None:
            raise ServerDied(
                f"server {describe_exit(status)} before it was ready: {log_tail(target, log_path)}"
            )
        address = ctx.inventory.dial_address
        said = line is None or re.search(line, target.read_text(log_path), re.MULTILINE)
        if (
            said
            and ctx.load.tcp_probe(address, ctx.port)
            and (line is not None or answers_once(ctx.load, address, ctx.port))
        ):
            return
        time.sleep(READY_POLL_SECONDS)
    raise HostError(
        f"server not ready within {READY_TIMEOUT_SECONDS:.0f} s "
        f"(no answer on {ctx.inventory.dial_address}:{ctx.port}): "
        f"{log_tail(target, log_path)}"
    )


def stop_server(ctx: RunContext, server: ServerSpec, pid: int) -> int | None:
    """Stop the server by PID with its entry's stop signal (then SIGTERM and SIGKILL after
    the grace time, as every process orch starts); return its exit status."""
    if server.entry.stop_signal != "TERM" and ctx.target.exit_status(pid) is None:
        ctx.target.run(["kill", "-s", server.entry.stop_signal, str(pid)], timeout=30, check=False)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while ctx.target.exit_status(pid) is None and time.monotonic() < deadline:
            time.sleep(READY_POLL_SECONDS)
    return ctx.target.stop(pid)


def check_port_free(ctx: RunContext) -> None:
    """HostError naming the holder when the server's port is still taken after a moment."""
    inv, port = ctx.inventory, ctx.port
    holder = wait_port_free(inv, ctx.target, ctx.load, PORT_FREE_WAIT_SECONDS, port)
    if holder is not None:
        raise HostError(f"{port_in_use(inv, ctx.target, holder, port)}, before the server started")


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
