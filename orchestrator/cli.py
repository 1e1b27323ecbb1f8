"""The `orch` command line: declare the options, call one function per command, print."""

from __future__ import annotations

import faulthandler
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from orchestrator import commands
from orchestrator.errors import HostError, UserError
from orchestrator.lab.app import lab_app
from orchestrator.load.choice import LOAD_TOOL_NAMES
from orchestrator.load.points import PROFILES
from orchestrator.log import fail_line
from orchestrator.report.write import FORMATS
from orchestrator.run.options import DEFAULT_BASELINE, RunRequest, refuse_with_resume
from orchestrator.run.signals import Interrupted

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmark epoll vs io_uring servers with the load tool kept apart.",
)
app.add_typer(lab_app, name="lab")
system_app = typer.Typer(
    invoke_without_command=True,
    help="What decides the numbers on each host (frequency, turbo, idle states, SMT, "
    "isolation, accounting, interrupts), with warnings; tune and reset (root).",
)
app.add_typer(system_app, name="system")
console = Console(highlight=False)

InventoryOption = Annotated[Path, typer.Option("--inventory", "-i", help="Host inventory file.")]
MatrixOption = Annotated[
    str | None,
    typer.Option(
        "--matrix",
        help="Server set: full (the six reference servers), reference (the six and nginx), "
        "epoll, io_uring, c, rust, zig, or a matrix named in the catalogue (orch check).",
    ),
]
AcceptKeysOption = Annotated[
    bool,
    typer.Option(
        "--accept-new-host-keys",
        help="Trust and record SSH host keys not yet known (a changed key is always refused).",
    ),
]
HostOption = Annotated[
    list[str] | None,
    typer.Option(
        "--host",
        help="Only this inventory host (repeatable); default: the target and every load host.",
    ),
]
ServerOption = Annotated[
    list[str] | None,
    typer.Option(
        "--server", help="A catalogue server to include (repeatable), e.g. c-epoll or nginx."
    ),
]


def _say(line: str) -> None:
    # soft_wrap: a line longer than the terminal stays one line (paths, PIDs, copyable).
    console.print(escape(line), soft_wrap=True)


@app.command()
def check(inventory: InventoryOption = Path("hosts.yaml")) -> None:
    """Validate an inventory file and the server catalogue; print what orch understood."""
    for line in commands.check_inventory(inventory):
        _say(line)


@app.command("deploy")
def deploy_command(
    inventory: InventoryOption = Path("hosts.yaml"),
    matrix: MatrixOption = None,
    server: ServerOption = None,
    accept_new_host_keys: AcceptKeysOption = False,
) -> None:
    """Sync and build the servers on the target and make sure k6 is on the load host."""
    code = commands.deploy_servers(inventory, matrix, server or [], accept_new_host_keys, _say)
    if code:
        raise typer.Exit(code)


@app.command()
def run(
    inventory: Annotated[
        Path | None, typer.Option("--inventory", "-i", help="Host inventory file (hosts.yaml).")
    ] = None,
    matrix: MatrixOption = None,
    server: ServerOption = None,
    profile: Annotated[
        str | None,
        typer.Option(
            help=f"Load profile: {', '.join(PROFILES)} (default seed; a sweep: sweep-short "
            "with wrk and h2load, sweep with k6)."
        ),
    ] = None,
    duration: Annotated[
        str | None, typer.Option(help="Stretch the profile to this total duration, e.g. 30s.")
    ] = None,
    vus: Annotated[
        int | None, typer.Option(help="Scale the profile to peak at this many VUs.")
    ] = None,
    repetitions: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Rounds: measurements per server and point, a fixed number instead of "
            "--precision (default: rounds to a precision for a sweep and the main job; 2 "
            "per rate with --rates auto; else 3 for seed, 1 for other profiles).",
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="Add rounds until the verdict's interval at every point is this narrow "
            "for every language, e.g. 1% (±1%); default 1% for a sweep and the main job.",
        ),
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option(
            help="The wall time those rounds may take, e.g. 15m (the default); the main "
            "job's table round comes before it. With --resume: that much more time for a "
            "run to a precision, also after its budget ran out.",
        ),
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
        str | None,
        typer.Option(
            help="wrk: requests pipelined per connection (wrk-pipelined: 16); a list such as "
            "1,4,16 sweeps them (k6 and h2load send one request at a time)."
        ),
    ] = None,
    rate: Annotated[
        int | None,
        typer.Option(
            help="Open model: a constant arrival rate in req/s for the duration (k6's "
            "constant-arrival-rate; h2load --rps on one connection per 100 req/s, or on "
            "the one number of --connections given)."
        ),
    ] = None,
    connections: Annotated[
        str | None,
        typer.Option(
            help="Sweep closed-loop load points: wrk or h2load connections or k6 constant "
            "VUs, e.g. 1,10,100,1000. With --rate(s): k6's VU ceilings, or the one number "
            "of connections h2load holds every rate on (at most 100 req/s each)."
        ),
    ] = None,
    rates: Annotated[
        str | None,
        typer.Option(
            help="Sweep open-model load points (h2load or k6): arrival rates in req/s, e.g. "
            "20000,60000; or auto: step the rate up until each server (or the load tool) "
            "stops keeping up. h2load opens one connection per 100 req/s unless "
            "--connections says how many."
        ),
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
    allow_unverified: Annotated[
        bool,
        typer.Option(
            "--allow-unverified",
            help="Measure servers that fail verify (wrong answers to single, pipelined or "
            "split requests) anyway; their rows are marked unverified.",
        ),
    ] = False,
    receive_work: Annotated[
        str | None,
        typer.Option(
            help="Where the target's network receive work runs during the run: server (on "
            "the server's CPUs), other (on every other CPU) or as-is (default: the "
            "inventory's target.receive_work, as-is). Set through the interface's IRQ "
            "affinity, or RPS on lo and veth; put back when the run ends."
        ),
    ] = None,
    no_perf: Annotated[
        bool,
        typer.Option(
            "--no-perf",
            help="Do not attach perf stat to the servers (it counts syscalls, and cycles "
            "and instructions where the CPU has a PMU, over each cell's warm-up pass).",
        ),
    ] = False,
    tune: Annotated[
        bool,
        typer.Option(
            "--tune",
            help="Tune the hosts for the run as orch system tune does (root) and put them "
            "back when it ends, however it ends.",
        ),
    ] = False,
    accept_new_host_keys: AcceptKeysOption = False,
) -> None:
    """Deploy if needed, verify and measure every selected server, and print the seed's
    table."""
    if resume is not None:
        refuse_with_resume(
            {
                "--inventory": inventory,
                "--matrix": matrix,
                "--server": server,
                "--profile": profile,
                "--duration": duration,
                "--vus": vus,
                "--repetitions": repetitions,
                "--precision": precision,
                "--warmup": warmup,
                "--load-tool": load_tool,
                "--pipeline": pipeline,
                "--rate": rate,
                "--connections": connections,
                "--rates": rates,
                "--out": out,
                "--allow-unverified": allow_unverified or None,
                "--no-perf": no_perf or None,
                "--receive-work": receive_work,
                "--tune": tune or None,
            }
        )
        code = commands.resume_benchmark(
            resume, baseline, accept_new_host_keys, console, _say, budget
        )
    else:
        request = RunRequest(
            matrix=matrix,
            servers=tuple(server or ()),
            profile=profile,
            duration=duration,
            vus=vus,
            repetitions=repetitions,
            precision=precision,
            budget=budget,
            warmup=warmup,
            load_tool=load_tool,
            pipeline=pipeline,
            rate=rate,
            connections=connections,
            rates=rates,
            baseline=baseline,
            out=out,
            accept_new_host_keys=accept_new_host_keys,
            allow_unverified=allow_unverified,
            perf=not no_perf,
            receive_work=receive_work,
            tune=tune,
        )
        code = commands.run_benchmark(inventory or Path("hosts.yaml"), request, console, _say)
    if code:
        raise typer.Exit(code)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    baseline: Annotated[str | None, typer.Option(help="Baseline server.")] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            help=f"What to write and print: {', '.join(FORMATS)}, or all (prints md).",
        ),
    ] = "all",
) -> None:
    """Re-render a run's report from its directory: one format, or all of them."""
    print(commands.report_run(run_dir, output_format, baseline), end="")


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="The earlier (reference) run directory.")],
    run_b: Annotated[Path, typer.Argument(help="The run compared with it.")],
) -> None:
    """Per-server differences from RUN_A to RUN_B, with 95% intervals and significance."""
    print(commands.compare(run_a, run_b))


@app.command("list")
def list_runs(
    out: Annotated[Path, typer.Option(help="Folder of run directories.")] = Path("results"),
) -> None:
    """List run directories: status, cells measured, profile, load tool, repetitions."""
    for line in commands.list_runs(out):
        _say(line)


@system_app.callback()
def system_show(
    ctx: typer.Context,
    inventory: InventoryOption = Path("hosts.yaml"),
    host: HostOption = None,
    accept_new_host_keys: AcceptKeysOption = False,
) -> None:
    """Show each host's settings that decide a benchmark's numbers, then the warnings."""
    if ctx.invoked_subcommand is None:
        for line in commands.system_show(inventory, host or [], accept_new_host_keys):
            _say(line)


@system_app.command("tune")
def system_tune(
    inventory: InventoryOption = Path("hosts.yaml"),
    host: HostOption = None,
    accept_new_host_keys: AcceptKeysOption = False,
) -> None:
    """Governor performance on the pinned CPUs, turbo off, deep idle states off on the
    server's CPUs, irqbalance stopped; saved on each host first (root)."""
    for line in commands.system_tune(inventory, host or [], accept_new_host_keys):
        _say(line)


@system_app.command("reset")
def system_reset(
    inventory: InventoryOption = Path("hosts.yaml"),
    host: HostOption = None,
    accept_new_host_keys: AcceptKeysOption = False,
) -> None:
    """Put back everything orch changed and saved on each host (a tune, a killed run's)."""
    for line in commands.system_reset(inventory, host or [], accept_new_host_keys):
        _say(line)


def main() -> None:
    """Entry point: user errors become one line and exit status 2, never a traceback.
    SIGUSR1 prints every thread's stack on stderr and goes on: where a hung run is."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        app()  # standalone: click itself reports usage errors with exit status 2
    except UserError as exc:
        fail_line(f"error: {exc}")
        sys.exit(exc.exit_code)
    except HostError as exc:
        fail_line(f"error: {exc}")
        sys.exit(1)
    except (KeyboardInterrupt, Interrupted) as exc:
        name = str(exc) if isinstance(exc, Interrupted) else "SIGINT"
        fail_line(f"interrupted by {name}")
        sys.exit(128 + signal.Signals[name].value)
