"""What one cell measured: the server's and its core's CPU, the load tool's result and
CPU, the NIC counters, and how the cell ended."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from orchestrator.load.result import LoadResult
from orchestrator.results.cost import CYCLES, INSTRUCTIONS, Cost
from orchestrator.results.saturation import is_load_bound

CellStatus = Literal["ok", "failed", "skipped"]
TICK_SLACK_SECONDS = 0.02


class ProcessCpu(BaseModel):
    """CPU time one process used over an interval: utime and stime from /proc/PID/stat
    (clock ticks) and, where recorded, its threads' schedstat nanoseconds."""

    model_config = ConfigDict(extra="forbid")

    user_seconds: float
    system_seconds: float
    wall_seconds: float
    # The load tool's own measured run time inside the interval: the server can only be
    # busy then, while the interval also holds the tool's start-up and exit.
    active_seconds: float | None = None
    schedstat_seconds: float | None = None  # None: recorded before orch read schedstat

    @property
    def tick_seconds(self) -> float:
        """user + system, in whole clock ticks (4 ms at HZ=250)."""
        return self.user_seconds + self.system_seconds

    @property
    def cpu_seconds(self) -> float:
        """The precise figure (schedstat) when recorded, else user + system."""
        if self.schedstat_seconds is not None:
            return self.schedstat_seconds
        return self.tick_seconds

    @property
    def busy_window_seconds(self) -> float:
        """The time the utilisation is taken over: the load's run time when known."""
        if self.active_seconds is not None and 0 < self.active_seconds < self.wall_seconds:
            return self.active_seconds
        return self.wall_seconds

    @property
    def utilisation(self) -> float:
        """Share of one core used while the load ran (1.0 = a full core)."""
        window = self.busy_window_seconds
        return self.cpu_seconds / window if window > 0 else 0.0


class LoadCpu(BaseModel):
    """CPU time the load tool used over its run, against the cores it was pinned to."""

    model_config = ConfigDict(extra="forbid")

    cpu_seconds: float
    wall_seconds: float
    cpus: int

    @property
    def share(self) -> float:
        """Share of its pinned cores the load tool used (1.0 = all of them, all the time)."""
        capacity = self.wall_seconds * max(1, self.cpus)
        return self.cpu_seconds / capacity if capacity > 0 else 0.0


class CoreCpu(BaseModel):
    """What the server's pinned cores did over the measured pass (all processes, /proc/stat)."""

    model_config = ConfigDict(extra="forbid")

    cpus: list[int]
    busy_seconds: float  # user, nice, system, irq and softirq
    softirq_seconds: float
    idle_seconds: float  # idle and iowait
    steal_seconds: float

    def _capacity(self, window_seconds: float | None) -> float:
        total = self.busy_seconds + self.idle_seconds + self.steal_seconds
        if window_seconds is not None and window_seconds > 0:
            total = min(total, window_seconds * max(1, len(self.cpus)))
        return total

    def busy_share(self, window_seconds: float | None = None) -> float:
        """Share of the cores' time they were busy (1.0 = never idle), over the whole
        interval or over `window_seconds` (the load's run time) when given."""
        total = self._capacity(window_seconds)
        return min(1.0, self.busy_seconds / total) if total > 0 else 0.0

    def softirq_share(self, window_seconds: float | None = None) -> float:
        """Share of the cores' time spent in softirq context (network stack work)."""
        total = self._capacity(window_seconds)
        return min(1.0, self.softirq_seconds / total) if total > 0 else 0.0


class NicCounters(BaseModel):
    """Packet and byte counters of one interface over an interval."""

    model_config = ConfigDict(extra="forbid")

    interface: str
    rx_packets: int
    tx_packets: int
    rx_bytes: int
    tx_bytes: int


class CellKey(BaseModel):
    """Which cell: a server at a load point, at one repetition (1-based)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    server: str
    point: str  # the load point's key, e.g. `c100`
    repetition: int

    def __str__(self) -> str:
        return f"{self.server}/{self.point}/{self.repetition}"

    def label(self, with_point: bool = True) -> str:
        """`server/point/repetition`, or `server/repetition` in a run of one load point."""
        return str(self) if with_point else f"{self.server}/{self.repetition}"


class CellResult(BaseModel):
    """One server measured once at one load point: what happened and what was measured."""

    model_config = ConfigDict(extra="forbid")

    server: str
    api: str
    language: str
    point: str = ""  # the load point's key; orch 0.1.0 had one point and no such field
    repetition: int
    status: CellStatus  # skipped: its server failed verify
    error: str | None = None
    started_at: str
    finished_at: str
    load: LoadResult | None = None  # all load hosts together
    load_by_host: list[LoadResult] = []  # each load host's own, when there are several
    server_cpu: ProcessCpu | None = None
    server_cores: CoreCpu | None = None
    load_cpu: LoadCpu | None = None
    nic: NicCounters | None = None
    server_exit_status: int | None = None  # negative: killed by that signal
    server_log_tail: str | None = None  # the end of the server's log when it failed
    warmup_seconds: float | None = None  # unmeasured load before the measured pass
    server_startup: str | None = None  # the line the server printed about itself at start
    cost: Cost | None = None  # the whole cost of its requests (None: recorded before it was)

    @property
    def key(self) -> CellKey:
        """Which cell this is."""
        return CellKey(server=self.server, point=self.point, repetition=self.repetition)

    @property
    def failed_requests(self) -> int:
        """Requests the load tool counted as failed (0 when it has no result)."""
        return self.load.failed_requests if self.load is not None else 0

    @property
    def core_busy(self) -> float | None:
        """The share of the measured pass the server's pinned core was not idle."""
        if self.server_cores is None:
            return None
        window = self.server_cpu.busy_window_seconds if self.server_cpu else None
        return self.server_cores.busy_share(window)

    @property
    def server_load(self) -> float | None:
        """How busy the server's pinned core was: its non-idle share, network softirq work
        included, else the server process's own CPU share when core counters are missing.

        Not "process share + softirq share": without IRQ time accounting (Debian's and this
        machine's kernels) softirq ticks are charged to the interrupted process as well, so
        that sum counted them twice and called idle cores saturated. Idle time on the
        server's core is what proves the server waited for the load tool.
        """
        if self.server_cpu is None:
            return None
        if self.server_cores is None:
            return self.server_cpu.utilisation
        return self.server_cores.busy_share(self.server_cpu.busy_window_seconds)

    @property
    def load_bound(self) -> bool:
        """True when the server's core sat idle: the load tool, not the server, set Req/s."""
        load = self.server_load
        return load is not None and is_load_bound(load)

    @property
    def requests_per_second(self) -> float | None:
        """The load tool's Req/s (None without a load result)."""
        return None if self.load is None else self.load.requests_per_second

    @property
    def requests_per_cpu_second(self) -> float | None:
        """Requests served per second of server CPU: meaningful even when load-bound."""
        if self.load is None or self.server_cpu is None or self.server_cpu.cpu_seconds <= 0:
            return None
        return self.load.requests / self.server_cpu.cpu_seconds

    @property
    def cpu_us_per_request(self) -> float | None:
        """Server CPU microseconds per request served (its own CPU time, not the core's)."""
        if self.load is None or self.server_cpu is None or self.load.requests <= 0:
            return None
        return self.server_cpu.cpu_seconds / self.load.requests * 1e6

    def _per_request(self, value: float | None, scale: float = 1.0) -> float | None:
        if value is None or self.load is None or self.load.requests <= 0:
            return None
        return value / self.load.requests * scale

    @property
    def target_cpu_us_per_request(self) -> float | None:
        """CPU microseconds the target spent per request above its idle baseline, on every
        counted CPU: the server, its interrupts and softirqs, whatever woke for it."""
        target = self.cost.target if self.cost is not None else None
        return self._per_request(target.busy_above_baseline if target else None, 1e6)

    @property
    def target_cpu_plausible(self) -> bool:
        """Whether the target figure is at least the server's own CPU (it runs on counted
        CPUs, so the target's busy time holds it): below it, the idle baseline was higher
        than the background during the cell, i.e. other work on the machine changed."""
        if self.cost is None or self.cost.target is None:
            return False
        target = self.cost.target
        # /proc/stat counts in 10 ms ticks: two per counted CPU of slack.
        slack = TICK_SLACK_SECONDS * max(1, len(target.cpus))
        return target.busy_above_baseline + slack >= self.cost.process.cpu_seconds

    @property
    def interrupt_us_per_request(self) -> float | None:
        """irq + softirq microseconds per request on the target's counted CPUs."""
        target = self.cost.target if self.cost is not None else None
        return self._per_request(target.interrupt_work if target else None, 1e6)

    @property
    def context_switches_per_request(self) -> float | None:
        """The server's voluntary and involuntary context switches per request."""
        if self.cost is None:
            return None
        process = self.cost.process
        return self._per_request(process.voluntary_switches + process.involuntary_switches)

    def perf_per_request(self, event: str) -> float | None:
        """A perf event's count per request over the warm-up pass (None: not counted)."""
        perf = self.cost.perf if self.cost is not None else None
        return perf.per_request(event) if perf is not None else None

    @property
    def instructions_per_cycle(self) -> float | None:
        """IPC over the warm-up pass, where the CPU has a PMU."""
        cycles = self.perf_per_request(CYCLES)
        instructions = self.perf_per_request(INSTRUCTIONS)
        if cycles is None or instructions is None or cycles <= 0:
            return None
        return instructions / cycles

    @property
    def load_requests_per_cpu_second(self) -> float | None:
        """Requests per second of the load tool's own CPU in the measured pass."""
        load = self.load
        if load is None or not load.cpu_seconds or load.requests <= 0:
            return None
        return load.requests / load.cpu_seconds

    @property
    def nic_packets_per_request(self) -> float | None:
        """Packets both ways on the target's interface per request."""
        if self.nic is None or self.load is None or self.load.requests == 0:
            return None
        return (self.nic.rx_packets + self.nic.tx_packets) / self.load.requests


def utc_now() -> str:
    """Now as an ISO 8601 UTC timestamp."""
    return datetime.now(UTC).isoformat(timespec="seconds")
