"""Merging several load hosts' results exactly: counts summed, Req/s over the common
window, percentiles of the merged histograms equal to those of the union of samples."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.load.merge import merge_results
from orchestrator.load.result import Latency, LatencyHistogram, LoadResult


def _histogram(samples: np.ndarray, reduce_seconds: float = 0.1) -> LatencyHistogram:
    values, counts = np.unique(samples, return_counts=True)
    return LatencyHistogram(
        buckets=[(float(v), int(c)) for v, c in zip(values, counts, strict=True)],
        method="k6 csv",
        reduce_seconds=reduce_seconds,
    )


def _result(
    host: str, samples: np.ndarray, started: float, seconds: float, **extra: object
) -> LoadResult:
    histogram = _histogram(samples, float(extra.pop("reduce", 0.1)))  # type: ignore[arg-type]
    data = {
        "tool": "k6",
        "host": host,
        "requests": int(samples.size),
        "failed_requests": 0,
        "duration_seconds": seconds,
        "requests_per_second": samples.size / seconds,
        "latency": histogram.latency(float(samples.mean()) / 1000),
        "histogram": histogram,
        "cpu_seconds": 1.0,
        "started_at": started,
        "wall_seconds": seconds,
        "cpus": 2,
        **extra,
    }
    return LoadResult.model_validate(data)


@pytest.mark.parametrize("seed", [1, 2])
def test_merge_is_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = np.round(rng.lognormal(5.0, 0.6, size=30_000))
    b = np.round(rng.lognormal(6.0, 0.9, size=10_000))  # a slower host: its tail dominates
    first = _result("load1", a, 1000.000, 5.0, failed_requests=3, reduce=0.4)
    second = _result("load2", b, 1000.002, 5.001, failed_requests=1, dropped_iterations=7)
    merged = merge_results([first, second], clock_error=0.001)
    union = np.concatenate([a, b])
    assert merged.requests == first.requests + second.requests == union.size
    assert merged.failed_requests == 4 and merged.dropped_iterations == 7
    assert merged.duration_seconds == pytest.approx(5.003)  # first start to last end
    assert merged.requests_per_second == pytest.approx(union.size / 5.003)
    assert merged.start_skew_seconds == pytest.approx(0.002)
    assert merged.clock_error_seconds == 0.001
    assert merged.cpu_seconds == 2.0 and merged.cpus == 4 and merged.host is None
    for name, percent in (("p50", 50), ("p99", 99), ("p999", 99.9), ("max", 100)):
        expected = np.percentile(union, percent, method="inverted_cdf") / 1000
        assert getattr(merged.latency, name) == expected, name
    assert merged.latency.mean == pytest.approx(union.mean() / 1000)
    # The averaged percentiles a naive merge would report are not the merged ones.
    averaged = (first.latency.p99 or 0) * 0.5 + (second.latency.p99 or 0) * 0.5
    assert merged.latency.p99 != pytest.approx(averaged)
    assert merged.histogram is not None
    assert merged.histogram.method == "merged from 2 load hosts (k6 csv)"
    assert (merged.histogram.reduce_seconds or 0) >= 0.4  # the slower host's reduction


def test_without_every_histogram_no_percentiles_are_made_up() -> None:
    rng = np.random.default_rng(3)
    with_histogram = _result("load1", np.round(rng.exponential(200, 1000)), 10.0, 1.0)
    without = with_histogram.model_copy(
        update={"host": "load2", "histogram": None, "latency": Latency(p50=0.1, mean=0.2)}
    )
    merged = merge_results([with_histogram, without])
    assert merged.histogram is None
    assert merged.latency.p50 is None and merged.latency.p99 is None
    assert merged.requests == 2000


def test_a_result_without_its_start_cannot_be_merged() -> None:
    rng = np.random.default_rng(4)
    result = _result("load1", np.round(rng.exponential(200, 10)), 10.0, 1.0)
    with pytest.raises(ValueError):
        merge_results([result, result.model_copy(update={"started_at": None})])
    with pytest.raises(ValueError):
        merge_results([])


def test_cpu_share_of_a_host() -> None:
    rng = np.random.default_rng(5)
    result = _result("load1", np.round(rng.exponential(200, 10)), 10.0, 4.0, cpu_seconds=6.0)
    assert result.cpu_share == pytest.approx(6.0 / (4.0 * 2))
    assert result.model_copy(update={"cpus": None}).cpu_share is None
