"""Turn a run directory's cells into the seed's table (Markdown), CSV, JSON and plots.

Every figure is the median across a server's successful repetitions with a 95%
confidence interval (methods in stats.py); `% More Requests` compares medians with the
baseline's and takes its interval from per-round ratios, since interleaved cells of one
round ran close together in time.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.results.cell import CellResult, RunDirectory, write_atomic
from orchestrator.results.stats import (
    Estimate,
    coefficient_of_variation,
    describe_method,
    median_ci,
    paired_ratio_ci,
)
from orchestrator.servers import ALL_SERVERS, LANGUAGE_LABELS

# Below this share of its core the server was waiting for requests: the load tool set req/s.
SATURATION_THRESHOLD = 0.90
NOT_SIGNIFICANT = "n.s."


@dataclass(frozen=True)
class Row:
    """One server's figures: medians over its successful repetitions, with 95% intervals.

    `*_low`/`*_high` are None when no interval exists (fewer than two repetitions).
    """

    server: str
    api: str
    language: str
    repetitions_ok: int
    repetitions: int
    median_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    requests_per_second: float | None
    more_requests_percent: float | None  # None for the baseline itself or when unknown
    is_baseline: bool
    server_cpu_percent: float | None
    requests_per_cpu_second: float | None
    nic_packets_per_request: float | None
    failed_requests: int
    load_bound: bool
    median_ms_low: float | None = None
    median_ms_high: float | None = None
    p99_ms_low: float | None = None
    p99_ms_high: float | None = None
    p999_ms_low: float | None = None
    p999_ms_high: float | None = None
    requests_per_second_low: float | None = None
    requests_per_second_high: float | None = None
    requests_per_second_cv_percent: float | None = None
    more_requests_low: float | None = None
    more_requests_high: float | None = None
    more_requests_significant: bool | None = None  # None: no interval to judge by
    requests_per_cpu_second_low: float | None = None
    requests_per_cpu_second_high: float | None = None
    load_cpu_percent: float | None = None
    server_core_busy_percent: float | None = None
    load_bound_cells: int = 0
    dropped_iterations: int = 0
    interval_method: str = "none"


def _estimate(values: Sequence[float | None]) -> Estimate | None:
    present = [v for v in values if v is not None]
    return median_ci(present) if present else None


def _value(est: Estimate | None) -> float | None:
    return None if est is None else est.value


def _bounds(est: Estimate | None, scale: float = 1.0) -> tuple[float | None, float | None]:
    if est is None or est.low is None or est.high is None:
        return None, None
    return est.low * scale, est.high * scale


def _packets_per_request(cell: CellResult) -> float | None:
    if cell.nic is None or cell.load is None or cell.load.requests == 0:
        return None
    return (cell.nic.rx_packets + cell.nic.tx_packets) / cell.load.requests


def _core_busy(cell: CellResult) -> float | None:
    if cell.server_cores is None:
        return None
    window = cell.server_cpu.busy_window_seconds if cell.server_cpu else None
    return cell.server_cores.busy_share(window)


def _latency(cell: CellResult, key: str) -> float | None:
    return None if cell.load is None else cell.load.latency_ms.get(key)


def _server_row(name: str, group: Sequence[CellResult]) -> dict[str, Any]:
    ok = [c for c in group if c.status == "ok" and c.load is not None]
    cpu = _estimate([c.server_cpu.utilisation for c in ok if c.server_cpu])
    cores = _estimate([_core_busy(c) for c in ok])
    # Saturation is the pinned core's busy share (CellResult.server_load).
    load_values = [u for u in (c.server_load for c in ok) if u is not None]
    saturation = _estimate(load_values)
    rps_values = [c.load.requests_per_second for c in ok if c.load]
    rps = _estimate(rps_values)
    per_cpu = _estimate([c.requests_per_cpu_second for c in ok])
    load_cpu = _estimate([c.load_cpu.share for c in ok if c.load_cpu])
    latencies = {key: _estimate([_latency(c, key) for c in ok]) for key in _LATENCY_KEYS}
    cv = coefficient_of_variation(rps_values)
    methods = {e.method for e in (rps, *latencies.values()) if e is not None}
    row: dict[str, Any] = {
        "server": name,
        "api": group[0].api,
        "language": LANGUAGE_LABELS.get(group[0].language, group[0].language),
        "repetitions_ok": len(ok),
        "repetitions": len(group),
        "requests_per_second": _value(rps),
        "server_cpu_percent": None if cpu is None else cpu.value * 100,
        "requests_per_cpu_second": _value(per_cpu),
        "nic_packets_per_request": _value(_estimate([_packets_per_request(c) for c in ok])),
        "failed_requests": sum(c.load.failed_requests for c in group if c.load),
        "load_bound": saturation is not None and saturation.value < SATURATION_THRESHOLD,
        "server_core_busy_percent": None if cores is None else cores.value * 100,
        "requests_per_second_cv_percent": None if cv is None else cv * 100,
        "load_cpu_percent": None if load_cpu is None else load_cpu.value * 100,
        "load_bound_cells": sum(1 for u in load_values if u < SATURATION_THRESHOLD),
        "dropped_iterations": sum(c.load.dropped_iterations for c in group if c.load),
        "interval_method": "none" if not methods else "/".join(sorted(methods)),
    }
    row["requests_per_second_low"], row["requests_per_second_high"] = _bounds(rps)
    low, high = _bounds(per_cpu)
    row["requests_per_cpu_second_low"], row["requests_per_cpu_second_high"] = low, high
    for key, field in _LATENCY_KEYS.items():
        row[field] = _value(latencies[key])
        row[f"{field}_low"], row[f"{field}_high"] = _bounds(latencies[key])
    return row


_LATENCY_KEYS = {"med": "median_ms", "p(99)": "p99_ms", "p(99.9)": "p999_ms"}


def _ok_rps_by_round(group: Sequence[CellResult]) -> dict[int, float]:
    return {
        c.repetition: c.load.requests_per_second
        for c in group
        if c.status == "ok" and c.load is not None
    }


def build_rows(cells: Sequence[CellResult], baseline: str | None) -> list[Row]:
    """Aggregate cells per server, in catalogue order, with % more requests vs the baseline."""
    by_server: dict[str, list[CellResult]] = {}
    for cell in cells:
        by_server.setdefault(cell.server, []).append(cell)
    order = [s.name for s in ALL_SERVERS if s.name in by_server]
    order += sorted(name for name in by_server if name not in order)
    partial = [_server_row(name, by_server[name]) for name in order]
    names = [p["server"] for p in partial if p["requests_per_second"]]
    chosen = baseline if baseline in names else (names[0] if names else None)
    base_rps = next((p["requests_per_second"] for p in partial if p["server"] == chosen), None)
    base_rounds = _ok_rps_by_round(by_server[chosen]) if chosen else {}
    rows = []
    for p in partial:
        rps = p["requests_per_second"]
        extra: dict[str, Any] = {"more_requests_percent": None}
        if base_rps and rps is not None and p["server"] != chosen:
            ratio = rps / base_rps
            extra["more_requests_percent"] = (ratio - 1) * 100
            rounds = _ok_rps_by_round(by_server[p["server"]])
            pairs = [(rounds[r], base_rounds[r]) for r in sorted(rounds) if r in base_rounds]
            if any(a > 0 and b > 0 for a, b in pairs):
                est = paired_ratio_ci(pairs, point=ratio)
                if est.low is not None and est.high is not None:
                    extra["more_requests_low"] = (est.low - 1) * 100
                    extra["more_requests_high"] = (est.high - 1) * 100
                    extra["more_requests_significant"] = est.excludes(1.0)
        rows.append(Row(**p, **extra, is_baseline=p["server"] == chosen))
    return rows


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}ms" if value >= 1 else f"{value:.3f}ms"


def _int(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _bare_ms(value: float) -> str:
    return _ms(value).removesuffix("ms")


def _with_ci(
    value: float | None,
    low: float | None,
    high: float | None,
    fmt: Callable[[float | None], str],
    bare: Callable[[float], str] | None = None,
) -> str:
    """`value (low…high)`, or just the value when there is no interval."""
    if value is None or low is None or high is None:
        return fmt(value)
    short = bare or fmt
    return f"{fmt(value)} ({short(low)}…{short(high)})"


def _more(row: Row) -> str:
    if row.is_baseline:
        return "Baseline"
    if row.more_requests_percent is None:
        return "-"
    text = f"{row.more_requests_percent:+.2f}%"
    if row.more_requests_low is not None and row.more_requests_high is not None:
        text += f" ({row.more_requests_low:+.1f}…{row.more_requests_high:+.1f}%)"
    if row.more_requests_significant is False:
        text += f" {NOT_SIGNIFICANT}"
    return text


def _limit(row: Row) -> str:
    if row.repetitions_ok == 0:
        return "failed"
    verdict = "load tool" if row.load_bound else "server"
    mixed = 0 < row.load_bound_cells < row.repetitions_ok
    return (
        f"{verdict} ({row.load_bound_cells}/{row.repetitions_ok} load-bound)" if mixed else verdict
    )


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


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


def _cells_of(row: Row, dropped: bool) -> list[str]:
    cells = [
        row.api,
        row.language,
        _with_ci(row.median_ms, row.median_ms_low, row.median_ms_high, _ms, _bare_ms),
        _with_ci(row.p99_ms, row.p99_ms_low, row.p99_ms_high, _ms, _bare_ms),
        _with_ci(row.p999_ms, row.p999_ms_low, row.p999_ms_high, _ms, _bare_ms),
        _with_ci(
            row.requests_per_second, row.requests_per_second_low, row.requests_per_second_high, _int
        ),
        _more(row),
        _percent(row.server_cpu_percent),
        _percent(row.server_core_busy_percent),
        _percent(row.load_cpu_percent),
        _with_ci(
            row.requests_per_cpu_second,
            row.requests_per_cpu_second_low,
            row.requests_per_cpu_second_high,
            _int,
        ),
        "-" if row.nic_packets_per_request is None else f"{row.nic_packets_per_request:.2f}",
        str(row.failed_requests),
    ]
    if dropped:
        cells.append(str(row.dropped_iterations))
    cv = row.requests_per_second_cv_percent
    cells += ["-" if cv is None else f"{cv:.1f}%", _limit(row)]
    return cells


def markdown_table(rows: Sequence[Row], dropped: bool = False) -> str:
    """The seed's table plus orch's trust columns (`dropped`: the open model's column)."""
    columns = list(COLUMNS)
    if dropped:
        columns.insert(columns.index("Failed req.") + 1, DROPPED_COLUMN)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cells_of(row, dropped)) + " |" for row in rows]
    return "\n".join(lines)


def _host_line(role: str, facts: dict[str, Any]) -> str:
    return (
        f"- {role.capitalize()} ({facts.get('hostname', '?')}): Linux {facts.get('kernel', '?')} "
        f"({facts.get('arch', '?')}), {facts.get('distro', '?')}, "
        f"{facts.get('cpu_model') or 'unknown CPU'}, {facts.get('cores', '?')} cores, "
        f"{facts.get('memory_kib', 0) / 1048576:.1f} GiB memory"
    )


def _model_lines(run: dict[str, Any], rows: Sequence[Row]) -> list[str]:
    profile = run.get("profile", {})
    model = profile.get("model", "closed loop: k6 ramping VUs, one request per iteration")
    if profile.get("model_kind") == "open":
        rate = profile.get("rate")
        short = [r.server for r in rows if r.dropped_iterations > 0]
        lines = [
            f"**Load model of this table: {model}.** Every server was offered the same "
            f"{rate} req/s, so Req/s is set by the rate and latency is comparable between "
            "servers that sustained it (no dropped iterations)."
        ]
        if short:
            lines.append(
                f"Dropped iterations: {', '.join(short)} did not sustain {rate} req/s (k6 "
                "ran out of VUs); their latency is not comparable with the others'."
            )
        return lines
    return [
        f"**Load model of this table: {model}.** In a closed loop each connection sends its "
        "next request only after the previous answer, so median latency is roughly "
        "concurrency / throughput: the latency columns restate Req/s rather than measure "
        "something else. Use `--rate R` (an open model) to compare latency."
    ]


def _statistics_line(run: dict[str, Any], rows: Sequence[Row]) -> str:
    methods: set[str] = set()
    for row in rows:
        methods.update(m for m in row.interval_method.split("/") if m != "none")
    reps = run.get("repetitions", 1)
    line = (
        f"- Repetitions: {reps}, cells interleaved (each round starts one server later); "
        "each figure is the median across a server's successful repetitions"
    )
    if not methods:
        return line + (
            ". No confidence intervals: a server with one successful repetition has none, "
            "so no difference can be called significant."
        )
    return line + (
        f", (low…high) its {describe_method(methods)}. % More Requests compares median "
        "Req/s with the baseline's; its interval comes from the per-round ratios (cells of "
        f"one round ran close together in time), and `{NOT_SIGNIFICANT}` marks an interval "
        "that includes 0: a difference that is not significant. Req/s CV: coefficient of "
        "variation of Req/s across repetitions."
    )


def _saturation_lines(rows: Sequence[Row], open_model: bool) -> list[str]:
    """What the load-bound rows mean, after the table."""
    bound = [r.server for r in rows if r.load_bound]
    if not bound:
        return []
    who = "kept its core" if len(bound) == 1 else "each kept its core"
    below = f"{who} less than {SATURATION_THRESHOLD:.0%} busy"
    if open_model:
        return [
            f"**Load-bound:** {', '.join(bound)} {below}: the offered rate, i.e. the load "
            "tool, not the API, set Req/s, as an open model intends; compare these rows by "
            "latency and Req per server CPU-s.",
            "",
        ]
    lines = [
        f"**Load-bound:** {', '.join(bound)} {below}, so the load tool, not the API, set "
        "Req/s for these rows; compare them by Req per server CPU-s."
    ]
    idle = [
        r.server
        for r in rows
        if r.load_bound
        and r.load_cpu_percent is not None
        and r.load_cpu_percent < SATURATION_THRESHOLD * 100
    ]
    if idle:
        lines.append(
            f"For {', '.join(idle)} the load tool too used less than "
            f"{SATURATION_THRESHOLD:.0%} of its cores: the loop's round trips (or other work "
            "on the machine) held both back; more connections or pipelining may help."
        )
    return [*lines, ""]


def render_markdown(
    run: dict[str, Any],
    cells: Sequence[CellResult],
    rows: Sequence[Row],
    plots: Sequence[str] = (),
) -> str:
    """The whole report.md; `plots` are image file names beside it."""
    out = [f"# orch run {run.get('id', '')}", ""]
    out.append(f"Command: `{run.get('command', '')}`  ")
    out.append(f"orch {run.get('orch_version', '?')} (commit {run.get('orch_commit', 'unknown')})")
    out += ["", "## System Specs", ""]
    for role in ("target", "load"):
        facts = run.get("facts", {}).get(role)
        if facts:
            out.append(_host_line(role, facts))
    tools = run.get("tools", {})
    if tools:
        out.append("- Tools: " + "; ".join(f"{k}: {v}" for k, v in tools.items()))
    profile = run.get("profile", {})
    load_tool = run.get("load_tool", {})
    out += ["", "## Method", ""]
    out.append(f"- Profile `{profile.get('name')}`: {profile.get('description', '')}")
    if load_tool:
        out.append(f"- Load tool: {load_tool.get('name')} ({load_tool.get('version', '')})")
    warmup = profile.get("warmup_seconds")
    if warmup:
        out.append(
            f"- Warm-up: a separate {warmup:g} s pass of the load tool before each measured "
            "pass, not measured; server CPU is sampled only around the measured pass."
        )
    elif warmup is not None:
        out.append("- Warm-up: none (--warmup 0).")
    out.append(f"- {run.get('placement', '')}")
    out.append(f"- {run.get('traffic_note', '')}")
    for resumed in run.get("resumed", []):
        out.append(
            f"- Resumed at {resumed.get('at', '?')} (`orch run --resume`): "
            f"{', '.join(resumed.get('cells', []))} measured then, after the rest."
        )
    out.append(_statistics_line(run, rows))
    out.append(
        "- Server CPU: the server process's share of its pinned core over the load tool's "
        "run time (/proc/PID/stat). Core busy: the share of that time the pinned core was "
        "not idle, whatever ran there (/proc/stat), network softirq work included. A row is "
        f"load-bound when Core busy stays below {SATURATION_THRESHOLD:.0%}: the server's "
        "core sat idle waiting for requests. Load CPU: the load tool's CPU "
        "time over its run time and its pinned cores."
    )
    dropped = profile.get("model_kind") == "open" or any(r.dropped_iterations for r in rows)
    out += ["", "## Results", "", *_model_lines(run, rows), "", markdown_table(rows, dropped), ""]
    out += _saturation_lines(rows, profile.get("model_kind") == "open")
    if plots:
        out += ["## Plots", ""]
        out += [f"![{name}]({name})" for name in plots if name.endswith(".svg")]
        out.append("")
    out += _failure_lines(cells)
    out += _unfinished_lines(run, cells)
    return "\n".join(out)


def _failure_lines(cells: Sequence[CellResult]) -> list[str]:
    """Failed cells with their error and server log tail; cells with failed requests."""
    out: list[str] = []
    failures = [c for c in cells if c.status == "failed"]
    if failures:
        out += ["## Failed cells", ""]
        for c in failures:
            out.append(f"- {c.server} repetition {c.repetition}: {c.error}")
            if c.server_log_tail and c.server_log_tail not in (c.error or ""):
                out.append(f"  - server log (last lines): {c.server_log_tail}")
        out.append("")
    erring = [(c, c.load) for c in cells if c.load is not None and c.load.failed_requests > 0]
    if erring:
        out += ["## Failed requests", ""]
        for c, load in erring:
            share = load.failed_requests / load.requests if load.requests else 1.0
            state = "" if c.status == "ok" else " (failed cell)"
            out.append(
                f"- {c.server} repetition {c.repetition}{state}: {load.tool} counted "
                f"{load.failed_requests:,} failed of {load.requests:,} requests ({share:.1%})"
            )
        out.append("")
    return out


def _unfinished_lines(run: dict[str, Any], cells: Sequence[CellResult]) -> list[str]:
    """What an interrupted or stopped run lacks, and how to finish it."""
    status = run.get("status")
    if status not in ("interrupted", "stopped", "running"):
        return []
    measured = {c.key for c in cells}
    missing = [key for key in run.get("plan", []) if key not in measured]
    why = {
        "interrupted": f"was interrupted ({run.get('interrupted_by', 'a signal')})",
        "stopped": f"stopped early: {run.get('stop_reason', 'a host was lost')}",
        "running": "has not finished (still running, or orch was killed)",
    }[status]
    line = f"**This run {why}.** {len(measured)} of {len(run.get('plan', []))} cells measured"
    if missing:
        line += (
            f"; not measured: {', '.join(missing)}. Finish it with "
            "`orch run --resume RUN_DIR` on this run's directory."
        )
    return [line + ("" if missing else "."), ""]


def render_csv(rows: Sequence[Row]) -> str:
    """One line per server with raw numbers."""
    buffer = io.StringIO()
    fields = list(asdict(rows[0]).keys()) if rows else [f.lower() for f in COLUMNS]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(asdict(row))
    return buffer.getvalue()


def render_json(run: dict[str, Any], cells: Sequence[CellResult], rows: Sequence[Row]) -> str:
    """Rows, cells and the method, for other programs."""
    profile = run.get("profile", {})
    data = {
        "run": run.get("id"),
        "load_model": profile.get("model"),
        "load_model_kind": profile.get("model_kind", "closed"),
        "saturation_threshold": SATURATION_THRESHOLD,
        "rows": [asdict(r) for r in rows],
        "cells": [c.model_dump(mode="json") for c in cells],
    }
    return json.dumps(data, indent=2) + "\n"


REPORT_FILES = {"md": "report.md", "csv": "results.csv", "json": "results.json"}


def write_reports(run_dir: RunDirectory, baseline: str | None = None) -> tuple[str, list[Row]]:
    """Render report.md, results.csv, results.json and the plots from what is on disk."""
    from orchestrator.report.plots import write_plots  # matplotlib is slow to import

    run = run_dir.read_run()
    cells = run_dir.read_cells()
    rows = build_rows(cells, baseline or run.get("baseline"))
    title = f"{run.get('id', run_dir.path.name)}: {run.get('profile', {}).get('model', '')}"
    plots = write_plots(run_dir.path, rows, title)
    markdown = render_markdown(run, cells, rows, [p.name for p in plots])
    write_atomic(run_dir.path / REPORT_FILES["md"], markdown + "\n")
    write_atomic(run_dir.path / REPORT_FILES["csv"], render_csv(rows))
    write_atomic(run_dir.path / REPORT_FILES["json"], render_json(run, cells, rows))
    return markdown, rows
