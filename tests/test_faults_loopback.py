"""Faults in loopback mode with the real servers and real k6, through the `orch` command.

One deploy of the two C servers serves the module. Every test ends by counting the
servers and load tools orch left running (asserted zero).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fault_helpers import (
    FAULT_CELL,
    Background,
    ResettingListener,
    background,
    count_left,
    orch_processes,
    wait_for,
)
from orch_helpers import last_line, loopback_inventory, orch, require_two_cores
from record_helpers import (
    cell_glob,
    cell_path,
    cell_result,
    one_run_dir,
    read_json,
    read_record,
    whole_json_files,
)
from server_helpers import free_port

from orchestrator.deploy.cpus import format_cpu_list

SERVERS = ("--server", "c-epoll", "--server", "c-io_uring")


@dataclass(frozen=True)
class Loopback:
    """A deployed loopback inventory: its file, workdir and port."""

    inventory: Path
    workdir: Path
    port: int
    tmp: Path

    def left(self, test: str) -> dict[str, int]:
        """Servers and load tools of this workdir still running (after a short settle)."""
        return count_left(test, {"local": None}, [self.workdir])

    def variant(self, name: str, target: str = "", load: str = "") -> Path:
        """Another inventory on the same workdir with different target/load lines."""
        path = self.tmp / f"{name}.yaml"
        text = loopback_inventory(self.workdir, self.port, target=target, load=load)
        path.write_text(text, encoding="utf-8")
        return path


@pytest.fixture(scope="module")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loopback]:
    """A loopback inventory with its own workdir and free port; the C servers deployed once."""
    require_two_cores()
    tmp = tmp_path_factory.mktemp("faults")
    workdir = tmp / "work"
    port = free_port("127.0.0.1")
    inventory = tmp / "hosts.yaml"
    inventory.write_text(loopback_inventory(workdir, port), encoding="utf-8")
    deployed = orch("deploy", "-i", str(inventory), *SERVERS, timeout=600)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    yield Loopback(inventory, workdir, port, tmp)


def _server_pid(loop: Loopback, name: str) -> int | None:
    found = [p.pid for p in orch_processes([loop.workdir]) if p.name == name]
    return found[0] if found else None


def _k6_pid(loop: Loopback) -> int | None:
    found = [p.pid for p in orch_processes([loop.workdir]) if p.name == "k6"]
    return found[0] if found else None


def test_server_crash_and_a_taken_port_fail_only_their_cells(
    loopback: Loopback, tmp_path: Path
) -> None:
    """c-epoll is SIGSEGVed by PID during its load; a foreign listener then takes the port,
    so the next cell fails before its server starts; the last two cells still measure."""
    out = tmp_path / "results"
    args = ["run", "-i", str(loopback.inventory), *SERVERS, "--repetitions", "2", *FAULT_CELL]
    with background([*args, "--out", str(out)], tmp_path) as run:
        # k6 first: verify starts each server once, briefly, before its first cell.
        wait_for("k6", lambda: _k6_pid(loopback), 60, run)
        server = wait_for("c-epoll", lambda: _server_pid(loopback, "c-epoll"), 10, run)
        os.kill(server, signal.SIGSEGV)
        holder = ResettingListener("127.0.0.1", loopback.port)
        try:
            wait_for(
                "the c-io_uring/1 result",
                lambda: list(out.glob(cell_glob("c-io_uring", 1))),
                60,
                run,
            )
        finally:
            holder.close()
        code = run.wait(120)
    assert code == 1, run.output()
    assert last_line(run.stderr) == (
        "orch: 2 of 4 cells failed: c-epoll/1, c-io_uring/1 (see Failed cells in the report)"
    ), run.output()

    run_dir = one_run_dir(out)
    crashed = cell_result(run_dir, "c-epoll/1")
    assert crashed.status == "failed"
    assert crashed.server_exit_status == -signal.SIGSEGV
    error = str(crashed.error)
    assert error.startswith(
        "server was killed by SIGSEGV (signal 11) during the load; k6 counted "
    ), error
    assert f"listening on 127.0.0.1:{loopback.port}" in error
    assert f"listening on 127.0.0.1:{loopback.port}" in str(crashed.server_log_tail)
    assert crashed.load is not None and crashed.load.failed_requests > 0  # k6 saw the server go

    taken = cell_result(run_dir, "c-io_uring/1")
    comm = Path("/proc/self/comm").read_text().strip()
    assert taken.status == "failed"
    assert taken.error == (
        f"port {loopback.port} is already in use on target local by {comm} "
        f"(PID {os.getpid()}), before the server started"
    )
    for key in ("c-io_uring/2", "c-epoll/2"):
        result = cell_result(run_dir, key)
        assert result.status == "ok", result
        assert result.load is not None and result.load.failed_requests == 0

    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "## Failed cells" in report
    assert "- c-epoll repetition 1: server was killed by SIGSEGV (signal 11)" in report
    assert f"- c-io_uring repetition 1: port {loopback.port} is already in use" in report
    failed_count = crashed.load.failed_requests
    assert f"- c-epoll repetition 1 (failed cell): k6 counted {failed_count:,} failed" in report
    rows = {row["server"]: row for row in read_json(run_dir / "results.json")["rows"]}
    assert rows["c-epoll"]["failed_requests"] == failed_count
    assert rows["c-epoll"]["repetitions_ok"] == 1 and rows["c-io_uring"]["repetitions_ok"] == 1
    assert loopback.left("server crash + port taken") == {"local": 0}


def test_server_that_cannot_start_fails_its_cell_with_its_log(
    loopback: Loopback, tmp_path: Path
) -> None:
    """The listen address is not on this host: the server exits at start with its reason."""
    inventory = loopback.variant(
        "foreign-address",
        target=f"{{host: local, cpus: [0], listen: {{address: 192.0.2.1, port: {loopback.port}}}}}",
    )
    out = tmp_path / "results"
    args = ["run", "-i", str(inventory), "--server", "c-epoll", *FAULT_CELL]
    done = orch(*args, "--out", str(out), timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    run_dir = one_run_dir(out)
    cell = cell_result(run_dir, "c-epoll/1")
    assert cell.status == "failed"
    assert cell.server_exit_status not in (None, 0)
    error, log_tail = str(cell.error), str(cell.server_log_tail)
    assert error.startswith(
        f"server exited with status {cell.server_exit_status} before it was ready: "
    ), error
    assert cell.server_log_tail is not None and "192.0.2.1" in log_tail, cell
    assert log_tail in error
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert f"- c-epoll repetition 1: {error}" in report
    assert "| failed |" in report
    assert loopback.left("server cannot start") == {"local": 0}


def test_port_taken_before_the_run_is_refused_and_its_holder_named(
    loopback: Loopback, tmp_path: Path
) -> None:
    listener = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket, sys, time\n"
            "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
            "print('ready', flush=True); time.sleep(120)\n",
            str(loopback.port),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout is not None and listener.stdout.readline() == "ready\n"
        comm = Path(f"/proc/{listener.pid}/comm").read_text().strip()
        done = orch(
            "run", "-i", str(loopback.inventory), "--server", "c-epoll", *FAULT_CELL,
            "--out", str(tmp_path / "results"), timeout=120,
        )  # fmt: skip
    finally:
        listener.kill()
        listener.wait()
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"orch: error: inventory target.listen.port: port {loopback.port} is already in use "
        f"on target local by {comm} (PID {listener.pid}); stop that process or choose another "
        "port"
    ]
    assert not (tmp_path / "results").exists()  # refused before any run directory
    assert loopback.left("port taken before the run") == {"local": 0}


def test_k6_killed_mid_load_fails_its_cell_and_the_run_goes_on(
    loopback: Loopback, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    args = ["run", "-i", str(loopback.inventory), "--server", "c-epoll", "--repetitions", "2"]
    with background([*args, *FAULT_CELL, "--out", str(out)], tmp_path) as run:
        k6 = wait_for("k6", lambda: _k6_pid(loopback), 60, run)
        os.kill(k6, signal.SIGKILL)
        code = run.wait(120)
    assert code == 1, run.output()
    run_dir = one_run_dir(out)
    killed = cell_result(run_dir, "c-epoll/1")
    assert killed.status == "failed"
    assert str(killed.error).startswith("k6 load pass on local was killed by SIGKILL (signal 9): ")
    assert killed.server_exit_status == 0  # the server was fine and stopped cleanly
    assert (cell_path(run_dir, "c-epoll/1") / "k6-output.txt").is_file()
    assert cell_result(run_dir, "c-epoll/2").status == "ok"
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "- c-epoll repetition 1: k6 load pass on local was killed by SIGKILL" in report
    assert loopback.left("k6 killed") == {"local": 0}


def _wait_second_cell_loading(loopback: Loopback, out: Path, run: Background) -> None:
    """Until c-epoll/1 is on disk and c-io_uring/1's server and k6 run."""
    wait_for("the c-epoll/1 result", lambda: list(out.glob(cell_glob("c-epoll", 1))), 60, run)
    wait_for("c-io_uring", lambda: _server_pid(loopback, "c-io_uring"), 30, run)
    wait_for("k6", lambda: _k6_pid(loopback), 30, run)


def _signal_during_second_cell(
    loopback: Loopback, tmp_path: Path, sig: signal.Signals, timeout: float
) -> tuple[int, Background, Path]:
    """Run both servers once and send orch `sig` while the second cell loads: its exit
    status, the run and its run directory."""
    out = tmp_path / "results"
    args = ["run", "-i", str(loopback.inventory), *SERVERS, *FAULT_CELL, "--out", str(out)]
    with background(args, tmp_path) as run:
        _wait_second_cell_loading(loopback, out, run)
        run.proc.send_signal(sig)
        code = run.wait(timeout)
    return code, run, one_run_dir(out)


def test_sigterm_keeps_finished_cells_and_resume_runs_only_the_rest(
    loopback: Loopback, tmp_path: Path
) -> None:
    code, run, run_dir = _signal_during_second_cell(loopback, tmp_path, signal.SIGTERM, 60)
    assert code == 128 + signal.SIGTERM, run.output()
    assert last_line(run.stderr) == (
        f"orch: interrupted by SIGTERM; measured cells kept in {run_dir} "
        f"(finish with: orch run --resume {run_dir})"
    )
    assert loopback.left("SIGTERM") == {"local": 0}
    record = read_record(run_dir)
    assert (record.status, record.interrupted_by) == ("interrupted", "SIGTERM")
    kept = (cell_path(run_dir, "c-epoll/1") / "result.json").read_bytes()
    assert cell_result(run_dir, "c-epoll/1").status == "ok"
    assert not list(run_dir.glob("cells/c-io_uring/*/1/result.json"))
    assert "was interrupted (SIGTERM)" in (run_dir / "report.md").read_text(encoding="utf-8")

    resumed = orch("run", "--resume", str(run_dir), timeout=180)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming {run_dir}: 1 of 2 cells missing (c-io_uring/1)" in resumed.stdout
    assert (cell_path(run_dir, "c-epoll/1") / "result.json").read_bytes() == kept
    record = read_record(run_dir)
    assert record.status == "complete" and record.interrupted_by is None
    assert [[record.cell_label(k) for k in r.cells] for r in record.resumed] == [["c-io_uring/1"]]
    rows = read_json(run_dir / "results.json")["rows"]
    assert sorted((r["server"], r["repetitions_ok"]) for r in rows) == [
        ("c-epoll", 1),
        ("c-io_uring", 1),
    ]
    assert "| epoll | C |" in resumed.stdout and "| io_uring | C |" in resumed.stdout
    assert loopback.left("resume after SIGTERM") == {"local": 0}

    again = orch("run", "--resume", str(run_dir), timeout=60)
    assert again.returncode == 2
    assert again.stderr.splitlines() == [
        f"orch: error: {run_dir}: the run is already complete (2 of 2 cells measured); "
        "nothing to resume"
    ]


def test_kill_9_leaves_only_whole_json_and_resume_completes(
    loopback: Loopback, tmp_path: Path
) -> None:
    code, _, run_dir = _signal_during_second_cell(loopback, tmp_path, signal.SIGKILL, 30)
    assert code == -signal.SIGKILL
    # Nothing can run in orch after kill -9: its children die with it (parent-death signal).
    assert loopback.left("kill -9 of orch") == {"local": 0}
    files = whole_json_files(run_dir)  # every JSON file on disk is whole
    assert run_dir / "run.json" in files and len(files) >= 3
    assert read_record(run_dir).status == "running"

    resumed = orch("run", "--resume", str(run_dir), timeout=180)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "1 of 2 cells missing (c-io_uring/1)" in resumed.stdout
    assert read_record(run_dir).status == "complete"
    for key in ("c-epoll/1", "c-io_uring/1"):
        assert cell_result(run_dir, key).status == "ok"
    assert not list(run_dir.rglob(".*.tmp")) and not list(run_dir.rglob("*.orch-partial"))
    assert loopback.left("resume after kill -9") == {"local": 0}


def test_resume_refuses_what_it_cannot_resume(loopback: Loopback, tmp_path: Path) -> None:
    not_a_run = orch("run", "--resume", str(tmp_path), timeout=60)
    assert not_a_run.returncode == 2
    assert not_a_run.stderr.splitlines() == [
        f"orch: error: {tmp_path}: not a run directory (no run.json)"
    ]
    mixed = orch("run", "--resume", str(tmp_path), "--matrix", "c", "--vus", "5", timeout=60)
    assert mixed.returncode == 2
    assert mixed.stderr.splitlines() == [
        "orch: error: --resume: --matrix, --vus cannot be combined with it (a resumed run "
        "keeps the options recorded in its run.json)"
    ]


def test_cpu_not_on_the_host_is_one_line_exit_2(loopback: Loopback) -> None:
    have = sorted(os.sched_getaffinity(0))
    absent = max(have) + 62
    cpus = format_cpu_list(have)
    target = loopback.variant(
        "absent-target-cpu",
        target=f"{{host: local, cpus: [{absent}], listen: {{port: {loopback.port}}}}}",
    )
    done = orch("run", "-i", str(target), "--server", "c-epoll", *FAULT_CELL, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"orch: error: inventory target.cpus: CPU {absent} is not on host local (its CPUs: {cpus})"
    ]
    load = loopback.variant(
        "absent-load-cpus", load=f'{{host: local, cpus: "1,{absent}-{absent + 1}"}}'
    )
    deployed = orch("deploy", "-i", str(load), "--server", "c-epoll", timeout=60)
    assert deployed.returncode == 2
    assert deployed.stderr.splitlines() == [
        f"orch: error: inventory load.cpus: CPUs {absent}-{absent + 1} are not on host local "
        f"(its CPUs: {cpus})"
    ]


def test_missing_key_file_is_one_line_exit_2(tmp_path: Path) -> None:
    key = tmp_path / "no-such-key"
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(
        "hosts:\n"
        f"  box: {{address: 192.0.2.1, user: root, key_file: {key}, connect_timeout: 1}}\n"
        "  local: {connection: local}\n"
        "target: {host: box, cpus: [0]}\n"
        "load: {host: local, cpus: [1]}\n",
        encoding="utf-8",
    )
    for command in (["deploy"], ["run", *FAULT_CELL, "--server", "c-epoll"]):
        done = orch(*command, "-i", str(inventory), timeout=60)
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines() == [
            f"orch: error: inventory hosts.box.key_file: {key} does not exist"
        ]


def test_sigusr1_prints_where_every_thread_is_and_the_run_goes_on(
    loopback: Loopback, tmp_path: Path
) -> None:
    """A run that seems hung can say where it is (the fault tests send it before giving up)."""
    out = tmp_path / "results"
    args = ["run", "-i", str(loopback.inventory), "--server", "c-epoll", *FAULT_CELL]
    with background([*args, "--out", str(out)], tmp_path) as run:
        wait_for("k6", lambda: _k6_pid(loopback), 60, run)
        run.proc.send_signal(signal.SIGUSR1)
        code = run.wait(120)
    assert code == 0, run.output()
    assert "Current thread" in run.stderr and 'File "' in run.stderr, run.stderr
    assert cell_result(one_run_dir(out), "c-epoll/1").status == "ok"
