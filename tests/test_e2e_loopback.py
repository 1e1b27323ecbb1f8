"""End to end in loopback mode: orch deploy (twice) and orch run with real k6 and servers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from orch_helpers import orch, write_loopback_inventory

from orchestrator.results.rundir import RunDirectory
from orchestrator.startup import parse_startup_line

REPO = Path(__file__).resolve().parent.parent
SIX = ["c-epoll", "rust-epoll", "zig-epoll", "c-io_uring", "rust-io_uring", "zig-io_uring"]


@pytest.fixture(scope="module")
def loopback_inventory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A loopback inventory with its own workdir and a free port, deployed once."""
    if (os.cpu_count() or 1) < 2:
        pytest.fail("loopback mode needs two cores: one for the server, one for k6")
    inventory = write_loopback_inventory(tmp_path_factory.mktemp("loopback"))
    first = orch("deploy", "-i", str(inventory), timeout=1500)
    assert first.returncode == 0, f"first deploy failed:\n{first.stdout}\n{first.stderr}"
    yield inventory


def binaries(inventory: Path) -> dict[str, int]:
    work = inventory.parent / "work" / "servers" / "bin"
    return {name: (work / name).stat().st_mtime_ns for name in SIX}


def test_second_deploy_rebuilds_nothing(loopback_inventory: Path) -> None:
    before = binaries(loopback_inventory)
    again = orch("deploy", "-i", str(loopback_inventory), timeout=300)
    assert again.returncode == 0, again.stderr
    assert "built nothing" in again.stdout, again.stdout
    assert "synced" not in again.stdout, "an unchanged tree must copy no file"
    assert binaries(loopback_inventory) == before


def test_smoke_run_full_matrix(loopback_inventory: Path, tmp_path: Path) -> None:
    done = orch(
        "run",
        "--matrix",
        "full",
        "--profile",
        "smoke",
        "-i",
        str(loopback_inventory),
        "--out",
        str(tmp_path),
        timeout=600,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    (run_dir,) = list(tmp_path.iterdir())
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    rows = {row["server"]: row for row in results["rows"]}
    assert sorted(rows) == sorted(SIX)
    for name, row in rows.items():
        assert row["repetitions_ok"] == 1, f"{name} failed: {results['cells']}"
        assert row["requests_per_second"] > 0, name
        assert row["failed_requests"] == 0, name
        assert row["requests_per_cpu_second"] > 0, name
    run = RunDirectory.open(run_dir).read_run()
    assert run.status == "complete"
    assert run.interface == "lo"
    # one round, each language's epoll and io_uring back to back (the pair a verdict compares)
    assert [run.cell_label(key) for key in run.plan] == [
        f"{language}-{api}/1" for language in ("c", "rust", "zig") for api in ("epoll", "io_uring")
    ]
    assert sorted(run.server_startup) == sorted(SIX)  # each server's own start-up line
    rings = {
        parse_startup_line(line) for name, line in run.server_startup.items() if "uring" in name
    }
    assert len(rings) == 1, rings  # the same ring in C, Rust and Zig
    assert run.tools.get("liburing")
    for name in SIX:
        cell_dir = run_dir / "cells" / name / run.points[0].key / "1"
        assert (cell_dir / "k6-summary.json").is_file()
        assert "listening on 127.0.0.1:" in (cell_dir / "server.log").read_text(encoding="utf-8")
        cell = json.loads((cell_dir / "result.json").read_text(encoding="utf-8"))
        assert cell["server_exit_status"] == 0, "servers must exit 0 on SIGTERM"
        assert cell["nic"]["interface"] == "lo"
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "| Api | Language | Median Req. Duration |" in report
    assert "Loopback mode" in report
    assert report in done.stdout or "| Api | Language |" in done.stdout


def test_bad_matrix_is_exit_2_without_traceback(loopback_inventory: Path) -> None:
    done = orch("run", "--matrix", "everything", "-i", str(loopback_inventory), timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "orch: error: --matrix: unknown matrix 'everything' "
        "(known: full, reference, epoll, io_uring, c, rust, zig)"
    ]


def test_report_of_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    done = orch("report", str(tmp_path), timeout=60)
    assert done.returncode == 2
    assert f"{tmp_path}: not a run directory" in done.stderr
