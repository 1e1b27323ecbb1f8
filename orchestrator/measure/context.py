"""What every cell of a run shares: the hosts, what was deployed, the profile, the load
tool and the run directory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from orchestrator.catalogue.spec import ServerSpec
from orchestrator.deploy.deploy import DeployResult
from orchestrator.hosts.base import Host
from orchestrator.inventory import Inventory
from orchestrator.load.points import Profile
from orchestrator.load.tool import LoadTool
from orchestrator.measure.cost_plan import CostPlan
from orchestrator.results.cell_result import CellKey
from orchestrator.results.rundir import RunDirectory
from orchestrator.results.verification import Verification
from orchestrator.split_pass.members import LoadMember


@dataclass(frozen=True)
class CellPaths:
    """Where one cell keeps its files: its folder under the hosts' workdirs (`remote`,
    relative), the server's folder on the target, and the cell's folder here."""

    remote: str
    target_folder: str
    local: Path

    @property
    def server_log(self) -> str:
        """The server's log on the target."""
        return f"{self.target_folder}/server.log"


@dataclass
class RunContext:
    """What every cell of a run shares."""

    inventory: Inventory
    target: Host
    load: Host
    deployed: DeployResult
    profile: Profile
    tool: LoadTool
    run_dir: RunDirectory
    run_id: str
    interface: str | None
    load_nofile: int | None = None  # the load tool's descriptor limit, raised when needed
    # Verify a server (once: later calls return the first answer), before its first cell.
    verify: Callable[[RunContext, ServerSpec], Verification] | None = None
    allow_unverified: bool = False  # measure servers that failed verify anyway
    server_port: int | None = None  # the fixed port of the server at hand, if it has one
    load_members: list[LoadMember] = field(default_factory=list)  # when the load is split
    cost_plan: CostPlan | None = None  # what each cell measures of the target's cost

    @property
    def observer_cpus(self) -> list[int] | None:
        """Where orch's own observers (perf) run on the target: off the server's CPUs,
        on a counted CPU if there is one, else a load CPU of this machine (None: anywhere)."""
        plan = self.cost_plan
        if plan is None:
            return None
        pins = set(self.inventory.target.cpus)
        for pool in (plan.record.counted_cpus, plan.record.left_out_cpus):
            free = [cpu for cpu in pool if cpu not in pins]
            if free:
                return free
        return None

    def cell_paths(self, server: str, point: str, repetition: int) -> CellPaths:
        """The folders of one cell."""
        remote = f"runs/{self.run_id}/{server}/{point}/{repetition}"
        return CellPaths(
            remote=remote,
            target_folder=f"{self.deployed.target_workdir}/{remote}",
            local=self.run_dir.cell_dir(CellKey(server=server, point=point, repetition=repetition)),
        )

    def for_server(self, server: ServerSpec) -> RunContext:
        """This context for cells of `server` (its fixed port, when it has one)."""
        return replace(self, server_port=server.entry.port)

    @property
    def port(self) -> int:
        """The port the server at hand listens on (the inventory's, unless it has its own)."""
        return self.server_port or self.inventory.target.listen.port

    @property
    def url(self) -> str:
        """What the load tool requests."""
        return f"http://{self.inventory.dial_address}:{self.port}/"
