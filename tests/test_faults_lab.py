"""Faults in two-machine mode on the two-namespace lab: lost SSH connections, SIGTERM and
resume, absent CPUs. Real sshds, real servers, real k6 (needs root).

One lab and one deploy (c-epoll) serve the module. Every fault test ends by counting the
servers and k6 processes orch left in each namespace (asserted zero).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fault_helpers import (
    FAULT_CELL,
    Background,
    background,
    count_left,
    kill_by_pid,
    netns_inode,
    orch_processes,
    wait_for,
)
from lab_helpers import Lab, needs_root, running_lab, set_link, sshd_pids
from orch_helpers import last_line, orch
from record_helpers import (
    cell_glob,
    cell_path,
    cell_result,
    one_run_dir,
    read_record,
    whole_json_files,
)

from orchestrator.deploy.cpus import format_cpu_list
from orchestrator.lab.topology import ROLES
from orchestrator.leftovers import SERVER_RECORD_FILE, ServerLeftover
from orchestrator.results.cell_result import CellResult

pytestmark = needs_root

TARGET, LOAD = ROLES
TWO_CELLS = ("--server", "c-epoll", "--repetitions", "2", *FAULT_CELL)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A lab with c-epoll deployed on its target, for every test of the module."""
    with running_lab(tmp_path_factory.mktemp("faultlab")) as running:
        deployed = orch("deploy", "-i", str(running.hosts_file), "--server", "c-epoll", timeout=600)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        yield running


def _workdirs(lab: Lab) -> list[Path]:
    return [lab.files.workdir(TARGET), lab.files.workdir(LOAD)]


def _left(lab: Lab, test: str) -> dict[str, int]:
    hosts: dict[str, int | None] = {
        role.namespace: netns_inode(role.namespace) for role in (TARGET, LOAD)
    }
    return count_left(test, hosts, _workdirs(lab))


def _k6_in_load(lab: Lab) -> int | None:
    ns = netns_inode(LOAD.namespace)
    found = [p.pid for p in orch_processes(_workdirs(lab), ns) if p.name == "k6"]
    return found[0] if found else None


def _run_args(lab: Lab, out: Path) -> list[str]:
    return ["run", "-i", str(lab.hosts_file), *TWO_CELLS, "--out", str(out)]


def _lost_load_cell(run_dir: Path) -> CellResult:
    """c-epoll/1, failed because the SSH connection to the load machine was lost."""
    lost = cell_result(run_dir, "c-epoll/1")
    assert lost.status == "failed"
    assert lost.error is not None and lost.error.startswith(
        f"{LOAD.namespace} ({LOAD.address}): SSH connection lost while running "
    ), lost.error
    return lost


def test_cpu_not_on_a_remote_host_is_one_line_exit_2(lab: Lab) -> None:
    absent = max(os.sched_getaffinity(0)) + 62
    data = lab.inventory()
    data["load"]["cpus"] = [absent]
    inventory = lab.tmp / "absent-cpu.yaml"
    inventory.write_text(yaml.safe_dump(data))
    done = orch("deploy", "-i", str(inventory), "--server", "c-epoll", timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"orch: error: inventory load.cpus: CPU {absent} is not on host {LOAD.namespace} "
        f"(its CPUs: {format_cpu_list(sorted(os.sched_getaffinity(0)))})"
    ]


def test_sshd_session_killed_mid_load_fails_the_cell_and_orch_reconnects(
    lab: Lab, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    with background(_run_args(lab, out), tmp_path) as run:
        wait_for("k6 in the load namespace", lambda: _k6_in_load(lab), 60, run)
        sessions = sshd_pids(lab, LOAD, listener=False)
        assert sessions, "orch's SSH session to the load machine was not found"
        kill_by_pid(sessions)
        code = run.wait(120)
    assert code == 1, run.output()
    assert last_line(run.stderr) == (
        "orch: 1 of 2 cells failed: c-epoll/1 (see Failed cells in the report)"
    ), run.output()
    run_dir = one_run_dir(out)
    lost = _lost_load_cell(run_dir)
    assert "; reconnected and stopped it (PID " in str(lost.error)
    assert lost.server_exit_status == 0  # the target's server was stopped cleanly
    assert cell_result(run_dir, "c-epoll/2").status == "ok"  # over the new connection
    assert read_record(run_dir).status == "complete"
    assert _left(lab, "sshd session killed") == {TARGET.namespace: 0, LOAD.namespace: 0}


def _wait_second_cell_loading(lab: Lab, out: Path, run: Background) -> None:
    first = cell_glob("c-epoll", 1)
    wait_for("the c-epoll/1 result", lambda: list(out.glob(first)), 60, run)
    wait_for("k6 of c-epoll/2", lambda: _k6_in_load(lab), 30, run)


def test_sigterm_stops_both_hosts_and_resume_finishes_over_ssh(lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "results"
    with background(_run_args(lab, out), tmp_path) as run:
        _wait_second_cell_loading(lab, out, run)
        run.proc.send_signal(signal.SIGTERM)
        code = run.wait(60)
    assert code == 128 + signal.SIGTERM, run.output()
    assert _left(lab, "SIGTERM over SSH") == {TARGET.namespace: 0, LOAD.namespace: 0}
    run_dir = one_run_dir(out)
    assert read_record(run_dir).status == "interrupted"
    kept = (cell_path(run_dir, "c-epoll/1") / "result.json").read_bytes()

    resumed = orch("run", "--resume", str(run_dir), timeout=180)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming {run_dir}: 1 of 2 cells missing (c-epoll/2)" in resumed.stdout
    assert (cell_path(run_dir, "c-epoll/1") / "result.json").read_bytes() == kept
    record = read_record(run_dir)
    assert record.status == "complete"
    assert record.facts.target.hostname == TARGET.hostname
    assert cell_result(run_dir, "c-epoll/2").status == "ok"
    assert _left(lab, "resume over SSH") == {TARGET.namespace: 0, LOAD.namespace: 0}


def test_cut_link_mid_load_stops_the_run_cleanly_and_resume_finishes(
    lab: Lab, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    try:
        with background(_run_args(lab, out), tmp_path) as run:
            wait_for("k6 in the load namespace", lambda: _k6_in_load(lab), 60, run)
            set_link(LOAD.veth, "down")
            code = run.wait(150)
        assert code == 1, run.output()
        left = _left(lab, "link cut")
    finally:
        set_link(LOAD.veth, "up")
    run_dir = one_run_dir(out)
    # Whether the reconnection times out or the kernel gives up resolving the address
    # first depends on the neighbour cache's state: both name the host and say why.
    host = f"{LOAD.namespace} ({LOAD.address})"
    reasons = (
        f"no SSH connection to {LOAD.address}:22 within 10 s (host down or unreachable?)",
        f"cannot connect to {LOAD.address}:22: no route to host",
    )
    kept = f"measured cells kept in {run_dir} (finish with: orch run --resume {run_dir})"
    expected = {f"orch: run stopped: {host}: {why}; {kept}" for why in reasons}
    assert last_line(run.stderr) in expected, run.output()
    lost = _lost_load_cell(run_dir)
    assert "could not reconnect to stop it" in str(lost.error)
    record = read_record(run_dir)
    assert record.status == "stopped" and LOAD.namespace in (record.stop_reason or "")
    assert "stopped early" in (run_dir / "report.md").read_text(encoding="utf-8")
    assert left == {TARGET.namespace: 0, LOAD.namespace: 0}

    resumed = orch("run", "--resume", str(run_dir), timeout=180)
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr  # c-epoll/1 stays failed
    assert last_line(resumed.stderr) == (
        "orch: 1 of 2 cells failed: c-epoll/1 (see Failed cells in the report)"
    )
    assert cell_result(run_dir, "c-epoll/2").status == "ok"
    assert read_record(run_dir).status == "complete"
    assert _left(lab, "resume after link cut") == {TARGET.namespace: 0, LOAD.namespace: 0}


def test_kill_9_of_orch_then_resume_stops_the_orphaned_server(lab: Lab, tmp_path: Path) -> None:
    """A remote server outlives a kill -9 of orch (it is detached by design); the cell
    recorded its PID, and --resume stops it by that PID before measuring."""
    out = tmp_path / "results"
    with background(_run_args(lab, out), tmp_path) as run:
        wait_for("k6 in the load namespace", lambda: _k6_in_load(lab), 60, run)
        run.proc.send_signal(signal.SIGKILL)
        assert run.wait(30) == -signal.SIGKILL
    left = _left(lab, "kill -9 of orch over SSH")
    assert left == {TARGET.namespace: 1, LOAD.namespace: 0}  # k6 ends at its duration
    run_dir = one_run_dir(out)
    whole_json_files(run_dir)  # every JSON file on disk is whole
    orphan = ServerLeftover.model_validate_json(
        (cell_path(run_dir, "c-epoll/1") / SERVER_RECORD_FILE).read_bytes()
    )

    resumed = orch("run", "--resume", str(run_dir), timeout=180)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (
        f"stopped c-epoll (PID {orphan.pid}), left running on {TARGET.namespace} by an orch "
        "that was killed"
    ) in resumed.stdout
    assert read_record(run_dir).status == "complete"
    assert _left(lab, "resume after kill -9 over SSH") == {TARGET.namespace: 0, LOAD.namespace: 0}
