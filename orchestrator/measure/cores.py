"""How busy the server's pinned cores were, from the target's /proc/stat.

The busy share of the server's pinned core is what shows saturation: idle time there means
the server waited for requests. The process's own CPU time (/proc/PID/stat) may or may
not include the softirq network work done on its core (it does without IRQ time
accounting, as on Debian's kernels); the core's counters always do, together with any
other process that ran there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import HostError
from orchestrator.results.cell_result import CoreCpu

# /proc/stat columns after the `cpuN` label, in order.
_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass(frozen=True)
class CoreTicks:
    """Summed /proc/stat tick counters of some CPUs at one moment."""

    busy: int  # user + nice + system + irq + softirq
    softirq: int
    idle: int  # idle + iowait: nothing ran
    steal: int  # taken by the hypervisor


def parse_core_ticks(text: str, cpus: Sequence[int]) -> CoreTicks:
    """Sum the counters of `cpus` from the text of /proc/stat."""
    wanted = {f"cpu{cpu}" for cpu in cpus}
    totals = dict.fromkeys(_FIELDS, 0)
    found = set()
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] in wanted:
            found.add(parts[0])
            for name, value in zip(_FIELDS, parts[1:], strict=False):
                totals[name] += int(value)
    if found != wanted:
        missing = ", ".join(sorted(wanted - found))
        raise HostError(f"/proc/stat has no line for {missing}")
    busy = sum(totals[n] for n in ("user", "nice", "system", "irq", "softirq"))
    return CoreTicks(busy, totals["softirq"], totals["idle"] + totals["iowait"], totals["steal"])


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
