"""The seed's table (Api, Language, latencies, Req/s, % More Requests) with orch's trust
columns, as Markdown, one row per server at one load point."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from orchestrator.results.aggregate import Row
from orchestrator.results.stats import Estimate

NOT_SIGNIFICANT = "n.s."

COLUMNS = (
    "Api",
    "Language",
    "Median Req. Duration",
    "p(99) Req. Duration",
    "p(99.9) Req. Duration",
    "Req/s",
    "% More Requests",
    "Server CPU",
    "Core busy",
    "Load CPU",
    "Req per server CPU-s",
    "NIC pkts/req",
    "Failed req.",
    "Req/s CV",
    "Limit",
)
DROPPED_COLUMN = "Dropped iter."
LATE_COLUMN = "Late req."


def ms(value: float | None) -> str:
    """Milliseconds with two decimals (three below 1 ms)."""
    if value is None:
        return "-"
    return f"{value:.2f}ms" if value >= 1 else f"{value:.3f}ms"


def whole(value: float | None) -> str:
    """A whole number with thousands separators."""
    return "-" if value is None else f"{value:,.0f}"


def _bare_ms(value: float) -> str:
    return ms(value).removesuffix("ms")


def with_interval(
    est: Estimate | None,
    fmt: Callable[[float | None], str],
    bare: Callable[[float], str] | None = None,
) -> str:
    """`value (low…high)`, or just the value when there is no interval."""
    if est is None:
        return fmt(None)
    if est.low is None or est.high is None:
        return fmt(est.value)
    short = bare or fmt
    return f"{fmt(est.value)} ({short(est.low)}…{short(est.high)})"


def percent_of_one(est: Estimate | None) -> str:
    """A share (1.0 = 100%) as a whole percentage."""
    return "-" if est is None else f"{est.value * 100:.0f}%"


def change(ratio: Estimate | None) -> str:
    """A ratio as a change: `+4.2% (+1.0…+7.5%)`, with `n.s.` when its interval includes
    no change."""
    if ratio is None:
        return "-"
    text = f"{(ratio.value - 1) * 100:+.2f}%"
    if ratio.low is not None and ratio.high is not None:
        text += f" ({(ratio.low - 1) * 100:+.1f}…{(ratio.high - 1) * 100:+.1f}%)"
        if not ratio.excludes(1.0):
            text += f" {NOT_SIGNIFICANT}"
    return text


def _more(row: Row) -> str:
    if row.is_baseline:
        return "Baseline"
    return change(row.more_requests)


def needs_server_column(rows: Sequence[Row]) -> bool:
    """True when Api and Language do not name each row's server (a server from outside the
    six, such as nginx, or two servers of one language and API), or a row is unverified."""
    return any(
        not row.verified or row.server != f"{row.language.lower()}-{row.api}" for row in rows
    )


def server_label(row: Row) -> str:
    """The row's server, marked when it was measured although it failed verify."""
    return row.server if row.verified else f"{row.server} (unverified)"


def _late(row: Row) -> str:
    return "-" if row.late_requests is None else f"{row.late_requests:,}"


def _cells_of(row: Row, dropped: bool, late: bool = False) -> list[str]:
    nic = row.nic_packets_per_request
    cells = [
        row.api,
        row.language,
        with_interval(row.latency_p50_ms, ms, _bare_ms),
        with_interval(row.latency_p99_ms, ms, _bare_ms),
        with_interval(row.latency_p999_ms, ms, _bare_ms),
        with_interval(row.requests_per_second, whole),
        _more(row),
        percent_of_one(row.server_cpu),
        percent_of_one(row.core_busy),
        percent_of_one(row.load_cpu),
        with_interval(row.requests_per_cpu_second, whole),
        "-" if nic is None else f"{nic.value:.2f}",
        *_failures(row, dropped, late),
    ]
    cv = row.requests_per_second_cv
    cells += ["-" if cv is None else f"{cv * 100:.1f}%", row.limit]
    return cells


def _failures(row: Row, dropped: bool, late: bool = False) -> list[str]:
    """Failed requests, and the open model's dropped iterations (k6) or late requests
    (h2load) when the table has their column."""
    return [
        str(row.failed_requests),
        *([str(row.dropped_iterations)] if dropped else []),
        *([_late(row)] if late else []),
    ]


def _table(
    base: Sequence[str],
    rows: Sequence[Row],
    dropped: bool,
    server_column: int,
    cells_of: Callable[[Row], list[str]],
    late: bool = False,
) -> str:
    """A Markdown table of `rows`: the `base` columns, the dropped-iterations and the late
    requests columns after Failed req. when `dropped` and `late`, and a Server column at
    `server_column` when Api and Language do not name each row's server."""
    columns = list(base)
    at = columns.index("Failed req.") + 1
    extra = ([DROPPED_COLUMN] if dropped else []) + ([LATE_COLUMN] if late else [])
    columns[at:at] = extra
    named = needs_server_column(rows)
    if named:
        columns.insert(server_column, "Server")
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = cells_of(row)
        if named:
            cells.insert(server_column, server_label(row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(rows: Sequence[Row], dropped: bool = False, late: bool = False) -> str:
    """The seed's table plus orch's trust columns (`dropped`: k6's open-model column;
    `late`: h2load's)."""
    return _table(COLUMNS, rows, dropped, 0, lambda row: _cells_of(row, dropped, late), late)


SWEEP_COLUMNS = (
    "Point",
    "Api",
    "Language",
    "Req/s",
    "CPU µs/req",
    "Core busy",
    "Load CPU",
    "p50",
    "p99",
    "p99.9",
    "Failed req.",
    "Limit",
)


def _fixed(est: Estimate | None, digits: int) -> str:
    if est is None:
        return "-"
    text = f"{est.value:.{digits}f}"
    if est.low is not None and est.high is not None:
        text += f" ({est.low:.{digits}f}…{est.high:.{digits}f})"
    return text


def sweep_table(
    rows: Sequence[Row], labels: dict[str, str], dropped: bool = False, late: bool = False
) -> str:
    """One row per load point and server: throughput, CPU cost per request, how busy the
    server's core and the load tool were, tail latency, failures and the limit."""

    def cells_of(row: Row) -> list[str]:
        return [
            labels.get(row.point, row.point),
            row.api,
            row.language,
            with_interval(row.requests_per_second, whole),
            _fixed(row.cpu_us_per_request, 2),
            percent_of_one(row.core_busy),
            percent_of_one(row.load_cpu),
            with_interval(row.latency_p50_ms, ms, _bare_ms),
            with_interval(row.latency_p99_ms, ms, _bare_ms),
            with_interval(row.latency_p999_ms, ms, _bare_ms),
            *_failures(row, dropped, late),
            row.limit,
        ]

    return _table(SWEEP_COLUMNS, rows, dropped, 1, cells_of, late)
