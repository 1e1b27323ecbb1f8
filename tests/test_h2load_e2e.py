"""h2load for real through `orch run` on loopback: two rates against the C servers (each
cell's histogram from h2load's per-request log reduced on the load host, its late
requests counted, the verdict at each rate, the rate plots), and a closed-loop point."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from orch_helpers import orch, write_loopback_inventory

from orchestrator.results.rundir import RunDirectory

pytestmark = pytest.mark.e2e
SHORT = ("--duration", "1s", "--warmup", "250ms")


def _run(tmp_path: Path, *args: str) -> RunDirectory:
    if (os.cpu_count() or 1) < 2:
        pytest.fail("loopback mode needs two cores: one for the server, one for the load")
    inventory = write_loopback_inventory(tmp_path)
    done = orch(
        "run", "-i", str(inventory), "--load-tool", "h2load", *SHORT, *args,
        "--out", str(tmp_path / "runs"), timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    (path,) = list((tmp_path / "runs").iterdir())
    return RunDirectory.open(path)


def test_two_rates_against_the_c_servers(tmp_path: Path) -> None:
    run_dir = _run(
        tmp_path, "--server", "c-epoll", "--server", "c-io_uring",
        "--rates", "2000,5000", "--repetitions", "2",
    )  # fmt: skip
    path, record = run_dir.path, run_dir.read_run()
    assert record.load_tool.name == "h2load" and record.tools["h2load"].startswith(
        "h2load nghttp2/"
    )
    assert [(p.key, p.vus) for p in record.points] == [("r2000", 20), ("r5000", 50)]
    assert record.load_models["r5000"].startswith(
        "open model: h2load --rps, 5,000 req/s on 50 connections on 1 thread(s) for 1 s"
    )
    cells = run_dir.read_cells()
    assert len(cells) == 8 and all(c.status == "ok" for c in cells), [c.error for c in cells]
    for cell in cells:
        load = cell.load
        assert load is not None
        rate = int(cell.point.removeprefix("r"))
        assert load.offered_rate == rate and load.late_requests is not None
        assert load.requests == rate  # rate x 1 s, every one answered
        assert load.histogram is not None and load.histogram.total == load.requests
        assert load.histogram.method == "h2load log" and load.latency.p99 is not None
        assert load.cpu_seconds and cell.load_requests_per_cpu_second
        folder = path / "cells" / cell.server / cell.point / str(cell.repetition)
        for name in ("h2load-output.txt", "warmup-h2load-output.txt", "h2load-histogram.json"):
            assert (folder / name).is_file(), name
        assert json.loads((folder / "h2load-histogram.json").read_text())["samples"] == rate
    # The logs were reduced on the load host and deleted there.
    assert not list((tmp_path / "work").rglob("h2load-requests.tsv"))
    report = (path / "report.md").read_text(encoding="utf-8")
    assert report.index("## Verdict") < report.index("## System Specs")
    for said in ("2,000", "5,000"):
        assert f"- At {said} req/s (offered to each server alike) " in report
    assert "| Late req. |" in report and "Knees of the rate sweep:" in report
    assert "- h2load's per-request log (the latency histogram's source): h2load served " in report
    for plot in ("rate-latency.svg", "rate-cpu.png", "sweep-cpu.svg"):
        assert (path / plot).stat().st_size > 1000, plot
    print(report[report.index("## Verdict") : report.index("## System Specs")])


def test_a_closed_loop_point(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, "--server", "c-epoll", "--connections", "8", "--repetitions", "1")
    (cell,) = run_dir.read_cells()
    assert cell.status == "ok" and cell.load is not None
    assert cell.load.late_requests is None and cell.load.offered_rate is None
    assert cell.load.histogram is not None and cell.load.histogram.total == cell.load.requests
    assert cell.load.requests > 100 and cell.load.duration_seconds == 1.0
    record = run_dir.read_run()
    assert record.load_models["c8"] == "closed loop: h2load, 8 connections on 1 thread(s) for 1 s"
