"""A real sweep end to end: 2 load points x 2 servers with wrk and with k6, and the
options a sweep refuses, through the `orch` command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from orch_helpers import orch, write_loopback_inventory

from orchestrator.load.wrk import parse_wrk_output
from orchestrator.results.rundir import RunDirectory
from orchestrator.run.rate_search import nice_rate, staircase

SERVERS = ("--server", "c-epoll", "--server", "c-io_uring")


@pytest.mark.e2e
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
    if (os.cpu_count() or 1) < 2:
        pytest.fail("loopback mode needs two cores: one for the server, one for the load")
    inventory = write_loopback_inventory(tmp_path)
    done = orch(
        "run", "-i", str(inventory), *SERVERS, "--load-tool", tool, *points,
        "--duration", "2s", "--warmup", warmup, "--repetitions", "2",
        "--out", str(tmp_path / "runs"), timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    (path,) = list((tmp_path / "runs").iterdir())
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


NO_WRK_RATES = "--rates: wrk has no open model; use --load-tool h2load (or k6) for arrival rates"
BAD_SWEEPS = [
    (
        ("--connections", "0,abc"),
        "--connections: '0' is not a whole number of at least 1 (in '0,abc')",
    ),
    (
        ("--connections", ""),
        "--connections: expected a comma-separated list such as 1,10,100, got ''",
    ),
    (("--load-tool", "wrk", "--rates", "1000,2000"), NO_WRK_RATES),
    (("--load-tool", "wrk", "--rates", "auto"), NO_WRK_RATES),
    (
        ("--load-tool", "k6", "--connections", "10", "--pipeline", "1,4"),
        "--pipeline: k6 does not pipeline requests; use --load-tool wrk",
    ),
    (
        ("--load-tool", "k6", "--connections", "10", "--profile", "sweep-short"),
        "--warmup: k6 holds a load point for at least 1 s, and profile sweep-short asks "
        "0.25 s (give 1s or more, or use wrk)",
    ),
    (
        ("--load-tool", "h2load", "--connections", "10", "--pipeline", "4"),
        "--pipeline: orch runs h2load one request at a time per connection (its late "
        "requests are counted that way); use --load-tool wrk-pipelined",
    ),
    (
        ("--load-tool", "h2load", "--rates", "5000,60000", "--connections", "100"),
        "--connections: h2load sends at most 100 req/s per connection (its rate timer ticks "
        "every 10 ms at most), so 60,000 req/s needs at least 600 connections, not 100 (or "
        "leave --connections out: orch then opens one per 100 req/s)",
    ),
    (
        ("--load-tool", "h2load", "--rates", "auto", "--connections", "100"),
        "--connections: with --rates auto, orch opens one h2load connection per 100 req/s",
    ),
    (
        ("--load-tool", "h2load", "--rates", "100000", "--warmup", "5ms"),
        "--connections: 100,000 req/s on 1000 connections sends 500 requests in 0.005 s "
        "(profile sweep-short warm-up), fewer than connections; h2load needs one per "
        "connection at least",
    ),
    (
        ("--rate", "100", "--rates", "200"),
        "--rate: give one rate with --rate or a list with --rates, not both",
    ),
    (
        ("--resume", "somewhere", "--connections", "10,100"),
        "--resume: --connections cannot be combined with it (a resumed run keeps the options "
        "recorded in its run.json)",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), BAD_SWEEPS)
def test_bad_sweep_options(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    inventory = ["-i", str(write_loopback_inventory(tmp_path))] if "--resume" not in args else []
    done = orch("run", *inventory, *args, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [f"orch: error: {message}"]


@pytest.mark.e2e
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


def test_rate_staircase() -> None:
    assert staircase()[:8] == [1000, 1500, 2200, 3400, 5100, 7600, 11000, 17000]
    assert nice_rate(12_345) == 12_000 and nice_rate(150) == 150 and nice_rate(999) == 1000
