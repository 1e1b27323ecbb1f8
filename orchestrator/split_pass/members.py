"""The load hosts of a run that splits its load: each with its host, CPUs, share, its own
load tool (paths on that host), what it dials, and orch's load agent there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.deploy.load_provision import LoadDeployment
from orchestrator.errors import UserError
from orchestrator.hosts.base import Host
from orchestrator.inventory import Inventory
from orchestrator.load import wrk
from orchestrator.load.descriptors import raise_for_points
from orchestrator.load.k6 import K6
from orchestrator.load.points import LoadPoint, Profile, connections_text
from orchestrator.load.split import Share, host_point, shares, split_count
from orchestrator.load.tool import LoadTool
from orchestrator.load.wrk import Wrk


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


def load_model(
    tool: LoadTool, members: Sequence[LoadMember], profile: Profile, point: LoadPoint
) -> str:
    """The load model of `point` in words, as the record and the report name it; with
    several load hosts (`members`), how they share it."""
    if not members:
        return tool.model(profile, point)
    parts = [m.share for m in members]
    if tool.kind == "k6":
        each = ", ".join(f"{m.name} {m.share.fraction}" for m in members)
        return (
            f"{tool.model(profile, point)}; split across {len(members)} load "
            f"hosts by k6 execution segments ({each}), started together"
        )
    counts = split_count(point.vus, parts)
    each = ", ".join(
        f"{m.name} {count} on {wrk.threads_for(m.cpus, count)} thread(s)"
        for m, count in zip(members, counts, strict=True)
    )
    depth = f", {point.pipeline} requests pipelined per connection" if point.pipeline > 1 else ""
    return (
        f"closed loop: wrk, {connections_text(point.vus)} for "
        f"{wrk.seconds_text(profile)} s{depth}, "
        f"split across {len(members)} load hosts ({each}), started together"
    )
