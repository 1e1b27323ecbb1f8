"""One command line on a session channel of an SSH transport: start it, collect its
output and exit status within a time limit, read the PID its wrapper printed.

paramiko's own `exec_command` helpers block on reads without a deadline; this loop
keeps both streams drained (a full stderr window would stall the command) and stops at
the time limit with the channel still open, so the caller can kill the command by PID.
"""

from __future__ import annotations

import select
import time

import paramiko

from orchestrator.hosts.ssh_scripts import find_pid

WAIT_STEP_SECONDS = 0.25
PID_WAIT_SECONDS = 2.0
POLL_STEP_SECONDS = 0.02


def open_command(
    transport: paramiko.Transport, command: str, open_timeout: float
) -> paramiko.Channel:
    """Start `command` on a new session channel (stdin closed)."""
    channel = transport.open_session(timeout=open_timeout)
    channel.exec_command(command)
    channel.shutdown_write()
    return channel


def collect(
    channel: paramiko.Channel, timeout: float, out: bytearray, err: bytearray
) -> tuple[bool, int | None]:
    """Read the command's output into `out` and `err` until it ends or `timeout` passes.

    Returns (ended, exit status or None when none came). The buffers are filled in
    place, so a caller interrupted meanwhile (Ctrl-C) still has what arrived.
    """
    deadline = time.monotonic() + timeout
    while not (channel.eof_received and channel.exit_status_ready()):
        got = drain(channel, out, err)
        if channel.closed and not got:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False, None
        if channel.eof_received:
            # Only the exit status is missing; it raises no select() readiness.
            channel.status_event.wait(min(remaining, WAIT_STEP_SECONDS))
        elif not got:
            select.select([channel], [], [], min(remaining, WAIT_STEP_SECONDS))
    drain(channel, out, err)
    code = channel.recv_exit_status() if channel.exit_status_ready() else None
    # -1 is paramiko's placeholder: no exit status came (connection lost, or the remote
    # shell died by a signal, which paramiko does not report as a status).
    return True, None if code is not None and code < 0 else code


def drain(channel: paramiko.Channel, out: bytearray, err: bytearray) -> bool:
    """Append whatever output is ready without blocking; True when anything came."""
    got = False
    while channel.recv_ready():
        chunk = channel.recv(65536)
        if not chunk:
            break
        out += chunk
        got = True
    while channel.recv_stderr_ready():
        chunk = channel.recv_stderr(65536)
        if not chunk:
            break
        err += chunk
        got = True
    return got


def wait_for_pid(channel: paramiko.Channel, stdout_so_far: str) -> int | None:
    """The PID a `run_script` wrapper printed first; after a very early Ctrl-C it may
    still be on its way, so wait for it a little."""
    buffer = bytearray(stdout_so_far.encode())
    pid = find_pid(stdout_so_far)
    deadline = time.monotonic() + PID_WAIT_SECONDS
    while pid is None and time.monotonic() < deadline and not channel.closed:
        drain(channel, buffer, bytearray())
        pid = find_pid(buffer.decode(errors="replace"))
        if pid is None:
            time.sleep(POLL_STEP_SECONDS)
    return pid
