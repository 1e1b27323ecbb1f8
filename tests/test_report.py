"""Report rendering from known cells: the seed's columns, baseline, load-bound marks."""

from __future__ import annotations

from pathlib import Path

import pytest
from record_helpers import make_record, make_run_dir

from orchestrator.load.points import LoadPoint
from orchestrator.load.result import Latency, LoadResult
from orchestrator.report.table import markdown_table
from orchestrator.report.write import write_reports
from orchestrator.results.aggregate import Row, build_rows
from orchestrator.results.cell_result import CellResult, NicCounters, ProcessCpu
from orchestrator.results.stats import Estimate


def cell(
    server: str, rps: float, cpu_seconds: float, rep: int = 1, med: float = 2.0, status: str = "ok"
) -> CellResult:
    language, api = server.split("-", 1)
    wall = 10.0
    requests = int(rps * wall)
    return CellResult(
        server=server,
        api=api,
        language=language,
        point="ramp20",
        repetition=rep,
        status=status,  # type: ignore[arg-type]
        error=None if status == "ok" else "server exited with status 1 before it was ready",
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:10+00:00",
        load=None
        if status != "ok"
        else LoadResult(
            tool="k6",
            requests=requests,
            failed_requests=0,
            duration_seconds=wall,
            requests_per_second=rps,
            latency=Latency(p50=med, p99=med * 2, p999=med * 3),
        ),
        server_cpu=ProcessCpu(
            user_seconds=cpu_seconds / 2, system_seconds=cpu_seconds / 2, wall_seconds=wall
        ),
        nic=NicCounters(
            interface="lo", rx_packets=requests * 2, tx_packets=requests * 2, rx_bytes=0, tx_bytes=0
        ),
        server_exit_status=0,
    )


def value(est: Estimate | None) -> float:
    assert est is not None
    return est.value


def bounds(est: Estimate | None) -> tuple[float, float]:
    assert est is not None and est.low is not None and est.high is not None
    return est.low, est.high


def more_percent(row: Row) -> float:
    assert row.more_requests is not None
    return (row.more_requests.value - 1) * 100


def test_rows_use_median_over_repetitions_and_baseline() -> None:
    cells = [
        cell("rust-epoll", 100_000, 9.5, rep=1),
        cell("rust-epoll", 120_000, 9.6, rep=2),
        cell("rust-epoll", 110_000, 9.7, rep=3),
        cell("c-io_uring", 132_000, 9.8),
    ]
    rows = build_rows(cells, baseline="rust-epoll")
    assert [r.server for r in rows] == ["rust-epoll", "c-io_uring"]  # catalogue order
    rust, c = rows
    assert rust.is_baseline and value(rust.requests_per_second) == 110_000
    assert more_percent(c) == pytest.approx(20.0)
    assert value(rust.server_cpu) * 100 == pytest.approx(96.0)
    assert not rust.load_bound
    assert value(c.requests_per_cpu_second) == pytest.approx(132_000 * 10 / 9.8)
    assert value(c.nic_packets_per_request) == pytest.approx(4.0)


def test_load_bound_when_server_core_not_saturated() -> None:
    rows = build_rows([cell("c-epoll", 8_000, 1.5), cell("c-io_uring", 8_100, 9.5)], None)
    assert rows[0].load_bound and not rows[1].load_bound
    table = markdown_table(rows)
    lines = table.splitlines()
    assert lines[0].startswith("| Api | Language | Median Req. Duration | p(99) Req. Duration")
    assert "% More Requests" in lines[0] and "Req per server CPU-s" in lines[0]
    assert lines[2].startswith("| epoll | C | 2.00ms | 4.00ms | 6.00ms | 8,000 | Baseline | 15% |")
    assert lines[2].endswith("| load tool |")
    assert "| +1.25% |" in lines[3] and lines[3].endswith("| server |")


def test_report_files_and_failed_cells(tmp_path: Path) -> None:
    record = make_record(
        plan=["c-epoll/1", "zig-epoll/1"],
        baseline="c-epoll",
        traffic_note="Loopback mode: lo.",
        status="complete",
    )
    run_dir = make_run_dir(tmp_path, record, "test")
    run_dir.write_cell(cell("c-epoll", 50_000, 9.9))
    run_dir.write_cell(cell("zig-epoll", 0, 0, status="failed"))
    markdown = write_reports(run_dir)["md"]
    rows = build_rows(run_dir.read_cells(), "c-epoll")
    assert (run_dir.path / "report.md").read_text(encoding="utf-8").strip() == markdown.strip()
    assert "zig-epoll repetition 1: server exited with status 1" in markdown
    assert "Loopback mode" in markdown
    assert rows[1].repetitions_ok == 0
    csv_lines = (run_dir.path / "results.csv").read_text(encoding="utf-8").splitlines()
    assert csv_lines[0].startswith("server,api,language") and len(csv_lines) == 3
    assert '"rows"' in (run_dir.path / "results.json").read_text(encoding="utf-8")


def test_intervals_and_significance_from_interleaved_rounds() -> None:
    # Three rounds drifting together; c-epoll is 10% above the baseline in every round.
    cells = [
        cell("rust-epoll", rps, 9.7, rep=r) for r, rps in ((1, 100_000), (2, 90_000), (3, 110_000))
    ]
    cells += [
        cell("c-epoll", rps, 9.7, rep=r) for r, rps in ((1, 110_000), (2, 99_000), (3, 121_000))
    ]
    # zig-epoll moves both ways against the baseline: not significant.
    cells += [
        cell("zig-epoll", rps, 9.7, rep=r) for r, rps in ((1, 95_000), (2, 99_000), (3, 110_000))
    ]
    rows = {r.server: r for r in build_rows(cells, baseline="rust-epoll")}
    c, zig = rows["c-epoll"], rows["zig-epoll"]
    assert more_percent(c) == pytest.approx(10.0)
    c_low, c_high = bounds(c.more_requests)
    assert (c_low - 1) * 100 == pytest.approx(10.0)
    assert (c_high - 1) * 100 == pytest.approx(10.0)
    assert c.more_requests_significant is True
    assert zig.more_requests_significant is False
    zig_low, zig_high = bounds(zig.more_requests)
    assert zig_low < 1 < zig_high
    rps_low, rps_high = bounds(c.requests_per_second)
    assert rps_low < 110_000 < rps_high
    assert c.interval_method == "t"
    # sample sd of 99k, 110k, 121k is 11k: CV 10%
    assert c.requests_per_second_cv == pytest.approx(0.10)
    table = markdown_table(list(rows.values()))
    assert "| +10.00% (+10.0…+10.0%) |" in table
    assert " n.s. |" in table.splitlines()[4]  # zig-epoll's row
    assert "| 110,000 (" in table


def test_single_repetition_shows_no_interval_and_no_mark() -> None:
    rows = build_rows([cell("c-epoll", 8_000, 9.5), cell("c-io_uring", 8_800, 9.5)], None)
    assert rows[1].more_requests_significant is None
    assert rows[1].requests_per_second is not None
    assert rows[1].requests_per_second.low is None
    assert "n.s." not in markdown_table(rows)


def test_open_model_report_states_the_model_and_dropped_iterations(tmp_path: Path) -> None:
    point = LoadPoint(kind="open", vus=20, rate=100)
    record = make_record(
        points=[point],
        status="complete",
        models={point.key: "open model: k6 constant-arrival-rate, 100 req/s for 4 s"},
    )
    run_dir = make_run_dir(tmp_path, record, "open")
    slow = cell("c-epoll", 90, 0.1).model_copy(update={"point": point.key})
    assert slow.load is not None
    slow.load.dropped_iterations = 40
    run_dir.write_cell(slow)
    run_dir.write_cell(cell("c-io_uring", 100, 0.1).model_copy(update={"point": point.key}))
    markdown = write_reports(run_dir)["md"]
    rows = build_rows(run_dir.read_cells(), None)
    assert "**Load model of this table: open model: k6 constant-arrival-rate" in markdown
    assert "Dropped iter." in markdown and rows[0].dropped_iterations == 40
    assert "c-epoll did not sustain 100 req/s" in markdown
    assert "as an open model intends" in markdown
    for name in ("requests.svg", "requests.png", "latency.svg", "latency.png"):
        assert (run_dir.path / name).stat().st_size > 0


def test_closed_loop_report_says_latency_restates_throughput(tmp_path: Path) -> None:
    point = LoadPoint(kind="closed", vus=20)
    record = make_record(
        points=[point], status="complete", models={point.key: "closed loop: wrk, 20 connections"}
    )
    run_dir = make_run_dir(tmp_path, record, "closed")
    run_dir.write_cell(cell("c-epoll", 8_000, 1.5).model_copy(update={"point": point.key}))
    markdown = write_reports(run_dir)["md"]
    assert "**Load model of this table: closed loop: wrk, 20 connections.**" in markdown
    assert "latency columns restate Req/s" in markdown
    assert "**Load-bound:** c-epoll" in markdown
