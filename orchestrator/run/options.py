"""`orch run`'s options turned into RunOptions, with one-line errors for bad combinations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import UserError
from orchestrator.inventory import Inventory
from orchestrator.load.choice import check_combination, profile_point
from orchestrator.load.points import resolve_profile
from orchestrator.run.execute import RunOptions
from orchestrator.servers import select_servers

DEFAULT_BASELINE = "rust-epoll"  # the seed's baseline row (epoll, Rust)


@dataclass(frozen=True)
class RunRequest:
    """The options of `orch run` as given (None: not given)."""

    matrix: str | None = None
    servers: tuple[str, ...] = ()
    profile: str | None = None
    duration: str | None = None
    vus: int | None = None
    repetitions: int | None = None
    warmup: str | None = None
    load_tool: str | None = None
    pipeline: int | None = None
    rate: int | None = None
    baseline: str | None = None
    out: Path | None = None
    accept_new_host_keys: bool = False


def default_repetitions(profile_name: str) -> int:
    """Repetitions when the user gives none: 3 for the seed profile, else 1."""
    return 3 if profile_name == "seed" else 1


def build_options(inv: Inventory, request: RunRequest) -> RunOptions:
    """The run `request` asks for, checked against the catalogue and the inventory."""
    servers = select_servers(request.matrix, request.servers)
    names = {s.name for s in servers}
    baseline = request.baseline
    if baseline is not None and baseline not in names and baseline != DEFAULT_BASELINE:
        raise UserError(f"--baseline: '{baseline}' is not among the servers of this run")
    profile_name = request.profile or "seed"
    profile = resolve_profile(
        profile_name, request.duration, request.vus, request.warmup, request.rate
    )
    tool = request.load_tool or inv.load.tool
    depth = check_combination(tool, request.pipeline, request.rate)
    single = request.servers[0] if len(request.servers) == 1 else "custom"
    label = request.matrix or single
    return RunOptions(
        servers=servers,
        profile=profile,
        points=[profile_point(tool, profile, request.rate, depth)],
        repetitions=request.repetitions or default_repetitions(profile_name),
        baseline=baseline or DEFAULT_BASELINE,
        out=request.out or Path("results"),
        label=f"{label}-{profile_name}",
        load_tool=tool,
        pipeline=depth,
        accept_new_host_keys=request.accept_new_host_keys,
    )


def refuse_with_resume(given: dict[str, object]) -> None:
    """--resume keeps the options its run recorded: any other measurement option is an error."""
    clash = [name for name, value in given.items() if value is not None]
    if clash:
        raise UserError(
            f"--resume: {', '.join(clash)} cannot be combined with it (a resumed run "
            "keeps the options recorded in its run.json)"
        )
