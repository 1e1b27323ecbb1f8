"""report.md: System Specs, the method, what verify found, the seed's table per load point
with what its marks mean, plots, failed cells and what an unfinished run lacks."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.facts import HostFacts
from orchestrator.report.cost_section import cost_lines
from orchestrator.report.decide import ending_lines
from orchestrator.report.main_job_section import main_job_method, main_job_results, rounds_line
from orchestrator.report.rate_section import (
    arrivals_line,
    late_lines,
    log_cost_line,
    rate_model_lines,
    rate_verdict_lines,
    rate_verdict_note,
)
from orchestrator.report.servers_section import (
    outside_verdict_line,
    server_note_lines,
    verify_lines,
)
from orchestrator.report.split_hosts_section import load_host_lines
from orchestrator.report.system_section import system_lines
from orchestrator.report.table import NOT_SIGNIFICANT, markdown_table, sweep_table
from orchestrator.results.aggregate import Row
from orchestrator.results.cell_result import CellResult
from orchestrator.results.knees import find_knees
from orchestrator.results.record import RunRecord
from orchestrator.results.saturation import SATURATION_THRESHOLD
from orchestrator.results.stats import METHOD_NONE, describe_method
from orchestrator.results.verdict import (
    PointVerdict,
    explanation_lines,
    point_verdicts,
    sentence,
)
from orchestrator.startup import parse_startup_line


def _host_line(role: str, facts: HostFacts) -> str:
    return (
        f"- {role.capitalize()} ({facts.hostname}): Linux {facts.kernel} ({facts.arch}), "
        f"{facts.distro}, {facts.cpu_model or 'unknown CPU'}, {facts.cores} cores, "
        f"{facts.memory_kib / 1048576:.1f} GiB memory"
    )


def _startup_lines(record: RunRecord) -> list[str]:
    """What each server said about its API and ring at start."""
    lines = []
    for server, line in record.server_startup.items():
        parsed = parse_startup_line(line)
        lines.append(f"  - {server}: {parsed.describe() if parsed else line}")
    return ["- Servers at start (their own line):", *lines] if lines else []


def _model_lines(model: str, rate: int | None, rows: Sequence[Row]) -> list[str]:
    if rate is not None:
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


def _statistics_line(record: RunRecord, rows: Sequence[Row]) -> str:
    methods: set[str] = set()
    for row in rows:
        methods.update(m for m in row.interval_method.split("/") if m != METHOD_NONE)
    order = (
        "each round starts one server later"
        if record.cell_layout == "server/repetition"  # planned by orch 0.1.0
        else "in each round every language's epoll and io_uring run back to back, their "
        "order alternating, and points and languages start one later"
    )
    line = rounds_line(record) or (
        f"- Repetitions: {record.repetitions}, cells interleaved ({order}); each figure is "
        "the median across a server's successful repetitions"
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
        if r.load_bound and r.load_cpu is not None and r.load_cpu.value < SATURATION_THRESHOLD
    ]
    if idle:
        lines.append(
            f"For {', '.join(idle)} the load tool too used less than "
            f"{SATURATION_THRESHOLD:.0%} of its cores: the loop's round trips (or other work "
            "on the machine) held both back; more connections or pipelining may help."
        )
    return [*lines, ""]


def _rated(record: RunRecord) -> bool:
    """Whether the run's load tool counts late requests at its rates (h2load)."""
    return record.load_tool.kind == "h2load"


def _method_lines(record: RunRecord, rows: Sequence[Row], cells: Sequence[CellResult]) -> list[str]:
    profile = record.profile
    shape = (
        f"{profile.duration:g} s, up to {profile.max_vus} VUs"
        if record.single_point or record.table_points
        else f"each cell holds its load point for {profile.duration:g} s"
    )
    out = [
        f"- Profile `{profile.name}`: {shape}",
        f"- Load tool: {record.load_tool.label} ({record.load_tool.version})",
    ]
    warmup = profile.warmup_seconds
    if warmup:
        out.append(
            f"- Warm-up: a separate {warmup:g} s pass of the load tool before each measured "
            "pass, not measured; server CPU is sampled only around the measured pass."
        )
    else:
        out.append("- Warm-up: none (--warmup 0).")
    out += main_job_method(record)
    out.append(f"- {record.placement}")
    out.append(f"- {record.traffic_note}")
    if _rated(record):
        if any(point.is_open for point in record.ordered_points):
            out.append(arrivals_line())
        cost = log_cost_line(cells)
        if cost:
            out.append(cost)
    out += server_note_lines(record)
    for resumed in record.resumed:
        again = ", ".join(record.cell_label(key) for key in resumed.cells)
        out.append(
            f"- Resumed at {resumed.at} (`orch run --resume`): {again} measured then, after "
            "the rest."
        )
    out.append(_statistics_line(record, rows))
    source = "schedstat" if record.measurement is not None else "/proc/PID/stat"
    out.append(
        "- Server CPU: the server process's share of its pinned core over the load tool's "
        f"run time ({source}). Core busy: the share of that time the pinned core was "
        "not idle, whatever ran there (/proc/stat), network softirq work included. A row is "
        f"load-bound when Core busy stays below {SATURATION_THRESHOLD:.0%}: the server's "
        "core sat idle waiting for requests. Load CPU: the load tool's CPU "
        "time over its run time and its pinned cores."
    )
    return out


def _results_lines(record: RunRecord, rows: Sequence[Row]) -> list[str]:
    if record.table_points:
        return main_job_results(record, rows, _model_lines, _saturation_lines)
    rated = _rated(record)
    labels = {point.key: point.describe() for point in record.ordered_points}
    if record.single_point:
        point = record.ordered_points[0]
        dropped = (point.is_open and not rated) or any(r.dropped_iterations for r in rows)
        model = record.load_model(point.key)
        if rated and point.is_open and point.rate is not None:
            out = [*rate_model_lines(model, point.rate), ""]
        else:
            out = [*_model_lines(model, point.rate, rows), ""]
        out += [markdown_table(rows, dropped, rated and point.is_open), ""]
        out += late_lines(rows, labels)
        return out + _saturation_lines(rows, point.is_open)
    models = list(dict.fromkeys(record.load_model(point.key) for point in record.ordered_points))
    out = [
        f"**{len(record.ordered_points)} load points**, each row the median of its successful "
        f"repetitions: {'; '.join(models)}. CPU µs/req is the server process's CPU time per "
        "request served: it compares servers at equal load even where the load tool set "
        "Req/s. In a closed loop latency restates concurrency / throughput; compare latency "
        "at open-model points (--rates).",
        "",
    ]
    opened = any(point.is_open for point in record.ordered_points)
    out += [sweep_table(rows, labels, opened and not rated, opened and rated), ""]
    out += late_lines(rows, labels)
    bound = sorted({labels.get(r.point, r.point) for r in rows if r.load_bound})
    if bound:
        out += [
            f"**Load-bound** (`load tool` in Limit: the server's core was less than "
            f"{SATURATION_THRESHOLD:.0%} busy) at {', '.join(bound)}: there the load tool set "
            "Req/s; compare those rows by CPU µs/req.",
            "",
        ]
    return out


def _verdict_lines(
    record: RunRecord, cells: Sequence[CellResult], rows: Sequence[Row]
) -> list[str]:
    """The answer first: epoll against io_uring per load point, and rate-sweep knees; then
    what a run to a precision reached and, where it could not decide, what would."""
    rated = _rated(record)
    points = record.verdict_points
    verdicts = point_verdicts(cells, rows, [p for p in points if not (rated and p.is_open)])
    at_rates = rate_verdict_lines(cells, rows, record.ordered_points) if rated else []
    out = ["## Verdict", ""]
    if not verdicts and not at_rates:
        out.append(
            "No language was measured with both epoll and io_uring at the same load point: "
            "no verdict."
        )
    for verdict in verdicts:
        out.append(f"- {sentence(verdict)}")
        out += [f"  - {line}" for line in explanation_lines(verdict)]
    out += at_rates
    outside = outside_verdict_line(record, rows)
    if outside:
        out += ["", outside]
    knees = find_knees(cells, rows, [p for p in record.ordered_points if p.is_open])
    if len({p.rate for p in record.ordered_points if p.is_open}) > 1:
        out += ["", "Knees of the rate sweep:", ""]
        out += [f"- {knee.describe()}." for knee in knees]
    out += ending_lines(record, cells, rows)
    if at_rates:
        out += rate_verdict_note()
    if verdicts or not rated:
        out += ["", _verdict_method(verdicts)]
    return [*out, ""]


def _verdict_method(verdicts: Sequence[PointVerdict]) -> str:
    """How the verdict compares, naming the CPU figure it used."""
    figures = {v.figure for verdict in verdicts for v in verdict.languages if v.cpu_ratio}
    what = "CPU per request"
    if "target" in figures:
        what = (
            "Target CPU per request (the whole target's CPU above its idle baseline, "
            "interrupts and softirqs included; see Cost per request)"
        )
        if "process" in figures:
            what += " where every cell recorded it, else the server process's CPU per request,"
    fell_back = sorted(
        {
            f"{v.language} at {verdict.label}"
            for verdict in verdicts
            for v in verdict.languages
            if v.implausible_cells
        }
    )
    fallback = ""
    if fell_back and "target" not in figures:
        what = "The server process's CPU per request (schedstat)"
    if fell_back:
        fallback = (
            " In " + ", ".join(fell_back) + " the target figure fell below the server "
            "process's own CPU in some cells: the machine's background changed after its idle "
            "baseline was measured, so the verdict there compares the server process's CPU "
            "per request instead."
        )
    return (
        f"{what} is compared as epoll's over io_uring's in each round (the two "
        "cells of a round ran close together in time), with the 95% interval of those "
        "ratios; Req/s only where both rows were server-bound. A winner is named only when "
        f"every language's interval lies on the same side of no change.{fallback}"
    )


def render_markdown(
    record: RunRecord,
    cells: Sequence[CellResult],
    rows: Sequence[Row],
    plots: Sequence[str] = (),
) -> str:
    """The whole report.md; `plots` are image file names beside it."""
    out = [f"# orch run {record.id}", ""]
    out.append(f"Command: `{record.command}`  ")
    out.append(f"orch {record.orch_version} (commit {record.orch_commit})")
    out += ["", *_verdict_lines(record, cells, rows)]
    out += ["## System Specs", ""]
    out.append(_host_line("target", record.facts.target))
    loads = record.facts.load_hosts or {"load": record.facts.load}
    for name, facts in loads.items():
        out.append(_host_line("load" if len(loads) == 1 else f"load {name}", facts))
    out += system_lines(record)
    if record.tools:
        out.append("- Tools: " + "; ".join(f"{k}: {v}" for k, v in record.tools.items()))
    out += _startup_lines(record)
    out += ["", "## Method", "", *_method_lines(record, rows, cells), ""]
    out += verify_lines(record, cells)
    out += ["## Results", "", *_results_lines(record, rows)]
    out += cost_lines(record, cells, rows)
    out += load_host_lines(record, cells, rows)
    if plots:
        out += ["## Plots", ""]
        out += [f"![{name}]({name})" for name in plots if name.endswith(".svg")]
        out.append("")
    out += _failure_lines(record, cells)
    out += _unfinished_lines(record, cells)
    return "\n".join(out)


def _failure_lines(record: RunRecord, cells: Sequence[CellResult]) -> list[str]:
    """Failed cells with their error and server log tail; cells with failed requests."""
    out: list[str] = []

    def name(cell: CellResult) -> str:
        at = "" if record.single_point else f" at {cell.point}"
        return f"{cell.server}{at} repetition {cell.repetition}"

    failures = [c for c in cells if c.status == "failed"]
    if failures:
        out += ["## Failed cells", ""]
        for c in failures:
            out.append(f"- {name(c)}: {c.error}")
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
                f"- {name(c)}{state}: {load.tool} counted "
                f"{load.failed_requests:,} failed of {load.requests:,} requests ({share:.1%})"
            )
        out.append("")
    return out


def _unfinished_lines(record: RunRecord, cells: Sequence[CellResult]) -> list[str]:
    """What an interrupted or stopped run lacks, and how to finish it."""
    if record.status == "complete":
        return []
    measured = {c.key for c in cells}
    missing = [record.cell_label(key) for key in record.plan if key not in measured]
    why = {
        "interrupted": f"was interrupted ({record.interrupted_by or 'a signal'})",
        "stopped": f"stopped early: {record.stop_reason or 'a host was lost'}",
        "running": "has not finished (still running, or orch was killed)",
    }[record.status]
    line = f"**This run {why}.** {len(measured)} of {len(record.plan)} cells measured"
    if missing:
        line += (
            f"; not measured: {', '.join(missing)}. Finish it with "
            "`orch run --resume RUN_DIR` on this run's directory."
        )
    return [line + ("" if missing else "."), ""]
