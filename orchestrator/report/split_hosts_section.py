"""report.md's Load hosts section, for runs that split each cell's load across hosts:
each host's share, requests and CPU, whether it was at its limit, the measured start
skew and the cost of the exact latency merge, and which hosts were at their limit where
a row was load-bound."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.load.split import shares
from orchestrator.results.aggregate import Row
from orchestrator.results.cell_result import CellResult
from orchestrator.results.record import RunRecord
from orchestrator.results.saturation import LOAD_HOST_LIMIT
from orchestrator.results.split_hosts import SplitRow, split_rows


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.2f} ms"


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3f} s"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _limit(row: SplitRow, host: int) -> str:
    part = row.hosts[host]
    if part.at_limit_cells == 0:
        return "no"
    if part.at_limit_cells == part.cells:
        return "yes"
    return f"{part.at_limit_cells}/{part.cells} cells"


def _bound_lines(
    rows: Sequence[SplitRow], table: Sequence[Row], labels: dict[str, str]
) -> list[str]:
    """For each load-bound row: the load hosts that were at their limit, or that none was."""
    bound = {(r.point, r.server) for r in table if r.load_bound}
    out = []
    for row in rows:
        if (row.point, row.server) not in bound:
            continue
        where = f"{row.server} at {labels.get(row.point, row.point)}"
        limited = [h for h in row.hosts if h.at_limit]
        if limited:
            names = ", ".join(f"{h.host} ({_share(h.cpu_share)} CPU)" for h in limited)
            out.append(f"- {where}: load-bound; load hosts at their limit: {names}.")
        else:
            out.append(
                f"- {where}: load-bound, but no load host used {LOAD_HOST_LIMIT:.0%} of its "
                "CPUs: the loop's round trips (or the network) held the load back."
            )
    return out


def load_host_lines(
    record: RunRecord, cells: Sequence[CellResult], table: Sequence[Row]
) -> list[str]:
    """The section (nothing when no cell was split)."""
    members = record.inventory.load_members
    machines = {name: f.boot_id for name, f in record.facts.load_hosts.items() if f.boot_id}
    cpus = {m.host: m.cpus for m in members}
    rows = split_rows(cells, [p.key for p in record.ordered_points], machines, cpus)
    if not rows:
        return []
    labels = {p.key: p.describe() for p in record.ordered_points}
    fractions = {s.host: s.fraction for s in shares(members)}
    out = [
        "## Load hosts",
        "",
        f"Each cell's load was split across {len(fractions)} load hosts by their CPUs "
        "(k6: execution segments of one sequence; wrk: connections) and started at one "
        "time (k6 paused until then, then resumed; wrk started then); the skew is how far "
        "apart the hosts really began, as each measured it (clocks compared from orch's "
        "polls, to within the bound given). Req/s is every host's requests over the common "
        "window, first start to last end; percentiles come from the merged latency "
        "histograms (whole microseconds), never from averaged percentiles. Load CPU: the "
        "host's load tool's CPU time over its run time and its pinned CPUs; at its limit: "
        f"{LOAD_HOST_LIMIT:.0%} or more.",
        "",
        "| Server | Point | Load host | Share | Requests | Req/s | Load CPU | At its limit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for index, host in enumerate(row.hosts):
            fraction = fractions.get(host.host)
            out.append(
                f"| {row.server} | {labels.get(row.point, row.point)} | {host.host} | "
                f"{fraction if fraction is not None else '-'} | {_number(host.requests)} | "
                f"{_number(host.requests_per_second)} | {_share(host.cpu_share)} | "
                f"{_limit(row, index)} |"
            )
    out += [
        "",
        "| Server | Point | Start skew (median, max) | Clock bound | Histogram cost per cell "
        "(median, max) | How |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        out.append(
            f"| {row.server} | {labels.get(row.point, row.point)} | {_ms(row.skew_median)}, "
            f"{_ms(row.skew_max)} | ±{_ms(row.clock_error)} | {_s(row.reduce_median)}, "
            f"{_s(row.reduce_max)} | {row.method or '-'} |"
        )
    shared = sorted(
        {
            tuple(sorted((h.host, *h.shares_cpus_with)))
            for r in rows
            for h in r.hosts
            if h.shares_cpus_with
        }
    )
    notes = [
        f"- {', '.join(group)} are one machine (one boot id) on the same CPUs: their Load "
        "CPU is that machine's, all of them together."
        for group in shared
    ]
    bound = _bound_lines(rows, table, labels)
    return [*out, "", *notes, *bound, *([""] if notes or bound else [])]
