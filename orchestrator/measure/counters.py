"""The counters a cell has always reported, from two snapshots around its measured pass:
the server's CPU time (schedstat nanoseconds, with /proc/PID/stat's ticks beside them),
its pinned cores' time (/proc/stat) and the interface's packets (/sys)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.load.result import LoadResult
from orchestrator.measure.cores import core_between, sum_core_ticks
from orchestrator.measure.cost_plan import CostPlan
from orchestrator.measure.costing import cell_cost
from orchestrator.measure.snapshot import NIC_FIELDS, Snapshot
from orchestrator.results.cell_result import CoreCpu, NicCounters, ProcessCpu
from orchestrator.results.cost import Cost, PerfCounts

NS = 1e9


def cpu_between(
    before: Snapshot, after: Snapshot, clock_ticks: int, active_seconds: float | None = None
) -> ProcessCpu:
    """The CPU the server process used between two snapshots: its ticks (exited threads
    included) and its live threads' schedstat nanoseconds (a thread new in the second
    counts from its start)."""
    ran = sum(
        task.ran_ns - (before.tasks[tid].ran_ns if tid in before.tasks else 0)
        for tid, task in after.tasks.items()
    )
    return ProcessCpu(
        user_seconds=(after.process.utime - before.process.utime) / clock_ticks,
        system_seconds=(after.process.stime - before.process.stime) / clock_ticks,
        wall_seconds=after.monotonic - before.monotonic,
        active_seconds=active_seconds,
        schedstat_seconds=ran / NS,
    )


def cores_between(
    before: Snapshot, after: Snapshot, cpus: Sequence[int], clock_ticks: int
) -> CoreCpu:
    """What the server's pinned cores did between two snapshots."""
    return core_between(
        sum_core_ticks(before.cpus, cpus), sum_core_ticks(after.cpus, cpus), cpus, clock_ticks
    )


def nic_between(interface: str, before: Snapshot, after: Snapshot) -> NicCounters:
    """Interface counter deltas between two snapshots."""
    delta = {name: after.nic[name] - before.nic[name] for name in NIC_FIELDS}
    return NicCounters(interface=interface, **delta)


@dataclass(frozen=True)
class CellCounters:
    """What the target's counters said about the measured pass."""

    server_cpu: ProcessCpu
    server_cores: CoreCpu
    nic: NicCounters | None
    cost: Cost | None


def counters_between(
    plan: CostPlan,
    before: Snapshot,
    after: Snapshot,
    load: LoadResult,
    pid: int,
    perf: PerfCounts | None,
) -> CellCounters:
    """The counters' deltas over the measured pass, and the cell's whole cost."""
    ticks = plan.clock_ticks
    return CellCounters(
        server_cpu=cpu_between(before, after, ticks, load.duration_seconds),
        server_cores=cores_between(before, after, plan.server_cpus, ticks),
        nic=nic_between(plan.interface, before, after) if plan.interface else None,
        cost=cell_cost(before, after, plan, pid, perf),
    )
