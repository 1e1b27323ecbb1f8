"""Does looking change what is seen? Server CPU per request with orch's counters attached
and without, in paired rounds, on this machine (loopback, as root).

Each round, for c-epoll and c-io_uring (built by `orch deploy`), two cells back to back in
alternating order, each a 0.25 s warm-up pass then a 1 s measured pass of wrk at 100
connections, as a sweep-short cell runs:
- with counters: perf stat attached to the server over the warm-up (orch's start_perf /
  stop_perf), orch's snapshot of every task, CPU, softirq and the interface around the
  measured pass (take_snapshot);
- without: the same passes, only the server's schedstat read around the measured pass.
The figure is the server's schedstat CPU per request over the measured pass; the report
is the paired ratio (with/without) per server with its 95% interval (orch's
paired_ratio_ci), and the per-round sd of its logarithm.

    .venv/bin/python benchmarks/observer_effect.py [ROUNDS]    (default 30)
"""

from __future__ import annotations

import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.hosts.local import LocalHost
from orchestrator.measure.perf_stat import start_perf, stop_perf
from orchestrator.measure.snapshot import SnapshotPlan, take_snapshot
from orchestrator.results.stats import paired_ratio_ci

BINARIES = Path(os.path.expanduser("~/.cache/orch/servers/bin"))
SERVER_CPU, LOAD_CPU = "0", "1"
CONNECTIONS = 100


def _schedstat_ns(pid: int) -> int:
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat", encoding="ascii") as file:
            total += int(file.read().split()[0])
    return total


def _wrk(port: int, seconds: float) -> int:
    """One wrk pass pinned to the load CPU; the requests it completed."""
    argv = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{CONNECTIONS}", "-d1s"]
    if seconds < 1:
        argv = ["timeout", "--preserve-status", "--signal=INT", f"{seconds:g}s", *argv]
    out = subprocess.run(
        [*argv, f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True
    )
    match = re.search(r"(\d+) requests in", out.stdout)
    if match is None:
        raise RuntimeError(f"wrk printed no request count: {out.stdout}")
    return int(match[1])


def _cell(host: LocalHost, pid: int, port: int, counters: bool) -> float:
    """One cell; the server's CPU ns per request over its measured pass."""
    if counters:
        perf = start_perf(host, pid, "/tmp/orch-observer-perf.csv", [int(LOAD_CPU)])
        _wrk(port, 0.25)
        stop_perf(host, perf)
        take_snapshot(host, SnapshotPlan(pid, "lo"))
    else:
        _wrk(port, 0.25)
    before = _schedstat_ns(pid)
    requests = _wrk(port, 1.0)
    after = _schedstat_ns(pid)
    if counters:
        take_snapshot(host, SnapshotPlan(pid, "lo"))
    return (after - before) / requests


def main(rounds: int) -> None:
    """Measure both servers and print one line each."""
    host = LocalHost()
    for name, port in (("c-epoll", 18091), ("c-io_uring", 18092)):
        server = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, str(BINARIES / name), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.3)
            _wrk(port, 1.0)  # warm the server and the page cache
            pairs = []
            for index in range(rounds):
                order = (True, False) if index % 2 == 0 else (False, True)
                seen = {counters: _cell(host, server.pid, port, counters) for counters in order}
                pairs.append((seen[True], seen[False]))
        finally:
            server.terminate()
            server.wait()
        ratio = paired_ratio_ci(pairs)
        logs = [math.log(a / b) for a, b in pairs]
        assert ratio.low is not None and ratio.high is not None
        print(
            f"{name}: CPU/request with counters / without: {ratio.value - 1:+.2%} "
            f"({ratio.low - 1:+.2%} … {ratio.high - 1:+.2%}, 95%, {ratio.method}), "
            f"per-round sd {statistics.stdev(logs):.3f}, {rounds} rounds, "
            f"{statistics.median(b for _, b in pairs):.0f} ns/request without"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
