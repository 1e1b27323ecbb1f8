"""How busy the server's pinned cores were, from the target's /proc/stat.

The busy share of the server's pinned core is what shows saturation: idle time there means
the server waited for requests. The process's own CPU time (/proc/PID/stat) may or may
not include the softirq network work done on its core (it does without IRQ time
accounting, as on Debian's kernels); the core's counters always do, together with any
other process that ran there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrator.errors import HostError
from orchestrator.measure.proc_files import CpuTicks, parse_cpu_ticks
from orchestrator.results.cell_result import CoreCpu


@dataclass(frozen=True)
class CoreTicks:
    """Summed /proc/stat tick counters of some CPUs at one moment."""

    busy: int  # user + nice + system + irq + softirq
    softirq: int
    idle: int  # idle + iowait: nothing ran
    steal: int  # taken by the hypervisor


def sum_core_ticks(per_cpu: Mapping[int, CpuTicks], cpus: Sequence[int]) -> CoreTicks:
    """The counters of `cpus` summed; HostError naming a CPU /proc/stat lacks."""
    missing = [f"cpu{cpu}" for cpu in cpus if cpu not in per_cpu]
    if missing:
        raise HostError(f"/proc/stat has no line for {', '.join(sorted(missing))}")
    chosen = [per_cpu[cpu] for cpu in cpus]
    return CoreTicks(
        busy=sum(c.busy for c in chosen),
        softirq=sum(c.softirq for c in chosen),
        idle=sum(c.idle + c.iowait for c in chosen),
        steal=sum(c.steal for c in chosen),
    )


def parse_core_ticks(text: str, cpus: Sequence[int]) -> CoreTicks:
    """Sum the counters of `cpus` from the text of /proc/stat."""
    return sum_core_ticks(parse_cpu_ticks(text), cpus)


def core_between(
    before: CoreTicks, after: CoreTicks, cpus: Sequence[int], clock_ticks: int
) -> CoreCpu:
    """What the cores did between two readings, in seconds."""
    return CoreCpu(
        cpus=list(cpus),
        busy_seconds=(after.busy - before.busy) / clock_ticks,
        softirq_seconds=(after.softirq - before.softirq) / clock_ticks,
        idle_seconds=(after.idle - before.idle) / clock_ticks,
        steal_seconds=(after.steal - before.steal) / clock_ticks,
    )
