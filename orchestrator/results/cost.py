"""The whole cost of a cell's requests: the server process's own CPU (nanoseconds, per
thread), every CPU of the target by kind above its idle baseline, where the network work
ran (interrupts and NET_RX/NET_TX softirqs per CPU), and the counters that say why
(context switches; syscalls, cycles and instructions from perf where it can count them)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IdleBaseline(_Model):
    """Each CPU's busy seconds per second while nothing of the benchmark ran."""

    seconds: float  # how long it was measured
    busy_per_second: dict[int, float]


class MeasurementRecord(_Model):
    """How a run's cells measure the target, as run.json keeps it."""

    counted_cpus: list[int]
    left_out_cpus: list[int] = []  # CPUs of a load tool on the target's machine
    baseline: IdleBaseline | None = None
    interface_irqs: list[str] = []  # the interface's IRQ numbers (none for lo and veth)
    perf: str = "on"  # on, off (asked), or why perf cannot count here


class ThreadCpu(_Model):
    """One thread of the server over the measured pass."""

    tid: int
    name: str
    cpu_seconds: float  # from /proc/PID/task/TID/schedstat (nanoseconds)
    ran_on: list[int]  # the CPUs it was last seen on, at either sample
    allowed: str  # its Cpus_allowed_list
    outside_pins: bool  # allowed or seen on a CPU the server was not pinned to


class ProcessCost(_Model):
    """The server process over the measured pass, every thread summed."""

    cpu_seconds: float
    voluntary_switches: int
    involuntary_switches: int
    main_tid: int
    threads: list[ThreadCpu]  # every thread seen, the main one first
    ended_threads: int = 0  # threads gone by the second sample (their last part is missing)

    @property
    def other_threads(self) -> list[ThreadCpu]:
        """Threads besides the main one (io_uring's iou-wrk-*, iou-sqp-*)."""
        return [t for t in self.threads if t.tid != self.main_tid]

    @property
    def outside_pins(self) -> list[ThreadCpu]:
        """Threads that ran, or may run, outside the server's pinned CPUs."""
        return [t for t in self.threads if t.outside_pins]


class CpuTime(_Model):
    """One CPU over the measured pass, in seconds by /proc/stat's kinds, and the busy
    time its idle baseline predicts for the same wall time."""

    cpu: int
    user: float
    nice: float
    system: float
    irq: float
    softirq: float
    steal: float
    idle: float
    iowait: float
    wall: float | None = None  # the window on the host's clock (/proc/uptime)
    baseline_busy: float = 0.0

    @property
    def ticked_busy(self) -> float:
        """user + nice + system + irq + softirq: the kinds /proc/stat charges by the tick."""
        return self.user + self.nice + self.system + self.irq + self.softirq

    @property
    def busy(self) -> float:
        """Time the CPU was not idle, waiting for I/O or stolen: the window less those.
        With NO_HZ idle the kernel measures idle time exactly but charges busy time by
        the tick, and a busy spell shorter than a tick (4 ms at HZ=250) may see none: at
        one connection the ticks gave 0.85 s where the server alone ran 0.97 s. The
        complement of idle has no such gap; without the window, the ticks."""
        if self.wall is None:
            return self.ticked_busy
        return max(0.0, self.wall - self.idle - self.iowait - self.steal)

    @property
    def busy_above_baseline(self) -> float:
        """Busy time beyond what the CPU does when nothing of the benchmark runs."""
        return self.busy - self.baseline_busy

    @property
    def interrupt_work(self) -> float:
        """irq + softirq: the interrupt and network-stack work charged to this CPU."""
        return self.irq + self.softirq


class TargetCpu(_Model):
    """Every CPU of the target that the benchmark may use, and the ones left out because a
    load tool ran on them (one machine: loopback or the lab)."""

    cpus: list[CpuTime]
    left_out: list[int] = []
    baseline_seconds: float | None = None  # how long the idle baseline was measured

    @property
    def busy_above_baseline(self) -> float:
        """Seconds of CPU the cell cost the target, beyond its idle baseline."""
        return sum(c.busy_above_baseline for c in self.cpus)

    @property
    def interrupt_work(self) -> float:
        """irq + softirq seconds on the counted CPUs."""
        return sum(c.interrupt_work for c in self.cpus)

    def interrupt_cpus(self, share: float = 0.05) -> list[int]:
        """The counted CPUs that did at least `share` of the irq + softirq work."""
        total = self.interrupt_work
        if total <= 0:
            return []
        return [c.cpu for c in self.cpus if c.interrupt_work / total >= share]


class NetworkWork(_Model):
    """Where the target's network work ran: per-CPU counts over the measured pass."""

    interface: str
    irq_lines: list[str]  # the interface's interrupt lines (none for lo and veth)
    interrupts: dict[int, int]  # CPU -> interrupts of those lines
    net_rx: dict[int, int]  # CPU -> NET_RX softirqs
    net_tx: dict[int, int]  # CPU -> NET_TX softirqs
    # CPU -> packets its network stack received (/proc/net/softnet_stat): one per packet,
    # where NET_RX is one per softirq run, and RPS raises NET_RX on the CPU that hands
    # packets on as well as on the one that receives them. None: not read (older runs).
    received: dict[int, int] | None = None

    def receive_share(self, cpus: Iterable[int]) -> float | None:
        """The share of NET_RX softirqs that ran on `cpus` (None: there were none)."""
        total = sum(self.net_rx.values())
        if total == 0:
            return None
        wanted = set(cpus)
        return sum(n for cpu, n in self.net_rx.items() if cpu in wanted) / total

    def busiest_receive_cpu(self) -> tuple[int, float] | None:
        """The CPU that ran the most NET_RX softirqs and its share of them."""
        total = sum(self.net_rx.values())
        if total == 0:
            return None
        cpu = max(self.net_rx, key=lambda c: (self.net_rx[c], -c))
        return cpu, self.net_rx[cpu] / total


class PerfCounts(_Model):
    """perf stat's counts on the server over the warm-up pass (not the measured one:
    counting syscalls forces every syscall through the traced slow path, which cost
    c-epoll about 10% more CPU per request on this project's VM), and that pass's requests.
    A counter the machine cannot count is None, never 0."""

    counters: dict[str, float | None]  # perf event -> count (None: not supported)
    requests: int  # requests the load tool counted in that pass
    note: str = ""  # why nothing was counted, when nothing was

    def per_request(self, event: str) -> float | None:
        """The event's count per request (None: unsupported or no requests)."""
        value = self.counters.get(event)
        if value is None or self.requests <= 0:
            return None
        return value / self.requests


SYSCALLS = "raw_syscalls:sys_enter"
CYCLES = "cycles"
INSTRUCTIONS = "instructions"
PERF_EVENTS: Sequence[str] = (SYSCALLS, CYCLES, INSTRUCTIONS)


class Cost(_Model):
    """Everything a cell measured about what its requests cost the target."""

    process: ProcessCost
    target: TargetCpu | None = None
    network: NetworkWork | None = None
    perf: PerfCounts | None = None
