"""The two-namespace lab as a test fixture: bring it up, derive inventories, look inside.

Shared by test_lab.py and test_faults_lab.py; each module brings up its own lab (the
namespaces have fixed names, so only one lab exists at a time).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fault_helpers import netns_inode, processes
from orch_helpers import orch

from orchestrator.lab.topology import BRIDGE, NAME_PREFIX, LabFiles, Role, every_role

NOT_ROOT = "the lab needs root (network namespaces, a bridge, sshd)"
#: Skips a test (or, as `pytestmark`, a module) that needs the lab when not root.
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason=NOT_ROOT)


def leftovers() -> list[str]:
    """Lab pieces present on the machine right now (of a lab of any size)."""
    found = sorted(f"namespace {p.name}" for p in Path("/run/netns").glob(NAME_PREFIX + "*"))
    links = [BRIDGE, *(r.veth for r in every_role(1, 8))]
    found += [f"link {name}" for name in links if Path("/sys/class/net", name).exists()]
    return found


@dataclass
class Lab:
    """A running lab and its inventory."""

    root: Path
    hosts_file: Path
    tmp: Path

    @property
    def files(self) -> LabFiles:
        """The lab's file layout."""
        return LabFiles(self.root)

    def inventory(self) -> dict[str, Any]:
        """The lab inventory as data, to derive variants from."""
        data: dict[str, Any] = yaml.safe_load(self.hosts_file.read_text())
        return data

    def variant(self, name: str, change: dict[str, Any], hosts: tuple[str, ...] = ()) -> Path:
        """A copy of the inventory with `change` applied to the given hosts' entries."""
        data = self.inventory()
        for host in hosts or tuple(data["hosts"]):
            data["hosts"][host].update(change)
        path = self.tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path


@contextlib.contextmanager
def running_lab(tmp: Path, load_hosts: int = 1) -> Iterator[Lab]:
    """A lab under `tmp` with `load_hosts` load machines, always brought down afterwards
    (and checked gone); skips the test when not root."""
    if os.geteuid() != 0:
        pytest.skip(NOT_ROOT)
    root, hosts = tmp / "lab", tmp / "lab-hosts.yaml"
    try:
        more = ["--load-hosts", str(load_hosts)] if load_hosts > 1 else []
        up = orch("lab", "up", "--dir", str(root), "-i", str(hosts), *more, timeout=90)
        assert up.returncode == 0, up.stderr
        yield Lab(root, hosts, tmp)
    finally:
        orch("lab", "down", "--dir", str(root), "-i", str(hosts), timeout=90)
    assert leftovers() == []


def processes_in(namespace: str) -> dict[int, str]:
    listed = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True, timeout=30, check=False
    ).stdout.split()
    found = {}
    for pid in listed:
        try:
            found[int(pid)] = (
                Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            )
        except OSError:
            continue
    return found


def sshd_pids(lab: Lab, role: Role, *, listener: bool) -> list[int]:
    """The sshd processes in `role`'s namespace: those serving connections, and its
    listener too when `listener`."""
    own = int(lab.files.pid_file(role).read_text().strip())
    ns = netns_inode(role.namespace)
    return [
        p.pid
        for p in processes()
        if p.netns == ns and p.name in ("sshd", "sshd-session") and (listener or p.pid != own)
    ]


def set_link(name: str, state: str) -> None:
    """`ip link set NAME STATE`: cut a lab machine off (down) or bring it back (up)."""
    subprocess.run(["ip", "link", "set", name, state], check=True, timeout=30)
