"""The lab's shape: which machines it has, their names and addresses, and its files.

Every name and address is derived from a machine's role and index, so a lab with more
load machines is `lab_roles(n)`; today's lab is `ROLES = lab_roles(1)`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BRIDGE = "orch-br0"
BRIDGE_ADDRESS = "10.203.0.1"
PREFIX_LENGTH = 24
NAME_PREFIX = "orch-"


@dataclass(frozen=True)
class Role:
    """One lab machine: its namespace (also its hostname), address and veth names."""

    role: str
    namespace: str
    address: str
    veth: str  # the root-namespace end, a port of the bridge
    peer: str  # the namespace end's name until it is renamed eth0 inside

    @property
    def hostname(self) -> str:
        """The UTS hostname its sshd (and so every command run there) sees."""
        return self.namespace


def machine_address(index: int) -> str:
    """The address of the lab's machine number `index` (0 is the target): the bridge's,
    counted on from."""
    address = ipaddress.ip_address(BRIDGE_ADDRESS) + 1 + index
    if address not in ipaddress.ip_network(f"{BRIDGE_ADDRESS}/{PREFIX_LENGTH}", strict=False):
        raise ValueError(f"lab machine {index} falls outside the lab's subnet")
    return str(address)


def make_role(role: str, index: int) -> Role:
    """The machine `role` as machine number `index`, named orch-<role>."""
    namespace = f"{NAME_PREFIX}{role}"
    return Role(role, namespace, machine_address(index), f"{namespace}0", f"{namespace}1")


def lab_roles(load_hosts: int = 1) -> tuple[Role, ...]:
    """The target, then the load machines: `load` alone, or `load1`..`loadN`."""
    if load_hosts < 1:
        raise ValueError("a lab needs at least one load machine")
    loads = ["load"] if load_hosts == 1 else [f"load{n}" for n in range(1, load_hosts + 1)]
    return tuple(make_role(role, index) for index, role in enumerate(["target", *loads]))


ROLES = lab_roles()
MAX_LOAD_HOSTS = 252  # .3 to .254: the subnet after the bridge and the target
_LOAD_NAMESPACE = re.compile(rf"{NAME_PREFIX}load(\d*)")


def load_count(namespaces: Sequence[str]) -> int:
    """How many load machines the lab namespaces among `namespaces` stand for (0: none)."""
    count = 0
    for name in namespaces:
        match = _LOAD_NAMESPACE.fullmatch(name)
        if match:
            count = max(count, int(match[1] or 1))
    return count


def every_role(*counts: int) -> tuple[Role, ...]:
    """The machines of labs of each of `counts` load machines, each once (what a `down`
    must look for when it cannot be sure which lab was up)."""
    roles: dict[str, Role] = {}
    for count in counts:
        for role in lab_roles(max(1, count)):
            roles.setdefault(role.namespace, role)
    return tuple(roles.values())


class LabFiles:
    """Every path the lab uses, all under its folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()

    @property
    def client_key(self) -> Path:
        """The private key orch logs in with."""
        return self.root / "client_ed25519"

    @property
    def authorized_keys(self) -> Path:
        """The key every sshd accepts (the client key's public half)."""
        return self.root / "authorized_keys"

    @property
    def known_hosts(self) -> Path:
        """Every host key under its address, so strict checking works out of the box."""
        return self.root / "known_hosts"

    @property
    def state(self) -> Path:
        """What `up` made (for `down` and `status`)."""
        return self.root / "lab.json"

    @property
    def work(self) -> Path:
        """Parent of the hosts' work directories."""
        return self.root / "work"

    @property
    def shim_dir(self) -> Path:
        """Holds a `python3` link when this Python's folder has none."""
        return self.root / "bin"

    def host_key(self, role: Role) -> Path:
        """The role's sshd host key."""
        return self.root / f"ssh_host_{role.role}_ed25519_key"

    def sshd_config(self, role: Role) -> Path:
        """The role's sshd config."""
        return self.root / f"sshd_{role.role}_config"

    def pid_file(self, role: Role) -> Path:
        """Where the role's sshd writes its PID."""
        return self.root / f"sshd_{role.role}.pid"

    def sshd_log(self, role: Role) -> Path:
        """The role's sshd log."""
        return self.root / f"sshd_{role.role}.log"

    def workdir(self, role: Role) -> Path:
        """The role's orch workdir (the namespaces share this filesystem, so one each)."""
        return self.work / role.role

    def generated(self, roles: Sequence[Role] = ROLES) -> list[Path]:
        """Every file `up` writes, except the work directories."""
        files = [
            self.client_key,
            self.client_key.with_suffix(".pub"),
            self.authorized_keys,
            self.known_hosts,
            self.state,
            self.shim_dir / "python3",
        ]
        for role in roles:
            key = self.host_key(role)
            files += [
                key,
                key.with_name(key.name + ".pub"),
                self.sshd_config(role),
                self.pid_file(role),
                self.sshd_log(role),
            ]
        return files
