"""What one load tool measured on one load host: counts, typed latency percentiles and,
when the tool can give it, the whole latency histogram (so results of several load hosts
can be merged exactly: percentiles are never averaged)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

# orch 0.1.0 stored latencies as k6's summary keys; the typed field each one became.
_LEGACY_LATENCY_KEYS = {
    "min": "min",
    "avg": "mean",
    "med": "p50",
    "p(75)": "p75",
    "p(90)": "p90",
    "p(95)": "p95",
    "p(99)": "p99",
    "p(99.9)": "p999",
    "p(99.99)": "p9999",
    "max": "max",
}


class Latency(BaseModel):
    """Request latency in milliseconds; None where the tool did not measure it."""

    model_config = ConfigDict(extra="forbid")

    min: float | None = None
    mean: float | None = None
    p50: float | None = None
    p75: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p999: float | None = None
    p9999: float | None = None
    max: float | None = None

    @classmethod
    def from_summary_keys(cls, values: dict[str, float]) -> Latency:
        """From k6-style keys (`med`, `p(99)`, `avg` ...); unknown keys are ignored."""
        known = {_LEGACY_LATENCY_KEYS[k]: v for k, v in values.items() if k in _LEGACY_LATENCY_KEYS}
        return cls(**known)

    @property
    def measured(self) -> bool:
        """True when any latency figure is known."""
        return any(value is not None for value in self.model_dump().values())


class LatencyHistogram(BaseModel):
    """How many requests took each latency: (value in microseconds, count), ascending."""

    model_config = ConfigDict(extra="forbid")

    buckets: list[tuple[float, int]]
    # How the load host turned its samples into this histogram, and what that cost it.
    method: str = ""
    reduce_seconds: float | None = None

    @property
    def total(self) -> int:
        """Requests counted."""
        return sum(count for _, count in self.buckets)

    def percentile(self, percent: float) -> float:
        """The smallest value at or below which `percent` % of the requests fall (the
        nearest-rank percentile), in microseconds."""
        total = self.total
        if total == 0:
            raise ValueError("an empty histogram has no percentiles")
        rank = max(1, math.ceil(percent / 100 * total))
        seen = 0
        for value, count in self.buckets:
            seen += count
            if seen >= rank:
                return value
        return self.buckets[-1][0]

    def latency(self, mean: float | None = None) -> Latency:
        """Percentiles in milliseconds (the mean, which buckets cannot give, as given)."""
        if self.total == 0:
            return Latency(mean=mean)
        ms = {
            name: self.percentile(percent) / 1000
            for name, percent in (
                ("p50", 50.0),
                ("p75", 75.0),
                ("p90", 90.0),
                ("p95", 95.0),
                ("p99", 99.0),
                ("p999", 99.9),
                ("p9999", 99.99),
            )
        }
        return Latency(
            min=self.buckets[0][0] / 1000, max=self.buckets[-1][0] / 1000, mean=mean, **ms
        )

    @classmethod
    def merged(cls, histograms: Iterable[LatencyHistogram]) -> LatencyHistogram:
        """One histogram holding every request of `histograms`."""
        counts: dict[float, int] = {}
        for histogram in histograms:
            for value, count in histogram.buckets:
                counts[value] = counts.get(value, 0) + count
        return cls(buckets=sorted(counts.items()), method="merged")


class LoadResult(BaseModel):
    """What one load run measured, whichever tool produced it."""

    model_config = ConfigDict(extra="forbid")

    tool: str
    host: str | None = None  # the load host; None for the merged result of several
    requests: int
    failed_requests: int
    duration_seconds: float
    requests_per_second: float
    latency: Latency = Latency()
    histogram: LatencyHistogram | None = None
    dropped_iterations: int = 0
    # An open model's offered rate (req/s; the sum of the hosts' shares when merged), and
    # answers slower than a connection's request interval: each delayed the next request
    # on its connection past its due time (h2load; None where the tool does not count it).
    offered_rate: float | None = None
    late_requests: int | None = None
    # The tool's own error counts beside failed_requests, where it gives them (h2load).
    errored_requests: int | None = None
    timed_out_requests: int | None = None
    cpu_seconds: float | None = None  # the load tool's own CPU time
    # With several load hosts: when this host's load began (Unix time on orch's clock),
    # how long its tool ran from then, and on how many CPUs; the merged result instead
    # says how far apart the hosts began and how much clock error that may hold.
    started_at: float | None = None
    wall_seconds: float | None = None
    cpus: int | None = None
    start_skew_seconds: float | None = None
    clock_error_seconds: float | None = None

    @property
    def cpu_share(self) -> float | None:
        """The share of its pinned CPUs the tool used while it ran (1.0 = all of them)."""
        if self.cpu_seconds is None or not self.wall_seconds or not self.cpus:
            return None
        return self.cpu_seconds / (self.wall_seconds * self.cpus)

    @model_validator(mode="before")
    @classmethod
    def _from_0_1(cls, data: Any) -> Any:
        """orch 0.1.0 wrote `latency_ms` (k6 summary keys) and `load_cpu_seconds`."""
        if isinstance(data, dict) and "latency_ms" in data:
            data = dict(data)
            data["latency"] = Latency.from_summary_keys(data.pop("latency_ms") or {})
            if "load_cpu_seconds" in data:
                data["cpu_seconds"] = data.pop("load_cpu_seconds")
        return data
