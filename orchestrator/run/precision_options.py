"""`--precision` and `--budget`, their defaults, and the main job's shape.

A run without `--repetitions` adds rounds until the verdict is as precise as asked or its
budget is spent: sweeps, and the main job (`orch run` at the seed profile's k6 ramp), which
measures one round of the profile for the seed's table and then adds short rounds at a
fixed point for the verdict. METHOD.md (*Precision on demand*) says why these numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import UserError
from orchestrator.load.points import PROFILES, LoadPoint, Profile, parse_duration
from orchestrator.results.precision import MIN_ROUNDS
from orchestrator.results.precision_record import PrecisionRecord

DEFAULT_PRECISION = 0.01  # ±1%: the half-width asked when none is given
DEFAULT_BUDGET_SECONDS = 15 * 60.0  # the rounds' wall time when no --budget is given
VERDICT_PROFILE = "verdict"  # the main job's verdict rounds (k6, short cells)
MAX_PRECISION_PERCENT = 50.0


@dataclass(frozen=True)
class PrecisionAsk:
    """The half-width asked of every compared pair's interval and the time budget."""

    target: float  # a fraction: 0.01 is ±1%
    budget_seconds: float
    asked: bool  # --precision was given (else the default)
    min_rounds: int = MIN_ROUNDS

    def record(
        self, points: Sequence[LoadPoint], table_points: Sequence[str] = ()
    ) -> PrecisionRecord:
        """What run.json keeps of it, for the points it adds rounds at."""
        return PrecisionRecord(
            target=self.target,
            budget_seconds=self.budget_seconds,
            min_rounds=self.min_rounds,
            points=[point.key for point in points if point.key not in table_points],
            asked=self.asked,
        )


def parse_precision(text: str) -> float:
    """`1%`, `1` or `0.5%` as a fraction (0.01, 0.005), above 0 and below 50%."""
    value = text.strip().removesuffix("%").strip()
    if not re.fullmatch(r"\d+(\.\d+)?|\.\d+", value):
        raise UserError(
            f"--precision: cannot read '{text}' (give the half-width asked of the verdict's "
            "interval in percent, e.g. 1% or 0.5%)"
        )
    percent = float(value)
    if not 0 < percent < MAX_PRECISION_PERCENT:
        raise UserError(
            f"--precision: '{text}' must lie above 0% and below {MAX_PRECISION_PERCENT:g}%"
        )
    return percent / 100


def precision_ask(
    precision: str | None,
    budget: str | None,
    repetitions: int | None,
    by_default: bool,
    auto_rates: bool = False,
) -> PrecisionAsk | None:
    """What a run asks: None for a fixed number of rounds (`--repetitions`, or a run
    that is neither a sweep nor the main job and asks for no precision)."""
    given = [name for name, value in (("--precision", precision), ("--budget", budget)) if value]
    if given and repetitions is not None:
        raise UserError(
            f"{given[0]}: give a number of rounds (--repetitions) or a precision "
            "(--precision, --budget), not both"
        )
    if given and auto_rates:
        raise UserError(
            f"{given[0]}: --rates auto searches each server's knee in rounds of its own; it "
            "does not run to a precision"
        )
    if repetitions is not None or auto_rates or not (given or by_default):
        return None
    return PrecisionAsk(
        target=DEFAULT_PRECISION if precision is None else parse_precision(precision),
        budget_seconds=DEFAULT_BUDGET_SECONDS
        if budget is None
        else parse_duration(budget, "--budget"),
        asked=precision is not None,
    )


@dataclass(frozen=True)
class MainShape:
    """The main job: the table's point measured once with the run's profile, the verdict's
    point (k6 holding the profile's peak VUs) in short rounds to a precision."""

    table_point: LoadPoint
    verdict_point: LoadPoint
    verdict_profile: Profile


def main_shape(
    tool: str, point: LoadPoint, repetitions: int | None, profile: str
) -> MainShape | None:
    """The main job's shape: k6 at the seed profile's ramp (stretched or scaled as asked)
    with no --repetitions. Other profiles (smoke, quick) keep their one round."""
    if tool != "k6" or point.kind != "ramp" or repetitions is not None or profile != "seed":
        return None
    verdict = LoadPoint(kind="closed", vus=point.vus)
    return MainShape(point, verdict, PROFILES[VERDICT_PROFILE])
