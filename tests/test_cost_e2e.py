"""The whole cost of a request in real loopback runs: the baseline and counted CPUs in
run.json, each cell's threads, CPUs, softirqs and perf counts, the report's Cost section,
and `--no-perf`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from orch_helpers import orch, write_loopback_inventory
from record_helpers import one_run_dir

from orchestrator.measure.proc_files import parse_perf_csv
from orchestrator.results.cost import CYCLES, SYSCALLS
from orchestrator.results.rundir import RunDirectory

SERVERS = ("--server", "c-epoll", "--server", "c-io_uring")
# 1 s cells of wrk at 50 connections: every counter counts something, quickly.
COST_CELL = ("--load-tool", "wrk", "--connections", "50", "--duration", "1s", "--warmup", "0.3s")


def _cycles_countable() -> bool:
    """Whether this machine's CPU has a PMU perf can count cycles with."""
    out = subprocess.run(
        ["perf", "stat", "-x,", "-e", CYCLES, "true"], capture_output=True, text=True, check=False
    )
    return parse_perf_csv(out.stderr).get(CYCLES) is not None


def _only_run(base: Path) -> RunDirectory:
    return RunDirectory.open(one_run_dir(base / "runs"))


@pytest.mark.e2e
def test_cells_record_the_whole_cost(tmp_path: Path) -> None:
    inventory = write_loopback_inventory(tmp_path)
    done = orch(
        "run", "-i", str(inventory), *SERVERS, *COST_CELL, "--repetitions", "2",
        "--out", str(tmp_path / "runs"), timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    run_dir = _only_run(tmp_path)
    measurement = run_dir.read_run().measurement
    assert measurement is not None
    # Loopback: the load tool's CPU 1 is this machine's, so only CPU 0 counts.
    assert measurement.counted_cpus == [0] and measurement.left_out_cpus == [1]
    assert measurement.baseline is not None and set(measurement.baseline.busy_per_second) >= {0, 1}
    assert measurement.perf == "on" and measurement.interface_irqs == []  # lo has no IRQs
    cycles = _cycles_countable()
    cells = run_dir.read_cells()
    assert len(cells) == 4 and all(c.status == "ok" and c.cost is not None for c in cells)
    for cell in cells:
        assert cell.cost is not None and cell.server_cpu is not None and cell.load is not None
        process = cell.cost.process
        # schedstat and the clock ticks tell the same story, up to a few 4 ms ticks.
        assert process.cpu_seconds == pytest.approx(cell.server_cpu.tick_seconds, abs=0.03)
        assert process.threads[0].tid == process.main_tid and process.outside_pins == []
        assert cell.cost.target is not None and [c.cpu for c in cell.cost.target.cpus] == [0]
        assert cell.target_cpu_us_per_request is not None
        network = cell.cost.network
        assert network is not None and network.interface == "lo"
        assert sum(network.net_rx.values()) > 0 and set(network.net_rx) == {0, 1}
        assert network.received is not None and set(network.received) == {0, 1}
        # a request and its answer, each one packet (NET_RX runs count far fewer)
        assert sum(network.received.values()) >= 1.8 * cell.load.requests
        perf = cell.cost.perf
        assert perf is not None and perf.requests > 0 and perf.note == ""
        syscalls = cell.perf_per_request(SYSCALLS)
        assert syscalls is not None and syscalls > 0
        assert (perf.counters[CYCLES] is not None) == cycles  # unsupported is None, never 0
        assert (run_dir.cell_dir(cell.key) / "warmup-perf.csv").is_file()
    epoll = [c.perf_per_request(SYSCALLS) or 0 for c in cells if c.server == "c-epoll"]
    io_uring = [c.perf_per_request(SYSCALLS) or 0 for c in cells if c.server == "c-io_uring"]
    assert min(epoll) > max(io_uring)  # epoll: a read and a write per request at least
    report = (run_dir.path / "report.md").read_text(encoding="utf-8")
    assert "## Cost per request" in report and "Left out: CPU 1" in report
    assert "- c-epoll: network receive: " in report and "of NET_RX on CPU" in report
    assert "Target CPU per request (the whole target's CPU above its idle baseline" in report
    assert (run_dir.path / "cost.svg").stat().st_size > 1000


@pytest.mark.e2e
def test_no_perf_attaches_nothing(tmp_path: Path) -> None:
    inventory = write_loopback_inventory(tmp_path)
    done = orch(
        "run", "-i", str(inventory), "--server", "c-epoll", *COST_CELL, "--repetitions", "1",
        "--no-perf", "--out", str(tmp_path / "runs"), timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    run_dir = _only_run(tmp_path)
    measurement = run_dir.read_run().measurement
    assert measurement is not None and measurement.perf == "off"
    (cell,) = run_dir.read_cells()
    assert cell.cost is not None and cell.cost.perf is None
    assert cell.context_switches_per_request is not None  # /proc, not perf
    assert not (run_dir.cell_dir(cell.key) / "warmup-perf.csv").exists()
    report = (run_dir.path / "report.md").read_text(encoding="utf-8")
    assert "perf: off." in report
