"""Which load tool a run uses and at which load point, from `orch run`'s options."""

from __future__ import annotations

from orchestrator.errors import UserError
from orchestrator.load import wrk
from orchestrator.load.points import LoadPoint, Profile

LOAD_TOOL_NAMES = ("k6", "wrk", "wrk-pipelined")


def check_combination(name: str, pipeline: int | None, rate: int | None) -> int:
    """Validate --load-tool/--pipeline/--rate together; return the pipeline depth to use."""
    if name not in LOAD_TOOL_NAMES:
        raise UserError(f"--load-tool: unknown tool '{name}' (known: {', '.join(LOAD_TOOL_NAMES)})")
    if pipeline is not None and pipeline < 1:
        raise UserError(f"--pipeline: must be at least 1, got {pipeline}")
    if name == "k6" and pipeline not in (None, 1):
        raise UserError("--pipeline: k6 does not pipeline requests; use --load-tool wrk")
    if name != "k6" and rate is not None:
        raise UserError("--rate: wrk has no open model; use --load-tool k6 for a fixed rate")
    if name == "wrk-pipelined":
        return pipeline or wrk.PIPELINE_DEPTH
    return pipeline or 1


def profile_point(tool_name: str, profile: Profile, rate: int | None, pipeline: int) -> LoadPoint:
    """The one load point a profile gives: k6 ramps through its stages (or holds `rate`
    req/s with up to its peak VUs); wrk holds its peak as connections."""
    if rate is not None:
        return LoadPoint(kind="open", vus=profile.max_vus, rate=rate)
    if tool_name == "k6":
        return LoadPoint(kind="ramp", vus=profile.max_vus)
    return LoadPoint(kind="closed", vus=profile.max_vus, pipeline=pipeline)
