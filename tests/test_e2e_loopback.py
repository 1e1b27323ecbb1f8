"""End to end in loopback mode: orch deploy (twice) and orch run with real k6 and servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from orch_helpers import orch, require_two_cores, write_loopback_inventory
from record_helpers import one_run_dir, read_cells, read_json, read_record
from server_helpers import SERVER_NAMES

from orchestrator.startup import parse_startup_line


@pytest.fixture(scope="module")
def loopback_inventory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A loopback inventory with its own workdir and a free port, deployed once."""
    require_two_cores()
    inventory = write_loopback_inventory(tmp_path_factory.mktemp("loopback"))
    first = orch("deploy", "-i", str(inventory), timeout=1500)
    assert first.returncode == 0, f"first deploy failed:\n{first.stdout}\n{first.stderr}"
    yield inventory


def binaries(inventory: Path) -> dict[str, int]:
    work = inventory.parent / "work" / "servers" / "bin"
    return {name: (work / name).stat().st_mtime_ns for name in SERVER_NAMES}


def test_second_deploy_rebuilds_nothing(loopback_inventory: Path) -> None:
    before = binaries(loopback_inventory)
    again = orch("deploy", "-i", str(loopback_inventory), timeout=300)
    assert again.returncode == 0, again.stderr
    assert "built nothing" in again.stdout, again.stdout
    assert "synced" not in again.stdout, "an unchanged tree must copy no file"
    assert binaries(loopback_inventory) == before


def test_smoke_run_full_matrix(loopback_inventory: Path, tmp_path: Path) -> None:
    args = ["--matrix", "full", "--profile", "smoke", "-i", str(loopback_inventory)]
    done = orch("run", *args, "--out", str(tmp_path), timeout=600)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    run_dir = one_run_dir(tmp_path)
    results = read_json(run_dir / "results.json")
    rows = {row["server"]: row for row in results["rows"]}
    assert sorted(rows) == sorted(SERVER_NAMES)
    for name, row in rows.items():
        assert row["repetitions_ok"] == 1, f"{name} failed: {results['cells']}"
        assert row["requests_per_second"] > 0, name
        assert row["failed_requests"] == 0, name
        assert row["requests_per_cpu_second"] > 0, name
    run = read_record(run_dir)
    assert run.status == "complete"
    assert run.interface == "lo"
    # one round, each language's epoll and io_uring back to back (the pair a verdict compares)
    assert [run.cell_label(key) for key in run.plan] == [
        f"{language}-{api}/1" for language in ("c", "rust", "zig") for api in ("epoll", "io_uring")
    ]
    assert sorted(run.server_startup) == sorted(SERVER_NAMES)  # each server's own start-up line
    rings = {
        parse_startup_line(line) for name, line in run.server_startup.items() if "uring" in name
    }
    assert len(rings) == 1, rings  # the same ring in C, Rust and Zig
    assert run.tools.get("liburing")
    for name in SERVER_NAMES:
        cell_dir = run_dir / "cells" / name / run.points[0].key / "1"
        assert (cell_dir / "k6-summary.json").is_file()
        assert "listening on 127.0.0.1:" in (cell_dir / "server.log").read_text(encoding="utf-8")
    cells = read_cells(run_dir)
    assert sorted(cell.server for cell in cells) == sorted(SERVER_NAMES)
    for cell in cells:
        assert cell.server_exit_status == 0, "servers must exit 0 on SIGTERM"
        assert cell.nic is not None and cell.nic.interface == "lo"
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "| Api | Language | Median Req. Duration |" in report
    assert "Loopback mode" in report
    # The whole report, as written, ends what orch prints, then where the run is.
    assert done.stdout.endswith(f"\n{report}run directory: {run_dir}\n")


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
