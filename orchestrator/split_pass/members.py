"""The load hosts of a run that splits its load: each with its host, CPUs, share, its own
load tool (paths on that host), what it dials, and orch's load agent there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.deploy.load_provision import LoadDeployment, provide_h2load_reducer
from orchestrator.errors import UserError
from orchestrator.hosts.base import Host
from orchestrator.inventory import Inventory
from orchestrator.load import h2load, wrk
from orchestrator.load.descriptors import raise_for_points
from orchestrator.load.h2load import H2load
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
        elif isinstance(run_tool, H2load):
            path = h2load.find_h2load(inv.load.h2load_path, host)
            tool = H2load(
                path,
                provide_h2load_reducer(host, here.workdir),
                python=host.python,
                threads=len(member.cpus),
                version=h2load.h2load_version(host, path),
                keep_log=run_tool.keep_log,
            )
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
    if tool.kind == "h2load":
        return _h2load_model(members, profile, point)
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


def _h2load_model(members: Sequence[LoadMember], profile: Profile, point: LoadPoint) -> str:
    """h2load's load model with each host's connections (and rate) named."""
    parts = [m.share for m in members]
    each = []
    for member in members:
        own = host_point(point, member.index, parts, "h2load")
        rate = f" at {own.rate:,} req/s" if own.rate is not None else ""
        threads = h2load.threads_for(member.cpus, own.vus)
        each.append(f"{member.name} {connections_text(own.vus)}{rate} on {threads} thread(s)")
    return (
        f"{h2load.describe_model(profile, point, None)}; split across {len(members)} load "
        f"hosts ({', '.join(each)}), started together"
    )
