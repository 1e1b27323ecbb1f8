"""What every cell of a run shares: the hosts, what was deployed, the profile, the load
tool and the run directory."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.deploy.deploy import DeployResult
from orchestrator.hosts.base import Host
from orchestrator.inventory import Inventory
from orchestrator.load.points import Profile
from orchestrator.load.tool import LoadTool
from orchestrator.results.rundir import RunDirectory
from orchestrator.run.load_members import LoadMember


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
    load_members: list[LoadMember] = field(default_factory=list)  # when the load is split

    @property
    def port(self) -> int:
        """The port the servers listen on."""
        return self.inventory.target.listen.port

    @property
    def url(self) -> str:
        """What the load tool requests."""
        return f"http://{self.inventory.dial_address}:{self.port}/"
