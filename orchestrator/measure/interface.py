"""The target's network interface: which interface carries the benchmark's traffic, and
which interrupt lines are its own (none for lo and veth, whose receive work is raised in
software on the sending CPU or where RPS sends it; Documentation/networking/scaling.rst).

An interface's lines are found in /proc/interrupts by their IRQ numbers when its device
lists them (PCI MSI-X vectors: /sys/class/net/IF/device/msi_irqs, or the PCI parent's
for virtio), else by name: `eth0-TxRx-3`, `mlx5_comp2@pci:0000:3b:00.0`,
`virtio2-input.0` (the interface's device, virtio2, named in the line).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.hosts.base import Host
from orchestrator.measure.proc_files import IrqLine, parse_interrupts

_PCI_ADDRESS = re.compile(r"[0-9a-f]{4,}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-9a-f]")
_MARK = "@orch:"


@dataclass(frozen=True)
class InterfaceDevice:
    """What /sys says of the interface's device: its name (`virtio2`, `0000:3b:00.0`, ''
    for virtual interfaces), its PCI address, and the MSI IRQ numbers it lists."""

    device: str
    pci: str
    msi_irqs: frozenset[str]


def detect_interface(host: Host, peer_address: str) -> str | None:
    """The interface the host routes `peer_address` through (`lo` for loopback)."""
    out = host.run(["ip", "-o", "route", "get", peer_address], timeout=30, check=False)
    match = re.search(r"\bdev (\S+)", out.stdout)
    return match[1] if out.ok and match else None


def _device_script(interface: str, root: str = "") -> str:
    base = f"{root}/sys/class/net/{interface}/device"
    return (
        f'd=$(readlink -f "{base}" 2>/dev/null) || exit 0\n'
        f'echo "{_MARK}device $d"\n'
        # virtio's vectors belong to its PCI parent.
        f'for m in "$d/msi_irqs" "$d/../msi_irqs"; do [ -d "$m" ] && ls "$m"; done\n'
        f"echo {_MARK}interrupts; cat {root}/proc/interrupts"
    )


def parse_device(text: str) -> tuple[InterfaceDevice, list[IrqLine]]:
    """The device and /proc/interrupts from `_device_script`'s output."""
    device_path, irqs, interrupts = "", set(), []
    section = ""
    for line in text.splitlines():
        if line.startswith(f"{_MARK}device "):
            device_path, section = line.split(" ", 1)[1], "msi"
        elif line == f"{_MARK}interrupts":
            section = "interrupts"
        elif section == "msi" and line.strip().isdigit():
            irqs.add(line.strip())
        elif section == "interrupts":
            interrupts.append(line)
    addresses = _PCI_ADDRESS.findall(device_path)
    device = InterfaceDevice(
        device=device_path.rstrip("/").rsplit("/", 1)[-1] if device_path else "",
        pci=addresses[-1] if addresses else "",
        msi_irqs=frozenset(irqs),
    )
    return device, parse_interrupts("\n".join(interrupts))


def interface_lines(interface: str, device: InterfaceDevice, lines: Sequence[IrqLine]) -> list[str]:
    """The IRQ numbers of the interface's lines, in /proc/interrupts order."""
    names = [f"{interface}-", f"{interface}@"]
    if device.device and not _PCI_ADDRESS.fullmatch(device.device):
        names.append(f"{device.device}-")  # virtio2-input.0
    if device.pci:
        names.append(device.pci)  # mlx5_comp0@pci:0000:3b:00.0
    found = []
    for line in lines:
        if not line.irq.isdigit():
            continue
        words = line.description.split()
        by_name = any(w == interface or any(n in w for n in names) for w in words)
        if line.irq in device.msi_irqs or by_name:
            found.append(line.irq)
    return found


def find_interface_irqs(host: Host, interface: str, root: str = "") -> list[str]:
    """The IRQ numbers of `interface`'s lines on `host` (none for a virtual interface);
    `root`: where the host's / is (a captured tree in tests)."""
    out = host.run(["sh", "-c", _device_script(interface, root)], timeout=30, check=False)
    if not out.ok:
        return []
    device, lines = parse_device(out.stdout)
    if not device.device:
        return []
    return interface_lines(interface, device, lines)
