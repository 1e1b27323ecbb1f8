"""Parsers of the kernel files a cell samples: /proc/stat, /proc/softirqs, /proc/interrupts,
/proc/net/softnet_stat, a task's stat, schedstat and status, and perf stat's CSV output.
Pure functions of text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.errors import HostError

# /proc/stat columns after the `cpuN` label, in order (guest time is inside user and nice).
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_CPU_LABEL = re.compile(r"CPU(\d+)")
_UNSUPPORTED = "<not supported>"
# perf says <not counted> for an event that never ran: the task did not run while it was
# enabled, so nothing happened to count.
_NOT_COUNTED = "<not counted>"


@dataclass(frozen=True)
class CpuTicks:
    """One CPU's /proc/stat counters at one moment, in USER_HZ ticks."""

    user: int
    nice: int
    system: int
    idle: int
    iowait: int
    irq: int
    softirq: int
    steal: int

    @property
    def busy(self) -> int:
        """user + nice + system + irq + softirq."""
        return self.user + self.nice + self.system + self.irq + self.softirq


@dataclass(frozen=True)
class IrqLine:
    """One line of /proc/interrupts: its number (or name, for NMI, LOC, ...), counts per
    CPU and the rest of the line (chip, hardware IRQ, the handlers' names)."""

    irq: str
    counts: dict[int, int]
    description: str

    @property
    def name(self) -> str:
        """The last word of the description: the handler's name for device IRQs."""
        words = self.description.split()
        return words[-1] if words else ""


@dataclass(frozen=True)
class TaskStat:
    """What a cell needs of /proc/PID/task/TID/stat: name, last CPU, CPU ticks."""

    comm: str
    processor: int
    utime: int
    stime: int


@dataclass(frozen=True)
class TaskStatus:
    """What a cell needs of /proc/PID/task/TID/status."""

    voluntary_switches: int
    involuntary_switches: int
    cpus_allowed: str


def parse_cpu_ticks(text: str) -> dict[int, CpuTicks]:
    """Every `cpuN` line of /proc/stat (not the `cpu` total), by CPU number."""
    found = {}
    for line in text.splitlines():
        label, *values = line.split() or [""]
        if not (label.startswith("cpu") and label[3:].isdigit()):
            continue
        numbers = [int(v) for v in values[: len(CPU_FIELDS)]]
        numbers += [0] * (len(CPU_FIELDS) - len(numbers))  # very old kernels: no steal
        found[int(label[3:])] = CpuTicks(**dict(zip(CPU_FIELDS, numbers, strict=True)))
    return found


def _cpu_columns(header: str) -> list[int]:
    """The CPU numbers of a per-CPU table's header line (`CPU0 CPU1 CPU4 ...`)."""
    return [int(m) for m in _CPU_LABEL.findall(header)]


def parse_softirqs(text: str) -> dict[str, dict[int, int]]:
    """/proc/softirqs as {kind (NET_RX, ...): {CPU: count}}."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return {}
    cpus = _cpu_columns(lines[0])
    table = {}
    for line in lines[1:]:
        name, _, rest = line.partition(":")
        values = [int(v) for v in rest.split()]
        table[name.strip()] = dict(zip(cpus, values, strict=False))
    return table


def parse_softnet(text: str) -> dict[int, int]:
    """/proc/net/softnet_stat as {CPU: packets its network stack received} (the first
    column, `processed`: one per packet, wherever it came from). Rows are online CPUs; the
    13th column names the CPU (kernels since 5.10), older kernels give rows in CPU order."""
    packets = {}
    for row, line in enumerate(text.splitlines()):
        words = line.split()
        if not words:
            continue
        try:
            cpu = int(words[12], 16) if len(words) > 12 else row
            packets[cpu] = int(words[0], 16)
        except ValueError:
            raise HostError(f"unreadable /proc/net/softnet_stat line: {line!r}") from None
    return packets


def parse_interrupts(text: str) -> list[IrqLine]:
    """/proc/interrupts as its lines: counts per CPU column of the header (online CPUs),
    and the description after them. Lines with one total (ERR, MIS) keep it as CPU -1."""
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines) if _CPU_LABEL.search(line)), None)
    if header is None:
        return []
    cpus = _cpu_columns(lines[header])
    parsed = []
    for line in lines[header + 1 :]:
        irq, colon, rest = line.partition(":")
        if not colon:
            continue
        words = rest.split()
        numbers = []
        for word in words:
            if not word.isdigit():
                break
            numbers.append(int(word))
        if len(numbers) >= len(cpus):
            counts = dict(zip(cpus, numbers, strict=False))
            description = " ".join(words[len(cpus) :])
        else:  # one total for all CPUs (ERR, MIS)
            counts = {-1: sum(numbers)} if numbers else {}
            description = " ".join(words[len(numbers) :])
        parsed.append(IrqLine(irq.strip(), counts, description))
    return parsed


def parse_task_stat(text: str) -> TaskStat:
    """/proc/PID/stat (or a task's): the name, the CPU it last ran on (field 39) and
    utime/stime (fields 14 and 15)."""
    # The name may hold spaces and parentheses: fields restart after the last ')'.
    open_at, close_at = text.index("("), text.rindex(")")
    fields = text[close_at + 2 :].split()
    return TaskStat(
        comm=text[open_at + 1 : close_at],
        processor=int(fields[36]),
        utime=int(fields[11]),
        stime=int(fields[12]),
    )


def parse_schedstat(text: str) -> int:
    """Nanoseconds the task has run, from /proc/PID/task/TID/schedstat's first field."""
    return int(text.split()[0])


def parse_task_status(text: str) -> TaskStatus:
    """Context switches and the allowed CPUs from /proc/PID/task/TID/status."""
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        values[key.strip()] = value.strip()
    try:
        return TaskStatus(
            voluntary_switches=int(values["voluntary_ctxt_switches"]),
            involuntary_switches=int(values["nonvoluntary_ctxt_switches"]),
            cpus_allowed=values.get("Cpus_allowed_list", ""),
        )
    except (KeyError, ValueError):
        raise HostError("a task's status lacks its context switch counts") from None


def parse_cpu_list(text: str) -> list[int]:
    """A kernel CPU list (`0-3,8,10-11`) as CPU numbers."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        cpus.extend(range(int(low), int(high or low) + 1))
    return cpus


def parse_perf_csv(text: str) -> dict[str, float | None]:
    """perf stat -x, output: {event: count}, None where perf says the event is not
    supported (a VM without a PMU has no cycles), 0 where it was never scheduled."""
    counts: dict[str, float | None] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(",")
        if len(fields) < 3:
            continue
        value, event = fields[0].strip(), fields[2].strip()
        if not event:
            continue
        if value == _UNSUPPORTED:
            counts[event] = None
            continue
        if value == _NOT_COUNTED:
            counts[event] = 0.0
            continue
        try:
            counts[event] = float(value)
        except ValueError:
            continue
    return counts
