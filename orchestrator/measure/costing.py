"""A cell's cost from two snapshots of the target taken around its measured pass."""

from __future__ import annotations

from orchestrator.measure.cost_plan import CostPlan
from orchestrator.measure.proc_files import CPU_FIELDS, parse_cpu_list
from orchestrator.measure.snapshot import Snapshot
from orchestrator.results.cost import (
    Cost,
    CpuTime,
    NetworkWork,
    PerfCounts,
    ProcessCost,
    TargetCpu,
    ThreadCpu,
)

NS = 1e9


def process_cost(before: Snapshot, after: Snapshot, main_tid: int, pins: list[int]) -> ProcessCost:
    """The server's threads between the snapshots: CPU from schedstat (a thread new in the
    second counts from its start), context switches, where each ran and may run."""
    threads, voluntary, involuntary = [], 0, 0
    allowed_pins = set(pins)
    for tid, task in sorted(after.tasks.items(), key=lambda item: (item[0] != main_tid, item[0])):
        old = before.tasks.get(tid)
        ran = task.ran_ns - (old.ran_ns if old else 0)
        voluntary += task.status.voluntary_switches - (old.status.voluntary_switches if old else 0)
        involuntary += task.status.involuntary_switches - (
            old.status.involuntary_switches if old else 0
        )
        ran_on = sorted({task.stat.processor, *([old.stat.processor] if old else [])})
        allowed = parse_cpu_list(task.status.cpus_allowed)
        outside = bool((set(allowed) | set(ran_on)) - allowed_pins) if allowed_pins else False
        threads.append(
            ThreadCpu(
                tid=tid,
                name=task.stat.comm,
                cpu_seconds=ran / NS,
                ran_on=ran_on,
                allowed=task.status.cpus_allowed,
                outside_pins=outside,
            )
        )
    return ProcessCost(
        cpu_seconds=sum(t.cpu_seconds for t in threads),
        voluntary_switches=voluntary,
        involuntary_switches=involuntary,
        main_tid=main_tid,
        threads=threads,
        ended_threads=len(before.tasks.keys() - after.tasks.keys()),
    )


def target_cpu(before: Snapshot, after: Snapshot, plan: CostPlan) -> TargetCpu:
    """Every counted CPU's time by kind between the snapshots, with its baseline."""
    # The host's own clock when it has one (a remote host's round trips are not in it).
    if before.uptime is not None and after.uptime is not None:
        wall = after.uptime - before.uptime
    else:
        wall = after.monotonic - before.monotonic
    baseline = plan.record.baseline
    cpus = []
    for cpu in plan.record.counted_cpus:
        if cpu not in before.cpus or cpu not in after.cpus:
            continue  # offline now
        old, new = before.cpus[cpu], after.cpus[cpu]
        seconds = {
            name: (getattr(new, name) - getattr(old, name)) / plan.clock_ticks
            for name in CPU_FIELDS
        }
        rate = baseline.busy_per_second.get(cpu, 0.0) if baseline else 0.0
        cpus.append(CpuTime(cpu=cpu, **seconds, wall=wall, baseline_busy=rate * wall))
    return TargetCpu(
        cpus=cpus,
        left_out=plan.record.left_out_cpus,
        baseline_seconds=baseline.seconds if baseline else None,
    )


def _delta(before: dict[int, int], after: dict[int, int]) -> dict[int, int]:
    return {cpu: after[cpu] - before.get(cpu, 0) for cpu in sorted(after)}


def _delta_32(before: dict[int, int], after: dict[int, int]) -> dict[int, int]:
    """Deltas of counters the kernel keeps in 32 bits (they wrap)."""
    return {cpu: (after[cpu] - before.get(cpu, 0)) % 2**32 for cpu in sorted(after)}


def network_work(before: Snapshot, after: Snapshot, interface: str) -> NetworkWork:
    """Interrupts of the interface's lines, NET_RX/NET_TX softirqs and packets received,
    per CPU."""
    interrupts: dict[int, int] = {}
    old_lines = {line.irq: line for line in before.irqs}
    for line in after.irqs:
        old = old_lines.get(line.irq)
        for cpu, count in line.counts.items():
            if cpu < 0:
                continue
            interrupts[cpu] = (
                interrupts.get(cpu, 0) + count - (old.counts.get(cpu, 0) if old else 0)
            )
    empty: dict[int, int] = {}
    return NetworkWork(
        interface=interface,
        irq_lines=[line.name for line in after.irqs],
        interrupts=dict(sorted(interrupts.items())),
        net_rx=_delta(before.softirqs.get("NET_RX", empty), after.softirqs.get("NET_RX", empty)),
        net_tx=_delta(before.softirqs.get("NET_TX", empty), after.softirqs.get("NET_TX", empty)),
        received=_delta_32(before.received, after.received) if after.received else None,
    )


def cell_cost(
    before: Snapshot, after: Snapshot, plan: CostPlan, main_tid: int, perf: PerfCounts | None
) -> Cost:
    """Everything the cell measured about what its requests cost the target."""
    return Cost(
        process=process_cost(before, after, main_tid, plan.server_cpus),
        target=target_cpu(before, after, plan),
        network=network_work(before, after, plan.interface) if plan.interface else None,
        perf=perf,
    )
