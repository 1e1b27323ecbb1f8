"""What every cell of a run shares: the hosts, what was deployed, the profile, the load
tool and the run directory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from orchestrator.catalogue.spec import ServerSpec
from orchestrator.deploy.deploy import DeployResult
from orchestrator.hosts.base import Host
from orchestrator.inventory import Inventory
from orchestrator.load.points import Profile
from orchestrator.load.tool import LoadTool
from orchestrator.results.rundir import RunDirectory
from orchestrator.results.verification import Verification
from orchestrator.split_pass.members import LoadMember


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
