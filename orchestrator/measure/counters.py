"""Counters sampled around the load: server and core CPU time (/proc), NIC packets (/sys)."""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import HostError
from orchestrator.hosts.base import Host
from orchestrator.measure.cores import CoreTicks, parse_core_ticks
from orchestrator.results.cell_result import NicCounters, ProcessCpu

NIC_FIELDS = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes")


@dataclass(frozen=True)
class Sample:
    """Server CPU ticks, its cores' ticks and NIC counters read at one moment on the target."""

    monotonic: float
    utime_ticks: int
    stime_ticks: int
    cores: CoreTicks
    nic: dict[str, int]


def parse_proc_stat(text: str) -> tuple[int, int]:
    """(utime, stime) in clock ticks from /proc/PID/stat (fields 14 and 15)."""
    # The command name may hold spaces and parentheses; fields restart after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]), int(fields[12])


def sample(host: Host, pid: int, cpus: Sequence[int], interface: str | None) -> Sample:
    """Read the server's CPU ticks, its pinned cores' ticks and the interface counters.

    One command, so a remote target costs one round trip and all counters share a moment.
    """
    parts = [f"cat /proc/{pid}/stat", "grep '^cpu[0-9]' /proc/stat"]
    if interface:
        base = f"/sys/class/net/{shlex.quote(interface)}/statistics"
        parts += [f"cat {base}/{name}" for name in NIC_FIELDS]
    out = host.run(["sh", "-c", " && ".join(parts)], timeout=30, check=False)
    if not out.ok:
        raise HostError(
            f"{host.describe()}: cannot read counters of PID {pid}"
            + (f" / interface {interface}" if interface else "")
            + f": {out.stderr.strip() or 'process gone'}"
        )
    first, *rest = out.stdout.splitlines()
    utime, stime = parse_proc_stat(first)
    core_lines = [line for line in rest if line.startswith("cpu")]
    nic_lines = [line for line in rest if not line.startswith("cpu")]
    cores = parse_core_ticks("\n".join(core_lines), cpus)
    nic = {name: int(value) for name, value in zip(NIC_FIELDS, nic_lines, strict=False)}
    return Sample(time.monotonic(), utime, stime, cores, nic)


def cpu_between(before: Sample, after: Sample, clock_ticks: int) -> ProcessCpu:
    """The CPU the process used between two samples."""
    return ProcessCpu(
        user_seconds=(after.utime_ticks - before.utime_ticks) / clock_ticks,
        system_seconds=(after.stime_ticks - before.stime_ticks) / clock_ticks,
        wall_seconds=after.monotonic - before.monotonic,
    )


def nic_between(interface: str, before: Sample, after: Sample) -> NicCounters:
    """Interface counter deltas between two samples."""
    delta = {name: after.nic[name] - before.nic[name] for name in NIC_FIELDS}
    return NicCounters(interface=interface, **delta)


def detect_interface(host: Host, peer_address: str) -> str | None:
    """The interface the host routes `peer_address` through (`lo` for loopback)."""
    out = host.run(["ip", "-o", "route", "get", peer_address], timeout=30, check=False)
    match = re.search(r"\bdev (\S+)", out.stdout)
    return match[1] if out.ok and match else None
