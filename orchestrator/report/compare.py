"""`orch compare RUN_A RUN_B`: each server's change from run A to run B at each load point
both runs measured, with significance.

The two runs are independent samples, so a change is the ratio of B's median to A's
with Welch's t interval on the logarithms (stats.welch_ratio_ci); `n.s.` marks an
interval that includes no change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import median

from orchestrator.report.table import NOT_SIGNIFICANT, change
from orchestrator.results.aggregate import Row, build_rows
from orchestrator.results.cell_result import CellResult
from orchestrator.results.record import RunRecord
from orchestrator.results.rundir import RunDirectory
from orchestrator.results.stats import METHOD_NONE, Estimate, describe_method, welch_ratio_ci
from orchestrator.system.differences import differences
from orchestrator.system.model import SystemFacts

Metric = Callable[[CellResult], float | None]


def _per_cpu(cell: CellResult) -> float | None:
    return cell.requests_per_cpu_second


def _median_latency(cell: CellResult) -> float | None:
    return None if cell.load is None else cell.load.latency.p50


METRICS: tuple[tuple[str, Metric, str], ...] = (
    ("Req/s", lambda c: c.requests_per_second, "{:,.0f}"),
    ("Req per server CPU-s", _per_cpu, "{:,.0f}"),
    ("Target CPU µs/req", lambda c: c.target_cpu_us_per_request, "{:.2f}"),
    ("Median latency (ms)", _median_latency, "{:.3f}"),
)


@dataclass(frozen=True)
class Change:
    """One metric of one server in both runs."""

    a: float | None
    b: float | None
    ratio: Estimate | None  # B over A


def _values(cells: Sequence[CellResult], server: str, point: str, metric: Metric) -> list[float]:
    found = [
        metric(c) for c in cells if c.server == server and c.point == point and c.status == "ok"
    ]
    return [v for v in found if v is not None and v > 0]


def measure_change(a: Sequence[float], b: Sequence[float]) -> Change:
    """Medians of both samples and the ratio B/A with its interval (None when a side is empty)."""
    a_median = median(a) if a else None
    b_median = median(b) if b else None
    if not a or not b:
        return Change(a_median, b_median, None)
    return Change(a_median, b_median, welch_ratio_ci(b, a))


def _describe_run(label: str, run_dir: RunDirectory, record: RunRecord) -> str:
    points = ", ".join(point.describe() for point in record.points)
    return (
        f"- {label}: `{run_dir.path.name}`: profile `{record.profile.name}`, "
        f"{record.load_tool.label}, {record.repetitions} repetition(s); "
        f"{record.load_model()}" + ("" if record.single_point else f"; points: {points}")
    )


def _setup(record: RunRecord) -> str:
    return f"{record.profile.name}|{record.load_tool.label}|{record.load_model()}"


def _by_role(record: RunRecord) -> dict[str, SystemFacts]:
    """The run's system facts by the role of each host (target, load, load 2, ...)."""
    assert record.system is not None
    found = {"target": record.system.hosts[record.inventory.target.host]}
    members = record.inventory.load_members
    for index, member in enumerate(members):
        role = "load" if len(members) == 1 else f"load {index + 1}"
        found[role] = record.system.hosts[member.host]
    return found


def _system_lines(record_a: RunRecord, record_b: RunRecord) -> list[str]:
    """Where the hosts' systems differ (only runs that recorded them are compared)."""
    if record_a.system is None and record_b.system is None:
        return []
    if record_a.system is None or record_b.system is None:
        lacking = "A" if record_a.system is None else "B"
        return [
            f"Run {lacking} recorded no system facts (frequency, idle states, SMT, "
            "interrupts): whether the hosts were set up alike cannot be told.",
            "",
        ]
    found = differences(_by_role(record_a), _by_role(record_b))
    if not found:
        return []
    return [
        "**The runs' systems differ: a change may come from that rather than from the servers.**",
        "",
        *(f"- {line}" for line in found),
        "",
    ]


def _limit(row: Row | None) -> str:
    return "-" if row is None else row.limit


def compare_runs(run_a: RunDirectory, run_b: RunDirectory) -> str:
    """A Markdown report of every server and load point present in both runs."""
    record_a, record_b = run_a.read_run(), run_b.read_run()
    cells_a, cells_b = run_a.read_cells(), run_b.read_cells()
    rows_a = {(r.point, r.server): r for r in build_rows(cells_a, None)}
    rows_b = {(r.point, r.server): r for r in build_rows(cells_b, None)}
    shared = [key for key in rows_a if key in rows_b]
    out = [
        "# orch compare",
        "",
        _describe_run("A", run_a, record_a),
        _describe_run("B", run_b, record_b),
        "",
    ]
    if _setup(record_a) != _setup(record_b):
        out += [
            "**The runs differ in profile, load tool or load model: a change may come from "
            "that rather than from the servers.**",
            "",
        ]
    out += _system_lines(record_a, record_b)
    if not shared:
        return "\n".join([*out, "No server was measured in both runs."])
    several_points = len({point for point, _ in shared}) > 1
    header = ["Server", *(["Point"] if several_points else [])]
    for name, _, _ in METRICS:
        header += [f"{name} A", f"{name} B", "Change"]
    header += ["Limit A", "Limit B"]
    out += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    methods: set[str] = set()
    for point, server in shared:
        cells = [server, *([point] if several_points else [])]
        for _, metric, fmt in METRICS:
            found = measure_change(
                _values(cells_a, server, point, metric), _values(cells_b, server, point, metric)
            )
            if found.ratio is not None:
                methods.add(found.ratio.method)
            cells += [
                "-" if found.a is None else fmt.format(found.a),
                "-" if found.b is None else fmt.format(found.b),
                change(found.ratio),
            ]
        cells += [_limit(rows_a.get((point, server))), _limit(rows_b.get((point, server)))]
        out.append("| " + " | ".join(cells) + " |")
    out += [
        "",
        f"Values are medians across repetitions; Change is B over A with its "
        f"{describe_method(methods - {METHOD_NONE})}; `{NOT_SIGNIFICANT}` marks an interval "
        "that includes no change. Rows limited by the load tool compare best by "
        "Req per server CPU-s and Target CPU µs/req (`-`: a run recorded before orch "
        "measured the whole target).",
    ]
    only = sorted({f"{s} at {p}" if several_points else s for p, s in set(rows_a) ^ set(rows_b)})
    if only:
        out.append(f"Measured in one run only: {', '.join(only)}.")
    left_out = [
        f"{p.describe()} (only in {name})"
        for name, mine, other in (("A", record_a, record_b), ("B", record_b, record_a))
        for p in mine.points
        if p.key not in {q.key for q in other.points}
    ]
    if left_out:
        out.append(f"Load points left out (not in both runs): {', '.join(left_out)}.")
    return "\n".join(out)
