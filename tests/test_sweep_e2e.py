"""A real sweep end to end through the `orch` command: 2 load points x 2 servers with wrk
and with k6, and more connections than the load host allows. (The sweep options refused
before anything runs are in test_bad_input.py; the rate staircase in test_sweeps.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from orch_helpers import orch, require_two_cores, write_loopback_inventory
from record_helpers import one_run_dir

from orchestrator.load.wrk import parse_wrk_output
from orchestrator.results.rundir import RunDirectory

SERVERS = ("--server", "c-epoll", "--server", "c-io_uring")


@pytest.mark.parametrize(
    ("tool", "points", "keys", "warmup"),
    [
        # wrk takes whole seconds: its quarter-second warm-up is cut short by SIGINT.
        ("wrk", ("--connections", "4,32"), ["c4", "c32"], "0.3s"),
        ("k6", ("--rates", "500,1000"), ["r500", "r1000"], "1s"),
    ],
)
def test_two_points_two_servers(
    tmp_path: Path, tool: str, points: tuple[str, str], keys: list[str], warmup: str
) -> None:
    require_two_cores()
    inventory = write_loopback_inventory(tmp_path)
    done = orch(
        "run", "-i", str(inventory), *SERVERS, "--load-tool", tool, *points,
        "--duration", "2s", "--warmup", warmup, "--repetitions", "2",
        "--out", str(tmp_path / "runs"), timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    path = one_run_dir(tmp_path / "runs")
    run_dir = RunDirectory.open(path)
    record = run_dir.read_run()
    assert [p.key for p in record.points] == keys
    assert len(record.plan) == 8
    for round_number in (1, 2):  # each round holds every (point, server) pair once
        in_round = {(k.point, k.server) for k in record.plan if k.repetition == round_number}
        assert in_round == {(p, s) for p in keys for s in ("c-epoll", "c-io_uring")}
    cells = run_dir.read_cells()
    assert len(cells) == 8 and all(c.status == "ok" for c in cells)
    assert all(c.cpu_us_per_request and c.cpu_us_per_request > 0 for c in cells)
    for key in keys:
        assert (path / "cells" / "c-epoll" / key / "2" / "result.json").is_file()
    report = (path / "report.md").read_text(encoding="utf-8")
    assert report.index("## Verdict") < report.index("## System Specs")
    assert "| Point | Api | Language | Req/s | CPU µs/req |" in report
    for plot in ("sweep-requests.svg", "sweep-cpu.png", "latency-distribution.svg"):
        assert (path / plot).stat().st_size > 1000, plot
    if tool == "wrk":
        histogram = cells[0].load.histogram if cells[0].load else None
        assert histogram is not None and histogram.total >= cells[0].load.requests  # type: ignore[union-attr]
        csv_lines = (path / "histograms.csv").read_text(encoding="utf-8").splitlines()
        assert csv_lines[0] == "server,point,repetition,host,latency_us,count"
        assert len(csv_lines) > 8
        for cell in cells:
            warm = path / "cells" / cell.server / cell.point / str(cell.repetition)
            summary = parse_wrk_output((warm / "warmup-wrk-output.txt").read_text("utf-8"))
            assert summary.requests > 0 and 0.2 < summary.duration_seconds < 0.6, summary
    else:
        assert (path / "rate-p99.svg").is_file()
        assert "Knees of the rate sweep:" in report
        for cell in cells:
            assert cell.load is not None and cell.load.dropped_iterations == 0
    compared = orch("compare", str(path), str(path))
    assert compared.returncode == 0 and compared.stdout.count("| c-") == 4


def test_more_connections_than_the_load_host_allows(tmp_path: Path) -> None:
    inventory = write_loopback_inventory(tmp_path)
    hard = int(os.popen("sh -c 'ulimit -Hn'").read())
    done = orch(
        "run", "-i", str(inventory), "--server", "c-epoll", "--load-tool", "wrk",
        "--connections", f"10,{hard}", "--out", str(tmp_path / "runs"), timeout=600,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"orch: error: --connections: {hard} connections needs {hard + 64} ")
    assert f"whose hard limit is {hard} (ulimit -Hn)" in line
    assert not (tmp_path / "runs").exists()
