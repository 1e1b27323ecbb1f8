"""`SystemFacts`: what decides a benchmark's numbers on one host, as the collector reads it
and run.json keeps it; `SystemWarning`: one thing about it that may move the numbers.

Pure data (pydantic only), so results/ and report/ may import it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from orchestrator.system.change_set import ChangeSet

DEEP_IDLE_LATENCY_US = 5  # deeper than C1: waking takes longer than this many µs


class _Facts(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Frequency(_Facts):
    """A CPU's cpufreq policy: driver, governor and limits (kHz)."""

    policy: str  # its directory on the host, e.g. /sys/devices/system/cpu/cpufreq/policy0
    driver: str | None = None
    governor: str | None = None
    governors: list[str] = []
    min_khz: int | None = None
    max_khz: int | None = None
    cur_khz: int | None = None
    hw_min_khz: int | None = None
    hw_max_khz: int | None = None
    epp: str | None = None  # energy_performance_preference (intel_pstate, amd-pstate-epp)
    policy_cpus: list[int] = []


class IdleState(_Facts):
    """One cpuidle state of a CPU."""

    index: int
    name: str
    latency_us: int
    disabled: bool
    path: str  # its directory on the host

    @property
    def deep(self) -> bool:
        """Deeper than C1: waking from it costs more than a few µs."""
        return self.latency_us > DEEP_IDLE_LATENCY_US


class CpuFacts(_Facts):
    """One CPU the run pins something to."""

    cpu: int
    roles: list[str]  # server, load
    online: bool
    core_id: int | None = None
    package: int | None = None
    siblings: list[int] = []  # the CPUs sharing its core (itself included)
    frequency: Frequency | None = None  # None: no cpufreq (a VM, or no driver)
    idle_states: list[IdleState] = []

    @property
    def role_label(self) -> str:
        """`server`, `load` or `server, load`."""
        return ", ".join(self.roles)

    @property
    def deep_enabled(self) -> list[IdleState]:
        """Its deep idle states that are enabled."""
        return [state for state in self.idle_states if state.deep and not state.disabled]


class Turbo(_Facts):
    """The turbo/boost switch of the host."""

    control: str  # `intel_pstate no_turbo` or `cpufreq boost`
    path: str
    enabled: bool
    off_value: str  # what to write to turn it off


class KernelConfig(_Facts):
    """The kernel's accounting options (None source: no config found)."""

    source: str | None = None
    options: dict[str, str | None] = {}

    def enabled(self, name: str) -> bool | None:
        """Whether CONFIG_<name> is y; None when the config was not found."""
        if self.source is None:
            return None
        return self.options.get(f"CONFIG_{name}") == "y"

    @property
    def hz(self) -> int | None:
        """CONFIG_HZ."""
        value = self.options.get("CONFIG_HZ")
        return int(value) if value and value.isdigit() else None

    @property
    def tick(self) -> str:
        """How the timer tick runs: `NO_HZ_FULL`, `NO_HZ_IDLE`, `periodic` or `unknown`."""
        for name in ("NO_HZ_FULL", "NO_HZ_IDLE", "HZ_PERIODIC"):
            if self.enabled(name):
                return "periodic" if name == "HZ_PERIODIC" else name
        return "unknown"


class Virtualisation(_Facts):
    """Whether the host is a virtual machine, and how that was seen."""

    virtual: bool
    hypervisor: str | None = None
    evidence: list[str] = []
    dmi: str | None = None
    clocksource: str | None = None


class Steal(_Facts):
    """CPU time the hypervisor took, since boot (/proc/stat)."""

    steal_ticks: int
    total_ticks: int

    @property
    def share(self) -> float:
        """Steal as a share of all CPU time since boot."""
        return self.steal_ticks / self.total_ticks if self.total_ticks else 0.0


class IrqLine(_Facts):
    """One interrupt line of the interface (/proc/interrupts, /proc/irq/N)."""

    irq: int
    name: str
    receive: bool  # takes received packets (rx, input, comp), by its name
    affinity: list[int]  # smp_affinity_list: where it may run
    effective: list[int] | None = None  # effective_affinity_list: where it runs
    counts: dict[str, int] = {}  # CPU -> interrupts since boot

    @property
    def ran_on(self) -> list[int]:
        """CPUs that took any of its interrupts since boot."""
        return sorted(int(cpu) for cpu, count in self.counts.items() if count > 0)


class Ethtool(_Facts):
    """What ethtool says about the interface; each part None with a reason when it could
    not tell (no ethtool, not supported)."""

    channels: dict[str, str] | None = None  # current: rx, tx, other, combined
    coalesce: dict[str, str] | None = None  # adaptive-rx, rx-usecs, rx-frames, ...
    features: dict[str, str] | None = None  # gro, tso, lro, ...
    problems: dict[str, str] = {}  # part -> why it is missing


class Network(_Facts):
    """The interface a run's traffic crosses on this host: where its receive work runs."""

    interface: str
    present: bool
    device: str | None = None
    driver: str | None = None
    irqs: list[IrqLine] = []
    rps: dict[str, list[int] | None] = {}  # rx queue -> CPUs in rps_cpus
    xps: dict[str, list[int] | None] = {}  # tx queue -> CPUs in xps_cpus
    rps_sock_flow_entries: int | None = None
    ethtool: Ethtool | None = None

    @property
    def receive_irqs(self) -> list[IrqLine]:
        """The lines that take received packets."""
        return [line for line in self.irqs if line.receive]


class SystemFacts(_Facts):
    """One host's settings that decide a benchmark's numbers."""

    euid: int
    boot_id: str
    kernel: str
    cpu_model: str
    online: list[int]
    physical_cores: int
    smt_control: str | None = None  # on, off, forceoff, notsupported, notimplemented
    smt_active: bool = False
    cpus: list[CpuFacts]
    cpufreq_driver: str | None = None
    pstate_status: str | None = None
    turbo: Turbo | None = None
    cpuidle_driver: str | None = None
    cpuidle_governor: str | None = None
    cmdline: str = ""
    isolcpus: list[int] = []
    nohz_full: list[int] = []
    rcu_nocbs: list[int] = []
    kernel_config: KernelConfig
    virtualisation: Virtualisation
    steal: Steal | None = None
    mitigations: dict[str, str] = {}
    thp: str | None = None
    swap_total_kib: int | None = None
    swap_free_kib: int | None = None
    swappiness: int | None = None
    io_uring_disabled: str | None = None
    irqbalance_pids: list[int] = []
    network: Network | None = None

    def with_role(self, role: str) -> list[CpuFacts]:
        """The CPUs pinned for `role` (server, load)."""
        return [cpu for cpu in self.cpus if role in cpu.roles]

    @property
    def irq_time_accounting(self) -> bool | None:
        """Whether interrupt time is accounted apart from tasks (None: unknown)."""
        enabled = self.kernel_config.enabled("IRQ_TIME_ACCOUNTING")
        if enabled and "tsc=noirqtime" in self.cmdline.split():
            return False
        return enabled

    @property
    def mitigation_counts(self) -> dict[str, int]:
        """How many vulnerabilities are `vulnerable`, `mitigated`, `not affected`."""
        counts = {"vulnerable": 0, "mitigated": 0, "not affected": 0}
        for status in self.mitigations.values():
            lowered = status.lower()
            if lowered.startswith("not affected"):
                counts["not affected"] += 1
            elif lowered.startswith("vulnerable"):
                counts["vulnerable"] += 1
            else:
                counts["mitigated"] += 1
        return counts


class SystemWarning(_Facts):
    """Something on a host that may move this benchmark's numbers, why, and the fix."""

    kind: str  # smt-siblings, governor, turbo, deep-idle, irqbalance, ... (see warnings.py)
    host: str
    cpu: int | None = None
    what: str
    why: str
    fix: str

    def describe(self) -> str:
        """One line: host, what, why, fix."""
        return f"{self.host}: {self.what}: {self.why}. Fix: {self.fix}"


class SystemRecord(_Facts):
    """What run.json keeps of the hosts' systems: each host once, by inventory name, the
    warnings, and the changes made for the run (each with its undo: the old values)."""

    hosts: dict[str, SystemFacts]
    warnings: list[SystemWarning] = []
    tune: bool = False  # the run asked for --tune
    changes: list[ChangeSet] = []  # applied for the run (tune, receive-work placement)
    receive_work: str = "as-is"  # where the run put the target's receive work
    not_tuned: dict[str, list[str]] = {}  # host -> what --tune could not change, in words
