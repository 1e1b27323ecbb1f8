"""Placing the receive work in real loopback runs (RPS on lo): NET_RX follows the choice,
and lo's RPS mask is back as it was however the run ends: at its end, on Ctrl-C, and
after kill -9 when `--resume` starts; where it cannot be set, one line and exit 2."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_helpers import background, wait_for
from orch_helpers import only_line, orch, write_loopback_inventory
from record_helpers import one_run_dir

from orchestrator.results.rundir import RunDirectory

RPS = Path("/sys/class/net/lo/queues/rx-0/rps_cpus")
SERVER = ("--server", "c-epoll")
CELLS = ("--load-tool", "wrk", "--connections", "50", "--duration", "1s", "--warmup", "0.3s")
STATE = Path("/var/lib/orch/changes/run-placement.json")


@pytest.fixture
def lo_rps() -> Iterator[str]:
    """lo's RPS mask before the test (and a check that the test left it so)."""
    before = RPS.read_text()
    yield before
    assert RPS.read_text() == before, "lo's RPS mask was not put back"


def _shares_on_server_cpu(run_dir: Path) -> tuple[float, float]:
    """The shares of the run's NET_RX softirqs and of its received packets that were on
    CPU 0, the server's."""
    here = total = packets_here = packets = 0
    for cell in RunDirectory.open(run_dir).read_cells():
        assert cell.cost is not None and cell.cost.network is not None
        network = cell.cost.network
        assert network.received is not None
        here += network.net_rx.get(0, 0)
        total += sum(network.net_rx.values())
        packets_here += network.received.get(0, 0)
        packets += sum(network.received.values())
    return here / total, packets_here / packets


@pytest.mark.e2e
def test_receive_work_follows_the_placement(tmp_path: Path, lo_rps: str) -> None:
    inventory = write_loopback_inventory(tmp_path)
    shares = {}
    for placement in ("server", "other"):
        out = tmp_path / placement
        done = orch(
            "run", "-i", str(inventory), *SERVER, *CELLS, "--repetitions", "2",
            "--receive-work", placement, "--out", str(out), timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        cpu = "0" if placement == "server" else "1"
        assert f"receive work of lo on CPU {cpu} ({placement}): set" in done.stdout
        assert "receive work: local: put back 1 settings" in done.stdout
        run_dir = one_run_dir(out)
        shares[placement] = _shares_on_server_cpu(run_dir)
        record = RunDirectory.open(run_dir).read_run()
        assert record.system is not None and record.system.receive_work == placement
        (placed,) = [c for c in record.system.changes if c.name == "run-placement"]
        assert placed.changes[0].describe() == f"RPS of lo rx-0: {lo_rps.strip()} -> {int(cpu) + 1}"
        report = (run_dir / "report.md").read_text(encoding="utf-8")
        assert f"- Receive work placed {'on the server' if cpu == '0' else 'off'}" in report
    # Requests from the load tool are received on its CPU unless RPS moves them; RPS on lo
    # moves the answers too (lo receives both ways), so the packets move all but wholly.
    (net_rx_on, packets_on), (net_rx_off, packets_off) = shares["server"], shares["other"]
    assert net_rx_on > 0.6 and net_rx_off < 0.4, shares
    assert packets_on > 0.8 and packets_off < 0.2, shares


@pytest.mark.e2e
def test_ctrl_c_puts_the_placement_back(tmp_path: Path, lo_rps: str) -> None:
    inventory = write_loopback_inventory(tmp_path)
    args = ["run", "-i", str(inventory), *SERVER, *CELLS, "--repetitions", "20",
            "--receive-work", "server", "--out", str(tmp_path / "runs")]  # fmt: skip
    with background(args, tmp_path) as run:
        wait_for("the placement", lambda: RPS.read_text() != lo_rps, 120, run)
        run.proc.send_signal(signal.SIGINT)
        assert run.wait(60) == 128 + signal.SIGINT, run.output()
    assert RPS.read_text() == lo_rps and not STATE.exists()


@pytest.mark.e2e
def test_kill_9_then_resume_puts_the_placement_back(tmp_path: Path, lo_rps: str) -> None:
    inventory = write_loopback_inventory(tmp_path)
    args = ["run", "-i", str(inventory), *SERVER, *CELLS, "--repetitions", "3",
            "--receive-work", "server", "--out", str(tmp_path / "runs")]  # fmt: skip
    runs = tmp_path / "runs"
    with background(args, tmp_path) as run:
        # Placed before the run directory exists: wait for both.
        placed = lambda: RPS.read_text() != lo_rps and list(runs.glob("*/run.json"))  # noqa: E731
        wait_for("the placement and run.json", placed, 120, run)
        run.proc.kill()
        run.proc.wait()
    assert RPS.read_text() != lo_rps and STATE.is_file()  # nothing could put it back
    run_dir = one_run_dir(runs)
    resumed = orch("run", "--resume", str(run_dir), timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    # The killed run's change is put back first; the resume places again, then puts back.
    assert "receive work of lo on CPU 0 (server): set" in resumed.stdout
    assert RPS.read_text() == lo_rps and not STATE.exists()


@pytest.mark.e2e
def test_a_target_where_it_cannot_be_placed_is_one_line(tmp_path: Path, lo_rps: str) -> None:
    inventory = write_loopback_inventory(tmp_path)
    text = inventory.read_text().replace("cpus: [0],", "cpus: [0], interface: orch-none0,")
    inventory.write_text(text)
    done = orch(
        "run", "-i", str(inventory), *SERVER, *CELLS, "--receive-work", "other",
        "--out", str(tmp_path / "runs"), timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert only_line(done.stderr) == (
        "orch: error: --receive-work: cannot place receive work on target local: interface "
        "orch-none0 has no interrupt lines and no RPS queues "
        "(/sys/class/net/orch-none0/queues/rx-*/rps_cpus)"
    )
