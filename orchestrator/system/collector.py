"""Read what decides a benchmark's numbers on a host from the files under a root directory.

This file is also a program: orch provides it to every host (as it provides the load
agent) and runs it there with the host's python3, so it imports nothing but the standard
library and runs on Python 3.8. The root is `/` on a host and a captured tree in tests:
every reading is a file under it (commands such as ethtool are orch's business, not this
program's). Three modes, each printing JSON on stdout:

    collector.py facts --root / --role server:0 --role load:1 [--interface eth0]
    collector.py files --root / PATH...      current text and writability of each file
    collector.py saved --root / DIR          the saved change sets (JSON files) in DIR
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
from typing import Any

CPU_DIR = "sys/devices/system/cpu"
CONFIG_KEYS = (
    "CONFIG_HZ",
    "CONFIG_HZ_PERIODIC",
    "CONFIG_NO_HZ_IDLE",
    "CONFIG_NO_HZ_FULL",
    "CONFIG_IRQ_TIME_ACCOUNTING",
    "CONFIG_TICK_CPU_ACCOUNTING",
    "CONFIG_VIRT_CPU_ACCOUNTING_GEN",
    "CONFIG_PARAVIRT_TIME_ACCOUNTING",
)
# DMI vendors and products of virtual machines (bare metal clouds say e.g. `m5.metal`).
VIRTUAL_DMI = (
    "QEMU",
    "KVM",
    "VMware",
    "VirtualBox",
    "Virtual Machine",
    "Xen",
    "Google Compute Engine",
    "Bochs",
    "Parallels",
    "Firecracker",
)
CLOCKSOURCE_HYPERVISOR = {
    "kvm-clock": "KVM",
    "xen": "Xen",
    "hyperv_clocksource_tsc_page": "Hyper-V",
    "vmware-tsc": "VMware",
}
# An interrupt line of the interface that takes received packets (the rest: transmit,
# config, link): igb/i40e `eno1-TxRx-0`, ena `Tx-Rx`, virtio `input.0`, mlx5 `comp0`.
RECEIVE_LINE = re.compile(r"rx|input|comp|fp-\d|queue", re.IGNORECASE)


class Tree:
    """Files under a root; `trace` (when given) collects every path read, for a capture."""

    def __init__(self, root: str, trace: set[str] | None = None) -> None:
        self.root = root
        self.trace = trace

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel.lstrip("/"))

    def _note(self, rel: str) -> None:
        if self.trace is not None:
            self.trace.add(rel.lstrip("/"))

    def read(self, rel: str) -> str | None:
        """The file's text without its final newline; None when absent or unreadable."""
        self._note(rel)
        try:
            with open(self.path(rel), encoding="utf-8", errors="replace") as file:
                text = file.read()
        except OSError:
            return None
        return text[:-1] if text.endswith("\n") else text

    def read_gzip(self, rel: str) -> str | None:
        self._note(rel)
        try:
            with gzip.open(self.path(rel), "rt", encoding="utf-8", errors="replace") as file:
                return file.read()
        except (OSError, EOFError):
            return None

    def listdir(self, rel: str) -> list[str]:
        self._note(rel)
        try:
            return sorted(os.listdir(self.path(rel)))
        except OSError:
            return []

    def link_name(self, rel: str) -> str | None:
        """The name of what a symlink (e.g. an interface's `device`) points to."""
        self._note(rel)
        full = self.path(rel)
        if not os.path.islink(full):
            return None
        return os.path.basename(os.path.realpath(full))

    def link_target(self, rel: str) -> str | None:
        """A symlink's target as the host sees it (absolute), or None when not a link."""
        self._note(rel)
        try:
            target = os.readlink(self.path(rel))
        except OSError:
            return None
        return os.path.normpath(os.path.join("/" + os.path.dirname(rel.lstrip("/")), target))

    def isdir(self, rel: str) -> bool:
        self._note(rel)
        return os.path.isdir(self.path(rel))


def parse_cpu_list(text: str | None) -> list[int]:
    """`0-2,5` as [0, 1, 2, 5]; empty or absent: []."""
    cpus: list[int] = []
    for part in (text or "").strip().split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            cpus.extend(range(int(first), int(last or first) + 1))
    return sorted(set(cpus))


def parse_cpu_mask(text: str | None) -> list[int] | None:
    """A hex CPU mask (`00000000,00000003`) as CPUs; None when absent or not a mask."""
    if text is None:
        return None
    digits = text.strip().replace(",", "")
    try:
        mask = int(digits or "0", 16)
    except ValueError:
        return None
    return [cpu for cpu in range(mask.bit_length()) if mask >> cpu & 1]


def _int(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None


def _bracketed(text: str | None) -> str | None:
    """The chosen value of `always [madvise] never`."""
    if text is None:
        return None
    match = re.search(r"\[([^\]]+)\]", text)
    return match.group(1) if match else text.strip()


def _cmdline_cpus(cmdline: str, key: str) -> list[int]:
    """CPUs of a boot parameter; isolcpus may start with flags (`isolcpus=nohz,domain,2-3`)."""
    found: list[int] = []
    for word in cmdline.split():
        name, sep, value = word.partition("=")
        if sep and name == key:
            parts = [p for p in value.split(",") if p and (p[0].isdigit())]
            found.extend(parse_cpu_list(",".join(parts)))
    return sorted(set(found))


def read_frequency(tree: Tree, cpu: int) -> dict[str, Any] | None:
    base = f"{CPU_DIR}/cpu{cpu}/cpufreq"
    if not tree.isdir(base):
        return None
    policy = tree.link_target(base) or "/" + base

    def value(name: str) -> str | None:
        return tree.read(base + "/" + name)

    return {
        "policy": policy,
        "driver": value("scaling_driver"),
        "governor": value("scaling_governor"),
        "governors": (value("scaling_available_governors") or "").split(),
        "min_khz": _int(value("scaling_min_freq")),
        "max_khz": _int(value("scaling_max_freq")),
        "cur_khz": _int(value("scaling_cur_freq")),
        "hw_min_khz": _int(value("cpuinfo_min_freq")),
        "hw_max_khz": _int(value("cpuinfo_max_freq")),
        "epp": value("energy_performance_preference"),
        "policy_cpus": parse_cpu_list((value("affected_cpus") or "").replace(" ", ",")),
    }


def read_idle_states(tree: Tree, cpu: int) -> list[dict[str, Any]]:
    base = f"{CPU_DIR}/cpu{cpu}/cpuidle"
    states = [name for name in tree.listdir(base) if re.match(r"state\d+$", name)]
    found = []
    for name in sorted(states, key=lambda state: int(state[5:])):
        here = base + "/" + name
        found.append(
            {
                "index": int(name[5:]),
                "name": tree.read(here + "/name") or name,
                "latency_us": _int(tree.read(here + "/latency")) or 0,
                "disabled": (tree.read(here + "/disable") or "0").strip() not in ("0", ""),
                "path": "/" + here,
            }
        )
    return found


def read_cpu(tree: Tree, cpu: int, roles: list[str], online: set[int]) -> dict[str, Any]:
    topology = f"{CPU_DIR}/cpu{cpu}/topology"
    return {
        "cpu": cpu,
        "roles": roles,
        "online": cpu in online,
        "core_id": _int(tree.read(topology + "/core_id")),
        "package": _int(tree.read(topology + "/physical_package_id")),
        "siblings": parse_cpu_list(tree.read(topology + "/thread_siblings_list")),
        "frequency": read_frequency(tree, cpu),
        "idle_states": read_idle_states(tree, cpu),
    }


def read_turbo(tree: Tree) -> dict[str, Any] | None:
    """Turbo as intel_pstate (no_turbo: 1 is off) or cpufreq's global boost (1 is on)."""
    no_turbo = tree.read(CPU_DIR + "/intel_pstate/no_turbo")
    if no_turbo is not None:
        return {
            "control": "intel_pstate no_turbo",
            "path": f"/{CPU_DIR}/intel_pstate/no_turbo",
            "enabled": no_turbo.strip() == "0",
            "off_value": "1",
        }
    boost = tree.read(CPU_DIR + "/cpufreq/boost")
    if boost is not None:
        return {
            "control": "cpufreq boost",
            "path": f"/{CPU_DIR}/cpufreq/boost",
            "enabled": boost.strip() == "1",
            "off_value": "0",
        }
    return None


def read_kernel_config(tree: Tree, release: str) -> dict[str, Any]:
    text = tree.read_gzip("proc/config.gz")
    source = "/proc/config.gz"
    if text is None:
        source = "/boot/config-" + release
        text = tree.read(source)
    options: dict[str, str | None] = {}
    if text is not None:
        for line in text.splitlines():
            name, sep, value = line.partition("=")
            if sep and name in CONFIG_KEYS:
                options[name] = value.strip().strip('"')
    return {"source": source if text is not None else None, "options": options}


def read_virtualisation(tree: Tree, cpuinfo: str) -> dict[str, Any]:
    flags = re.search(r"^flags\s*:(.*)$", cpuinfo, re.MULTILINE)
    flagged = bool(flags and "hypervisor" in flags.group(1).split())
    xen = tree.read("sys/hypervisor/type")
    vendor = tree.read("sys/class/dmi/id/sys_vendor") or ""
    product = tree.read("sys/class/dmi/id/product_name") or ""
    clocksource = tree.read("sys/devices/system/clocksource/clocksource0/current_clocksource")
    dmi = f"{vendor.strip()} {product.strip()}"
    dmi_virtual = any(name.lower() in dmi.lower() for name in VIRTUAL_DMI)
    name = None
    evidence = []
    if xen:
        name, evidence = xen.strip().capitalize(), ["/sys/hypervisor/type"]
    if dmi_virtual:
        name = name or dmi.strip()
        evidence.append("DMI")
    if clocksource in CLOCKSOURCE_HYPERVISOR:
        name = name or CLOCKSOURCE_HYPERVISOR[clocksource]
        evidence.append("clocksource " + clocksource)
    if flagged:
        evidence.append("cpuinfo hypervisor flag")
    return {
        "virtual": bool(xen or dmi_virtual or flagged),
        "hypervisor": name,
        "evidence": evidence,
        "dmi": dmi.strip() or None,
        "clocksource": clocksource,
    }


def read_steal(tree: Tree) -> dict[str, int] | None:
    stat = tree.read("proc/stat") or ""
    for line in stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu" and len(fields) >= 9:
            ticks = [int(value) for value in fields[1:9]]
            return {"steal_ticks": ticks[7], "total_ticks": sum(ticks)}
    return None


def read_interrupts(tree: Tree) -> list[dict[str, Any]]:
    text = tree.read("proc/interrupts") or ""
    lines = text.splitlines()
    if not lines:
        return []
    cpus = [int(name[3:]) for name in lines[0].split() if name.startswith("CPU")]
    found = []
    for line in lines[1:]:
        label, sep, rest = line.partition(":")
        if not sep or not label.strip().isdigit():
            continue
        fields = rest.split()
        counts = fields[: len(cpus)]
        found.append(
            {
                "irq": int(label),
                "name": fields[-1] if len(fields) > len(cpus) else "",
                "counts": {
                    str(cpus[index]): int(count)
                    for index, count in enumerate(counts)
                    if count.isdigit()
                },
            }
        )
    return found


def read_network(tree: Tree, interface: str) -> dict[str, Any]:
    base = "sys/class/net/" + interface
    if not tree.isdir(base):
        return {"interface": interface, "present": False}
    device = tree.link_name(base + "/device")
    driver = tree.link_name(base + "/device/driver") if device else None
    tokens = [interface] + ([device] if device else [])
    words = [re.compile(rf"(?<![A-Za-z0-9]){re.escape(t)}(?![A-Za-z0-9])") for t in tokens]
    irqs = []
    for line in read_interrupts(tree):
        if not any(word.search(line["name"]) for word in words):
            continue
        irq = f"proc/irq/{line['irq']}"
        effective = tree.read(irq + "/effective_affinity_list")
        irqs.append(
            {
                "irq": line["irq"],
                "name": line["name"],
                "receive": bool(RECEIVE_LINE.search(line["name"])),
                "affinity": parse_cpu_list(tree.read(irq + "/smp_affinity_list")),
                "effective": None if effective is None else parse_cpu_list(effective),
                "counts": line["counts"],
            }
        )
    queues = base + "/queues"
    rps: dict[str, list[int] | None] = {}
    xps: dict[str, list[int] | None] = {}
    for queue in tree.listdir(queues):
        if queue.startswith("rx-"):
            rps[queue] = parse_cpu_mask(tree.read(f"{queues}/{queue}/rps_cpus"))
        elif queue.startswith("tx-"):
            xps[queue] = parse_cpu_mask(tree.read(f"{queues}/{queue}/xps_cpus"))
    return {
        "interface": interface,
        "present": True,
        "device": device,
        "driver": driver,
        "irqs": irqs,
        "rps": rps,
        "xps": xps,
        "rps_sock_flow_entries": _int(tree.read("proc/sys/net/core/rps_sock_flow_entries")),
    }


def running_named(tree: Tree, name: str) -> list[int]:
    """PIDs of processes whose /proc/PID/comm is `name`."""
    return sorted(
        int(pid)
        for pid in tree.listdir("proc")
        if pid.isdigit() and tree.read(f"proc/{pid}/comm") == name
    )


def read_meminfo(tree: Tree) -> dict[str, int]:
    found = {}
    for line in (tree.read("proc/meminfo") or "").splitlines():
        name, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            found[name.strip()] = int(parts[0])
    return found


def collect_facts(
    root: str,
    roles: dict[int, list[str]],
    interface: str | None = None,
    trace: set[str] | None = None,
) -> dict[str, Any]:
    """Everything `SystemFacts` holds, as plain data, read from the files under `root`."""
    tree = Tree(root, trace)
    online = set(parse_cpu_list(tree.read(CPU_DIR + "/online")))
    cpuinfo = tree.read("proc/cpuinfo") or ""
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.MULTILINE)
    cores = set()
    for cpu in sorted(online):
        topology = f"{CPU_DIR}/cpu{cpu}/topology"
        cores.add((tree.read(topology + "/physical_package_id"), tree.read(topology + "/core_id")))
    release = tree.read("proc/sys/kernel/osrelease") or ""
    cmdline = tree.read("proc/cmdline") or ""
    meminfo = read_meminfo(tree)
    vulnerabilities = CPU_DIR + "/vulnerabilities"
    cpus = [read_cpu(tree, cpu, roles[cpu], online) for cpu in sorted(roles)]
    return {
        "euid": os.geteuid() if hasattr(os, "geteuid") else -1,
        "boot_id": tree.read("proc/sys/kernel/random/boot_id") or "",
        "kernel": release,
        "cpu_model": model.group(1).strip() if model else "",
        "online": sorted(online),
        "physical_cores": len(cores),
        "smt_control": tree.read(CPU_DIR + "/smt/control"),
        "smt_active": (tree.read(CPU_DIR + "/smt/active") or "0").strip() == "1",
        "cpus": cpus,
        "cpufreq_driver": next(
            (cpu["frequency"]["driver"] for cpu in cpus if cpu["frequency"]), None
        ),
        "pstate_status": tree.read(CPU_DIR + "/intel_pstate/status"),
        "turbo": read_turbo(tree),
        "cpuidle_driver": tree.read(CPU_DIR + "/cpuidle/current_driver"),
        "cpuidle_governor": tree.read(CPU_DIR + "/cpuidle/current_governor_ro")
        or tree.read(CPU_DIR + "/cpuidle/current_governor"),
        "cmdline": cmdline,
        "isolcpus": _cmdline_cpus(cmdline, "isolcpus"),
        "nohz_full": _cmdline_cpus(cmdline, "nohz_full"),
        "rcu_nocbs": _cmdline_cpus(cmdline, "rcu_nocbs"),
        "kernel_config": read_kernel_config(tree, release),
        "virtualisation": read_virtualisation(tree, cpuinfo),
        "steal": read_steal(tree),
        "mitigations": {
            name: tree.read(vulnerabilities + "/" + name) or ""
            for name in tree.listdir(vulnerabilities)
        },
        "thp": _bracketed(tree.read("sys/kernel/mm/transparent_hugepage/enabled")),
        "swap_total_kib": meminfo.get("SwapTotal"),
        "swap_free_kib": meminfo.get("SwapFree"),
        "swappiness": _int(tree.read("proc/sys/vm/swappiness")),
        "io_uring_disabled": tree.read("proc/sys/kernel/io_uring_disabled"),
        "irqbalance_pids": running_named(tree, "irqbalance"),
        "network": read_network(tree, interface) if interface else None,
    }


def read_files(root: str, paths: list[str]) -> dict[str, Any]:
    """Each file's whole text (None: absent) and whether it can be written: sysfs and
    procfs files without a write bit have no store method, even for root."""
    files = {}
    for path in paths:
        full = os.path.join(root, path.lstrip("/"))
        try:
            with open(full, encoding="utf-8", errors="replace") as file:
                text: str | None = file.read()
            writable = bool(os.stat(full).st_mode & 0o222) and os.access(full, os.W_OK)
        except OSError:
            text, writable = None, False
        files[path] = {"text": text, "writable": writable}
    return {"euid": os.geteuid() if hasattr(os, "geteuid") else -1, "files": files}


def read_saved(root: str, directory: str) -> list[dict[str, str]]:
    """The JSON files in `directory`: each one's host path and text."""
    tree = Tree(root)
    saved = []
    for name in tree.listdir(directory):
        if name.endswith(".json"):
            path = directory.rstrip("/") + "/" + name
            saved.append({"path": path, "text": tree.read(path) or ""})
    return saved


def _roles(values: list[str]) -> dict[int, list[str]]:
    roles: dict[int, list[str]] = {}
    for value in values:
        role, _, cpus = value.partition(":")
        for cpu in parse_cpu_list(cpus):
            roles.setdefault(cpu, []).append(role)
    return roles


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="orch-system-collector")
    parser.add_argument("mode", choices=("facts", "files", "saved"))
    parser.add_argument("--root", default="/")
    parser.add_argument("--role", action="append", default=[], help="ROLE:CPUS")
    parser.add_argument("--interface")
    parser.add_argument("paths", nargs="*")
    args = parser.parse_intermixed_args(argv)
    result: Any
    if args.mode == "facts":
        result = collect_facts(args.root, _roles(args.role), args.interface)
    elif args.mode == "files":
        result = read_files(args.root, args.paths)
    else:
        result = read_saved(args.root, args.paths[0])
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
