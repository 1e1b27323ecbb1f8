"""The `orch` command line: parse options, call the modules, print. No logic lives here."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from orchestrator.deploy.deploy import deploy
from orchestrator.errors import HostError, UserError
from orchestrator.hosts.connect import close_hosts, open_hosts
from orchestrator.inventory import describe_inventory, load_inventory
from orchestrator.lab.cli import lab_app
from orchestrator.load.points import PROFILES, resolve_profile
from orchestrator.load.tool import LOAD_TOOL_NAMES, check_combination
from orchestrator.report.compare import compare_runs
from orchestrator.report.markdown import REPORT_FILES, write_reports
from orchestrator.results.cell import RunDirectory
from orchestrator.run.execute import (
    DEFAULT_BASELINE,
    Interrupted,
    RunInterrupted,
    RunOptions,
    RunStopped,
    default_repetitions,
    execute_run,
    resume_run,
)
from orchestrator.run.progress import RunProgress
from orchestrator.run.resume import plan_resumption
from orchestrator.servers import MATRICES, select_servers

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmark epoll vs io_uring servers with the load tool kept apart.",
)
app.add_typer(lab_app, name="lab")
console = Console(highlight=False)

InventoryOption = Annotated[Path, typer.Option("--inventory", "-i", help="Host inventory file.")]
MatrixOption = Annotated[
    str | None, typer.Option("--matrix", help=f"Server set: {', '.join(MATRICES)}.")
]
AcceptKeysOption = Annotated[
    bool,
    typer.Option(
        "--accept-new-host-keys",
        help="Trust and record SSH host keys not yet known (a changed key is always refused).",
    ),
]
ServerOption = Annotated[
    list[str] | None,
    typer.Option("--server", help="A server to include (repeatable), e.g. c-epoll."),
]


def _say(line: str) -> None:
    # soft_wrap: a line longer than the terminal stays one line (paths, PIDs, copyable).
    console.print(escape(line), soft_wrap=True)


@app.command()
def check(inventory: InventoryOption = Path("hosts.yaml")) -> None:
    """Validate an inventory file and print what orch understood from it."""
    inv = load_inventory(inventory)
    console.print(f"{escape(str(inventory))}: valid")
    for line in describe_inventory(inv):
        _say(f"  {line}")


@app.command("deploy")
def deploy_command(
    inventory: InventoryOption = Path("hosts.yaml"),
    matrix: MatrixOption = None,
    server: ServerOption = None,
    accept_new_host_keys: AcceptKeysOption = False,
) -> None:
    """Sync and build the servers on the target and make sure k6 is on the load host."""
    inv = load_inventory(inventory)
    servers = select_servers(matrix, server or [])
    target, load = open_hosts(inv, accept_new_host_keys)
    try:
        result = deploy(inv, target, load, servers, _say)
    finally:
        close_hosts(target, load)
    _say(f"target {target.name}: {result.target_facts.summary()}")
    _say(
        f"  servers: built {', '.join(result.built) or 'nothing'}; "
        f"up to date {', '.join(result.up_to_date) or 'none'}"
    )
    for name in result.build_failures:
        _say(f"  build FAILED: {name}")
    if result.io_uring_problem:
        _say(f"  io_uring servers will fail here: {result.io_uring_problem}")
    _say(f"load {load.name}: k6 {result.k6_path} ({result.k6_source})")
    if result.build_failures:
        raise typer.Exit(1)


@app.command()
def run(
    inventory: Annotated[
        Path | None, typer.Option("--inventory", "-i", help="Host inventory file (hosts.yaml).")
    ] = None,
    matrix: MatrixOption = None,
    server: ServerOption = None,
    profile: Annotated[
        str | None, typer.Option(help=f"Load profile: {', '.join(PROFILES)} (default seed).")
    ] = None,
    duration: Annotated[
        str | None, typer.Option(help="Stretch the profile to this total duration, e.g. 30s.")
    ] = None,
    vus: Annotated[
        int | None, typer.Option(help="Scale the profile to peak at this many VUs.")
    ] = None,
    repetitions: Annotated[
        int | None,
        typer.Option(min=1, help="Measurements per server (default: 3 for seed, else 1)."),
    ] = None,
    warmup: Annotated[
        str | None,
        typer.Option(help="Unmeasured load before each cell, e.g. 2s; 0 for none."),
    ] = None,
    load_tool: Annotated[
        str | None,
        typer.Option(
            "--load-tool",
            help=f"{' | '.join(LOAD_TOOL_NAMES)} (default: the inventory's load.tool).",
        ),
    ] = None,
    pipeline: Annotated[
        int | None,
        typer.Option(help="wrk: requests pipelined per connection (wrk-pipelined: 16)."),
    ] = None,
    rate: Annotated[
        int | None,
        typer.Option(help="Open model: k6 constant arrival rate in req/s for the duration."),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(help=f"Server the % More Requests column compares with ({DEFAULT_BASELINE})."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for run directories (default results).")
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Finish an interrupted run: measure only its missing cells, with the "
            "inventory, servers, profile, tool and repetitions recorded in its run.json."
        ),
    ] = None,
    accept_new_host_keys: AcceptKeysOption = False,
) -> None:
    """Deploy if needed, measure every selected server, and print the seed's table."""
    if resume is not None:
        given = {
            "--inventory": inventory,
            "--matrix": matrix,
            "--server": server,
            "--profile": profile,
            "--duration": duration,
            "--vus": vus,
            "--repetitions": repetitions,
            "--warmup": warmup,
            "--load-tool": load_tool,
            "--pipeline": pipeline,
            "--rate": rate,
            "--out": out,
        }
        clash = [name for name, value in given.items() if value is not None]
        if clash:
            raise UserError(
                f"--resume: {', '.join(clash)} cannot be combined with it (a resumed run "
                "keeps the options recorded in its run.json)"
            )
        _resume(resume, baseline, accept_new_host_keys)
        return
    inv = load_inventory(inventory or Path("hosts.yaml"))
    servers = select_servers(matrix, server or [])
    names = {s.name for s in servers}
    if baseline is not None and baseline not in names and baseline != DEFAULT_BASELINE:
        raise UserError(f"--baseline: '{baseline}' is not among the servers of this run")
    profile_name = profile or "seed"
    prof = resolve_profile(profile_name, duration, vus, warmup, rate)
    tool_name = load_tool or inv.load.tool
    depth = check_combination(tool_name, pipeline, prof)
    reps = repetitions or default_repetitions(profile_name)
    label = matrix or (server[0] if server and len(server) == 1 else "custom")
    opts = RunOptions(
        servers=servers,
        profile=prof,
        repetitions=reps,
        baseline=baseline or DEFAULT_BASELINE,
        out=out or Path("results"),
        label=f"{label}-{profile_name}",
        accept_new_host_keys=accept_new_host_keys,
        load_tool=tool_name,
        pipeline=depth,
    )
    total = len(servers) * reps
    _say(
        f"{total} cells: {', '.join(s.name for s in servers)} x {reps}, "
        f"profile {prof.name} ({prof.duration:g} s each after a {prof.warmup_seconds:g} s "
        f"warm-up), load tool {tool_name}" + (f" (pipeline {depth})" if depth > 1 else "")
    )
    _measure_and_report(
        opts,
        total,
        lambda progress: execute_run(inv, opts, _say, progress.cell_started, progress.cell_done),
    )


def _resume(path: Path, baseline: str | None, accept_new_host_keys: bool) -> None:
    plan = plan_resumption(path, accept_new_host_keys)
    opts = plan.options
    if baseline is not None:
        opts.baseline = baseline
    _say(
        f"resuming {plan.run_dir.path}: {len(plan.missing)} of {len(plan.planned)} cells "
        f"missing ({', '.join(cell.key for cell in plan.missing)})"
    )
    _measure_and_report(
        opts,
        len(plan.missing),
        lambda progress: resume_run(
            plan.run_dir,
            plan.inventory,
            opts,
            plan.missing,
            _say,
            progress.cell_started,
            progress.cell_done,
        ),
    )


def _measure_and_report(
    opts: RunOptions, total: int, measure: Callable[[RunProgress], RunDirectory]
) -> None:
    """Run `measure` under a progress bar, render the report, and exit as the run ended:
    0 all cells measured, 1 a cell failed or a host was lost, 128+N on signal N."""
    cell_seconds = opts.profile.duration + opts.profile.warmup_seconds
    try:
        with RunProgress(console, total, cell_seconds) as progress:
            run_dir = measure(progress)
    except RunInterrupted as stop:
        if stop.run_dir is None:
            _fail_line(f"interrupted by {stop.signal_name} before any cell ran")
            raise typer.Exit(stop.exit_code) from None
        write_reports(stop.run_dir, opts.baseline)
        _fail_line(
            f"interrupted by {stop.signal_name}; measured cells kept in {stop.run_dir.path} "
            f"(finish with: orch run --resume {stop.run_dir.path})"
        )
        raise typer.Exit(stop.exit_code) from None
    except RunStopped as stop:
        write_reports(stop.run_dir, opts.baseline)
        _fail_line(
            f"run stopped: {stop.reason}; measured cells kept in {stop.run_dir.path} "
            f"(finish with: orch run --resume {stop.run_dir.path})"
        )
        raise typer.Exit(1) from None
    markdown, _ = write_reports(run_dir, opts.baseline)
    # Plain print: the table must not be wrapped at the terminal width.
    print(f"\n{markdown}\nrun directory: {run_dir.path}")
    cells = run_dir.read_cells()
    failed = [cell for cell in cells if cell.status == "failed"]
    if failed:
        _fail_line(
            f"{len(failed)} of {len(cells)} cells failed: "
            f"{', '.join(cell.key for cell in failed)} (see Failed cells in the report)"
        )
        raise typer.Exit(1)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    baseline: Annotated[str | None, typer.Option(help="Baseline server.")] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="What to print: md, csv or json.")
    ] = "md",
) -> None:
    """Re-render a run's report, CSV, JSON and plots from its directory; print one of them."""
    if output_format not in REPORT_FILES:
        raise UserError(f"--format: unknown format '{output_format}' (known: md, csv, json)")
    directory = RunDirectory.open(run_dir)
    write_reports(directory, baseline)
    print((directory.path / REPORT_FILES[output_format]).read_text(encoding="utf-8"), end="")


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="The earlier (reference) run directory.")],
    run_b: Annotated[Path, typer.Argument(help="The run compared with it.")],
) -> None:
    """Per-server differences from RUN_A to RUN_B, with 95% intervals and significance."""
    print(compare_runs(RunDirectory.open(run_a), RunDirectory.open(run_b)))


@app.command("list")
def list_runs(
    out: Annotated[Path, typer.Option(help="Folder of run directories.")] = Path("results"),
) -> None:
    """List run directories: status, cells measured, profile, load tool, repetitions."""
    runs = [p for p in sorted(out.iterdir()) if (p / "run.json").is_file()] if out.is_dir() else []
    if not runs:
        _say(f"no runs in {out}")
        return
    for path in runs:
        run = RunDirectory(path).read_run()
        measured = len(list((path / "cells").glob("*/*/result.json")))
        planned = len(run.get("plan", []))
        tool = run.get("load_tool", {}).get("name", "k6")
        _say(
            f"{path.name}  {run.get('status', '?'):<11} {measured}/{planned} cells  "
            f"{run.get('profile', {}).get('name', '?')}  {tool}  "
            f"x{run.get('repetitions', 1)}"
        )


def _fail_line(message: str) -> None:
    # Plain print: rich would wrap the one-line message at the terminal width.
    print(f"orch: {message}", file=sys.stderr, flush=True)


def _fail(message: str, code: int) -> None:
    _fail_line(f"error: {message}")
    sys.exit(code)


def main() -> None:
    """Entry point: user errors become one line and exit status 2, never a traceback."""
    try:
        app()  # standalone: click itself reports usage errors with exit status 2
    except UserError as exc:
        _fail(str(exc), exc.exit_code)
    except HostError as exc:
        _fail(str(exc), 1)
    except (KeyboardInterrupt, Interrupted) as exc:
        name = str(exc) if isinstance(exc, Interrupted) else "SIGINT"
        _fail_line(f"interrupted by {name}")
        sys.exit(128 + signal.Signals[name].value)
