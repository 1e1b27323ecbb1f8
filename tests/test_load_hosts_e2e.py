"""Each cell's load split across two load hosts that are both this machine (no root: two
inventory entries with `connection: local`), through the `orch` command with the real
c-epoll, k6 and wrk: each host runs its share, the merge equals the union of the raw
samples, a load tool killed on one host fails its cell and stops the other host's, and
SIGTERM then --resume finish the run with nothing left running.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fault_helpers import background, orch_processes, wait_for
from load_hosts_helpers import (
    SPLIT_CELL,
    check_exact_merge,
    count_load_left,
    kept_samples,
    raw_k6_durations,
    samples_of_histogram,
)
from orch_helpers import loopback_inventory, orch, require_two_cores
from record_helpers import cell_result, one_run_dir, only_cell, read_record
from server_helpers import free_port

HOSTS = ("local", "local-b")


@dataclass(frozen=True)
class TwoLoads:
    """A deployed inventory whose load is split across two local load hosts."""

    inventory: Path
    workdir: Path

    def run_args(self, out: Path, *args: str) -> list[str]:
        """`orch run` of this inventory into `out`."""
        return ["run", "-i", str(self.inventory), *args, "--out", str(out)]

    def left(self, test: str) -> dict[str, int]:
        """Servers, load tools and load agents of this workdir still running."""
        return count_load_left(test, {"local": None}, [self.workdir])


@pytest.fixture(scope="module")
def two_loads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoLoads]:
    """Server on CPU 0, both load hosts on CPU 1; c-epoll deployed once."""
    require_two_cores()
    tmp = tmp_path_factory.mktemp("twoloads")
    workdir = tmp / "work"
    inventory = tmp / "hosts.yaml"
    both = "{tool: k6, hosts: [{host: local, cpus: [1]}, {host: local-b, cpus: [1]}]}"
    inventory.write_text(
        loopback_inventory(workdir, free_port("127.0.0.1"), hosts=HOSTS, load=both),
        encoding="utf-8",
    )
    deployed = orch("deploy", "-i", str(inventory), "--server", "c-epoll", timeout=600)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "load local-b: k6 " in deployed.stdout
    yield TwoLoads(inventory, workdir)


def _tools(loads: TwoLoads, name: str) -> list[str] | None:
    found = [p.cmdline for p in orch_processes([loads.workdir]) if p.name == name]
    return found if len(found) == 2 else None


def _run_watching(loads: TwoLoads, tmp_path: Path, tool: str, *args: str) -> tuple[Path, list[str]]:
    """Run orch to a clean end; its run directory and the command lines of the two `tool`s."""
    out = tmp_path / "results"
    with background(loads.run_args(out, *SPLIT_CELL, *args), tmp_path) as run:
        seen: list[str] = wait_for(f"two {tool}", lambda: _tools(loads, tool), 60, run)
        assert run.wait(120) == 0, run.output()
    return one_run_dir(out), seen


def test_k6_split_runs_both_segments_and_merges_exactly(
    two_loads: TwoLoads, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCH_KEEP_LOAD_SAMPLES", "1")
    run_dir, seen = _run_watching(two_loads, tmp_path, "k6", "--vus", "20")
    segments = sorted(cmd.split("--execution-segment ")[1].split()[0] for cmd in seen)
    assert segments == ["0:1/2", "1/2:1"]
    cell = only_cell(run_dir)
    raw = {
        host: raw_k6_durations(kept_samples(two_loads.workdir, run_dir.name, str(cell.key), host))
        for host in HOSTS
    }
    percentiles = check_exact_merge(cell, raw)
    print(f"k6 split on one machine: merged {percentiles} = union of the raw samples")
    # both load hosts are this machine's CPU 1
    assert cell.load_cpu is not None and cell.load_cpu.cpus == 1
    assert read_record(run_dir).inventory.several_load_hosts
    assert two_loads.left("k6 split") == {"local": 0}


def test_wrk_split_holds_the_connections_and_merges_exactly(
    two_loads: TwoLoads, tmp_path: Path
) -> None:
    args = ("--load-tool", "wrk", "--connections", "21", "--repetitions", "1")
    run_dir, seen = _run_watching(two_loads, tmp_path, "wrk", *args)
    connections = sorted(int(cmd.split("--connections ")[1].split()[0]) for cmd in seen)
    assert connections == [10, 11]
    cell = only_cell(run_dir)
    raw = {str(h.host): samples_of_histogram(h.histogram) for h in cell.load_by_host}
    check_exact_merge(cell, raw, one_per_request=False)
    assert two_loads.left("wrk split") == {"local": 0}


def test_k6_killed_on_one_load_host_fails_its_cell_and_stops_the_other(
    two_loads: TwoLoads, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    args = two_loads.run_args(out, *SPLIT_CELL, "--duration", "10s", "--vus", "10")
    with background([*args, "--repetitions", "2"], tmp_path) as run:
        seen = wait_for("two k6", lambda: _tools(two_loads, "k6"), 60, run)
        run_id = wait_for("the run directory", lambda: list(out.glob("*")), 30, run)[0].name
        started = f"runs/{run_id}/c-epoll/*/1/load-hosts/*/go"
        go = wait_for("the start", lambda: sorted(two_loads.workdir.glob(started))[1:], 30, run)
        time.sleep(max(0.0, float(go[0].read_text()) + 1.0 - time.time()))  # load running
        victim = [
            p.pid
            for p in orch_processes([two_loads.workdir])
            if p.name == "k6" and "--execution-segment 1/2:1" in p.cmdline
        ]
        assert len(victim) == 1, seen
        os.kill(victim[0], signal.SIGKILL)
        code = run.wait(120)
    assert code == 1, run.output()
    run_dir = one_run_dir(out)
    killed = cell_result(run_dir, "c-epoll/1")
    error = str(killed.error)
    assert error.startswith("k6 load pass on local-b was killed by SIGKILL (signal 9): ")
    assert "stopped k6 on local (agent PID " in error, error
    assert killed.server_exit_status == 0
    assert cell_result(run_dir, "c-epoll/2").status == "ok"
    assert two_loads.left("k6 killed on one of two load hosts") == {"local": 0}


def test_sigterm_stops_both_load_hosts_and_resume_finishes(
    two_loads: TwoLoads, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    args = two_loads.run_args(out, *SPLIT_CELL, "--duration", "10s", "--vus", "10")
    with background(args, tmp_path) as run:
        wait_for("two k6", lambda: _tools(two_loads, "k6"), 60, run)
        run.proc.send_signal(signal.SIGTERM)
        code = run.wait(60)
    assert code == 128 + signal.SIGTERM, run.output()
    assert two_loads.left("SIGTERM with two load hosts") == {"local": 0}
    run_dir = one_run_dir(out)
    assert read_record(run_dir).status == "interrupted"
    resumed = orch("run", "--resume", str(run_dir), timeout=180)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert cell_result(run_dir, "c-epoll/1").status == "ok"
    assert two_loads.left("resume with two load hosts") == {"local": 0}
