"""The result every load tool is parsed into."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class LoadResult(BaseModel):
    """What one load run measured, whichever tool produced it."""

    model_config = ConfigDict(extra="forbid")

    tool: str
    requests: int
    failed_requests: int
    duration_seconds: float
    requests_per_second: float
    latency_ms: dict[str, float]  # keys: min, avg, med, max, p(99), p(99.9), p(99.99) as known
    dropped_iterations: int = 0
    load_cpu_seconds: float | None = None
