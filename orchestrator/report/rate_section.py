"""What report.md says of a run whose load tool counts late requests (h2load): its load
model and arrivals, late requests and the latency they make coordinated-omission-prone,
the cost of h2load's per-request log, and the verdict at its rates."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median

from orchestrator.load.points import LoadPoint
from orchestrator.results.aggregate import Row
from orchestrator.results.cell_result import CellResult
from orchestrator.results.rate_verdict import RATE_VERDICT_NOTE, rate_point_verdicts, rate_sentence


def rate_model_lines(model: str, rate: int) -> list[str]:
    """The load model of a one-rate h2load table."""
    return [
        f"**Load model of this table: {model}.** Every server was offered the same "
        f"{rate:,} req/s, so latency is comparable between servers that held it (at least "
        "99% of the rate achieved, no late request)."
    ]


def arrivals_line() -> str:
    """How h2load's requests arrive at an open point (Method)."""
    return (
        "- Arrivals (h2load): each connection sends at most 100 req/s, on its own rate "
        "timer; connections are opened in groups, one group per millisecond over one tick "
        "of that timer, so requests arrive in a group each millisecond (rate / 1,000 "
        "requests), not evenly spaced. A rate is held as rate x duration requests: a pass "
        "lasts longer when the server falls behind, and the achieved rate is the requests "
        "over the span from the first request's start to the last's."
    )


def late_lines(rows: Sequence[Row], labels: dict[str, str]) -> list[str]:
    """Rows with late requests, and why their latency is coordinated-omission-prone."""
    late = [r for r in rows if r.late_requests]
    if not late:
        return []
    where = ", ".join(
        f"{r.server} at {labels.get(r.point, r.point)} ({r.late_requests:,})" for r in late
    )
    return [
        f"**Late requests:** {where}. h2load sends one request at a time per connection: "
        "an answer slower than the interval between a connection's requests kept the next "
        "request waiting, and that request's latency, counted from when it was sent, leaves "
        "the wait out (coordinated omission), so these rows' latency understates it and is "
        "not compared.",
        "",
    ]


def log_cost_line(cells: Sequence[CellResult]) -> str | None:
    """h2load's requests per load-CPU-second in the measured passes, which write its
    per-request log, and what reducing the log cost on the load host (medians)."""
    per_cpu = [v for c in cells if (v := c.load_requests_per_cpu_second) is not None]
    reduced = [
        c.load.histogram.reduce_seconds
        for c in cells
        if c.load and c.load.histogram and c.load.histogram.reduce_seconds is not None
    ]
    if not per_cpu:
        return None
    line = (
        f"- h2load's per-request log (the latency histogram's source): h2load served "
        f"{median(per_cpu):,.0f} requests per load-CPU-second writing it (one write per "
        "request; METHOD.md, *h2load's open model*: what it costs h2load)"
    )
    if reduced:
        line += f"; reducing it on the load host took {median(reduced):.2f} s per cell"
    return line + f" (medians over {len(per_cpu)} cells)."


def rate_verdict_lines(
    cells: Sequence[CellResult], rows: Sequence[Row], points: Sequence[LoadPoint]
) -> list[str]:
    """The verdict at each rate, one line per rate."""
    return [f"- {rate_sentence(v)}" for v in rate_point_verdicts(cells, rows, points)]


def rate_verdict_note() -> list[str]:
    """What the rate verdict compares, after it."""
    return ["", RATE_VERDICT_NOTE]
