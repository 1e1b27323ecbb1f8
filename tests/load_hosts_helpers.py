"""Checks shared by the tests of split load (two load hosts): the merge against the raw
samples, each host's own share by the processes each ran, and what was left running."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
from fault_helpers import Proc, count_left, orch_processes, processes
from orch_helpers import SHORT_CELL

from orchestrator.load.result import LatencyHistogram, LoadResult
from orchestrator.results.cell_result import CellResult

AGENT = "orch-load-agent.py"
# c-epoll in short cells: each test adds how the load is split.
SPLIT_CELL = ("--server", "c-epoll", *SHORT_CELL)
PERCENTILES = (("p50", 50.0), ("p99", 99.0), ("p999", 99.9))


def raw_k6_durations(csv_path: Path) -> list[int]:
    """Every http_req_duration sample of a k6 CSV in whole microseconds (half up), read
    with the csv module: independent of the agent's own reduction."""
    micros = []
    with csv_path.open(encoding="utf-8", newline="") as file:
        for row in csv.DictReader(file):
            if row["metric_name"] == "http_req_duration":
                value = Decimal(row["metric_value"]) * 1000
                micros.append(int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP)))
    return micros


def raw_h2load_latencies(log_path: Path) -> list[int]:
    """Every answered request's microseconds in an h2load log (start, status, µs per
    row; status -1: a failed stream), read line by line: independent of orch's reducer."""
    micros = []
    for line in log_path.read_text(encoding="ascii").splitlines():
        _, status, value = line.split("\t")
        if status != "-1":
            micros.append(int(value))
    return micros


def samples_of_histogram(histogram: LatencyHistogram | None) -> list[int]:
    """A stored histogram's buckets as the samples they count."""
    assert histogram is not None
    return [int(value) for value, count in histogram.buckets for _ in range(int(count))]


def merged_load(cell: CellResult) -> LoadResult:
    """The cell's load of all hosts together, asserting the cell has one."""
    assert cell.load is not None, cell.error
    return cell.load


def check_exact_merge(
    cell: CellResult, raw: dict[str, list[int]], one_per_request: bool = True
) -> dict[str, float]:
    """The cell's merged load against the union of each host's raw samples: counts add
    up, and p50/p99/p99.9 equal the union's nearest-rank percentiles. Returns them (ms).

    one_per_request: each sample is one request (k6); wrk's histogram also holds the
    samples its coordinated-omission correction adds, so it has more than requests."""
    merged, hosts = merged_load(cell), cell.load_by_host
    assert sorted(str(h.host) for h in hosts) == sorted(raw)
    assert merged.requests == sum(h.requests for h in hosts)
    union = np.concatenate([np.asarray(samples) for samples in raw.values()])
    if one_per_request:
        for host in hosts:
            assert host.requests == len(raw[str(host.host)]), host.host
        assert merged.requests == union.size
    assert merged.histogram is not None and merged.histogram.buckets
    assert merged.histogram.total == union.size
    found = {}
    for name, percent in PERCENTILES:
        expected = float(np.percentile(union, percent, method="inverted_cdf")) / 1000
        got = getattr(merged.latency, name)
        assert got == expected, (name, got, expected)
        found[name] = expected
    return found


def tools_by_namespace(
    workdirs: Sequence[Path], namespaces: dict[str, int]
) -> dict[str, list[Proc]]:
    """The k6, wrk or h2load processes orch started, per network namespace."""
    return {
        name: [p for p in orch_processes(workdirs, ns) if p.name in ("k6", "wrk", "h2load")]
        for name, ns in namespaces.items()
    }


def agents_in(netns: int | None) -> list[Proc]:
    """orch's load agents running in a namespace (None: any); not the shell that watches
    one (its command line names the agent too)."""
    return [
        p
        for p in processes()
        if p.name.startswith("python") and AGENT in p.cmdline and netns in (None, p.netns)
    ]


def count_load_left(
    test: str, hosts: dict[str, int | None], workdirs: Sequence[Path], settle: float = 5.0
) -> dict[str, int]:
    """Servers, load tools and load agents left on each host (`name -> netns`), after up
    to `settle` s for signals to land; recorded like fault_helpers.count_left."""
    return count_left(test, hosts, workdirs, settle, also=lambda ns: len(agents_in(ns)))


def kept_samples(
    workdir: Path, run_id: str, cell: str, host: str, name: str = "k6-samples.csv"
) -> Path:
    """Where a load host kept k6's samples (or h2load's log, `name`) of a cell
    (ORCH_KEEP_LOAD_SAMPLES=1)."""
    server, point, repetition = cell.split("/")
    return workdir / "runs" / run_id / server / point / repetition / "load-hosts" / host / name


def keep_samples_env() -> dict[str, str]:
    """orch's environment with k6's raw samples kept on the load hosts."""
    return {**os.environ, "ORCH_KEEP_LOAD_SAMPLES": "1"}
