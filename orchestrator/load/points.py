"""Load profiles: the seed's k6 stages and shorter ones, with duration/VU/warm-up overrides.

A profile is closed-loop (ramping VUs, or fixed connections for wrk) unless it has a
`rate`: then it is an open model at that many requests per second for its duration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import UserError


@dataclass(frozen=True)
class Stage:
    """One k6 ramping stage: move to `target` VUs over `seconds`."""

    seconds: float
    target: int


@dataclass(frozen=True)
class Profile:
    """A named load shape, its warm-up and (open model only) its arrival rate."""

    name: str
    stages: tuple[Stage, ...]
    warmup: float | None = None  # seconds of unmeasured load before each cell; None: default
    rate: int | None = None  # requests per second: k6's constant-arrival-rate executor

    @property
    def warmup_seconds(self) -> float:
        """The warm-up before the measured pass: as set, else a tenth of it, 1 to 5 s."""
        if self.warmup is not None:
            return self.warmup
        return float(min(5, max(1, round(self.duration / 10))))

    @property
    def is_open(self) -> bool:
        """True for an open-model profile (a fixed arrival rate)."""
        return self.rate is not None

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
        """The warm-up pass: the peak load (or the rate) held for the warm-up time."""
        seconds = self.warmup_seconds
        # Ramp for a fifth of the time: k6 cannot start VUs all at once without a burst.
        stages = _stages((seconds / 5, self.max_vus), (seconds * 4 / 5, self.max_vus))
        return Profile(f"{self.name} warm-up", stages, warmup=0.0, rate=self.rate)


def k6_duration(seconds: float) -> str:
    """Seconds as a k6 duration string (`4s`, `1500ms`)."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def _stages(*pairs: tuple[float, int]) -> tuple[Stage, ...]:
    return tuple(Stage(seconds, target) for seconds, target in pairs)


PROFILES: dict[str, Profile] = {
    # The original benchmark: 5 s ramps of 100 VUs up to 500, 45 s at 500, ramps down; 90 s.
    "seed": Profile(
        "seed",
        _stages(
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
    "quick": Profile("quick", _stages((2, 250), (2, 500), (12, 500), (2, 100))),
    "smoke": Profile("smoke", _stages((1, 20), (3, 20))),
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


def profile_from_record(record: dict[str, Any]) -> Profile:
    """The profile a run recorded in run.json (`stages`, `warmup_seconds`, `rate`)."""
    try:
        stages = tuple(
            Stage(parse_duration(str(stage["duration"])), int(stage["target"]))
            for stage in record["stages"]
        )
        warmup = record.get("warmup_seconds")
        rate = record.get("rate")
        return Profile(
            str(record["name"]),
            stages,
            warmup=None if warmup is None else float(warmup),
            rate=None if rate is None else int(rate),
        )
    except (KeyError, TypeError, ValueError, UserError) as exc:
        raise UserError(f"run.json: unreadable profile ({exc})") from None


def resolve_profile(
    name: str,
    duration: str | None = None,
    vus: int | None = None,
    warmup: str | None = None,
    rate: int | None = None,
) -> Profile:
    """A named profile, stretched to `duration`, scaled to peak at `vus`, with a warm-up
    of `warmup` (`0` turns it off) and, with `rate`, turned into an open model."""
    try:
        profile = PROFILES[name]
    except KeyError:
        raise UserError(
            f"--profile: unknown profile '{name}' (known: {', '.join(PROFILES)})"
        ) from None
    stages = profile.stages
    if duration is not None:
        factor = parse_duration(duration) / profile.duration
        stages = tuple(Stage(s.seconds * factor, s.target) for s in stages)
    if vus is not None:
        if vus < 1:
            raise UserError(f"--vus: must be at least 1, got {vus}")
        peak = max(s.target for s in stages)
        stages = tuple(Stage(s.seconds, max(1, round(s.target * vus / peak))) for s in stages)
    if rate is not None and rate < 1:
        raise UserError(f"--rate: must be at least 1 request per second, got {rate}")
    warmup_seconds = None if warmup is None else parse_duration(warmup, "--warmup", True)
    custom = duration is not None or vus is not None
    label = f"{name}*" if custom else name
    if rate is not None:
        label += f"@{rate}/s"
    return Profile(label, stages, warmup=warmup_seconds, rate=rate)
