"""Several load hosts' results of one pass merged into the cell's, exactly.

Counts are summed (offered rates and late requests too, where the tool gives them); Req/s
is all requests over the common window, from the first host's start to the last host's
end (on orch's clock); latency percentiles come from the merged histograms, never from
averaged percentiles; without every host's histogram the merged result has no
percentiles at all.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from orchestrator.load.result import Latency, LatencyHistogram, LoadResult


def merge_histograms(histograms: Sequence[LatencyHistogram]) -> LatencyHistogram:
    """One histogram of every host's requests; its cost is the slowest host's reduction
    (they reduce at the same time) plus the merge here."""
    started = time.perf_counter()
    merged = LatencyHistogram.merged(histograms)
    methods = ", ".join(sorted({h.method for h in histograms if h.method})) or "unknown"
    reduced = [h.reduce_seconds for h in histograms if h.reduce_seconds is not None]
    return merged.model_copy(
        update={
            "method": f"merged from {len(histograms)} load hosts ({methods})",
            "reduce_seconds": max(reduced, default=0.0) + time.perf_counter() - started,
        }
    )


def _mean(results: Sequence[LoadResult]) -> float | None:
    """The mean latency of all requests: each host's mean weighted by its requests."""
    if any(r.latency.mean is None for r in results if r.requests):
        return None
    total = sum(r.requests for r in results)
    if total == 0:
        return None
    return sum((r.latency.mean or 0.0) * r.requests for r in results) / total


def _sum_known(values: Sequence[float | None]) -> float | None:
    """The sum, or None when any host lacks the figure."""
    return None if any(v is None for v in values) else sum(v or 0.0 for v in values)


def _count_known(values: Sequence[int | None]) -> int | None:
    """The sum of counts, or None when any host lacks the count."""
    return None if any(v is None for v in values) else sum(v or 0 for v in values)


def merge_results(results: Sequence[LoadResult], clock_error: float | None = None) -> LoadResult:
    """The cell's load result from each load host's (each with `started_at`)."""
    if not results:
        raise ValueError("nothing to merge")
    starts = [r.started_at for r in results]
    if any(start is None for start in starts):
        raise ValueError("every load host's result needs its start time")
    begin = min(r.started_at or 0.0 for r in results)
    end = max((r.started_at or 0.0) + r.duration_seconds for r in results)
    window = end - begin
    requests = sum(r.requests for r in results)
    histograms = [r.histogram for r in results if r.histogram is not None]
    histogram = merge_histograms(histograms) if len(histograms) == len(results) else None
    mean = _mean(results)
    if histogram is not None and histogram.total > 0:
        latency = histogram.latency(mean)
    else:
        latency = Latency(mean=mean)
    cpu = [r.cpu_seconds for r in results]
    return LoadResult(
        tool=results[0].tool,
        host=None,
        requests=requests,
        failed_requests=sum(r.failed_requests for r in results),
        duration_seconds=window,
        requests_per_second=requests / window if window > 0 else 0.0,
        latency=latency,
        histogram=histogram,
        dropped_iterations=sum(r.dropped_iterations for r in results),
        offered_rate=_sum_known([r.offered_rate for r in results]),
        late_requests=_count_known([r.late_requests for r in results]),
        errored_requests=_count_known([r.errored_requests for r in results]),
        timed_out_requests=_count_known([r.timed_out_requests for r in results]),
        cpu_seconds=_sum_known(cpu),
        started_at=begin,
        wall_seconds=window,
        cpus=sum(r.cpus or 0 for r in results) or None,
        start_skew_seconds=max(r.started_at or 0.0 for r in results) - begin,
        clock_error_seconds=clock_error,
    )
