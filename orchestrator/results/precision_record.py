"""What run.json keeps of a run to a precision (`--precision`, `--budget`, and the
defaults of sweeps and the main job), so that a report can say what was asked and
`--resume` can go on where the run stopped."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# running: rounds are still being added; reached: every compared pair's interval is as
# narrow as asked; budget: the next round would not fit in the time left.
PrecisionOutcome = Literal["running", "reached", "budget"]


class PrecisionRecord(BaseModel):
    """The precision a run asked of its verdict, its time budget and how far it got."""

    model_config = ConfigDict(extra="forbid")

    target: float = Field(gt=0, lt=1)  # the half-width asked, as a fraction: 0.01 is ±1%
    budget_seconds: float = Field(gt=0)  # wall time the rounds may take, all sessions
    min_rounds: int = Field(ge=2)  # rounds before any pair may stop
    points: list[str]  # the points whose rounds it adds (the main job: its verdict point)
    asked: bool = True  # False: the default of a sweep or of the main job
    spent_seconds: float = Field(default=0.0, ge=0)  # wall time its rounds took so far
    outcome: PrecisionOutcome = "running"

    def describe(self) -> str:
        """`±1% within 15m00s` as the report and progress say it."""
        return f"{percent_text(self.target)} within {duration_text(self.budget_seconds)}"


def percent_text(fraction: float) -> str:
    """0.01 as `±1%`, 0.015 as `±1.5%`, 0.0707 as `±7.1%`, 0.0031 as `±0.31%`."""
    value = abs(fraction) * 100
    digits = 0 if value >= 9.95 else 1 if value >= 0.995 else 2
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"±{text}%"


def duration_text(seconds: float) -> str:
    """Seconds as `15m00s`, `45s` or `1h05m`."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
