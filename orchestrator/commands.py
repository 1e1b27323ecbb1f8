"""What each `orch` command does, composed from the phase packages; cli.py only declares
the options, calls one of these and prints what it returns."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from rich.console import Console

from orchestrator.catalogue.read import load_catalogue
from orchestrator.deploy.deploy import deploy
from orchestrator.errors import UserError
from orchestrator.hosts.base import Host
from orchestrator.hosts.connect import open_host, open_run_hosts
from orchestrator.inventory import describe_inventory, load_inventory
from orchestrator.load.split import describe_shares
from orchestrator.log import Log, fail_line
from orchestrator.report.compare import compare_runs
from orchestrator.report.write import FORMATS, write_reports
from orchestrator.results.rundir import RUN_FILE, RunDirectory
from orchestrator.run.execute import execute_run, resume_run
from orchestrator.run.options import RunOptions, RunRequest, build_options
from orchestrator.run.progress import RunProgress
from orchestrator.run.resume import plan_resume
from orchestrator.run.signals import RunInterrupted, RunStopped
from orchestrator.run.system_state import system_hosts
from orchestrator.system.changes import saved_change_sets
from orchestrator.system.session import SystemHost, read_hosts, reset_hosts, tune_hosts
from orchestrator.system.show import reset_lines, show_lines, tune_lines
from orchestrator.system.warning_rules import find_warnings

AUTO_RATE_STEPS_GUESS = 10  # rates a search usually tries: for the first time estimate


def check_inventory(inventory: Path) -> list[str]:
    """What orch understood from an inventory (raises UserError when it is invalid)."""
    inv = load_inventory(inventory)
    lines = [
        *describe_inventory(inv, describe_shares(inv)),
        *load_catalogue(inv, inventory).describe(),
    ]
    return [f"{inventory}: valid", *(f"  {line}" for line in lines)]


def deploy_servers(
    inventory: Path, matrix: str | None, servers: list[str], accept_keys: bool, say: Log
) -> int:
    """Sync and build on the target, provision the load hosts; exit status 1 when a build
    failed."""
    inv = load_inventory(inventory)
    chosen = load_catalogue(inv, inventory).select(matrix, servers)
    hosts = open_run_hosts(inv, accept_keys)
    target = hosts.target
    try:
        result = deploy(inv, target, hosts.loads, chosen, say)
    finally:
        hosts.close()
    say(f"target {target.name}: {result.target_facts.summary()}")
    say(
        f"  servers: built {', '.join(result.built) or 'nothing'}; "
        f"up to date {', '.join(result.up_to_date) or 'none'}"
    )
    for name in result.build_failures:
        say(f"  build FAILED: {name}")
    for name, why in result.servers.unavailable.items():
        say(f"  cannot start {name}: {why}")
    if result.io_uring_problem:
        say(f"  io_uring servers will fail here: {result.io_uring_problem}")
    for name, here in result.load_hosts.items():
        agent = f"; load agent {here.agent}" if here.agent else ""
        say(f"load {name}: k6 {here.k6_path} ({here.k6_source}){agent}")
    return 1 if result.build_failures or result.servers.unavailable else 0


def run_benchmark(inventory: Path, request: RunRequest, console: Console, say: Log) -> int:
    """`orch run`: measure every cell, then print and save the report; the exit status."""
    inv = load_inventory(inventory)
    opts = build_options(inv, load_catalogue(inv, inventory), request)
    steps = AUTO_RATE_STEPS_GUESS if opts.auto_rates else len(opts.points)
    total = len(opts.servers) * steps * opts.repetitions
    profile = opts.profile
    depth = f" (pipeline {opts.pipeline})" if opts.pipeline > 1 else ""
    points = "" if len(opts.points) == 1 else f" x {len(opts.points)} load points"
    if opts.auto_rates:
        points = f" x about {AUTO_RATE_STEPS_GUESS} rates (searched from {opts.points[0].rate})"
        total_text = "about "
    else:
        total_text = ""
    say(
        f"{total_text}{total} cells: {', '.join(s.name for s in opts.servers)}{points} x "
        f"{opts.repetitions}, profile {profile.name} ({profile.duration:g} s each after a "
        f"{profile.warmup_seconds:g} s warm-up), load tool {opts.load_tool}{depth}"
    )
    return _measure_and_report(
        opts,
        total,
        console,
        lambda progress: execute_run(inv, opts, say, progress.cell_started, progress.cell_done),
    )


def resume_benchmark(
    path: Path, baseline: str | None, accept_keys: bool, console: Console, say: Log
) -> int:
    """`orch run --resume`: measure the cells a run lacks, then report; the exit status."""
    plan = plan_resume(path, accept_keys)
    opts = plan.options
    if baseline is not None:
        opts.baseline = baseline
    record = plan.run_dir.read_run()
    missing = ", ".join(record.cell_label(cell.key) for cell in plan.missing)
    say(
        f"resuming {plan.run_dir.path}: {len(plan.missing)} of {len(plan.planned)} cells "
        f"missing ({missing})"
    )
    return _measure_and_report(
        opts,
        len(plan.missing),
        console,
        lambda progress: resume_run(
            plan.run_dir, opts, plan.missing, say, progress.cell_started, progress.cell_done
        ),
    )


def _measure_and_report(
    opts: RunOptions,
    total: int,
    console: Console,
    measure: Callable[[RunProgress], RunDirectory],
) -> int:
    """Run `measure` under a progress bar, render the report, and say how the run ended:
    0 all cells measured, 1 a cell failed or a host was lost, 128+N on signal N."""
    cell_seconds = opts.profile.duration + opts.profile.warmup_seconds
    try:
        with_point = opts.auto_rates or len(opts.points) > 1
        with RunProgress(console, total, cell_seconds, with_point) as progress:
            run_dir = measure(progress)
    except RunInterrupted as stop:
        if stop.run_dir is None:
            fail_line(f"interrupted by {stop.signal_name} before any cell ran")
            return stop.exit_code
        write_reports(stop.run_dir, baseline=opts.baseline)
        fail_line(
            f"interrupted by {stop.signal_name}; measured cells kept in {stop.run_dir.path} "
            f"(finish with: orch run --resume {stop.run_dir.path})"
        )
        return stop.exit_code
    except RunStopped as stop:
        write_reports(stop.run_dir, baseline=opts.baseline)
        fail_line(
            f"run stopped: {stop.reason}; measured cells kept in {stop.run_dir.path} "
            f"(finish with: orch run --resume {stop.run_dir.path})"
        )
        return 1
    texts = write_reports(run_dir, baseline=opts.baseline)
    # Plain print: the table must not be wrapped at the terminal width.
    print(f"\n{texts['md']}run directory: {run_dir.path}")
    record = run_dir.read_run()
    cells = run_dir.read_cells()
    failed = [cell for cell in cells if cell.status == "failed"]
    skipped = [cell for cell in cells if cell.status == "skipped"]
    if skipped:
        servers = ", ".join(dict.fromkeys(cell.server for cell in skipped))
        fail_line(
            f"{len(skipped)} of {len(cells)} cells not measured: {servers} failed verify (see "
            "Verify in the report; --allow-unverified measures them anyway)"
        )
    if failed:
        names = ", ".join(record.cell_label(cell.key) for cell in failed)
        fail_line(
            f"{len(failed)} of {len(cells)} cells failed: {names} (see Failed cells in the report)"
        )
    return 1 if failed or skipped else 0


def report_run(run_dir: Path, output_format: str, baseline: str | None) -> str:
    """`orch report`: write the chosen format (`all`: every one) and return what to print:
    that format's text (the Markdown for `all`)."""
    directory = RunDirectory.open(run_dir)
    formats = FORMATS if output_format == "all" else (output_format,)
    if output_format != "all" and output_format not in FORMATS:
        raise UserError(
            f"--format: unknown format '{output_format}' (known: {', '.join(FORMATS)}, all)"
        )
    texts = write_reports(directory, formats, baseline)
    return texts["md" if output_format == "all" else output_format]


def compare(run_a: Path, run_b: Path) -> str:
    """`orch compare`: the Markdown comparison of two runs."""
    return compare_runs(RunDirectory.open(run_a), RunDirectory.open(run_b))


def list_runs(out: Path) -> list[str]:
    """`orch list`: one line per run directory under `out`."""
    runs = [p for p in sorted(out.iterdir()) if (p / RUN_FILE).is_file()] if out.is_dir() else []
    if not runs:
        return [f"no runs in {out}"]
    lines = []
    for path in runs:
        try:
            run_dir = RunDirectory.open(path)
            record = run_dir.read_run()
            measured = len(run_dir.read_cells())
        except UserError as exc:
            lines.append(f"{path.name}  unreadable: {exc}")
            continue
        lines.append(
            f"{path.name}  {record.status:<11} {measured}/{len(record.plan)} cells  "
            f"{record.profile.name}  {record.load_tool.label}  x{record.repetitions}"
        )
    return lines


@contextlib.contextmanager
def _system_hosts(
    inventory: Path, wanted: Sequence[str], accept_keys: bool
) -> Iterator[list[SystemHost]]:
    """The inventory's target and load hosts (those `wanted`, or all), each once, opened
    and closed again."""
    inv = load_inventory(inventory)
    names = list(dict.fromkeys([inv.target.host, *(m.host for m in inv.load_members)]))
    for name in wanted:
        if name not in names:
            raise UserError(
                f"--host: '{name}' is not a target or load host in {inventory} (they are: "
                f"{', '.join(names)})"
            )
    opened: dict[str, Host] = {}
    try:
        for name in names:
            if not wanted or name in wanted:
                opened[name] = open_host(inv, name, accept_keys)
        yield system_hosts(inv, opened)
    finally:
        for host in opened.values():
            host.close()


def system_show(inventory: Path, wanted: Sequence[str], accept_keys: bool) -> list[str]:
    """`orch system`: each host's settings that decide the numbers, then the warnings."""
    with _system_hosts(inventory, wanted, accept_keys) as hosts:
        facts = read_hosts(hosts)
        saved = {host.name: saved_change_sets(host.access) for host in hosts}
    return show_lines(hosts, facts, find_warnings(facts), saved)


def system_tune(inventory: Path, wanted: Sequence[str], accept_keys: bool) -> list[str]:
    """`orch system tune`: what it changed (saved first) and left alone, per machine."""
    with _system_hosts(inventory, wanted, accept_keys) as hosts:
        return tune_lines(tune_hosts(hosts, read_hosts(hosts)))


def system_reset(inventory: Path, wanted: Sequence[str], accept_keys: bool) -> list[str]:
    """`orch system reset`: what it put back on each host."""
    with _system_hosts(inventory, wanted, accept_keys) as hosts:
        return reset_lines(reset_hosts(hosts))
