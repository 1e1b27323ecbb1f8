"""What `orch system tune` wishes on a machine (governor performance on the pinned CPUs,
turbo off, deep idle states off on the server's CPUs, irqbalance stopped), and what it
leaves alone because the machine does not have it.

It never touches interrupt affinity or RPS: where network receive work runs is the run's
placement option's to decide.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.system.changes import FileWish, ServiceWish, Wish
from orchestrator.system.warning_rules import Machine

PERFORMANCE = "performance"


@dataclass
class TuneWishes:
    """The wishes for one machine, and the settings it does not have (in words)."""

    wishes: list[Wish] = field(default_factory=list)
    not_here: list[str] = field(default_factory=list)


def _cpus(cpus: list[int]) -> str:
    return ("CPU " if len(cpus) == 1 else "CPUs ") + ",".join(str(cpu) for cpu in cpus)


def tune_wishes(machine: Machine) -> TuneWishes:
    """The tune of `machine`'s pinned CPUs (with every entry's roles)."""
    out = TuneWishes()
    pinned = sorted(machine.cpus.values(), key=lambda cpu: cpu.cpu)
    no_cpufreq = [cpu.cpu for cpu in pinned if cpu.frequency is None]
    if no_cpufreq:
        out.not_here.append(
            f"governor of {_cpus(no_cpufreq)}: no cpufreq here (the hypervisor or firmware "
            "sets the clock)"
        )
    policies: dict[str, list[int]] = {}
    for cpu in pinned:
        frequency = cpu.frequency
        if frequency is None:
            continue
        if frequency.governors and PERFORMANCE not in frequency.governors:
            out.not_here.append(
                f"governor of CPU {cpu.cpu}: no performance governor (has "
                f"{', '.join(frequency.governors)})"
            )
            continue
        policies.setdefault(frequency.policy, []).append(cpu.cpu)
    for policy, cpus in policies.items():
        out.wishes.append(
            FileWish(f"{policy}/scaling_governor", PERFORMANCE, f"governor of {_cpus(cpus)}")
        )
    turbo = machine.facts.turbo
    if turbo is None:
        out.not_here.append("turbo/boost: no intel_pstate/no_turbo or cpufreq/boost here")
    else:
        out.wishes.append(FileWish(turbo.path, turbo.off_value, f"turbo ({turbo.control})"))
    for cpu in machine.role("server"):
        if not cpu.idle_states:
            driver = machine.facts.cpuidle_driver or "none"
            out.not_here.append(
                f"idle states of CPU {cpu.cpu} (server): none here (cpuidle driver {driver})"
            )
        for state in cpu.idle_states:
            if state.deep:
                what = f"idle state {state.name} of CPU {cpu.cpu}"
                out.wishes.append(FileWish(f"{state.path}/disable", "1", what))
    if machine.facts.irqbalance_pids:
        out.wishes.append(ServiceWish("irqbalance", "stop", "irqbalance"))
    else:
        out.not_here.append("irqbalance: not running")
    return out
