"""The warnings: what on each host may move this benchmark's numbers, why, and the fix.

Host entries that are one machine (one boot id: loopback, the lab's namespaces) are
judged together, so a server CPU and a load CPU given to different entries of one machine
are still seen as SMT siblings; machine-wide warnings name the machine once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.system.model import CpuFacts, SystemFacts, SystemWarning

STEAL_WARNING_SHARE = 0.01  # steal since boot above this is worth its own warning


@dataclass
class Machine:
    """One machine: its host entries' names, its facts, and its pinned CPUs with the roles
    of every entry on it."""

    names: list[str]
    facts: SystemFacts
    cpus: dict[int, CpuFacts]

    @property
    def label(self) -> str:
        """How warnings name it: `local`, or `orch-target, orch-load` for one machine."""
        return ", ".join(self.names)

    def role(self, role: str) -> list[CpuFacts]:
        """Its CPUs pinned for `role`."""
        return [cpu for cpu in self.cpus.values() if role in cpu.roles]


def machines(facts_by_host: Mapping[str, SystemFacts]) -> list[Machine]:
    """The hosts grouped into machines (by boot id), in the order they were given."""
    found: dict[str, Machine] = {}
    for name, facts in facts_by_host.items():
        key = facts.boot_id or name
        machine = found.get(key)
        if machine is None:
            machine = found[key] = Machine([], facts, {})
        machine.names.append(name)
        for cpu in facts.cpus:
            have = machine.cpus.get(cpu.cpu)
            roles = list(dict.fromkeys([*(have.roles if have else []), *cpu.roles]))
            machine.cpus[cpu.cpu] = cpu.model_copy(update={"roles": roles})
    return list(found.values())


def _cpu_name(cpu: CpuFacts) -> str:
    return f"CPU {cpu.cpu} ({cpu.role_label})"


def _smt(machine: Machine) -> list[SystemWarning]:
    out = []
    pinned = set(machine.cpus)
    for server in machine.role("server"):
        others = [cpu for cpu in server.siblings if cpu != server.cpu]
        for sibling in others:
            there = machine.cpus.get(sibling)
            if there is not None and "load" in there.roles:
                out.append(
                    SystemWarning(
                        kind="smt-siblings",
                        host=machine.label,
                        cpu=server.cpu,
                        what=f"CPU {server.cpu} (server) and CPU {sibling} (load) are SMT siblings",
                        why="they share a core's execution units, so the load tool's work "
                        "slows the server and raises its CPU time per request",
                        fix="pin the load tool to CPUs of other cores (the inventory's load "
                        "cpus), or turn SMT off (echo off > /sys/devices/system/cpu/smt/control)",
                    )
                )
        free = [cpu for cpu in others if cpu not in pinned]
        if free:
            listed = ", ".join(str(cpu) for cpu in free)
            out.append(
                SystemWarning(
                    kind="smt-free-sibling",
                    host=machine.label,
                    cpu=server.cpu,
                    what=f"CPU {server.cpu} (server) shares its core with CPU {listed}, which "
                    "any other process may use",
                    why="work on the sibling takes the core's execution units from the server",
                    fix=f"keep CPU {listed} idle (isolcpus={listed}) or turn SMT off",
                )
            )
    return out


def _frequency(machine: Machine) -> list[SystemWarning]:
    out = []
    for cpu in machine.cpus.values():
        governor = cpu.frequency.governor if cpu.frequency else None
        if governor and governor != "performance":
            out.append(
                SystemWarning(
                    kind="governor",
                    host=machine.label,
                    cpu=cpu.cpu,
                    what=f"governor {governor} on {_cpu_name(cpu)}",
                    why="the clock follows the load, so the CPU time a request costs changes "
                    "with how busy the core was",
                    fix="orch system tune (or orch run --tune) sets the performance governor",
                )
            )
    turbo = machine.facts.turbo
    if turbo is not None and turbo.enabled:
        out.append(
            SystemWarning(
                kind="turbo",
                host=machine.label,
                what=f"turbo boost is on ({turbo.control})",
                why="the clock then depends on temperature and on how many cores are busy, "
                "which differ between cells and between runs",
                fix="orch system tune (or orch run --tune) turns it off",
            )
        )
    return out


def _idle(machine: Machine) -> list[SystemWarning]:
    out = []
    for cpu in machine.role("server"):
        deep = cpu.deep_enabled
        if deep:
            states = ", ".join(f"{state.name} ({state.latency_us} µs)" for state in deep)
            out.append(
                SystemWarning(
                    kind="deep-idle",
                    host=machine.label,
                    cpu=cpu.cpu,
                    what=f"CPU {cpu.cpu} (server) may enter deep idle states: {states}",
                    why="between requests the core sleeps, and waking it adds latency and CPU "
                    "time to the next request when the load is light",
                    fix="orch system tune (or orch run --tune) disables them on the server's CPUs",
                )
            )
    return out


def _isolation(machine: Machine) -> list[SystemWarning]:
    out = []
    facts = machine.facts
    hz = facts.kernel_config.hz
    for cpu in machine.role("server"):
        if cpu.cpu in facts.isolcpus and cpu.cpu in facts.nohz_full:
            continue
        missing = [
            name
            for name, cpus in (("isolcpus", facts.isolcpus), ("nohz_full", facts.nohz_full))
            if cpu.cpu not in cpus
        ]
        tick = f" up to {hz} times a second" if hz else ""
        out.append(
            SystemWarning(
                kind="not-isolated",
                host=machine.label,
                cpu=cpu.cpu,
                what=f"CPU {cpu.cpu} (server) is not in {' or '.join(missing)}",
                why="other tasks and kernel threads may run there, and the timer tick "
                f"interrupts it{tick} while it works",
                fix=f"boot with isolcpus={cpu.cpu} nohz_full={cpu.cpu} rcu_nocbs={cpu.cpu}",
            )
        )
    return out


def _kernel(machine: Machine) -> list[SystemWarning]:
    facts = machine.facts
    out = []
    accounting = facts.irq_time_accounting
    if accounting is None:
        out.append(
            SystemWarning(
                kind="no-kernel-config",
                host=machine.label,
                what="the kernel's config was not found (/proc/config.gz, "
                f"/boot/config-{facts.kernel})",
                why="whether interrupt time is accounted apart from tasks cannot be told",
                fix="modprobe configs, or install the kernel's config file",
            )
        )
    elif not accounting:
        off = (
            "tsc=noirqtime"
            if facts.kernel_config.enabled("IRQ_TIME_ACCOUNTING")
            else ("CONFIG_IRQ_TIME_ACCOUNTING is off")
        )
        out.append(
            SystemWarning(
                kind="no-irq-time",
                host=machine.label,
                what=f"interrupt time is not accounted apart from tasks ({off})",
                why="time in hard and soft interrupts is charged to whatever task was "
                "running, so the server's CPU time includes network interrupt work done on "
                "its core, and /proc/stat's irq and softirq columns count only the clock ticks "
                "that land in an interrupt",
                fix="use a kernel built with CONFIG_IRQ_TIME_ACCOUNTING=y",
            )
        )
    if facts.io_uring_disabled in ("1", "2") and machine.role("server"):
        limited = "disabled" if facts.io_uring_disabled == "2" else "limited to a group"
        out.append(
            SystemWarning(
                kind="io-uring",
                host=machine.label,
                what=f"io_uring is {limited} (kernel.io_uring_disabled={facts.io_uring_disabled})",
                why="the io_uring servers cannot run, or run only as root or in "
                "kernel.io_uring_group",
                fix="sysctl kernel.io_uring_disabled=0",
            )
        )
    return out


def _virtual(machine: Machine) -> list[SystemWarning]:
    facts = machine.facts
    steal = facts.steal.share if facts.steal else 0.0
    out = []
    if facts.virtualisation.virtual:
        seen = "; ".join(facts.virtualisation.evidence)
        name = facts.virtualisation.hypervisor or "hypervisor unknown"
        out.append(
            SystemWarning(
                kind="virtual",
                host=machine.label,
                what=f"a virtual machine ({name}: {seen})",
                why="its vCPUs may share physical cores with other guests and the hypervisor "
                f"can take the CPU away (steal: {steal:.1%} of CPU time since boot), so "
                "figures vary from run to run",
                fix="compare servers within one run (its cells interleave), not across "
                "machines; use bare metal for absolute figures",
            )
        )
    if steal >= STEAL_WARNING_SHARE:
        out.append(
            SystemWarning(
                kind="steal",
                host=machine.label,
                what=f"steal time is {steal:.1%} of CPU time since boot",
                why="the hypervisor ran other work on this machine's CPUs; a cell measured "
                "then does less in the same time",
                fix="use a dedicated or bare-metal machine",
            )
        )
    if facts.irqbalance_pids:
        pids = ", ".join(str(pid) for pid in facts.irqbalance_pids)
        out.append(
            SystemWarning(
                kind="irqbalance",
                host=machine.label,
                what=f"irqbalance is running (PID {pids})",
                why="it may move the NIC's interrupts during a run, so where receive work "
                "lands (and whose CPU time it is) changes mid-run",
                fix="orch system tune (or orch run --tune) stops it",
            )
        )
    return out


def _network(name: str, facts: SystemFacts) -> list[SystemWarning]:
    """Receive work of the target's interface placed where the server runs."""
    network = facts.network
    servers = {cpu.cpu for cpu in facts.with_role("server")}
    if network is None or not network.present or not servers:
        return []
    out = []
    for line in network.receive_irqs:
        here = sorted(servers & (set(line.affinity) | set(line.ran_on)))
        if here:
            ran = ", ".join(str(cpu) for cpu in line.ran_on) or "none yet"
            allowed = ",".join(str(cpu) for cpu in line.affinity)
            out.append(
                SystemWarning(
                    kind="irq-on-server",
                    host=name,
                    cpu=here[0],
                    what=f"receive interrupts of {network.interface} (IRQ {line.irq} "
                    f"{line.name}) may run on the server's CPU {','.join(map(str, here))}: "
                    f"allowed on CPUs {allowed}, taken so far on {ran}",
                    why="their work, and the network softirq after it, then runs on the "
                    "server's core: it steals the server's time or is charged to it",
                    fix=f"write other CPUs to /proc/irq/{line.irq}/smp_affinity_list (or keep "
                    "it there on purpose)",
                )
            )
    for queue, cpus in network.rps.items():
        here = sorted(servers & set(cpus or []))
        if here:
            out.append(
                SystemWarning(
                    kind="rps-on-server",
                    host=name,
                    cpu=here[0],
                    what=f"RPS of {network.interface} {queue} sends receive work to the "
                    f"server's CPU {','.join(map(str, here))}",
                    why="packet processing then runs on the server's core",
                    fix=f"write a mask without the server's CPUs to /sys/class/net/"
                    f"{network.interface}/queues/{queue}/rps_cpus",
                )
            )
    return out


def find_warnings(facts_by_host: Mapping[str, SystemFacts]) -> list[SystemWarning]:
    """Every warning about the hosts (by inventory name), machine by machine."""
    out: list[SystemWarning] = []
    for machine in machines(facts_by_host):
        for check in (_smt, _frequency, _idle, _isolation, _kernel, _virtual):
            out += check(machine)
    for name, facts in facts_by_host.items():
        out += _network(name, facts)
    return out
