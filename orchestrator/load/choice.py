"""Which load tool a run uses and at which load points, from `orch run`'s options: the
profile's one point, or the cross product of --connections, --rates and --pipeline; and
what each tool refuses (k6 does not pipeline or hold a point under 1 s, wrk has no open
model, h2load neither pipelines nor sends more than 100 req/s per connection)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from orchestrator.errors import UserError
from orchestrator.load import h2load, wrk
from orchestrator.load.points import LoadPoint, Profile

LOAD_TOOL_NAMES = ("k6", "wrk", "wrk-pipelined", "h2load")
WRK_NAMES = ("wrk", "wrk-pipelined")
AUTO = "auto"
NO_WRK_RATE = "--rate: wrk has no open model; use --load-tool h2load (or k6) for a fixed rate"
NO_WRK_RATES = "--rates: wrk has no open model; use --load-tool h2load (or k6) for arrival rates"
NO_H2LOAD_PIPELINE = (
    "--pipeline: orch runs h2load one request at a time per connection (its late requests "
    "are counted that way); use --load-tool wrk-pipelined"
)


def check_combination(name: str, pipeline: int | None, rate: int | None) -> int:
    """Validate --load-tool/--pipeline/--rate together; return the pipeline depth to use."""
    if name not in LOAD_TOOL_NAMES:
        raise UserError(f"--load-tool: unknown tool '{name}' (known: {', '.join(LOAD_TOOL_NAMES)})")
    if pipeline is not None and pipeline < 1:
        raise UserError(f"--pipeline: must be at least 1, got {pipeline}")
    if name == "k6" and pipeline not in (None, 1):
        raise UserError("--pipeline: k6 does not pipeline requests; use --load-tool wrk")
    if name == "h2load" and pipeline not in (None, 1):
        raise UserError(NO_H2LOAD_PIPELINE)
    if name in WRK_NAMES and rate is not None:
        raise UserError(NO_WRK_RATE)
    if name == "wrk-pipelined":
        return pipeline or wrk.PIPELINE_DEPTH
    return pipeline or 1


def check_k6_seconds(tool: str, profile: Profile, points: Sequence[LoadPoint]) -> None:
    """Refuse a pass k6 would refuse in every cell: its constant-VU and arrival-rate
    executors hold a point for at least 1 s (a warm-up of 0 means none, and is fine)."""
    if tool != "k6" or all(point.kind == "ramp" for point in points):
        return
    for option, seconds in (("--duration", profile.duration), ("--warmup", profile.warmup_seconds)):
        if 0 < seconds < 1:
            raise UserError(
                f"{option}: k6 holds a load point for at least 1 s, and profile "
                f"{profile.name} asks {seconds:g} s (give 1s or more, or use wrk)"
            )


def check_h2load_requests(tool: str, profile: Profile, points: Sequence[LoadPoint]) -> None:
    """Refuse an h2load open point whose measured or warm-up pass would give a connection
    no request (h2load holds a rate as a number of requests)."""
    if tool != "h2load":
        return
    passes = [("--duration", profile)]
    if profile.warmup_seconds > 0:
        passes.append(("--warmup", profile.warmup_profile()))
    for point in points:
        if point.is_open:
            for option, pass_profile in passes:
                h2load.check_requests(pass_profile, point, option)


def parse_list(text: str, option: str) -> list[int]:
    """`1,10,100` as whole numbers of at least 1, in the order given, each once."""
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or not all(parts):
        raise UserError(f"{option}: expected a comma-separated list such as 1,10,100, got '{text}'")
    values: list[int] = []
    for part in parts:
        if not re.fullmatch(r"\d+", part) or int(part) < 1:
            raise UserError(f"{option}: '{part}' is not a whole number of at least 1 (in '{text}')")
        if int(part) in values:
            raise UserError(f"{option}: {part} is listed twice (in '{text}')")
        values.append(int(part))
    return values


def open_point(tool_name: str, rate: int, connections: Sequence[int] | None, vus: int) -> LoadPoint:
    """An open-model point at `rate` req/s: k6 with up to `vus` VUs; h2load on the one
    number of `connections` given, else one connection per 100 req/s."""
    if tool_name != "h2load":
        return LoadPoint(kind="open", vus=vus, rate=rate)
    if not connections:
        return LoadPoint(kind="open", vus=h2load.connections_for(rate), rate=rate)
    if len(connections) > 1:
        listed = ",".join(map(str, connections))
        raise UserError(
            f"--connections: with --rates, h2load takes one number of connections for every "
            f"rate, got '{listed}'"
        )
    h2load.check_rate_connections(rate, connections[0])
    return LoadPoint(kind="open", vus=connections[0], rate=rate)


def profile_point(
    tool_name: str,
    profile: Profile,
    rate: int | None,
    pipeline: int,
    connections: Sequence[int] | None = None,
) -> LoadPoint:
    """The one load point a profile gives: k6 ramps through its stages (or holds `rate`
    req/s with up to its peak VUs); wrk and h2load hold its peak as connections (h2load:
    or `rate` req/s on the `connections` given, else one per 100 req/s)."""
    if rate is not None:
        return open_point(tool_name, rate, connections, profile.max_vus)
    if tool_name == "k6":
        return LoadPoint(kind="ramp", vus=profile.max_vus)
    return LoadPoint(kind="closed", vus=profile.max_vus, pipeline=pipeline)


def sweep_points(
    tool_name: str,
    profile: Profile,
    connections: Sequence[int] | None,
    rates: Sequence[int] | None,
    pipelines: Sequence[int] | None,
) -> list[LoadPoint]:
    """The cross product of the lists given: closed points at each number of connections
    (wrk: at each pipeline depth too), or open points at each rate (k6: each number of
    connections is then a VU ceiling; h2load: one number of connections for every rate,
    else one per 100 req/s)."""
    if tool_name == "h2load":
        if pipelines and set(pipelines) != {1}:
            raise UserError(NO_H2LOAD_PIPELINE)
        if rates:
            return [open_point(tool_name, rate, connections, 1) for rate in rates]
        return [LoadPoint(kind="closed", vus=c) for c in connections or [profile.max_vus]]
    if tool_name == "k6":
        if pipelines and set(pipelines) != {1}:
            raise UserError("--pipeline: k6 does not pipeline requests; use --load-tool wrk")
        if rates:
            ceilings = list(connections or [profile.max_vus])
            return [LoadPoint(kind="open", vus=v, rate=r) for r in rates for v in ceilings]
        return [LoadPoint(kind="closed", vus=c) for c in connections or [profile.max_vus]]
    if rates:
        raise UserError(NO_WRK_RATES)
    default_depth = wrk.PIPELINE_DEPTH if tool_name == "wrk-pipelined" else 1
    return [
        LoadPoint(kind="closed", vus=c, pipeline=p)
        for c in connections or [profile.max_vus]
        for p in pipelines or [default_depth]
    ]
