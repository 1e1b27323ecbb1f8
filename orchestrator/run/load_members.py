"""The load hosts of a run that splits its load: each with its host, CPUs, share, its own
load tool (paths on that host), what it dials, and orch's load agent there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.deploy.load_hosts import LoadDeployment
from orchestrator.errors import UserError
from orchestrator.hosts.base import CommandResult, Host
from orchestrator.inventory import Inventory
from orchestrator.load import wrk
from orchestrator.load.k6 import K6
from orchestrator.load.points import LoadPoint, Profile, connections_text
from orchestrator.load.result import LoadResult
from orchestrator.load.split import Share, host_point, shares, split_count
from orchestrator.load.tool import LoadCommand, LoadTool
from orchestrator.load.wrk import Wrk
from orchestrator.run.descriptors import raise_for_points


@dataclass(frozen=True)
class LoadMember:
    """One load host of a split run."""

    index: int
    host: Host
    cpus: list[int]
    share: Share
    tool: LoadTool
    dial: str  # the address its tool connects to
    port: int
    workdir: str
    agent: str
    nofile: int | None  # the descriptor limit its tool is started with (None: its own)
    machine: str = ""  # its boot id: load hosts with one are one machine (the lab's)

    @property
    def name(self) -> str:
        """The host's inventory name."""
        return self.host.name

    @property
    def url(self) -> str:
        """What its load tool requests."""
        return f"http://{self.dial}:{self.port}/"


def load_members(
    inv: Inventory,
    loads: Sequence[Host],
    deployed: dict[str, LoadDeployment],
    run_tool: LoadTool,
    points: Sequence[LoadPoint],
) -> list[LoadMember]:
    """Every load host of a split run, in the inventory's order (none for one host).

    Each gets the run's tool found on it (wrk is looked up there; k6 was provisioned by
    the deploy) and the descriptor limit its share of the busiest point needs.
    """
    if not inv.several_load_hosts:
        return []
    parts = shares(inv.load_members)
    members = []
    for index, (member, host) in enumerate(zip(inv.load_members, loads, strict=True)):
        here = deployed[host.name]
        if here.agent is None:
            raise UserError(f"load host {host.name}: orch's load agent was not deployed there")
        tool: LoadTool
        if run_tool.kind == "k6":
            tool = K6(here.k6_path, here.k6_script, version=here.facts.tools.get("k6", ""))
        else:
            path = wrk.find_wrk(inv.load.wrk_path, host)
            tool = Wrk(
                path,
                f"{here.workdir}/{wrk.SCRIPT}",
                threads=wrk.threads_for(member.cpus),
                version=wrk.wrk_version(host, path),
                name=run_tool.name,
                pipeline=1 if not isinstance(run_tool, Wrk) else run_tool.pipeline,
            )
        own = [host_point(point, index, parts, run_tool.kind) for point in points]
        members.append(
            LoadMember(
                index=index,
                host=host,
                cpus=member.cpus,
                share=parts[index],
                tool=tool,
                dial=inv.dial_address_of(member),
                port=inv.target.listen.port,
                workdir=here.workdir,
                agent=here.agent,
                nofile=raise_for_points(host, own),
                machine=here.facts.boot_id or host.name,
            )
        )
    return members


class SplitTool:
    """The run's load tool as the record and the report name it when the load is split:
    everything as the tool says, except that its load model says how it is split."""

    def __init__(self, tool: LoadTool, members: Sequence[LoadMember]) -> None:
        self.tool = tool
        self.members = list(members)

    @property
    def name(self) -> str:
        """What `--load-tool` called it."""
        return self.tool.name

    @property
    def kind(self) -> str:
        """The program: k6 or wrk."""
        return self.tool.kind

    @property
    def path(self) -> str:
        """The binary on the first load host."""
        return self.tool.path

    @property
    def version(self) -> str:
        """Its version line (on the first load host)."""
        return self.tool.version

    @property
    def label(self) -> str:
        """How the report names it."""
        return self.tool.label

    @property
    def raw_output_name(self) -> str:
        """File name for its console output."""
        return self.tool.raw_output_name

    def command(
        self, url: str, profile: Profile, point: LoadPoint, output_dir: str, prefix: str = ""
    ) -> LoadCommand:
        """The first host's invocation (each host's own is its member's tool's)."""
        return self.tool.command(url, profile, point, output_dir, prefix)

    def succeeded(self, result: CommandResult) -> bool:
        """Whether a run produced a usable result."""
        return self.tool.succeeded(result)

    def parse(
        self, output: str, summary: str | None, profile: Profile, point: LoadPoint, source: str
    ) -> LoadResult:
        """One run's result."""
        return self.tool.parse(output, summary, profile, point, source)

    def model(self, profile: Profile, point: LoadPoint) -> str:
        """The load model in words, with how the load hosts share it."""
        parts = [m.share for m in self.members]
        if self.kind == "k6":
            each = ", ".join(f"{m.name} {m.share.fraction}" for m in self.members)
            return (
                f"{self.tool.model(profile, point)}; split across {len(self.members)} load "
                f"hosts by k6 execution segments ({each}), started together"
            )
        counts = split_count(point.vus, parts)
        each = ", ".join(
            f"{m.name} {count} on {wrk.threads_for(m.cpus, count)} thread(s)"
            for m, count in zip(self.members, counts, strict=True)
        )
        depth = (
            f", {point.pipeline} requests pipelined per connection" if point.pipeline > 1 else ""
        )
        return (
            f"closed loop: wrk, {connections_text(point.vus)} for "
            f"{wrk.seconds_text(profile)} s{depth}, "
            f"split across {len(self.members)} load hosts ({each}), started together"
        )
