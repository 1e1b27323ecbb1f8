"""The CPUs a host really has: the inventory's core lists are checked against them."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.errors import HostError, UserError
from orchestrator.hosts.base import Host
from orchestrator.inventory import Inventory, parse_cpu_list

# Online CPUs, then the ones this login may use (a container's cpuset, a taskset parent):
# taskset can pin only to CPUs in both.
_CPUS_SCRIPT = (
    "cat /sys/devices/system/cpu/online; "
    "sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status"
)


def format_cpu_list(cpus: Sequence[int]) -> str:
    """`[0, 1, 2, 5]` as the kernel writes it: `0-2,5`."""
    ordered = sorted(set(cpus))
    if not ordered:
        return "none"
    ranges: list[tuple[int, int]] = []
    start = prev = ordered[0]
    for cpu in ordered[1:]:
        if cpu != prev + 1:
            ranges.append((start, prev))
            start = cpu
        prev = cpu
    ranges.append((start, prev))
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def usable_cpus(host: Host) -> list[int]:
    """The CPUs orch can pin to on `host`: online and allowed for its processes."""
    out = host.run(["sh", "-c", _CPUS_SCRIPT], timeout=30, check=False)
    lines = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    try:
        sets = [set(parse_cpu_list(line)) for line in lines]
    except ValueError:
        sets = []
    if not sets:
        raise HostError(f"{host.describe()}: cannot tell which CPUs it has ({out.stderr.strip()})")
    usable = set.intersection(*sets)
    return sorted(usable)


def check_cpus_present(inv: Inventory, target: Host, load: Host | Sequence[Host]) -> None:
    """Refuse target.cpus or a load host's cpus naming a CPU the host does not have
    (UserError); `load`: the load host, or every load host in the inventory's order."""
    loads = [load] if isinstance(load, Host) else list(load)
    checks = [("target.cpus", target, inv.target.cpus)]
    for index, (member, host) in enumerate(zip(inv.load_members, loads, strict=False)):
        checks.append((inv.load.key(index, "cpus"), host, member.cpus))
    have: dict[str, list[int]] = {}
    for key, host, wanted in checks:
        if host.name not in have:
            have[host.name] = usable_cpus(host)
        missing = [cpu for cpu in wanted if cpu not in have[host.name]]
        if missing:
            which = "CPU {} is" if len(missing) == 1 else "CPUs {} are"
            raise UserError(
                f"inventory {key}: {which.format(format_cpu_list(missing))} not on host "
                f"{host.name} "
                f"(its CPUs: {format_cpu_list(have[host.name])})"
            )
