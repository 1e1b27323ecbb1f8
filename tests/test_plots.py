"""Plots: rendered from known rows, and produced by a short real end-to-end run with wrk
(c-epoll and c-io_uring, two repetitions), which `orch report`, `orch compare` and
`orch list` then read back."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from matplotlib.patches import Rectangle
from orch_helpers import orch, require_two_cores, write_loopback_inventory
from record_helpers import one_run_dir, read_json

from orchestrator.report.plots import requests_figure, write_plots
from orchestrator.results.aggregate import Row
from orchestrator.results.rundir import RunDirectory
from orchestrator.results.stats import METHOD_NONE, METHOD_T, Estimate

PLOTS = ("requests.svg", "requests.png", "latency.svg", "latency.png")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fixed(
    value: float | None, low: float | None = None, high: float | None = None
) -> Estimate | None:
    """A known figure, with an interval when `low` and `high` are given."""
    if value is None:
        return None
    method = METHOD_NONE if low is None else METHOD_T
    return Estimate(value, low, high, 3, method, None if low is None else 0.95)


def row(server: str, rps: float, load_bound: bool = False, latency: bool = True) -> Row:
    language, api = server.split("-", 1)
    ms = 1.0 if latency else None
    return Row(
        server=server,
        api=api,
        language={"c": "C", "rust": "Rust", "zig": "Zig"}[language],
        point="c20",
        repetitions_ok=3,
        repetitions=3,
        latency_p50_ms=fixed(ms),
        latency_p99_ms=fixed(ms and ms * 4),
        latency_p999_ms=fixed(ms and ms * 9),
        requests_per_second=fixed(rps, rps * 0.9, rps * 40),
        requests_per_cpu_second=fixed(rps),
        cpu_us_per_request=fixed(1e6 / rps),
        server_cpu=fixed(0.99),
        core_busy=fixed(0.5 if load_bound else 0.99),
        load_cpu=None,
        saturation=fixed(0.5 if load_bound else 0.99),
        nic_packets_per_request=None,
        requests_per_second_cv=None,
        failed_requests=0,
        dropped_iterations=0,
        load_bound_cells=3 if load_bound else 0,
    )


def check_plot_files(folder: Path) -> None:
    for name in PLOTS:
        path = folder / name
        assert path.is_file() and path.stat().st_size > 1000, name
    for stem in ("requests", "latency"):
        assert (folder / f"{stem}.png").read_bytes().startswith(PNG_MAGIC)
        svg = ET.parse(folder / f"{stem}.svg").getroot()
        assert svg.tag.endswith("svg")
        text = (folder / f"{stem}.svg").read_text(encoding="utf-8")
        assert "epoll" in text and "io_uring" in text  # the API groups are labelled


def test_plots_from_known_rows(tmp_path: Path) -> None:
    rows = [
        row("c-epoll", 50_000),
        row("rust-epoll", 60_000, load_bound=True),
        row("c-io_uring", 70_000),
        row("zig-io_uring", 65_000),
    ]
    paths = write_plots(tmp_path, rows, "test")
    assert sorted(p.name for p in paths) == sorted(PLOTS)
    check_plot_files(tmp_path)
    # The same rows give the same SVG: no timestamp inside.
    first = (tmp_path / "requests.svg").read_bytes()
    write_plots(tmp_path, rows, "test")
    assert (tmp_path / "requests.svg").read_bytes() == first


def test_a_server_of_your_own_gets_its_own_bar() -> None:
    """Two servers of one language and API (a prototype beside rust-io_uring) both show."""
    rows = [row("rust-epoll", 60_000), row("rust-io_uring", 70_000), row("rust-io_uring", 80_000)]
    rows[2] = replace(rows[2], server="uring-proto")
    figure = requests_figure(rows, "test")
    bars = [patch for patch in figure.axes[0].patches if isinstance(patch, Rectangle)]
    assert sorted(bar.get_height() for bar in bars) == [60_000, 70_000, 80_000]
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels == ["Rust", "Rust: rust-io_uring", "Rust: uring-proto"]


def test_plots_without_latency_still_written(tmp_path: Path) -> None:
    rows = [row("c-epoll", 500_000, latency=False), row("c-io_uring", 550_000, latency=False)]
    write_plots(tmp_path, rows, "pipelined")
    check_plot_files(tmp_path)
    assert "no latency measured" in (tmp_path / "latency.svg").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def wrk_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short real run: two servers, wrk, two interleaved repetitions."""
    require_two_cores()
    base = tmp_path_factory.mktemp("plots")
    inventory = write_loopback_inventory(base)
    done = orch(
        "run",
        "-i",
        str(inventory),
        "--server",
        "c-epoll",
        "--server",
        "c-io_uring",
        "--profile",
        "smoke",
        "--duration",
        "2s",
        "--load-tool",
        "wrk",
        "--repetitions",
        "2",
        "--out",
        str(base / "runs"),
        timeout=900,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return one_run_dir(base / "runs")


@pytest.mark.e2e
def test_end_to_end_run_writes_plots(wrk_run: Path) -> None:
    check_plot_files(wrk_run)
    report = (wrk_run / "report.md").read_text(encoding="utf-8")
    assert "![requests.svg](requests.svg)" in report
    assert "**Load model of this table: closed loop: wrk, 20 connections" in report
    assert "wrk: wrk " in report  # the tool's version among the host facts
    run = RunDirectory.open(wrk_run).read_run()
    assert [run.cell_label(key) for key in run.plan] == [
        "c-epoll/1",
        "c-io_uring/1",
        "c-io_uring/2",
        "c-epoll/2",
    ]
    assert run.load_tool.name == "wrk"
    results = read_json(wrk_run / "results.json")
    for r in results["rows"]:
        assert r["repetitions_ok"] == 2, results["cells"]
        assert r["failed_requests"] == 0
        assert r["requests_per_second_low"] < r["requests_per_second"]
        assert r["requests_per_second"] < r["requests_per_second_high"]
        assert r["median_ms"] > 0 and r["p999_ms"] >= r["median_ms"]
    for cell in results["cells"]:
        assert cell["load"]["tool"] == "wrk"
        assert cell["warmup_seconds"] == 1.0
    cell_dir = wrk_run / "cells" / "c-epoll" / "c20" / "1"
    assert "ORCH_WRK_JSON" in (cell_dir / "wrk-output.txt").read_text(encoding="utf-8")
    assert "ORCH_WRK_JSON" in (cell_dir / "warmup-wrk-output.txt").read_text(encoding="utf-8")


@pytest.mark.e2e
def test_report_rerenders_in_every_format(wrk_run: Path) -> None:
    (wrk_run / "requests.png").unlink()
    as_json = orch("report", str(wrk_run), "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert [r["server"] for r in json.loads(as_json.stdout)["rows"]] == ["c-epoll", "c-io_uring"]
    assert not (wrk_run / "requests.png").exists(), "--format json writes JSON only"
    as_plots = orch("report", str(wrk_run), "--format", "plots")
    assert as_plots.returncode == 0, as_plots.stderr
    assert (wrk_run / "requests.png").is_file(), "report re-renders the plots"
    (wrk_run / "results.csv").unlink()
    as_csv = orch("report", str(wrk_run), "--format", "csv")
    assert as_csv.stdout.startswith("server,api,language,")
    assert (wrk_run / "results.csv").read_text(encoding="utf-8") == as_csv.stdout
    assert orch("report", str(wrk_run)).stdout.startswith("# orch run ")
    bad = orch("report", str(wrk_run), "--format", "xml")
    assert bad.returncode == 2 and "unknown format 'xml'" in bad.stderr


@pytest.mark.e2e
def test_compare_and_list(wrk_run: Path) -> None:
    same = orch("compare", str(wrk_run), str(wrk_run))
    assert same.returncode == 0, same.stderr
    lines = [line for line in same.stdout.splitlines() if line.startswith("| c-")]
    assert len(lines) == 2
    assert all("+0.00% (" in line and "n.s." in line for line in lines)
    listed = orch("list", "--out", str(wrk_run.parent))
    assert wrk_run.name in listed.stdout and "4/4 cells" in listed.stdout
    assert "wrk" in listed.stdout
