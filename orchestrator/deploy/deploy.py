"""Deploy: check toolchains, sync and build the servers on the target, provision k6, record
facts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.catalogue.entry import fill
from orchestrator.catalogue.spec import ServerSpec
from orchestrator.deploy.build import ServersOnTarget, prepare_servers
from orchestrator.deploy.cpus import check_cpus_present
from orchestrator.deploy.facts_probe import collect_facts
from orchestrator.deploy.load_provision import LoadDeployment, provision_load_hosts
from orchestrator.deploy.toolchains import check_toolchains, zig_command
from orchestrator.errors import UserError
from orchestrator.facts import HostFacts
from orchestrator.hosts.base import Host
from orchestrator.inventory import Inventory
from orchestrator.log import Log


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
    load_hosts: dict[str, LoadDeployment] = field(default_factory=dict)  # every load host

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
    target_workdir = target.expand(inv.workdir_of(inv.target.host))
    zig = zig_command(target)

    toolchains = check_toolchains(target, servers, zig)
    problem = toolchains.problem(target)
    if problem:
        raise UserError(problem)
    on_target = prepare_servers(target, servers, target_workdir, log)

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
    load_hosts = provision_load_hosts(inv, loads, target, target_facts)
    first = load_hosts[loads[0].name]
    return DeployResult(
        target_workdir=target_workdir,
        load_workdir=first.workdir,
        servers=on_target,
        k6_path=first.k6_path,
        k6_source=first.k6_source,
        k6_script=first.k6_script,
        target_facts=target_facts,
        load_facts=first.facts,
        toolchains=toolchains.versions,
        load_hosts=load_hosts,
    )
