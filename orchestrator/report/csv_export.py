"""results.csv: one line per server and load point with raw numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from orchestrator.results.aggregate import Row
from orchestrator.results.stats import Estimate


def _value(est: Estimate | None, scale: float = 1.0, shift: float = 0.0) -> float | None:
    return None if est is None else (est.value - shift) * scale


def _bounds(est: Estimate | None, scale: float = 1.0, shift: float = 0.0) -> list[float | None]:
    if est is None or est.low is None or est.high is None:
        return [None, None]
    return [(est.low - shift) * scale, (est.high - shift) * scale]


def flat_row(row: Row) -> dict[str, object]:
    """A row as flat named numbers (percentages as 0-100), as CSV and JSON give them."""
    more = None if row.is_baseline else row.more_requests
    median_low, median_high = _bounds(row.latency_p50_ms)
    p99_low, p99_high = _bounds(row.latency_p99_ms)
    p999_low, p999_high = _bounds(row.latency_p999_ms)
    rps_low, rps_high = _bounds(row.requests_per_second)
    more_low, more_high = _bounds(more, 100, 1) if more is not None else [None, None]
    per_cpu_low, per_cpu_high = _bounds(row.requests_per_cpu_second)
    cv = row.requests_per_second_cv
    cost = row.cost
    target = cost.target_cpu_us if cost else None
    target_low, target_high = _bounds(target)
    process_low, process_high = _bounds(row.cpu_us_per_request)
    return {
        "server": row.server,
        "api": row.api,
        "language": row.language,
        "point": row.point,
        "repetitions_ok": row.repetitions_ok,
        "repetitions": row.repetitions,
        "median_ms": _value(row.latency_p50_ms),
        "p99_ms": _value(row.latency_p99_ms),
        "p999_ms": _value(row.latency_p999_ms),
        "requests_per_second": _value(row.requests_per_second),
        "more_requests_percent": _value(more, 100, 1),
        "is_baseline": row.is_baseline,
        "server_cpu_percent": _value(row.server_cpu, 100),
        "requests_per_cpu_second": _value(row.requests_per_cpu_second),
        "nic_packets_per_request": _value(row.nic_packets_per_request),
        "failed_requests": row.failed_requests,
        "load_bound": row.load_bound,
        "median_ms_low": median_low,
        "median_ms_high": median_high,
        "p99_ms_low": p99_low,
        "p99_ms_high": p99_high,
        "p999_ms_low": p999_low,
        "p999_ms_high": p999_high,
        "requests_per_second_low": rps_low,
        "requests_per_second_high": rps_high,
        "requests_per_second_cv_percent": None if cv is None else cv * 100,
        "more_requests_low": more_low,
        "more_requests_high": more_high,
        "more_requests_significant": None if more is None else row.more_requests_significant,
        "requests_per_cpu_second_low": per_cpu_low,
        "requests_per_cpu_second_high": per_cpu_high,
        "load_cpu_percent": _value(row.load_cpu, 100),
        "server_core_busy_percent": _value(row.core_busy, 100),
        "load_bound_cells": row.load_bound_cells,
        "dropped_iterations": row.dropped_iterations,
        "interval_method": row.interval_method,
        "verified": row.verified,
        "cpu_us_per_request": _value(row.cpu_us_per_request),
        "cpu_us_per_request_low": process_low,
        "cpu_us_per_request_high": process_high,
        "target_cpu_us_per_request": _value(target),
        "target_cpu_us_per_request_low": target_low,
        "target_cpu_us_per_request_high": target_high,
        "interrupt_us_per_request": _value(cost.interrupt_us if cost else None),
        "interrupt_cpus": " ".join(str(c) for c in cost.interrupt_cpus) if cost else None,
        "context_switches_per_request": _value(cost.context_switches if cost else None),
        "syscalls_per_request": _value(cost.syscalls if cost else None),
        "cycles_per_request": _value(cost.cycles if cost else None),
        "instructions_per_request": _value(cost.instructions if cost else None),
        "instructions_per_cycle": _value(cost.ipc if cost else None),
    }


def render_csv(rows: Sequence[Row]) -> str:
    """One line per server and load point."""
    buffer = io.StringIO()
    if not rows:
        return "server,api,language,point\n"
    flat = [flat_row(row) for row in rows]
    writer = csv.DictWriter(buffer, fieldnames=list(flat[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return buffer.getvalue()
