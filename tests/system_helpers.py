"""Captured trees for `orch system`'s reader and tuner: the two in tests/data/system, and
this machine's own, captured at test time by following what the collector reads."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from orchestrator.errors import HostError
from orchestrator.hosts.base import CommandResult
from orchestrator.hosts.local import LocalHost
from orchestrator.system import collector
from orchestrator.system.access import SystemAccess
from orchestrator.system.change_set import ServiceAction
from orchestrator.system.ethtool import CommandRunner
from orchestrator.system.session import SystemHost

TREES = Path(__file__).parent / "data" / "system"
INTEL = "intel-xeon-e3"
AMD = "amd-epyc-acpi"
INTERFACES = {INTEL: "eno1", AMD: "enp65s0f0np0"}


def copy_tree(name: str, tmp: Path) -> Path:
    """A writable copy of a captured tree's root (symlinks kept as links)."""
    root = tmp / name
    shutil.copytree(TREES / name / "root", root, symlinks=True)
    return root


def recorded_ethtool(name: str) -> CommandRunner:
    """ethtool as recorded for the tree `name`: `ethtool -l IF` answers with
    commands/ethtool-l.txt."""

    def run(argv: Sequence[str]) -> CommandResult:
        text = (TREES / name / "commands" / f"ethtool{argv[1]}.txt").read_text()
        return CommandResult(tuple(argv), 0, text, "", 0.0)

    return run


class RecordingServices:
    """Services of a captured tree: there is no service manager in a tree, so stops and
    starts are recorded (and one can be refused, as systemd would)."""

    def __init__(self, refuse: str | None = None, check: Path | None = None) -> None:
        self.actions: list[tuple[str, ServiceAction]] = []
        self.refuse = refuse
        self.saved_when_acting: list[bool] = []
        self._check = check

    def problem(self, service: str, action: ServiceAction) -> str | None:
        """The refusal given, if any."""
        return self.refuse

    def act(self, service: str, action: ServiceAction) -> None:
        """Record it (and whether the state file was there already)."""
        self.actions.append((service, action))
        if self._check is not None:
            self.saved_when_acting.append(self._check.exists())


class RecordingHost(LocalHost):
    """This machine, noting the order of writes and uploads (to show the state is saved
    before any setting is written)."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []

    def write_text(self, path: str, text: str) -> None:
        """Note, then write."""
        self.order.append(f"write {path}")
        super().write_text(path, text)

    def put_file(self, local: Path, remote: str) -> None:
        """Note, then upload."""
        self.order.append(f"put {remote}")
        super().put_file(local, remote)


class FailingHost(LocalHost):
    """This machine, except that writing files whose path ends with `failing` fails as
    a kernel refusing the value would (EINVAL)."""

    def __init__(self, failing: str) -> None:
        super().__init__()
        self.failing = failing

    def write_text(self, path: str, text: str) -> None:
        """Refuse the chosen file; write any other."""
        if path.endswith(self.failing):
            raise HostError(f"{self.describe()}: cannot write {path}: Invalid argument")
        super().write_text(path, text)


def tree_host(
    root: Path,
    roles: dict[str, list[int]],
    interface: str | None,
    *,
    name: str = "box",
    ethtool: CommandRunner | None = None,
    services: RecordingServices | None = None,
    host: LocalHost | None = None,
) -> SystemHost:
    """A SystemHost reading and writing the tree under `root` through LocalHost."""
    access = SystemAccess(
        host or LocalHost(name), str(root.parent / "work"), str(root), services=services
    )
    return SystemHost(name, access, roles, interface, ethtool)


def snapshot(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every file (bytes) and symlink (target) under `root`, by relative path."""
    found: dict[str, tuple[str, bytes | str]] = {}
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(directory) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_file():
                found[rel] = ("file", path.read_bytes())
    return found


def capture_tree(
    dest: Path, roles: dict[str, list[int]], interface: str | None, live: str = "/"
) -> None:
    """Copy into `dest` what the collector reads of the live tree: each file at its real
    place, each symlink on the way as the same link, each listed folder's subfolders."""
    trace: set[str] = set()
    by_cpu: dict[int, list[str]] = {}
    for role, cpus in roles.items():
        for cpu in cpus:
            by_cpu.setdefault(cpu, []).append(role)
    collector.collect_facts(live, by_cpu, interface, trace)
    for rel in sorted(trace):
        real = _replicate_links(Path(live), dest, rel)
        if real is None:
            continue
        target = dest / real.relative_to(live)
        if real.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            for entry in _subfolders(real):
                (target / entry).mkdir(exist_ok=True)
        elif real.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                target.write_bytes(real.read_bytes())
            except OSError:
                continue  # unreadable (the collector saw it as absent): leave it out


def _subfolders(folder: Path) -> list[str]:
    try:
        return [
            entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.is_symlink()
        ]
    except OSError:
        return []


def _replicate_links(live: Path, dest: Path, rel: str) -> Path | None:
    """Walk `rel` under `live`, making each symlink met the same link under `dest`;
    return the real path reached (None when it does not exist)."""
    current = live
    for part in Path(rel).parts:
        step = current / part
        if step.is_symlink():
            copy = dest / step.relative_to(live)
            copy.parent.mkdir(parents=True, exist_ok=True)
            if not copy.is_symlink():
                os.symlink(os.readlink(step), copy)
            current = Path(os.path.realpath(step))
            if not str(current).startswith(str(live)):
                return None
        else:
            current = step
    return current if current.exists() or current.is_symlink() else None
