"""Where two runs' systems differ: each host's facts flattened to labelled values (what
`orch compare` checks), then compared host by host. Pure (no host)."""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.system.describe import (
    cpu_list,
    ethtool_text,
    idle_text,
    smt_text,
    turbo_text,
)
from orchestrator.system.model import SystemFacts

MAX_LISTED = 20


def fingerprint(facts: SystemFacts) -> dict[str, str]:
    """The facts that decide a run's numbers, each under a label; what changes by itself
    (current clock, interrupt counts, steal so far, PIDs) is left out."""
    found = {
        "kernel": facts.kernel,
        "CPU model": facts.cpu_model,
        "CPUs online": cpu_list(facts.online),
        "SMT": smt_text(facts),
        "turbo": turbo_text(facts),
        "HZ": str(facts.kernel_config.hz),
        "tick": facts.kernel_config.tick,
        "IRQ time accounting": str(facts.irq_time_accounting),
        "virtualisation": facts.virtualisation.hypervisor or str(facts.virtualisation.virtual),
        "THP": str(facts.thp),
        "swap": "on" if facts.swap_total_kib else "off",
        "io_uring_disabled": str(facts.io_uring_disabled),
        "irqbalance": "running" if facts.irqbalance_pids else "not running",
        "isolcpus": cpu_list(facts.isolcpus),
        "nohz_full": cpu_list(facts.nohz_full),
        "rcu_nocbs": cpu_list(facts.rcu_nocbs),
    }
    for cpu in facts.cpus:
        name = f"CPU {cpu.cpu} ({cpu.role_label})"
        frequency = cpu.frequency
        found[f"{name} SMT siblings"] = cpu_list(cpu.siblings)
        found[f"{name} governor"] = (frequency.governor or "?") if frequency else "no cpufreq"
        if frequency is not None:
            found[f"{name} frequency limits"] = f"{frequency.min_khz}-{frequency.max_khz} kHz"
        found[f"{name} idle states"] = idle_text(cpu)
    for name, status in facts.mitigations.items():
        found[f"mitigation {name}"] = status
    network = facts.network
    if network is not None:
        found["interface"] = network.interface
        for line in network.irqs:
            found[f"IRQ {line.name} affinity"] = cpu_list(line.affinity)
        for queue, cpus in network.rps.items():
            found[f"RPS {queue}"] = cpu_list(cpus)
        for queue, cpus in network.xps.items():
            found[f"XPS {queue}"] = cpu_list(cpus)
        found["rps_sock_flow_entries"] = str(network.rps_sock_flow_entries)
        if network.ethtool is not None:
            found["ethtool"] = ethtool_text(network.ethtool)
    return found


def differences(a: Mapping[str, SystemFacts], b: Mapping[str, SystemFacts]) -> list[str]:
    """Each difference as `host: label: X in A, Y in B`; hosts are matched by the key the
    caller gives them (their role in the run)."""
    found = []
    for host in dict.fromkeys([*a, *b]):
        if host not in a or host not in b:
            found.append(f"{host}: only in run {'A' if host in a else 'B'}")
            continue
        first, second = fingerprint(a[host]), fingerprint(b[host])
        for label in dict.fromkeys([*first, *second]):
            before, after = first.get(label, "-"), second.get(label, "-")
            if before != after:
                found.append(f"{host}: {label}: {before} in A, {after} in B")
    if len(found) > MAX_LISTED:
        found = [*found[:MAX_LISTED], f"and {len(found) - MAX_LISTED} more"]
    return found
