"""`orch compare RUN_A RUN_B`: each server's change from run A to run B, with significance.

The two runs are independent samples, so a change is the ratio of B's median to A's
with Welch's t interval on the logarithms (stats.welch_ratio_ci); `n.s.` marks an
interval that includes no change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator.report.markdown import NOT_SIGNIFICANT, Row, build_rows
from orchestrator.results.cell import CellResult, RunDirectory
from orchestrator.results.stats import Estimate, describe_method, welch_ratio_ci

Metric = Callable[[CellResult], float | None]


def _rps(cell: CellResult) -> float | None:
    return None if cell.load is None else cell.load.requests_per_second


def _per_cpu(cell: CellResult) -> float | None:
    return cell.requests_per_cpu_second


def _median_latency(cell: CellResult) -> float | None:
    return None if cell.load is None else cell.load.latency_ms.get("med")


METRICS: tuple[tuple[str, Metric, str], ...] = (
    ("Req/s", _rps, "{:,.0f}"),
    ("Req per server CPU-s", _per_cpu, "{:,.0f}"),
    ("Median latency (ms)", _median_latency, "{:.3f}"),
)


@dataclass(frozen=True)
class Change:
    """One metric of one server in both runs."""

    a: float | None
    b: float | None
    ratio: Estimate | None  # B over A


def _values(cells: Sequence[CellResult], server: str, metric: Metric) -> list[float]:
    found = [metric(c) for c in cells if c.server == server and c.status == "ok"]
    return [v for v in found if v is not None and v > 0]


def measure_change(a: Sequence[float], b: Sequence[float]) -> Change:
    """Medians of both samples and the ratio B/A with its interval (None when a side is empty)."""
    if not a or not b:
        return Change(_median_or_none(a), _median_or_none(b), None)
    ratio = welch_ratio_ci(b, a)
    return Change(_median_or_none(a), _median_or_none(b), ratio)


def _median_or_none(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def format_change(ratio: Estimate | None) -> str:
    """`+4.2% (+1.0…+7.5%)`, with `n.s.` when the interval includes no change."""
    if ratio is None:
        return "-"
    text = f"{(ratio.value - 1) * 100:+.2f}%"
    if ratio.low is not None and ratio.high is not None:
        text += f" ({(ratio.low - 1) * 100:+.1f}…{(ratio.high - 1) * 100:+.1f}%)"
        if not ratio.excludes(1.0):
            text += f" {NOT_SIGNIFICANT}"
    return text


def _limit(row: Row | None) -> str:
    if row is None or row.repetitions_ok == 0:
        return "-"
    return "load tool" if row.load_bound else "server"


def _describe_run(label: str, run_dir: RunDirectory) -> tuple[str, str]:
    run = run_dir.read_run()
    profile = run.get("profile", {})
    tool = run.get("load_tool", {}).get("name", "k6")
    model = profile.get("model", "closed loop: k6 ramping VUs")
    line = (
        f"- {label}: `{run_dir.path.name}`: profile `{profile.get('name')}`, {tool}, "
        f"{run.get('repetitions', 1)} repetition(s); {model}"
    )
    return line, f"{profile.get('name')}|{tool}|{model}"


def compare_runs(run_a: RunDirectory, run_b: RunDirectory) -> str:
    """A Markdown report of every server present in both runs."""
    cells_a, cells_b = run_a.read_cells(), run_b.read_cells()
    rows_a = {r.server: r for r in build_rows(cells_a, None)}
    rows_b = {r.server: r for r in build_rows(cells_b, None)}
    servers = [name for name in rows_a if name in rows_b]
    line_a, key_a = _describe_run("A", run_a)
    line_b, key_b = _describe_run("B", run_b)
    out = ["# orch compare", "", line_a, line_b, ""]
    if key_a != key_b:
        out += [
            "**The runs differ in profile, load tool or load model: a change may come from "
            "that rather than from the servers.**",
            "",
        ]
    if not servers:
        return "\n".join([*out, "No server was measured in both runs."])
    header = ["Server"]
    for name, _, _ in METRICS:
        header += [f"{name} A", f"{name} B", "Change"]
    header += ["Limit A", "Limit B"]
    out += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    methods: set[str] = set()
    for server in servers:
        cells = [server]
        for _, metric, fmt in METRICS:
            change = measure_change(
                _values(cells_a, server, metric), _values(cells_b, server, metric)
            )
            if change.ratio is not None:
                methods.add(change.ratio.method)
            cells += [
                "-" if change.a is None else fmt.format(change.a),
                "-" if change.b is None else fmt.format(change.b),
                format_change(change.ratio),
            ]
        cells += [_limit(rows_a.get(server)), _limit(rows_b.get(server))]
        out.append("| " + " | ".join(cells) + " |")
    out += [
        "",
        f"Values are medians across repetitions; Change is B over A with its "
        f"{describe_method(methods - {'none'})}; `{NOT_SIGNIFICANT}` marks an interval "
        "that includes no change. Rows limited by the load tool compare best by "
        "Req per server CPU-s.",
    ]
    only = sorted(set(rows_a) ^ set(rows_b))
    if only:
        out.append(f"Measured in one run only: {', '.join(only)}.")
    return "\n".join(out)
