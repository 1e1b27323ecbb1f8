"""Where the target's network receive work runs during a run: on the server's CPUs, on
the other CPUs, or left as it is (Documentation/networking/scaling.rst).

A NIC's receive work runs on the CPU its interrupt lands on: orch sets the affinity of
the interface's interrupt lines (/proc/irq/N/smp_affinity_list), and stops irqbalance,
which would move them back. lo and veth have no interrupt lines: their receive work runs
on the sending CPU unless RPS sends it elsewhere, so orch sets the RPS mask of each of
the interface's receive queues (/sys/class/net/IF/queues/rx-*/rps_cpus). Either way the
change is a change set with an undo, saved on the target before anything is written
(system/changes.py), put back when the run ends however it ends, and after a kill -9 by
the next `orch run` or `--resume`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

from orchestrator.errors import UserError
from orchestrator.log import Log
from orchestrator.measure.interface import find_interface_irqs
from orchestrator.measure.proc_files import parse_cpu_list
from orchestrator.system.change_set import PLACEMENT_SET, ChangeSet
from orchestrator.system.changes import FileWish, ServiceWish, Wish, apply, plan_changes
from orchestrator.system.session import SystemHost

ReceiveWork = Literal["server", "other", "as-is"]
RECEIVE_WORK: tuple[str, ...] = get_args(ReceiveWork)
PLACEMENT = PLACEMENT_SET  # the change set's name on the target
_QUEUES = 'for q in "$2"/sys/class/net/"$1"/queues/rx-*; do [ -e "$q/rps_cpus" ] && echo "$q"; done'


def check_receive_work(value: str, where: str) -> ReceiveWork:
    """`value` as a placement; UserError naming `where` (an option or inventory key)."""
    if value not in RECEIVE_WORK:
        raise UserError(f"{where}: unknown placement '{value}' (known: {', '.join(RECEIVE_WORK)})")
    return value  # type: ignore[return-value]


def cpu_mask(cpus: Sequence[int]) -> str:
    """A CPU set as the kernel's hex mask, in 32-bit groups separated by commas."""
    bits = 0
    for cpu in cpus:
        bits |= 1 << cpu
    digits = f"{bits:x}"
    groups: list[str] = []
    while digits:
        groups.insert(0, digits[-8:])
        digits = digits[:-8]
    return ",".join(groups) or "0"


def placement_cpus(
    placement: ReceiveWork, server_cpus: Sequence[int], online: Sequence[int]
) -> list[int]:
    """The CPUs receive work goes to: the server's, or every other online CPU."""
    if placement == "server":
        return sorted(server_cpus)
    others = sorted(set(online) - set(server_cpus))
    if not others:
        raise UserError(
            "--receive-work other: the target has no online CPU besides the server's "
            f"({', '.join(str(c) for c in server_cpus)})"
        )
    return others


def _wishes(
    target: SystemHost, interface: str, cpus: Sequence[int], irqbalance_runs: bool
) -> list[Wish]:
    access = target.access
    host, root = access.host, access.path("/").rstrip("/")
    irqs = find_interface_irqs(host, interface, root)
    if irqs:
        wishes: list[Wish] = [
            FileWish(
                f"/proc/irq/{irq}/smp_affinity_list",
                ",".join(str(c) for c in cpus),
                f"IRQ {irq} of {interface}",
            )
            for irq in irqs
        ]
        if irqbalance_runs:
            wishes.append(ServiceWish("irqbalance", "stop", "irqbalance (it moves IRQs)"))
        return wishes
    queues = host.run(["sh", "-c", _QUEUES, "orch", interface, root], timeout=30, check=False)
    # The queues' paths on the host, as the wishes name files (the root taken off).
    paths = [
        f"{line.strip().removeprefix(root)}/rps_cpus"
        for line in queues.stdout.splitlines()
        if line.strip()
    ]
    if not paths:
        raise UserError(
            f"--receive-work: cannot place receive work on target {target.name}: interface "
            f"{interface} has no interrupt lines and no RPS queues "
            f"(/sys/class/net/{interface}/queues/rx-*/rps_cpus)"
        )
    mask = cpu_mask(cpus)
    return [FileWish(path, mask, f"RPS of {interface} {path.split('/')[-2]}") for path in paths]


def place_receive_work(
    target: SystemHost,
    placement: ReceiveWork,
    interface: str | None,
    server_cpus: Sequence[int],
    irqbalance_runs: bool,
    log: Log,
) -> ChangeSet | None:
    """Place the target's receive work for the run; the change set saved and made (None:
    left as it is, or already so). UserError (one line) where it cannot be set."""
    if placement == "as-is":
        return None
    if interface is None:
        raise UserError(
            f"--receive-work {placement}: no interface found on target {target.name} toward "
            "the load hosts (set target.interface in the inventory)"
        )
    access = target.access
    online_text = access.host.run(
        ["cat", access.path("/sys/devices/system/cpu/online")], timeout=30
    ).stdout
    cpus = placement_cpus(placement, server_cpus, parse_cpu_list(online_text))
    plan = plan_changes(target.access, _wishes(target, interface, cpus, irqbalance_runs))
    if plan.absent:
        raise UserError(f"--receive-work: cannot place receive work: {plan.absent[0]}")
    change_set = apply(target.access, plan, PLACEMENT, scope="run")
    where = ", ".join(str(c) for c in cpus)
    done = "set" if change_set is not None else "already so"
    log(f"receive work of {interface} on CPU {where} ({placement}): {done}")
    return change_set
