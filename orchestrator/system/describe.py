"""SystemFacts in words: the detailed lines `orch system` prints and the one or two lines
per host a report's System Specs gives. Pure text (no host), so report/ may use it."""

from __future__ import annotations

from orchestrator.system.model import CpuFacts, Ethtool, Network, SystemFacts

FEATURE_NAMES = {
    "generic-receive-offload": "GRO",
    "large-receive-offload": "LRO",
    "rx-gro-hw": "HW-GRO",
    "tcp-segmentation-offload": "TSO",
    "generic-segmentation-offload": "GSO",
    "rx-checksumming": "rx-csum",
    "tx-checksumming": "tx-csum",
    "scatter-gather": "SG",
    "receive-hashing": "RX-hash",
}


def cpu_list(cpus: list[int] | None) -> str:
    """`[0, 1, 2, 5]` as `0-2,5`; empty: `none`."""
    ordered = sorted(set(cpus or []))
    if not ordered:
        return "none"
    ranges: list[list[int]] = [[ordered[0], ordered[0]]]
    for cpu in ordered[1:]:
        if cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def _ghz(khz: int | None) -> str:
    return "?" if khz is None else f"{khz / 1e6:.2f}"


def role_label(facts: SystemFacts) -> str:
    """The host's roles as the inventory names them: `target`, `load`, `target, load`."""
    roles = dict.fromkeys(role for cpu in facts.cpus for role in cpu.roles)
    return ", ".join("target" if role == "server" else role for role in roles) or "no role"


def frequency_text(cpu: CpuFacts) -> str:
    """Governor, driver and limits of a CPU, or `no cpufreq`."""
    frequency = cpu.frequency
    if frequency is None:
        return "no cpufreq"
    epp = f", EPP {frequency.epp}" if frequency.epp else ""
    return (
        f"governor {frequency.governor} ({frequency.driver}), "
        f"{_ghz(frequency.min_khz)}-{_ghz(frequency.max_khz)} GHz of "
        f"{_ghz(frequency.hw_min_khz)}-{_ghz(frequency.hw_max_khz)}, now "
        f"{_ghz(frequency.cur_khz)}{epp}"
    )


def idle_text(cpu: CpuFacts) -> str:
    """The CPU's idle states, exit latency and whether each is off: `POLL, C1 1 µs, ...`."""
    if not cpu.idle_states:
        return "no idle states"
    states = [
        f"{state.name}"
        + (f" {state.latency_us} µs" if state.latency_us else "")
        + (" off" if state.disabled else "")
        for state in cpu.idle_states
    ]
    return "idle " + ", ".join(states)


def cpu_line(facts: SystemFacts, cpu: CpuFacts) -> str:
    """One pinned CPU: role, core and siblings, frequency, idle states, isolation."""
    if not cpu.online:
        return f"CPU {cpu.cpu} ({cpu.role_label}): offline"
    siblings = [other for other in cpu.siblings if other != cpu.cpu]
    isolated = [
        name
        for name, cpus in (
            ("isolcpus", facts.isolcpus),
            ("nohz_full", facts.nohz_full),
            ("rcu_nocbs", facts.rcu_nocbs),
        )
        if cpu.cpu in cpus
    ]
    return (
        f"CPU {cpu.cpu} ({cpu.role_label}): core {cpu.core_id}, SMT siblings "
        f"{cpu_list(siblings)}; {frequency_text(cpu)}; {idle_text(cpu)}; "
        + (f"in {', '.join(isolated)}" if isolated else "not in isolcpus, nohz_full, rcu_nocbs")
    )


def smt_text(facts: SystemFacts) -> str:
    """SMT on, off or not supported."""
    control = facts.smt_control
    if control in (None, "notsupported", "notimplemented"):
        return "SMT not supported"
    return "SMT on" if facts.smt_active else f"SMT off ({control})"


def turbo_text(facts: SystemFacts) -> str:
    """Turbo on or off and its switch, or that there is none."""
    turbo = facts.turbo
    if turbo is None:
        return "no turbo control"
    return f"turbo {'on' if turbo.enabled else 'off'} ({turbo.control})"


def kernel_text(facts: SystemFacts) -> str:
    """HZ, the tick, and whether interrupt time is accounted apart."""
    config = facts.kernel_config
    if config.source is None:
        return f"kernel {facts.kernel}: config not found"
    accounting = {True: "on", False: "off", None: "unknown"}[facts.irq_time_accounting]
    return (
        f"kernel {facts.kernel}: HZ {config.hz or '?'}, {config.tick}, IRQ time accounting "
        f"{accounting} ({config.source})"
    )


def virtual_text(facts: SystemFacts) -> str:
    """Bare metal, or the hypervisor and steal time."""
    virtual = facts.virtualisation
    steal = f", steal {facts.steal.share:.1%} since boot" if facts.steal else ""
    if not virtual.virtual:
        return f"bare metal{steal}"
    seen = "; ".join(virtual.evidence)
    return f"virtual machine ({virtual.hypervisor or 'hypervisor unknown'}: {seen}){steal}"


def mitigations_text(facts: SystemFacts) -> str:
    """How many CPU vulnerabilities are vulnerable, mitigated, not affected."""
    counts = facts.mitigation_counts
    asked = [word for word in facts.cmdline.split() if word.startswith("mitigations=")]
    return (
        f"mitigations: {counts['vulnerable']} vulnerable, {counts['mitigated']} mitigated, "
        f"{counts['not affected']} not affected" + (f" ({asked[0]})" if asked else "")
    )


def memory_text(facts: SystemFacts) -> str:
    """THP, swap, io_uring_disabled and irqbalance."""
    total = facts.swap_total_kib or 0
    swap = f"swap {total / 1048576:.1f} GiB" if total else "no swap"
    irqbalance = (
        f"irqbalance running (PID {', '.join(map(str, facts.irqbalance_pids))})"
        if facts.irqbalance_pids
        else "irqbalance not running"
    )
    return (
        f"THP {facts.thp or '?'}, {swap}, io_uring_disabled {facts.io_uring_disabled or 'absent'}"
        f", {irqbalance}"
    )


def _masks(kind: str, masks: dict[str, list[int] | None]) -> str:
    if not masks:
        return f"no {kind} queues"
    if all(not cpus for cpus in masks.values()):
        return f"{kind} off"
    return f"{kind} " + ", ".join(f"{queue} CPUs {cpu_list(cpus)}" for queue, cpus in masks.items())


def network_text(network: Network, receive_only: bool = False) -> str:
    """Where the interface's interrupts may run and have run, RPS, XPS, flow table."""
    if not network.present:
        return f"network {network.interface}: not on this host"
    device = ", ".join(part for part in (network.device, network.driver) if part)
    lines = network.receive_irqs if receive_only else network.irqs
    irqs = "; ".join(
        f"IRQ {line.irq} {line.name}{' (receive)' if line.receive and not receive_only else ''}"
        f" on CPUs {cpu_list(line.affinity)}, took {cpu_list(line.ran_on)}"
        for line in lines
    )
    if not network.irqs:
        irqs = "no interrupt lines (receive work runs where packets are sent, or by RPS)"
    return (
        f"network {network.interface}" + (f" ({device})" if device else "") + f": {irqs}; "
        f"{_masks('RPS', network.rps)}; {_masks('XPS', network.xps)}; rps_sock_flow_entries "
        f"{'absent' if network.rps_sock_flow_entries is None else network.rps_sock_flow_entries}"
    )


def _pairs(values: dict[str, str], names: dict[str, str] | None = None) -> str:
    """`name value, ...` without what the driver does not have (n/a)."""
    return ", ".join(
        f"{(names or {}).get(name, name)} {value}"
        for name, value in values.items()
        if value != "n/a"
    )


def ethtool_text(ethtool: Ethtool) -> str:
    """Queues, coalescing and offloads as ethtool gave them."""
    parts = []
    if ethtool.channels is not None:
        parts.append(f"channels {_pairs(ethtool.channels)}")
    if ethtool.coalesce is not None:
        parts.append(f"coalesce {_pairs(ethtool.coalesce)}")
    if ethtool.features is not None:
        parts.append(_pairs(ethtool.features, FEATURE_NAMES))
    if ethtool.problems:
        why = "; ".join(sorted(set(ethtool.problems.values())))
        parts.append(f"no {', '.join(ethtool.problems)} ({why})")
    return "ethtool: " + "; ".join(parts)


def _short_ethtool(ethtool: Ethtool) -> str:
    """The ethtool readings that matter most: queues, interrupt coalescing, GRO/LRO/TSO."""
    picked = {
        **{k: v for k, v in (ethtool.channels or {}).items() if not k.startswith("max ")},
        **{k: v for k, v in (ethtool.coalesce or {}).items() if k in ("adaptive-rx", "rx-usecs")},
        **{
            FEATURE_NAMES[k]: v
            for k, v in (ethtool.features or {}).items()
            if k in ("generic-receive-offload", "large-receive-offload", "tcp-segmentation-offload")
        },
    }
    return f"ethtool {_pairs(picked)}" if picked else "ethtool: none"


def host_lines(facts: SystemFacts) -> list[str]:
    """What `orch system` prints of one host, below its name."""
    online = cpu_list(facts.online)
    lines = [
        f"{facts.cpu_model or 'unknown CPU'}: CPUs {online} online on {facts.physical_cores} "
        f"cores, {smt_text(facts)}",
        *(cpu_line(facts, cpu) for cpu in facts.cpus),
        f"{turbo_text(facts)}; cpuidle driver {facts.cpuidle_driver or 'none'} (governor "
        f"{facts.cpuidle_governor or 'none'})",
        kernel_text(facts),
        virtual_text(facts),
        mitigations_text(facts),
        memory_text(facts),
    ]
    if facts.network is not None:
        lines.append(network_text(facts.network))
        if facts.network.ethtool is not None:
            lines.append(ethtool_text(facts.network.ethtool))
    return lines


def _grouped(facts: SystemFacts) -> str:
    """The pinned CPUs' governors, CPUs with the same one together."""
    groups: dict[str, list[str]] = {}
    for cpu in facts.cpus:
        frequency = cpu.frequency
        text = f"governor {frequency.governor} ({frequency.driver})" if frequency else "no cpufreq"
        groups.setdefault(text, []).append(f"{cpu.cpu} ({cpu.role_label})")
    return "; ".join(f"{text} on CPU {', '.join(cpus)}" for text, cpus in groups.items())


def _server_idle(facts: SystemFacts) -> str:
    parts = []
    for cpu in facts.with_role("server"):
        if not cpu.idle_states:
            parts.append(f"no idle states on CPU {cpu.cpu}")
            continue
        deep = ", ".join(state.name for state in cpu.deep_enabled) or "none"
        parts.append(f"deep idle states enabled on CPU {cpu.cpu}: {deep}")
    return "; ".join(parts)


def summary_lines(name: str, facts: SystemFacts) -> list[str]:
    """A report's System Specs of one host: one line, and one for its network."""
    accounting = {True: "on", False: "off", None: "unknown"}[facts.irq_time_accounting]
    parts = [
        smt_text(facts),
        _grouped(facts),
        turbo_text(facts),
        _server_idle(facts),
        f"HZ {facts.kernel_config.hz or '?'}, {facts.kernel_config.tick}, IRQ time "
        f"accounting {accounting}",
        virtual_text(facts),
        memory_text(facts),
    ]
    lines = [f"- System of {name} ({role_label(facts)}): " + "; ".join(p for p in parts if p)]
    network = facts.network
    if network is None:
        return lines
    if not network.present:
        return [*lines, f"  - Network {network.interface}: not on this host"]
    device = ", ".join(part for part in (network.device, network.driver) if part)
    receive = ", ".join(f"{line.irq}→{cpu_list(line.affinity)}" for line in network.receive_irqs)
    parts = [
        f"receive IRQs (IRQ→CPUs) {receive}" if receive else "no receive IRQs",
        _masks("RPS", network.rps),
        _masks("XPS", network.xps),
    ]
    if network.ethtool is not None:
        parts.append(_short_ethtool(network.ethtool))
    lines.append(
        f"  - Network {network.interface}"
        + (f" ({device})" if device else "")
        + ": "
        + "; ".join(parts)
    )
    return lines
