"""The end of the verdict: what a run to a precision reached, and, where the verdict could
not decide (an interval includes no change, or missed the precision asked), what would:
the rounds for ±1% and ±2% from the run's own scatter, the command that runs them, their
wall time here from the run's own cell times, and the setup that would make load-bound
rows server-bound."""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence

from orchestrator.load.points import PROFILES, LoadPoint
from orchestrator.results.aggregate import Row
from orchestrator.results.cell_result import CellResult
from orchestrator.results.knees import SUSTAIN_SHARE
from orchestrator.results.precision import (
    MIN_ROUNDS,
    PairPrecision,
    cell_seconds,
    outlook,
    pair_precisions,
    rounds_needed,
    schedule_seconds,
)
from orchestrator.results.precision_record import PrecisionRecord, duration_text, percent_text
from orchestrator.results.record import RunRecord
from orchestrator.results.saturation import SATURATION_THRESHOLD

DECIDE_TARGETS = (0.01, 0.02)  # the half-widths the report prices
BUDGET_MARGIN = 1.2  # a suggested --budget leaves this much room over the estimate
PIPELINED_DEPTH = 16  # wrk-pipelined's own depth (load/wrk.py)


def precision_lines(
    record: RunRecord,
    pairs: Sequence[PairPrecision],
    costs: Mapping[tuple[str, str], float] | None = None,
) -> list[str]:
    """What the run asked and what it reached (nothing for runs of fixed rounds); where
    the budget ran out, the `--resume` that would go on to the target."""
    precision = record.precision
    if precision is None:
        return []
    why = "asked" if precision.asked else "the default without --repetitions"
    head = f"**Precision:** {precision.describe()} ({why})"
    rounds = _rounds_by_point(record, pairs)
    reached = [p for p in pairs if p.reached(precision.target, precision.min_rounds)]
    missed = [p for p in pairs if p not in reached]
    spent = duration_text(precision.spent_seconds)
    if not pairs:
        return [f"{head}: no pair of epoll and io_uring was compared."]
    if not missed:
        return [f"{head}: reached for every language at every point in {spent} ({rounds})."]
    ending = {
        "budget": f"the budget allowed {spent} of rounds",
        "reached": f"the rest stopped after {spent} (their cells kept failing)",
        "running": f"the run stopped after {spent} of rounds, before its precision or "
        "budget (`orch run --resume RUN_DIR` goes on)",
    }[precision.outcome]
    missed_text = "; ".join(
        f"at {_label(record, point)} by "
        + _join([f"{p.language} ({_width_text(p)} after {p.rounds} rounds)" for p in group])
        for point, group in _by_point(missed).items()
    )
    reached_text = ""
    if reached:
        reached_text = (
            " Reached "
            + "; ".join(
                f"at {_label(record, point)} by {_join([p.language for p in group])}"
                for point, group in _by_point(reached).items()
            )
            + "."
        )
    line = f"{head}: not reached {missed_text}: {ending} ({rounds}).{reached_text}"
    ahead = outlook(pairs, precision.target, costs or {}, precision.min_rounds)
    if precision.outcome != "reached" and ahead.seconds_left is not None:
        more = budget_text(ahead.seconds_left * BUDGET_MARGIN)
        line += (
            f" `orch run --resume RUN_DIR --budget {more}` would go on to "
            f"{percent_text(precision.target)}: about {ahead.rounds_left} more rounds, "
            f"{duration_text(ahead.seconds_left)} here."
        )
    return [line]


def _by_point(pairs: Sequence[PairPrecision]) -> dict[str, list[PairPrecision]]:
    found: dict[str, list[PairPrecision]] = {}
    for pair in pairs:
        found.setdefault(pair.point, []).append(pair)
    return found


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _width_text(pair: PairPrecision) -> str:
    width = pair.half_width
    return "no interval" if width is None else percent_text(width)


def _label(record: RunRecord, key: str) -> str:
    return record.point(key).describe()


def _rounds_by_point(record: RunRecord, pairs: Sequence[PairPrecision]) -> str:
    most: dict[str, int] = {}
    for pair in pairs:
        most[pair.point] = max(most.get(pair.point, 0), pair.rounds)
    return "rounds: " + ", ".join(f"{_label(record, k)} {n}" for k, n in most.items())


def undecided(pair: PairPrecision, precision: PrecisionRecord | None) -> bool:
    """True where the verdict could not decide: the interval includes no change (or
    there is none), or it missed the precision asked."""
    if pair.includes_no_change:
        return True
    return precision is not None and not pair.reached(precision.target, precision.min_rounds)


def _inventory_args(record: RunRecord) -> list[str]:
    words = shlex.split(record.command)
    for flag in ("-i", "--inventory"):
        if flag in words and words.index(flag) + 1 < len(words):
            return [flag, words[words.index(flag) + 1]]
    return []


def _profile_args(record: RunRecord, point: LoadPoint) -> list[str]:
    """The profile options that give this point's cells again."""
    profile = record.profile_of(point.key)
    base = profile.name.split("@")[0].rstrip("*")
    known = PROFILES.get(base)
    sweep_default = "sweep-short" if record.load_tool.kind == "wrk" else "sweep"
    default = "seed" if point.kind == "ramp" else sweep_default
    args = [] if base == default or known is None else ["--profile", base]
    if known is None or known.duration != profile.duration:
        args += ["--duration", f"{profile.duration:g}s"]
    if known is None or known.warmup_seconds != profile.warmup_seconds:
        args += ["--warmup", f"{profile.warmup_seconds:g}s"]
    if point.kind == "ramp" and (known is None or known.max_vus != profile.max_vus):
        args += ["--vus", str(profile.max_vus)]
    return args


def _point_args(record: RunRecord, point: LoadPoint) -> list[str]:
    if point.kind == "closed":
        args = ["--connections", str(point.vus)]
        depth = PIPELINED_DEPTH if record.load_tool.name == "wrk-pipelined" else 1
        return args + (["--pipeline", str(point.pipeline)] if point.pipeline != depth else [])
    if point.kind == "open":
        ceiling = record.profile_of(point.key).max_vus
        return ["--rates", str(point.rate)] + (
            ["--connections", str(point.vus)] if point.vus != ceiling else []
        )
    return []


def rerun_command(
    record: RunRecord,
    point: LoadPoint,
    pairs: Sequence[PairPrecision],
    target: float,
    rounds: int,
    seconds: float | None,
) -> str:
    """The `orch run` that measures these pairs at this point again: to the precision
    within a budget where it can, else (the seed's ramp) the rounds themselves."""
    servers = list(dict.fromkeys(s for p in pairs for s in (p.epoll, p.io_uring)))
    words = ["orch", "run", *_inventory_args(record)]
    for server in servers:
        words += ["--server", server]
    words += _point_args(record, point)
    words += ["--load-tool", record.load_tool.name, *_profile_args(record, point)]
    if point.kind == "ramp":
        words += ["--repetitions", str(rounds)]
    else:
        words += ["--precision", f"{target * 100:g}%"]
        if seconds is not None:
            words += ["--budget", budget_text(seconds * BUDGET_MARGIN)]
    return shlex.join(words)


def budget_text(seconds: float) -> str:
    """A `--budget` of whole minutes at least `seconds`: `12m`, `4h43m`."""
    minutes = max(1, math.ceil(seconds / 60))
    hours, rest = divmod(minutes, 60)
    return f"{hours}h{rest:02d}m" if hours else f"{minutes}m"


def _needs(pairs: Sequence[PairPrecision], target: float) -> list[int | None]:
    return [
        None if p.scatter is None else rounds_needed(p.scatter, target, MIN_ROUNDS) for p in pairs
    ]


def _pair_text(pair: PairPrecision, needs: Sequence[int | None]) -> str:
    scatter = pair.scatter
    this = f"this run: {pair.rounds} round{'s' if pair.rounds != 1 else ''}, {_width_text(pair)}"
    if scatter is None:
        return f"{pair.language}: one round shows no scatter ({this})"
    counts = " and ".join(str(n) for n in needs)
    targets = " and ".join(percent_text(t) for t in DECIDE_TARGETS)
    spread = f"per-round scatter {scatter:.3f}"
    return f"{pair.language} {counts} rounds for {targets} ({spread}; {this})"


def _settled(pair: PairPrecision) -> bool:
    """An interval that includes no change but is already narrower than the finest
    precision priced: more rounds would narrow it further, not decide it."""
    width = pair.half_width
    return pair.includes_no_change and width is not None and width <= DECIDE_TARGETS[0]


def decide_line(
    record: RunRecord,
    point: LoadPoint,
    pairs: Sequence[PairPrecision],
    costs: Mapping[tuple[str, str], float],
) -> str:
    """One point's `To decide` line for its undecided pairs."""
    settled = [p for p in pairs if _settled(p)]
    priced = [p for p in pairs if not _settled(p)]
    texts = [
        f"{p.language} shows no change within {_width_text(p)} after {p.rounds} rounds: a "
        "difference, if any, is smaller than that"
        for p in settled
    ]
    line = f"To decide at {point.describe()}: "
    if not priced:
        return line + "; ".join(texts) + "."
    by_target = {t: _needs(priced, t) for t in DECIDE_TARGETS}
    texts = [
        _pair_text(pair, [by_target[t][i] or MIN_ROUNDS for t in DECIDE_TARGETS])
        for i, pair in enumerate(priced)
    ] + texts
    line += "; ".join(texts) + "."
    times: dict[float, float | None] = {}
    rounds: dict[float, int] = {}
    for target, counts in by_target.items():
        needs = [
            (count or MIN_ROUNDS, point.key, (p.epoll, p.io_uring))
            for count, p in zip(counts, priced, strict=True)
        ]
        rounds[target] = max(n for n, _, _ in needs)
        times[target] = schedule_seconds(needs, costs)
    first = DECIDE_TARGETS[0]
    command = rerun_command(record, point, priced, first, rounds[first], times[first])
    line += f" `{command}`"
    if times[first] is not None:
        when = ", ".join(
            f"{percent_text(t)} in about {duration_text(s)}"
            for t, s in times.items()
            if s is not None
        )
        return line + f" would take here, from this run's cell times: {when}."
    return line + " would run them."


def decide_lines(
    record: RunRecord,
    pairs: Sequence[PairPrecision],
    rows: Sequence[Row],
    costs: Mapping[tuple[str, str], float],
) -> list[str]:
    """A `To decide` line per point where a pair is undecided, and what would make its
    load-bound rows server-bound."""
    out = []
    for point in record.verdict_points:
        mine = [p for p in pairs if p.point == point.key and undecided(p, record.precision)]
        if mine:
            out.append(decide_line(record, point, mine, costs))
        bound = load_bound_line(record, point, pairs, rows)
        if bound:
            out.append(bound)
    return out


def load_bound_line(
    record: RunRecord, point: LoadPoint, pairs: Sequence[PairPrecision], rows: Sequence[Row]
) -> str | None:
    """Where the compared rows at a point were load-bound: the setup that would make them
    server-bound, from how busy the servers' cores and the load tool were."""
    compared = {s for p in pairs if p.point == point.key for s in (p.epoll, p.io_uring)}
    bound = [r for r in rows if r.point == point.key and r.server in compared and r.load_bound]
    if not bound:
        return None
    busy = [r.saturation.value for r in bound if r.saturation is not None]
    loads = [r.load_cpu.value for r in bound if r.load_cpu is not None]
    low, high = min(busy), max(busy)
    core = f"{low:.0%}" if round(low * 100) == round(high * 100) else f"{low:.0%}-{high:.0%}"
    cpus = sum(len(member.cpus) for member in record.inventory.load_members)
    tool = record.load_tool.label
    head = (
        f"At {point.describe()} {_count(len(bound), len(compared))} load-bound: "
        f"{tool} kept the servers' core {core} busy"
    )
    at_rate = point.is_open and point.rate is not None
    if loads and min(loads) >= SATURATION_THRESHOLD:
        factor = SATURATION_THRESHOLD / max(min(busy), 0.01)
        need = math.ceil(cpus * factor)
        faster = "" if at_rate else _faster_tool(record.load_tool.kind)
        return (
            f"{head} while using {min(loads):.0%} or more of its {cpus} load "
            f"CPU{'s' if cpus != 1 else ''}. To make them server-bound: {faster}about "
            f"{need} load CPUs of {tool} (more load hosts, `load.hosts` in the inventory)."
        )
    if at_rate:
        rate = point.rate or 0
        achieved = [r.requests_per_second.value for r in bound if r.requests_per_second]
        if achieved and min(achieved) < SUSTAIN_SHARE * rate:
            low, high = min(achieved), max(achieved)
            span = f"{low:,.0f}" if round(low) == round(high) else f"{low:,.0f}-{high:,.0f}"
            used = f", using {min(loads):.0%} or more of its CPU" if loads else ""
            return (
                f"{head}, and {tool} delivered {span} of the {rate:,} req/s offered{used}: "
                "the load tool fell short of the rate; more load CPUs (more load hosts, "
                "`load.hosts` in the inventory) would offer it."
            )
        return (
            f"{head}: the offered rate, not the servers, set the pace, as a rate below their "
            "capacity does (they are compared at equal offered load); higher rates, up to "
            "each server's knee (`--rates auto`), would load them more."
        )
    return (
        f"{head}, and the load tool was not at its limit either: the loop's round trips "
        "held both back; more connections (`--connections`) or pipelining "
        "(`--load-tool wrk-pipelined`) would load the servers more."
    )


def _faster_tool(kind: str) -> str:
    """What loads a server more from the same load CPUs in a closed loop (an open model
    stays one: there only more load CPUs offer more)."""
    if kind == "k6":
        return (
            "wrk (`--load-tool wrk`, or `wrk-pipelined`), which serves many times k6's "
            "requests per load CPU, or "
        )
    return "`--load-tool wrk-pipelined` (16 requests in flight per connection), or "


def _count(bound: int, compared: int) -> str:
    return "every compared row was" if bound == compared else f"{bound} of {compared} rows were"


def ending_lines(record: RunRecord, cells: Sequence[CellResult], rows: Sequence[Row]) -> list[str]:
    """The verdict's last paragraphs: the precision reached, and how to decide."""
    pairs = pair_precisions(cells, rows, record.verdict_points)
    sessions = [record.started_at, *(resumed.at for resumed in record.resumed)]
    costs = cell_seconds(cells, sessions)
    decide = decide_lines(record, pairs, rows, costs)
    out = precision_lines(record, pairs, costs)
    out = ["", *out] if out else []
    return out + (["", *(f"- {line}" for line in decide)] if decide else [])
