"""Whether the load host can hold a run's connections: each is one file descriptor of the
load tool, and wrk (unlike k6, whose Go runtime does it) never raises its own soft limit."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.errors import UserError
from orchestrator.hosts.base import Host
from orchestrator.load.points import LoadPoint

# Descriptors a load tool needs besides its connections (epoll, timers, stdio, files).
MARGIN = 64
UNLIMITED = 1 << 30


def _limit(text: str) -> int:
    text = text.strip()
    return UNLIMITED if text == "unlimited" else int(text)


def descriptor_limits(host: Host) -> tuple[int, int]:
    """(soft, hard) RLIMIT_NOFILE of a command started on `host`."""
    out = host.run(["sh", "-c", "ulimit -Sn; ulimit -Hn"], timeout=30).stdout.split()
    if len(out) != 2:
        raise UserError(f"load host {host.name}: cannot read its descriptor limits ({out})")
    return _limit(out[0]), _limit(out[1])


def raise_for_points(host: Host, points: Sequence[LoadPoint]) -> int | None:
    """The soft limit the load tool must be started with (None: its own is enough); a
    point with more connections than the hard limit allows is a UserError."""
    busiest = max(points, key=lambda point: point.vus)
    needed = busiest.vus + MARGIN
    soft, hard = descriptor_limits(host)
    if needed > hard:
        option = "--rates" if busiest.is_open else "--connections"
        raise UserError(
            f"{option}: {busiest.describe()} needs {needed} file descriptors on load host "
            f"{host.name}, whose hard limit is {hard} (ulimit -Hn); use fewer connections "
            "or raise the limit there"
        )
    return hard if needed > soft else None


def with_limit(argv: Sequence[str], soft: int | None) -> list[str]:
    """argv started with RLIMIT_NOFILE raised to `soft` (prlimit execs: the PID stays)."""
    if soft is None:
        return list(argv)
    return ["prlimit", f"--nofile={soft}:{soft}", *argv]
