"""Saturation detection on a real cell whose load is deliberately limited.

k6's open model offers c-epoll only 50 requests per second: the server idles on its core,
so the row must be marked load-bound and the report must say the load tool set Req/s.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from orch_helpers import orch, require_two_cores, write_loopback_inventory
from record_helpers import one_run_dir, read_json

from orchestrator.errors import HostError
from orchestrator.load.result import LoadResult
from orchestrator.measure.cores import CoreTicks, core_between, parse_core_ticks
from orchestrator.results.aggregate import build_rows
from orchestrator.results.cell_result import CellResult, CoreCpu, ProcessCpu


@pytest.mark.e2e
def test_idle_server_is_marked_load_bound(tmp_path: Path) -> None:
    require_two_cores()
    inventory = write_loopback_inventory(tmp_path)
    done = orch(
        "run",
        "-i",
        str(inventory),
        "--server",
        "c-epoll",
        "--profile",
        "smoke",
        "--duration",
        "2s",
        "--rate",
        "50",
        "--warmup",
        "0",
        "--out",
        str(tmp_path / "runs"),
        timeout=600,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    run_dir = one_run_dir(tmp_path / "runs")
    results = read_json(run_dir / "results.json")
    (row,) = results["rows"]
    assert row["repetitions_ok"] == 1, results["cells"]
    assert row["load_bound"] is True
    assert row["server_cpu_percent"] < 50, "50 req/s cannot keep a server core busy"
    assert row["load_cpu_percent"] is not None and row["load_cpu_percent"] > 0
    assert row["requests_per_cpu_second"] is None or row["requests_per_cpu_second"] > 0
    assert 40 <= row["requests_per_second"] <= 60  # the offered rate, not the server's
    assert row["dropped_iterations"] == 0
    (cell,) = results["cells"]
    assert cell["server_cpu"]["active_seconds"] > 1.5
    assert cell["load_cpu"]["cpus"] == 1
    assert cell["warmup_seconds"] == 0.0
    assert cell["server_cores"]["cpus"] == [0]
    assert cell["server_cores"]["busy_seconds"] >= 0
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "**Load-bound:** c-epoll kept its core less than 90% busy" in report
    assert "the load tool, not the API, set Req/s" in report
    assert "| load tool |" in report
    assert "**Load model of this table: open model: k6 constant-arrival-rate, 50 req/s" in report
    assert "(load-bound)" in done.stdout


PROC_STAT = """cpu  900 0 300 1000 100 0 60 5 0 0
cpu0 400 0 200 200 50 0 50 5 0 0
cpu1 500 0 100 800 50 0 10 0 0 0
intr 12345
"""


def test_core_ticks_from_proc_stat() -> None:
    ticks = parse_core_ticks(PROC_STAT, [0])
    # busy = user + nice + system + irq + softirq; idle = idle + iowait
    assert (ticks.busy, ticks.softirq, ticks.idle, ticks.steal) == (650, 50, 250, 5)
    both = parse_core_ticks(PROC_STAT, [0, 1])
    assert both.busy == 650 + 610 and both.idle == 250 + 850
    with pytest.raises(HostError, match="no line for cpu7"):
        parse_core_ticks(PROC_STAT, [7])
    later = CoreTicks(busy=650 + 180, softirq=50 + 30, idle=250 + 20, steal=5)
    cores = core_between(ticks, later, [0], clock_ticks=100)
    assert cores.busy_seconds == pytest.approx(1.8) and cores.idle_seconds == pytest.approx(0.2)
    assert cores.busy_share() == pytest.approx(0.9)
    assert cores.softirq_share(window_seconds=1.5) == pytest.approx(0.3 / 1.5)


def cell_with(own_cpu: float, softirq: float) -> CellResult:
    """A 10 s cell whose server used `own_cpu` of its core, with `softirq` of the core
    spent in softirq context on top."""
    return CellResult(
        server="c-epoll",
        api="epoll",
        language="c",
        repetition=1,
        status="ok",
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:10+00:00",
        load=LoadResult(
            tool="wrk",
            requests=100_000,
            failed_requests=0,
            duration_seconds=10.0,
            requests_per_second=10_000.0,
        ),
        server_cpu=ProcessCpu(
            user_seconds=own_cpu * 5,
            system_seconds=own_cpu * 5,
            wall_seconds=10.5,
            active_seconds=10.0,
        ),
        server_cores=CoreCpu(
            cpus=[0],
            busy_seconds=(own_cpu + softirq) * 10,
            softirq_seconds=softirq * 10,
            idle_seconds=(1 - own_cpu - softirq) * 10 + 0.5,
            steal_seconds=0.0,
        ),
    )


def test_softirq_work_on_the_server_core_counts_as_busy() -> None:
    # 80% in the process plus 15% network softirq on its core: the core was saturated.
    busy = cell_with(0.80, 0.15)
    assert busy.server_load == pytest.approx(0.95)
    idle = cell_with(0.30, 0.05)
    assert idle.server_load == pytest.approx(0.35)
    other = idle.model_copy(update={"server": "c-io_uring", "api": "io_uring"})
    rows = build_rows([busy, other], None)
    assert [r.load_bound for r in rows] == [False, True]
    assert rows[0].server_cpu is not None and rows[0].core_busy is not None
    assert rows[0].server_cpu.value * 100 == pytest.approx(80.0)
    assert rows[0].core_busy.value * 100 == pytest.approx(95.0)


def test_softirq_charged_to_the_server_too_is_not_counted_twice() -> None:
    # Measured on this kernel (no IRQ time accounting): c-epoll under wrk used 81% of its
    # core by /proc/PID/stat while the core itself was only 83% busy, 29% of it softirq;
    # the softirq ticks were in the process's system time as well. The core idled 17% of
    # the time, so wrk, not the server, set Req/s.
    cell = cell_with(0.54, 0.29)
    cell = cell.model_copy(
        update={
            "server_cpu": ProcessCpu(
                user_seconds=0.3, system_seconds=7.8, wall_seconds=10.5, active_seconds=10.0
            )
        }
    )
    assert cell.server_cpu is not None and cell.server_cpu.utilisation == pytest.approx(0.81)
    assert cell.server_load == pytest.approx(0.83)
    (row,) = build_rows([cell], None)
    assert row.load_bound
