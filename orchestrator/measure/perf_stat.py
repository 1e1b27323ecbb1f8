"""perf stat on the server over a cell's warm-up pass: syscalls, and cycles and
instructions where the CPU has a PMU.

Not over the measured pass: enabling the raw_syscalls tracepoint sends every syscall of
every task through the traced slow path, and on this project's VM that cost c-epoll about
10% more CPU per request (io_uring, with few syscalls, about 1%), which would have made
the counters pick the winner. The warm-up holds the same load point, so its counts per
request describe the same work; the measured pass runs with nothing attached.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import HostError
from orchestrator.hosts.base import Host, last_line
from orchestrator.measure.proc_files import parse_perf_csv
from orchestrator.results.cost import PERF_EVENTS

READY_SECONDS = 5.0
POLL_SECONDS = 0.01
STOP_SECONDS = 5.0
# How many perf event descriptors perf holds open.
_COUNT_EVENTS = 'ls -l "/proc/$1/fd" 2>/dev/null | grep -c perf_event'


@dataclass(frozen=True)
class PerfRun:
    """A perf stat attached to the server: its PID and where it writes its counts."""

    pid: int
    output: str


def perf_available(host: Host) -> str | None:
    """None when perf can be run on `host`; else why not (one line)."""
    out = host.run(["perf", "--version"], timeout=30, check=False)
    if out.ok:
        return None
    return (
        f"perf is not installed on {host.name}"
        if out.exit_code == 127
        else last_line(out.stderr or out.stdout)
    )


def _open_events(host: Host, pid: int) -> int:
    out = host.run(["sh", "-c", _COUNT_EVENTS, "orch", str(pid)], timeout=30, check=False)
    return int(out.stdout.strip() or 0) if out.stdout.strip().isdigit() else 0


def start_perf(host: Host, server_pid: int, output: str, cpus: Sequence[int] | None) -> PerfRun:
    """Attach perf stat to the server and return once its counters are open (their number
    stops growing); HostError with perf's own words when it cannot count."""
    argv = ["perf", "stat", "-x,", "-o", output, "-e", ",".join(PERF_EVENTS)]
    pid = host.start_background(
        [*argv, "-p", str(server_pid)], log_path=f"{output}.log", cpus=cpus or None
    )
    run = PerfRun(pid, output)
    deadline = time.monotonic() + READY_SECONDS
    seen = 0
    while time.monotonic() < deadline:
        status = host.exit_status(pid)
        if status is not None:
            why = ""
            with contextlib.suppress(HostError):
                why = last_line(host.read_text(f"{output}.log"))
            raise HostError(f"perf stat ended at once ({why})")
        now = _open_events(host, pid)
        if now and now == seen:
            return run
        seen = now
        time.sleep(POLL_SECONDS * (2 if now else 1))
    stop_perf(host, run)
    raise HostError(f"perf stat did not open its counters within {READY_SECONDS:g} s")


def stop_perf(host: Host, run: PerfRun) -> dict[str, float | None]:
    """Stop perf by PID (SIGINT: it writes its counts and exits) and read them."""
    if host.exit_status(run.pid) is None:
        host.run(["kill", "-INT", str(run.pid)], timeout=30, check=False)
        deadline = time.monotonic() + STOP_SECONDS
        while host.exit_status(run.pid) is None and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
    host.stop(run.pid)
    return parse_perf_csv(host.read_text(run.output))
