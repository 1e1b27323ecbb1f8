"""The namespace lab: a target and one or more load "machines" on this one, over SSH.

`lab_up` builds a network namespace per machine, joined by a bridge through veth pairs
(so traffic between them crosses a real network interface, `eth0`, not loopback), starts
one sshd in each (inside its own UTS namespace, so each has its own hostname), and writes
an inventory pointing at the lab's own keys and known_hosts. `lab_down` removes all of it
again and works after a partial `lab_up`. Nothing outside the lab's folder, the
namespaces, the bridge and its veths is touched: not ~/.ssh, not the system sshd.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import UserError
from orchestrator.hosts.processes import alive, terminate
from orchestrator.lab.network import (
    NETNS_DIR,
    build_network,
    check_bridged_path,
    check_subnet_free,
    link_exists,
    namespace_pids,
    netns_exists,
    remove_network,
)
from orchestrator.lab.sshd import (
    SSHD,
    other_lab,
    sshd_answers,
    sshd_pid,
    start_sshd,
    write_keys_and_configs,
)
from orchestrator.lab.topology import (
    BRIDGE,
    BRIDGE_ADDRESS,
    MAX_LOAD_HOSTS,
    ROLES,
    LabFiles,
    Role,
    every_role,
    lab_roles,
    load_count,
)
from orchestrator.log import Log

PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without it
HOSTS_MARK = "# Written by `orch lab up`; `orch lab down` removes it."
DEFAULT_DIR = Path("lab")
DEFAULT_HOSTS_FILE = Path("lab-hosts.yaml")
LISTEN_PORT = 8000


@dataclass
class LabStatus:
    """What of the lab exists right now."""

    namespaces: dict[str, bool]
    bridge: bool
    sshd_pids: dict[str, int | None]
    reachable: dict[str, bool]
    hosts_file: str | None = None
    notes: list[str] = field(default_factory=list)
    roles: tuple[Role, ...] = ROLES

    @property
    def up(self) -> bool:
        """True when every piece is there and every sshd answers."""
        return (
            self.bridge
            and all(self.namespaces.values())
            and all(pid is not None for pid in self.sshd_pids.values())
            and all(self.reachable.values())
        )

    @property
    def anything(self) -> bool:
        """True when any piece of the lab exists."""
        return (
            self.bridge
            or any(self.namespaces.values())
            or any(pid is not None for pid in self.sshd_pids.values())
        )

    def lines(self) -> list[str]:
        """A human-readable summary."""
        state = "up" if self.up else ("partly up" if self.anything else "down")
        lines = [f"lab: {state}", f"bridge {BRIDGE} ({BRIDGE_ADDRESS}): {_yes(self.bridge)}"]
        for role in self.roles:
            pid = self.sshd_pids.get(role.role)
            lines.append(
                f"{role.role}: namespace {role.namespace} {_yes(self.namespaces[role.namespace])}, "
                f"{role.address}, sshd "
                + (f"PID {pid}" if pid is not None else "not running")
                + (", answers on port 22" if self.reachable.get(role.role) else "")
            )
        if self.hosts_file:
            lines.append(f"inventory: {self.hosts_file}")
        return lines + self.notes


def _yes(flag: bool) -> str:
    return "present" if flag else "absent"


def require_root() -> None:
    """The lab creates namespaces, links and sshds: that needs root."""
    if os.geteuid() != 0:
        raise UserError(
            "orch lab needs root (it creates network namespaces, a bridge and sshds); "
            "run it with sudo"
        )


def _require_tools() -> None:
    missing = [tool for tool in ("ip", "unshare", "setsid") if shutil.which(tool) is None]
    if not Path(SSHD).is_file():
        missing.append(f"{SSHD} (apt-get install openssh-server)")
    if missing:
        raise UserError(f"orch lab: missing {', '.join(missing)} (apt-get install iproute2)")


def _env_path(files: LabFiles) -> list[str]:
    """PATH entries for every host: this Python (k6, `python3 -m ziglang`) and cargo.

    The Makefile runs `python3 -m ziglang`, so the first python3 on PATH must be this one.
    """
    here = Path(sys.executable).parent
    dirs: list[str] = []
    python3 = here / "python3"
    if not (python3.exists() and python3.resolve() == Path(sys.executable).resolve()):
        files.shim_dir.mkdir(parents=True, exist_ok=True)
        (files.shim_dir / "python3").unlink(missing_ok=True)
        (files.shim_dir / "python3").symlink_to(sys.executable)
        dirs.append(str(files.shim_dir))
    dirs.append(str(here))
    cargo = shutil.which("cargo")
    if cargo:
        dirs.append(str(Path(cargo).parent))
    return list(dict.fromkeys(dirs))


def lab_cpus(load_hosts: int = 1) -> tuple[list[int], list[list[int]]]:
    """(target CPUs, each load machine's CPUs): the first CPU for the server, the others
    shared out among the load machines (all of them each, when there are too few)."""
    cpus = sorted(os.sched_getaffinity(0))
    rest = cpus[1:] or cpus[:1]
    if len(rest) < load_hosts:
        return cpus[:1], [list(rest) for _ in range(load_hosts)]
    size = len(rest) // load_hosts
    return cpus[:1], [rest[i * size : (i + 1) * size] for i in range(load_hosts)]


def hosts_yaml(files: LabFiles, env_path: list[str], roles: tuple[Role, ...] = ROLES) -> str:
    """The lab's inventory: every machine as a host, every load machine under `load`
    (the single-host form for one)."""
    target, loads = roles[0], roles[1:]
    target_cpus, load_cpus = lab_cpus(len(loads))
    hosts: dict[str, Any] = {}
    for role in roles:
        hosts[role.namespace] = {
            "address": role.address,
            "user": "root",
            "key_file": str(files.client_key),
            "known_hosts": str(files.known_hosts),
            "connect_timeout": 10,
            "workdir": str(files.workdir(role)),
            "env_path": list(env_path),
        }
    data = {
        "hosts": hosts,
        "target": {
            "host": target.namespace,
            "listen": {"address": "0.0.0.0", "port": LISTEN_PORT},
            "cpus": target_cpus,
            "interface": "eth0",
        },
        "load": {
            "host": loads[0].namespace,
            "tool": "k6",
            "cpus": load_cpus[0],
            "target_address": target.address,
        }
        if len(loads) == 1
        else {
            "tool": "k6",
            "target_address": target.address,
            "hosts": [
                {"host": role.namespace, "cpus": cpus}
                for role, cpus in zip(loads, load_cpus, strict=True)
            ],
        },
        "workdir": str(files.work),
    }
    return f"{HOSTS_MARK}\n{yaml.safe_dump(data, sort_keys=False)}"


def _state(files: LabFiles) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        state = json.loads(files.state.read_text())
        return state if isinstance(state, dict) else {}
    return {}


def _recorded_hosts_file(files: LabFiles) -> str | None:
    recorded = _state(files).get("hosts_file")
    return str(recorded) if recorded else None


def _recorded_roles(files: LabFiles) -> tuple[Role, ...]:
    """The machines of the lab `up` made here (one load machine when it recorded none)."""
    count = _state(files).get("load_hosts")
    return lab_roles(count if isinstance(count, int) and count >= 1 else 1)


def _present_roles(files: LabFiles) -> tuple[Role, ...]:
    """Every machine that may exist: the recorded lab's, and any lab namespace found."""
    recorded = len(_recorded_roles(files)) - 1
    present = load_count([p.name for p in NETNS_DIR.glob("orch-*")])
    return every_role(1, recorded, present)


def lab_status(lab_dir: Path = DEFAULT_DIR) -> LabStatus:
    """Look at what exists; changes nothing."""
    files = LabFiles(lab_dir)
    roles = _recorded_roles(files)
    pids = {role.role: sshd_pid(files, role) for role in roles}
    return LabStatus(
        namespaces={role.namespace: netns_exists(role.namespace) for role in roles},
        bridge=link_exists(BRIDGE),
        sshd_pids=pids,
        reachable={role.role: pids[role.role] is not None and sshd_answers(role) for role in roles},
        hosts_file=_recorded_hosts_file(files),
        roles=roles,
    )


def _written_by_lab(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as file:
            return file.readline().rstrip("\n") == HOSTS_MARK
    except (OSError, UnicodeDecodeError):
        return False


def lab_up(
    lab_dir: Path = DEFAULT_DIR,
    hosts_file: Path = DEFAULT_HOSTS_FILE,
    log: Log = print,
    load_hosts: int = 1,
) -> LabStatus:
    """Build the lab with `load_hosts` load machines and write its inventory; on any
    failure, remove what was made."""
    if not 1 <= load_hosts <= MAX_LOAD_HOSTS:
        raise UserError(f"--load-hosts: must be 1 to {MAX_LOAD_HOSTS}, got {load_hosts}")
    require_root()
    _require_tools()
    files = LabFiles(lab_dir)
    roles = lab_roles(load_hosts)
    hosts_file = hosts_file.absolute()
    if hosts_file.exists() and not _written_by_lab(hosts_file):
        raise UserError(
            f"orch lab: {hosts_file} exists and was not written by `orch lab up`; "
            "name another file with --inventory"
        )
    status = lab_status(lab_dir)
    same = status.roles == roles and status.hosts_file == str(hosts_file)
    if status.up and same and hosts_file.is_file():
        log("lab already up")
        return status
    other = other_lab(files, _present_roles(files))
    if other is not None:
        raise UserError(
            f"orch lab: a lab from {other} is up (its sshd runs in the namespaces); "
            f"bring it down first: orch lab down --dir {shlex.quote(str(other))}"
        )
    present = _present_roles(files)
    if status.anything or any(link_exists(r.veth) or netns_exists(r.namespace) for r in present):
        log("removing the remains of an earlier lab first")
        lab_down(lab_dir, hosts_file, keep_work=True, log=lambda _: None)
    check_subnet_free()
    try:
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        write_keys_and_configs(files, roles)
        state = {"hosts_file": str(hosts_file), "load_hosts": load_hosts}
        files.state.write_text(json.dumps(state) + "\n")
        build_network(log, roles)
        for role in roles:
            pid = start_sshd(files, role)
            log(f"sshd {role.namespace} (hostname {role.hostname}): PID {pid}")
        check_bridged_path(roles)
        hosts_file.write_text(hosts_yaml(files, _env_path(files), roles))
        log(f"inventory: {hosts_file}")
    except BaseException:
        with contextlib.suppress(Exception):
            lab_down(lab_dir, hosts_file, keep_work=True, log=lambda _: None)
        raise
    return lab_status(lab_dir)


def lab_down(
    lab_dir: Path = DEFAULT_DIR,
    hosts_file: Path | None = DEFAULT_HOSTS_FILE,
    keep_work: bool = False,
    log: Log = print,
) -> None:
    """Stop the sshds (by PID) and anything else left in the namespaces, delete the
    namespaces, veths and bridge, and the lab's files. Safe to run any number of times."""
    require_root()
    files = LabFiles(lab_dir)
    roles = _present_roles(files)
    other = other_lab(files, roles)
    if other is not None:
        raise UserError(
            f"orch lab: the lab that is up belongs to {other}, not {files.root}; "
            f"to remove it: orch lab down --dir {shlex.quote(str(other))}"
        )
    recorded = _recorded_hosts_file(files)
    sshds = [pid for role in roles if (pid := sshd_pid(files, role)) is not None]
    if sshds:
        log(f"stopping sshd PID {', '.join(map(str, sshds))}")
        terminate(sshds)
    for role in roles:
        if not netns_exists(role.namespace):
            continue
        # Servers or k6 left by an interrupted run, and SSH sessions.
        leftover = [pid for pid in namespace_pids(role.namespace) if alive(pid)]
        if leftover:
            log(f"stopping {len(leftover)} process(es) left in {role.namespace}")
            terminate(leftover)
    remove_network(log, roles)
    for path in files.generated(roles):
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        files.shim_dir.rmdir()
    if not keep_work and files.work.exists():
        shutil.rmtree(files.work)
    for candidate in {str(hosts_file.absolute()) if hosts_file else None, recorded} - {None}:
        path = Path(str(candidate))
        if _written_by_lab(path):
            path.unlink()
    with contextlib.suppress(OSError):
        files.root.rmdir()  # only when nothing the user keeps is left in it
