"""A cell's warm-up pass: the same load point, not measured for CPU, with perf stat
attached to the server (when perf counts) so that the counters explaining the cost are
taken where they cannot change it (measure/perf_stat.py says why)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from orchestrator.errors import HostError
from orchestrator.measure.context import CellPaths, RunContext
from orchestrator.measure.load_run import run_load
from orchestrator.measure.perf_stat import PerfRun, start_perf, stop_perf
from orchestrator.results.cost import PerfCounts
from orchestrator.split_pass.together import PassRequest

WARMUP_PREFIX = "warmup-"
PERF_OUTPUT = "warmup-perf.csv"


def warm_up(ctx: RunContext, request: PassRequest, pid: int, paths: CellPaths) -> PerfCounts | None:
    """Run the warm-up pass; the perf counts over it (None when perf is off, or a note
    saying why nothing was counted)."""
    plan = ctx.cost_plan
    if plan is None or not plan.perf_on:
        run_load(ctx, request, paths.remote, paths.local)
        return None
    output = f"{paths.target_folder}/{PERF_OUTPUT}"
    perf: PerfRun | None = None
    try:
        try:
            perf = start_perf(ctx.target, pid, output, ctx.observer_cpus)
        except HostError as exc:
            run_load(ctx, request, paths.remote, paths.local)
            return PerfCounts(counters={}, requests=0, note=f"perf could not count: {exc}")
        warm = run_load(ctx, request, paths.remote, paths.local)
        counts = stop_perf(ctx.target, perf)
        perf = None
        _fetch(ctx, output, paths.local / PERF_OUTPUT)
        return PerfCounts(counters=counts, requests=warm.result.requests)
    finally:
        if perf is not None:
            with contextlib.suppress(HostError):
                ctx.target.stop(perf.pid)


def _fetch(ctx: RunContext, remote: str, local: Path) -> None:
    with contextlib.suppress(HostError, OSError):
        ctx.target.get_file(remote, local)
