"""What a cell's load looks like: its time shape (a profile of k6 stages, with a warm-up)
and its load point (what the load tool holds constant: connections or an arrival rate,
with a pipeline depth).

A run is a plan over load points; the seed's profile gives the default, single point: k6
ramping VUs through the profile's stages (a `ramp` point), or wrk holding the profile's
peak as connections (a `closed` point), or k6 at a fixed arrival rate (an `open` point).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import UserError


class Stage(BaseModel):
    """One k6 ramping stage: move to `target` VUs over `seconds`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seconds: float = Field(gt=0)
    target: int = Field(ge=0)


class Profile(BaseModel):
    """A named time shape of the load and the warm-up before each measured pass."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    stages: tuple[Stage, ...] = Field(min_length=1)
    warmup: float | None = None  # seconds of unmeasured load before each cell; None: default
    rounds: int | None = None  # a sweep's rounds when --repetitions is not given

    @property
    def warmup_seconds(self) -> float:
        """The warm-up before the measured pass: as set, else a tenth of it, 1 to 5 s."""
        if self.warmup is not None:
            return self.warmup
        return float(min(5, max(1, round(self.duration / 10))))

    @property
    def duration(self) -> float:
        """Total load time in seconds."""
        return sum(stage.seconds for stage in self.stages)

    @property
    def max_vus(self) -> int:
        """The highest VU count any stage reaches."""
        return max(stage.target for stage in self.stages)

    def k6_stages(self) -> list[dict[str, object]]:
        """The stages as k6 options want them."""
        return [{"duration": k6_duration(s.seconds), "target": s.target} for s in self.stages]

    def warmup_profile(self) -> Profile:
        """The warm-up pass: the peak load held for the warm-up time."""
        seconds = self.warmup_seconds
        # Ramp for a fifth of the time: k6 cannot start VUs all at once without a burst.
        stages = _stages((seconds / 5, self.max_vus), (seconds * 4 / 5, self.max_vus))
        return Profile(name=f"{self.name} warm-up", stages=stages, warmup=0.0)


PointKind = Literal["ramp", "closed", "open"]


class LoadPoint(BaseModel):
    """What the load tool holds constant for one cell.

    - `ramp`: k6 ramping VUs through the profile's stages, peaking at `vus`;
    - `closed`: `vus` connections (wrk) or VUs (k6), each sending its next request when
      the previous one is answered, for the profile's duration;
    - `open`: `rate` requests per second arriving whatever the answers (k6's
      constant-arrival-rate), with at most `vus` VUs in flight.

    `pipeline` requests are in flight per connection (wrk only).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: PointKind
    vus: int = Field(ge=1)
    rate: int | None = Field(default=None, ge=1)
    pipeline: int = Field(default=1, ge=1)

    @property
    def key(self) -> str:
        """A short name, unique within a run and safe as a folder name: `ramp500`, `c100`,
        `c100-p16`, `r4000`."""
        base = {"ramp": f"ramp{self.vus}", "closed": f"c{self.vus}", "open": f"r{self.rate}"}
        return base[self.kind] + (f"-p{self.pipeline}" if self.pipeline > 1 else "")

    @property
    def is_open(self) -> bool:
        """True for an open-model point (a fixed arrival rate)."""
        return self.kind == "open"

    def describe(self) -> str:
        """The point in words: `ramp to 500 VUs`, `100 connections`, `4,000 req/s`."""
        text = {
            "ramp": f"ramp to {self.vus} VUs",
            "closed": connections_text(self.vus),
            "open": f"{self.rate or 0:,} req/s",
        }[self.kind]
        return text + (f", {self.pipeline} pipelined" if self.pipeline > 1 else "")


def connections_text(count: int) -> str:
    """`1 connection`, `100 connections`."""
    return f"{count} connection" + ("" if count == 1 else "s")


def k6_duration(seconds: float) -> str:
    """Seconds as a k6 duration string (`4s`, `1500ms`)."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def _stages(*pairs: tuple[float, int]) -> tuple[Stage, ...]:
    return tuple(Stage(seconds=seconds, target=target) for seconds, target in pairs)


PROFILES: dict[str, Profile] = {
    # The original benchmark: 5 s ramps of 100 VUs up to 500, 45 s at 500, ramps down; 90 s.
    "seed": Profile(
        name="seed",
        stages=_stages(
            (5, 100),
            (5, 200),
            (5, 300),
            (5, 400),
            (5, 500),
            (45, 500),
            (5, 400),
            (5, 300),
            (5, 200),
            (5, 100),
        ),
    ),
    "quick": Profile(name="quick", stages=_stages((2, 250), (2, 500), (12, 500), (2, 100))),
    "smoke": Profile(name="smoke", stages=_stages((1, 20), (3, 20))),
    # Sweeps: each load point held for a while after a warm-up; 500 VUs bound an open model.
    # Short cells in many rounds beat long cells in few on a shared machine: its speed
    # drifts from second to second, and only the two cells of a pair, back to back, share
    # a drift; how far two such cells differ hardly depends on their length (METHOD.md,
    # why short cells).
    # k6 needs its seconds (VUs to start, and a low rate's CPU counted in 10 ms ticks);
    # wrk starts in milliseconds and is cut short for a quarter-second warm-up.
    "sweep": Profile(name="sweep", stages=_stages((5, 500)), warmup=1.0, rounds=20),
    "sweep-short": Profile(name="sweep-short", stages=_stages((1, 500)), warmup=0.25, rounds=80),
}


def parse_duration(text: str, option: str = "--duration", allow_zero: bool = False) -> float:
    """Parse `90`, `90s`, `1500ms`, `2m` or `1m30s` into seconds."""
    value = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds = float(value)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise UserError(f"{option}: cannot read '{text}' (use e.g. 30s, 1m30s, 1500ms)")
        scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        seconds = sum(float(number) * scale[unit] for number, unit in parts)
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise UserError(f"{option}: '{text}' must be longer than zero")
    return seconds


def resolve_profile(
    name: str,
    duration: str | None = None,
    vus: int | None = None,
    warmup: str | None = None,
    rate: int | None = None,
) -> Profile:
    """A named profile, stretched to `duration`, scaled to peak at `vus`, with a warm-up
    of `warmup` (`0` turns it off); `rate` only checks and labels an open-model run (the
    rate itself is the run's load point)."""
    try:
        profile = PROFILES[name]
    except KeyError:
        raise UserError(
            f"--profile: unknown profile '{name}' (known: {', '.join(PROFILES)})"
        ) from None
    stages = profile.stages
    if duration is not None:
        factor = parse_duration(duration) / profile.duration
        stages = tuple(Stage(seconds=s.seconds * factor, target=s.target) for s in stages)
    if vus is not None:
        if vus < 1:
            raise UserError(f"--vus: must be at least 1, got {vus}")
        peak = max(s.target for s in stages)
        stages = tuple(
            Stage(seconds=s.seconds, target=max(1, round(s.target * vus / peak))) for s in stages
        )
    if rate is not None and rate < 1:
        raise UserError(f"--rate: must be at least 1 request per second, got {rate}")
    warmup_seconds = profile.warmup if warmup is None else parse_duration(warmup, "--warmup", True)
    custom = duration is not None or vus is not None
    label = f"{name}*" if custom else name
    if rate is not None:
        label += f"@{rate}/s"
    return Profile(name=label, stages=stages, warmup=warmup_seconds, rounds=profile.rounds)
