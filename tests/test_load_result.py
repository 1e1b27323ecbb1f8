"""The load result model: typed latencies, orch 0.1.0's shape, and latency histograms whose
percentiles and merges agree with numpy on the raw samples."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.load.result import Latency, LatencyHistogram, LoadResult


def test_latency_from_k6_style_keys() -> None:
    latency = Latency.from_summary_keys({"med": 1.5, "p(99)": 4.0, "avg": 2.0, "p(99.9)": 9.0})
    assert (latency.p50, latency.p99, latency.mean, latency.p999) == (1.5, 4.0, 2.0, 9.0)
    assert latency.measured and not Latency().measured


def test_result_in_orch_0_1_shape_is_read() -> None:
    old = {
        "tool": "wrk",
        "requests": 10,
        "failed_requests": 0,
        "duration_seconds": 1.0,
        "requests_per_second": 10.0,
        "latency_ms": {"med": 0.2, "p(99)": 0.9, "p(99.99)": 1.2},
        "dropped_iterations": 0,
        "load_cpu_seconds": 0.4,
    }
    result = LoadResult.model_validate(old)
    assert (result.latency.p50, result.latency.p99, result.latency.p9999) == (0.2, 0.9, 1.2)
    assert result.cpu_seconds == 0.4 and result.histogram is None


def _histogram(samples: np.ndarray) -> LatencyHistogram:
    values, counts = np.unique(samples, return_counts=True)
    return LatencyHistogram(
        buckets=[(float(v), int(c)) for v, c in zip(values, counts, strict=True)]
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_histogram_percentiles_match_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    samples = np.round(rng.lognormal(mean=5.0, sigma=0.8, size=20_000))  # whole microseconds
    histogram = _histogram(samples)
    assert histogram.total == samples.size
    for percent in (50, 90, 99, 99.9, 99.99, 100):
        expected = np.percentile(samples, percent, method="inverted_cdf")
        assert histogram.percentile(percent) == expected


def test_merged_histograms_equal_the_union_of_samples() -> None:
    rng = np.random.default_rng(7)
    a = np.round(rng.exponential(300.0, size=5_000))
    b = np.round(rng.exponential(900.0, size=15_000))
    merged = LatencyHistogram.merged([_histogram(a), _histogram(b)])
    union = np.concatenate([a, b])
    assert merged.total == union.size
    for percent in (50, 99, 99.9):
        assert merged.percentile(percent) == np.percentile(union, percent, method="inverted_cdf")
    with pytest.raises(ValueError):
        LatencyHistogram(buckets=[]).percentile(50)
