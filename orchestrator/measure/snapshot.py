"""One reading of everything a cell samples on the target, in one command (a remote target
costs one round trip and every counter shares a moment): the server's threads (stat,
schedstat, status), every CPU's /proc/stat line, /proc/softirqs, the packets each CPU's
network stack received (/proc/net/softnet_stat), the interface's lines of /proc/interrupts
and its packet counters."""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.errors import HostError
from orchestrator.hosts.base import Host
from orchestrator.measure.proc_files import (
    CpuTicks,
    IrqLine,
    TaskStat,
    TaskStatus,
    parse_cpu_ticks,
    parse_interrupts,
    parse_schedstat,
    parse_softirqs,
    parse_softnet,
    parse_task_stat,
    parse_task_status,
)

NIC_FIELDS = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes")
_MARK = "@orch:"


@dataclass(frozen=True)
class TaskSample:
    """One thread of the server at one moment."""

    stat: TaskStat
    ran_ns: int
    status: TaskStatus


@dataclass(frozen=True)
class Snapshot:
    """The target at one moment, as one command read it."""

    monotonic: float
    uptime: float | None  # the host's own clock (/proc/uptime) when the CPUs were read
    process: TaskStat  # /proc/PID/stat: the whole process, exited threads included
    tasks: dict[int, TaskSample]
    cpus: dict[int, CpuTicks]
    softirqs: dict[str, dict[int, int]]
    irqs: list[IrqLine] = field(default_factory=list)
    nic: dict[str, int] = field(default_factory=dict)
    received: dict[int, int] = field(default_factory=dict)  # CPU -> packets (softnet_stat)


@dataclass(frozen=True)
class SnapshotPlan:
    """What to read: the server's PID, the interface (if any) and its IRQ numbers."""

    pid: int
    interface: str | None = None
    irq_numbers: Sequence[str] = ()


def snapshot_script(plan: SnapshotPlan) -> str:
    """The shell script that prints one snapshot, section by section."""
    pid = plan.pid
    parts = [
        f'[ -d /proc/{pid}/task ] || {{ echo "process {pid} is gone" >&2; exit 3; }}',
        f"echo {_MARK}process; cat /proc/{pid}/stat",
        # A thread may end between the listing and the read: skip it, do not fail.
        f"for t in /proc/{pid}/task/*; do "
        f'{{ s=$(cat "$t/stat" "$t/schedstat" "$t/status") && '
        f'echo "{_MARK}task ${{t##*/}}" && echo "$s"; }} 2>/dev/null; done',
        f"echo {_MARK}cpus; cat /proc/uptime; grep '^cpu[0-9]' /proc/stat",
        f"echo {_MARK}softirqs; cat /proc/softirqs",
        f"echo {_MARK}softnet; cat /proc/net/softnet_stat 2>/dev/null",
    ]
    if plan.irq_numbers:
        wanted = "|".join(plan.irq_numbers)
        parts.append(
            f"echo {_MARK}interrupts; awk 'NR == 1 || $1 ~ /^({wanted}):$/' /proc/interrupts"
        )
    if plan.interface:
        base = f"/sys/class/net/{shlex.quote(plan.interface)}/statistics"
        names = " ".join(f"{base}/{name}" for name in NIC_FIELDS)
        parts.append(f"echo {_MARK}nic; cat {names}")
    return "\n".join(parts)


def _sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(_MARK):
            current = sections.setdefault(line[len(_MARK) :], [])
        elif current is not None:
            current.append(line)
    return sections


def _task(lines: list[str]) -> TaskSample:
    """A task's three files, printed one after another: stat (one line), schedstat (one
    line), status (the rest)."""
    return TaskSample(
        stat=parse_task_stat(lines[0]),
        ran_ns=parse_schedstat(lines[1]),
        status=parse_task_status("\n".join(lines[2:])),
    )


def parse_snapshot(text: str, monotonic: float) -> Snapshot:
    """A snapshot from the script's output; HostError when a section is missing."""
    sections = _sections(text)
    for needed in ("process", "cpus", "softirqs"):
        if not sections.get(needed):
            raise HostError(f"the counters' output has no {needed} section")
    tasks = {}
    for name, lines in sections.items():
        if name.startswith("task ") and len(lines) >= 3:
            tasks[int(name.split()[1])] = _task(lines)
    nic_lines = sections.get("nic", [])
    cpu_lines = sections["cpus"]
    uptime = None
    if cpu_lines and not cpu_lines[0].startswith("cpu"):
        uptime = float(cpu_lines[0].split()[0])
    return Snapshot(
        monotonic=monotonic,
        uptime=uptime,
        process=parse_task_stat(sections["process"][0]),
        tasks=tasks,
        cpus=parse_cpu_ticks("\n".join(cpu_lines)),
        softirqs=parse_softirqs("\n".join(sections["softirqs"])),
        irqs=parse_interrupts("\n".join(sections.get("interrupts", []))),
        nic={name: int(v) for name, v in zip(NIC_FIELDS, nic_lines, strict=False)},
        received=parse_softnet("\n".join(sections.get("softnet", []))),
    )


def take_snapshot(host: Host, plan: SnapshotPlan) -> Snapshot:
    """Read the target once; HostError (naming the PID) when the server is gone."""
    out = host.run(["sh", "-c", snapshot_script(plan)], timeout=30, check=False)
    # The moment the counters were read: between the command's start and end, nearer the
    # start for a remote host (the round trip back is in the end time).
    now = time.monotonic()
    if not out.ok:
        where = f" / interface {plan.interface}" if plan.interface else ""
        raise HostError(
            f"{host.describe()}: cannot read counters of PID {plan.pid}{where}: "
            f"{out.stderr.strip() or 'process gone'}"
        )
    return parse_snapshot(out.stdout, now)
