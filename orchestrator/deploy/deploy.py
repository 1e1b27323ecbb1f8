"""Deploy: sync the servers to the target, check toolchains, build, provision k6, record facts."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from orchestrator.deploy.cpus import check_cpus_present
from orchestrator.deploy.facts import collect_facts
from orchestrator.deploy.load_hosts import LoadDeployment, provision_load_hosts
from orchestrator.deploy.sync import SyncReport, sync_tree
from orchestrator.deploy.toolchains import check_toolchains, zig_command
from orchestrator.errors import UserError
from orchestrator.facts import HostFacts
from orchestrator.hosts.base import Host
from orchestrator.inventory import Inventory
from orchestrator.paths import project_root
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
    load_hosts: dict[str, LoadDeployment] = field(default_factory=dict)  # every load host

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


def deploy(
    inv: Inventory,
    target: Host,
    load: Host | Sequence[Host],
    servers: Sequence[ServerSpec],
    log: Log,
) -> DeployResult:
    """Bring the hosts to the state a run needs; a second call with no change rebuilds
    nothing. `load`: the load host, or every load host in the inventory's order."""
    loads = [load] if isinstance(load, Host) else list(load)
    check_cpus_present(inv, target, loads)
    root = project_root()
    target_workdir = target.expand(inv.workdir_of(inv.target.host))
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

    target_facts = collect_facts(
        target,
        {
            "cc": ["cc", "--version"],
            "cargo": ["cargo", "--version"],
            "zig": [*zig, "version"],
            "make": ["make", "--version"],
        },
    )
    load_hosts = provision_load_hosts(inv, loads, target, target_facts)
    first = load_hosts[loads[0].name]
    return DeployResult(
        target_workdir=target_workdir,
        load_workdir=first.workdir,
        sync=sync,
        built=built,
        up_to_date=fresh,
        build_failures=failures,
        k6_path=first.k6_path,
        k6_source=first.k6_source,
        k6_script=first.k6_script,
        target_facts=target_facts,
        load_facts=first.facts,
        toolchains=toolchains.versions,
        load_hosts=load_hosts,
    )
