"""One pass of the load tool for a cell: on the load host, pinned, or on every load host
at once when the load is split (each its share, merged exactly)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import HostError
from orchestrator.hosts.base import describe_exit, last_line
from orchestrator.load.descriptors import with_limit
from orchestrator.load.result import LoadResult
from orchestrator.measure.context import RunContext
from orchestrator.results.cell_result import LoadCpu
from orchestrator.results.rundir import write_atomic
from orchestrator.split_pass.together import PassRequest, run_together

LOAD_TIME_LIMIT_MARGIN = 60.0


@dataclass(frozen=True)
class LoadRun:
    """What one pass measured: the (merged) result, the load's CPU, each host's result
    when the load was split."""

    result: LoadResult
    cpu: LoadCpu | None
    by_host: list[LoadResult]


def run_load(ctx: RunContext, pass_: PassRequest, remote_dir: str, local_dir: Path) -> LoadRun:
    """One pass of the load tool, pinned; its raw output kept under `local_dir`. With
    several load hosts, every one runs its share at once."""
    if ctx.load_members:
        split = run_together(ctx.run_dir, ctx.load_members, pass_, remote_dir, local_dir)
        return LoadRun(split.merged, split.cpu, split.by_host)
    return _run_on_one_host(ctx, pass_, remote_dir, local_dir)


def _run_on_one_host(
    ctx: RunContext, pass_: PassRequest, remote_dir: str, local_dir: Path
) -> LoadRun:
    tool, prefix, point, profile = ctx.tool, pass_.prefix, pass_.point, pass_.profile
    cpus = ctx.inventory.first_load.cpus
    load_dir = f"{ctx.deployed.load_workdir}/{remote_dir}"
    command = tool.command(ctx.url, profile, point, load_dir, prefix)
    ran = ctx.load.run(
        with_limit(command.argv, ctx.load_nofile),
        env=command.env,
        cpus=cpus,
        timeout=profile.duration + LOAD_TIME_LIMIT_MARGIN,
        check=False,
    )
    write_atomic(local_dir / f"{prefix}{tool.raw_output_name}", ran.stdout + ran.stderr)
    if not tool.succeeded(ran):
        what = "warm-up" if prefix else "load"
        last = last_line(ran.stderr or ran.stdout)
        raise HostError(
            f"{tool.kind} {what} pass on {ctx.load.name} {describe_exit(ran.exit_code)}: {last}"
        )
    if command.after is not None:
        _after(ctx, command.after, pass_.server, tool.kind)
    summary = None
    if command.summary_path is not None:
        local_summary = local_dir / Path(command.summary_path).name
        ctx.load.get_file(command.summary_path, local_summary)
        summary = local_summary.read_text(encoding="utf-8")
    source = f"{pass_.server} {tool.kind}"
    parsed = tool.parse(ran.stdout, summary, profile, point, source)
    result = parsed.model_copy(update={"host": ctx.load.name, "cpu_seconds": ran.cpu_seconds})
    cpu = None
    if ran.cpu_seconds is not None:
        cpu = LoadCpu(cpu_seconds=ran.cpu_seconds, wall_seconds=ran.wall_seconds, cpus=len(cpus))
    return LoadRun(result, cpu, [])


def _after(ctx: RunContext, argv: list[str], server: str, kind: str) -> None:
    """The tool's step after its pass, on the load host's load CPUs (h2load: its log
    reduced there), so the server's core stays as idle as the pass left it."""
    cpus = ctx.inventory.first_load.cpus
    done = ctx.load.run(argv, cpus=cpus, timeout=LOAD_TIME_LIMIT_MARGIN * 5, check=False)
    if not done.ok:
        last = last_line(done.stderr or done.stdout)
        raise HostError(
            f"{server} {kind}: reducing its samples on {ctx.load.name} "
            f"{describe_exit(done.exit_code)}: {last}"
        )
