"""What a run's cells measure of the target, fixed when the run starts: which CPUs count
(every CPU of the target, less those a load tool uses on the same machine), each CPU's
idle baseline, the interface and its interrupt lines, and whether perf counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import HostError
from orchestrator.hosts.base import Host
from orchestrator.measure.interface import find_interface_irqs
from orchestrator.measure.perf_stat import perf_available
from orchestrator.measure.proc_files import parse_cpu_ticks
from orchestrator.results.cost import IdleBaseline, MeasurementRecord

BASELINE_SECONDS = 1.0


@dataclass(frozen=True)
class CostPlan:
    """What every cell of the run needs to cost its requests."""

    record: MeasurementRecord
    server_cpus: list[int]
    clock_ticks: int  # USER_HZ: /proc/stat's unit
    interface: str | None

    @property
    def perf_on(self) -> bool:
        """Whether perf counts over each cell's warm-up."""
        return self.record.perf == "on"


def measure_idle_baseline(host: Host, seconds: float, clock_ticks: int) -> IdleBaseline:
    """Each CPU's busy time per second over `seconds` of quiet: the window less its idle,
    iowait and steal time (CpuTime.busy says why not the ticked kinds), from two readings
    of /proc/uptime and /proc/stat taken on the host."""
    read = "cat /proc/uptime; grep '^cpu[0-9]' /proc/stat"
    out = host.run(["sh", "-c", f"{read}; echo @; sleep {seconds:g}; {read}"], timeout=seconds + 30)
    before_text, _, after_text = out.stdout.partition("@")
    before, after = parse_cpu_ticks(before_text), parse_cpu_ticks(after_text)
    try:
        wall = float(after_text.split()[0]) - float(before_text.split()[0])
    except (ValueError, IndexError):
        wall = 0.0
    if not before or before.keys() != after.keys() or wall <= 0:
        raise HostError(f"{host.describe()}: cannot read /proc/stat for the idle baseline")

    def busy(cpu: int) -> float:
        old, new = before[cpu], after[cpu]
        quiet = (new.idle - old.idle) + (new.iowait - old.iowait) + (new.steal - old.steal)
        return max(0.0, wall - quiet / clock_ticks) / wall

    return IdleBaseline(seconds=wall, busy_per_second={cpu: busy(cpu) for cpu in before})


def plan_costs(
    target: Host,
    server_cpus: Sequence[int],
    left_out: Sequence[int],
    interface: str | None,
    clock_ticks: int,
    perf: bool,
    baseline_seconds: float = BASELINE_SECONDS,
) -> CostPlan:
    """Measure the idle baseline and find what each cell will read."""
    baseline = measure_idle_baseline(target, baseline_seconds, clock_ticks)
    counted = sorted(cpu for cpu in baseline.busy_per_second if cpu not in set(left_out))
    why_not = perf_available(target) if perf else None
    record = MeasurementRecord(
        counted_cpus=counted,
        left_out_cpus=sorted(set(left_out) & baseline.busy_per_second.keys()),
        baseline=baseline,
        interface_irqs=find_interface_irqs(target, interface) if interface else [],
        perf="off" if not perf else (why_not or "on"),
    )
    return CostPlan(record, list(server_cpus), clock_ticks, interface)
