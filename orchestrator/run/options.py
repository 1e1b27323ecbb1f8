"""`orch run`'s options turned into RunOptions, with one-line errors for bad combinations."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.catalogue.read import Catalogue
from orchestrator.catalogue.spec import ServerSpec
from orchestrator.errors import UserError
from orchestrator.inventory import Inventory
from orchestrator.load.choice import (
    AUTO,
    NO_WRK_RATES,
    WRK_NAMES,
    check_combination,
    check_h2load_requests,
    check_k6_seconds,
    open_point,
    parse_list,
    profile_point,
    sweep_points,
)
from orchestrator.load.points import LoadPoint, Profile, resolve_profile
from orchestrator.load.split import check_points
from orchestrator.run.placement import ReceiveWork, check_receive_work
from orchestrator.run.precision_options import PrecisionAsk, main_shape, precision_ask
from orchestrator.run.rate_search import START_RATE, staircase

DEFAULT_BASELINE = "rust-epoll"  # the seed's baseline row (epoll, Rust)
SWEEP_PROFILE = "sweep"  # the profile of a k6 run over load points when none is named
SHORT_SWEEP_PROFILE = "sweep-short"  # wrk's: short cells, many rounds (METHOD.md: why short cells)
AUTO_RATE_REPETITIONS = 2  # a rate search's rounds at each rate: all must keep up


@dataclass
class RunOptions:
    """What the user asked `orch run` for."""

    servers: list[ServerSpec]
    profile: Profile
    points: list[LoadPoint]
    repetitions: int
    baseline: str | None
    out: Path
    label: str
    load_tool: str  # k6, wrk, wrk-pipelined or h2load
    pipeline: int = 1  # the run's default wrk depth
    accept_new_host_keys: bool = False
    auto_rates: bool = False  # search the rate each server sustains (points grow as it goes)
    allow_unverified: bool = False  # measure servers that failed verify (rows marked)
    perf: bool = True  # perf stat on the server over each warm-up pass
    # Rounds added until the verdict is this precise (None: `repetitions` rounds), at
    # the points not in `table_points` (the main job's, measured once for the table).
    precision: PrecisionAsk | None = None
    table_points: list[str] = field(default_factory=list)
    point_profiles: dict[str, Profile] = field(default_factory=dict)
    receive_work: ReceiveWork = "as-is"  # where the target's receive work runs
    tune: bool = False  # tune the hosts for the run (orch system tune) and put them back

    def rate_point(self, rate: int) -> LoadPoint:
        """The open-model point a rate search measures at `rate`: k6 with the run's VU
        ceiling, h2load on one connection per 100 req/s."""
        return open_point(self.load_tool, rate, None, self.points[0].vus)

    @property
    def busiest_points(self) -> list[LoadPoint]:
        """The points the load hosts must hold connections for: the run's, and for a rate
        search the top of its staircase too (h2load's connections grow with the rate)."""
        if not self.auto_rates:
            return list(self.points)
        return [*self.points, self.rate_point(staircase()[-1])]


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
    pipeline: str | None = None  # one depth, or a list for a sweep
    rate: int | None = None
    connections: str | None = None  # a list: a sweep over closed-loop points
    rates: str | None = None  # a list, or `auto`: a sweep over open-model points
    baseline: str | None = None
    out: Path | None = None
    accept_new_host_keys: bool = False
    allow_unverified: bool = False
    perf: bool = True
    precision: str | None = None  # the half-width asked of the verdict, e.g. `1%`
    budget: str | None = None  # the rounds' wall time, e.g. `15m`
    tune: bool = False
    receive_work: str | None = None  # --receive-work (None: the inventory's)


def default_repetitions(profile_name: str) -> int:
    """Repetitions when the user gives none: 3 for the seed profile, else 1."""
    return 3 if profile_name == "seed" else 1


def sweep_profile(tool: str) -> str:
    """The profile of a sweep when none is named: short cells for wrk and h2load, whose
    passes start in milliseconds; k6 needs seconds (its VUs start, a low rate's CPU ticks
    add up)."""
    return SHORT_SWEEP_PROFILE if tool != "k6" else SWEEP_PROFILE


def build_options(inv: Inventory, catalogue: Catalogue, request: RunRequest) -> RunOptions:
    """The run `request` asks for, checked against the catalogue and the inventory."""
    servers = catalogue.select(request.matrix, request.servers)
    names = {s.name for s in servers}
    baseline = request.baseline
    if baseline is not None and baseline not in names and baseline != DEFAULT_BASELINE:
        raise UserError(f"--baseline: '{baseline}' is not among the servers of this run")
    tool = request.load_tool or inv.load.tool
    check_combination(tool, None, None)
    connections = _listed(request.connections, "--connections")
    pipelines = _listed(request.pipeline, "--pipeline")
    auto = request.rates is not None and request.rates.strip() == AUTO
    rates = None if auto else _listed(request.rates, "--rates")
    if request.rate is not None and (rates or auto):
        raise UserError("--rate: give one rate with --rate or a list with --rates, not both")
    if auto and tool in WRK_NAMES:
        raise UserError(NO_WRK_RATES)
    if auto and tool == "h2load" and connections:
        raise UserError(
            "--connections: with --rates auto, orch opens one h2load connection per 100 req/s"
        )
    # h2load holds one --rate on the --connections given: still the profile's one point.
    rate_on = connections if tool == "h2load" and request.rate is not None else None
    listed = connections if rate_on is None else None
    sweeping = bool(listed or rates or auto or (pipelines and len(pipelines) > 1))
    profile_name = request.profile or (sweep_profile(tool) if sweeping else "seed")
    profile = resolve_profile(
        profile_name, request.duration, request.vus, request.warmup, request.rate
    )
    table_points: list[str] = []
    point_profiles: dict[str, Profile] = {}
    if sweeping:
        first = [START_RATE] if auto else None  # a rate search adds its points as it goes
        points = sweep_points(tool, profile, connections, rates or first, pipelines)
        depth = max(point.pipeline for point in points)
        repetitions = request.repetitions or AUTO_RATE_REPETITIONS
        precision = precision_ask(
            request.precision, request.budget, request.repetitions, True, auto
        )
    else:
        depth = check_combination(tool, pipelines[0] if pipelines else None, request.rate)
        points = [profile_point(tool, profile, request.rate, depth, rate_on)]
        repetitions = request.repetitions or default_repetitions(profile_name)
        shape = main_shape(tool, points[0], request.repetitions, profile_name)
        precision = precision_ask(
            request.precision, request.budget, request.repetitions, shape is not None
        )
        if shape is not None:
            # One round of the profile for the table, short rounds for the verdict.
            points = [shape.table_point, shape.verdict_point]
            table_points = [shape.table_point.key]
            point_profiles = {shape.verdict_point.key: shape.verdict_profile}
            repetitions = 1
    if precision is not None and not table_points:
        repetitions = precision.min_rounds  # what `orch list` shows; rounds are added
    check_k6_seconds(tool, profile, [p for p in points if p.key not in point_profiles])
    check_h2load_requests(tool, profile, points)
    check_points(inv, points, tool)
    single = request.servers[0] if len(request.servers) == 1 else "custom"
    label = request.matrix or single
    return RunOptions(
        servers=servers,
        profile=profile,
        points=points,
        repetitions=repetitions,
        baseline=baseline or DEFAULT_BASELINE,
        out=request.out or Path("results"),
        label=f"{label}-{profile_name}",
        load_tool=tool,
        pipeline=depth,
        accept_new_host_keys=request.accept_new_host_keys,
        auto_rates=auto,
        allow_unverified=request.allow_unverified,
        perf=request.perf,
        precision=precision,
        table_points=table_points,
        point_profiles=point_profiles,
        tune=request.tune,
        receive_work=check_receive_work(request.receive_work, "--receive-work")
        if request.receive_work is not None
        else inv.target.receive_work,
    )


def _listed(text: str | None, option: str) -> list[int] | None:
    return None if text is None else parse_list(text, option)


def refuse_with_resume(given: dict[str, object]) -> None:
    """--resume keeps the options its run recorded: any other measurement option is an error."""
    clash = [name for name, value in given.items() if value is not None]
    if clash:
        raise UserError(
            f"--resume: {', '.join(clash)} cannot be combined with it (a resumed run "
            "keeps the options recorded in its run.json)"
        )
