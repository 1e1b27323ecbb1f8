"""The Host contract: LocalHost and an SshHost into the namespace lab behave alike.

Every test runs over both hosts. The SSH cases need the lab (root: network namespaces, a
bridge, sshd) and are skipped without it; one lab serves the module. The lab's
namespaces share this machine's filesystem and PID namespace, so a test can look at the
host's files and processes directly to check what the Host methods claim.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fault_helpers import processes
from lab_helpers import Lab, processes_in, running_lab, set_link, sshd_pids

from orchestrator.errors import HostError
from orchestrator.hosts import Host, LocalHost, open_host
from orchestrator.inventory import load_inventory
from orchestrator.lab.topology import BRIDGE_ADDRESS, ROLES

TARGET = ROLES[0]
LAST_CPU = max(os.sched_getaffinity(0))


@dataclass
class Subject:
    """A host under test and where things are on it."""

    host: Host
    workdir: str  # a fresh folder on the host (also visible here)
    reach_me: str  # an address of this machine that the host can connect to
    namespace: str | None  # the network namespace its processes run in (None: this one)

    def processes(self) -> dict[int, str]:
        """PID -> command line of the processes the host runs (and, locally, all others)."""
        if self.namespace is not None:
            return processes_in(self.namespace)
        return {p.pid: p.cmdline for p in processes()}

    def gone(self, needle: str, seconds: float = 5.0) -> bool:
        """True once no process of the host has `needle` in its command line."""
        return _eventually(
            lambda: not any(needle in cmd for cmd in self.processes().values()), seconds
        )


def _eventually(check: Callable[[], object], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One lab for the module's SSH cases, always brought down afterwards (skipped when
    not root)."""
    with running_lab(tmp_path_factory.mktemp("contract")) as running:
        yield running


def _open_lab_target(lab: Lab, inventory: Path | None = None) -> Host:
    return open_host(load_inventory(inventory or lab.hosts_file), TARGET.namespace)


@pytest.fixture(params=["local", "ssh"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Subject]:
    """The host under test, closed afterwards (which stops what it still runs)."""
    if request.param == "local":
        workdir = tmp_path / "host"
        made = Subject(LocalHost(), str(workdir), "127.0.0.1", None)
    else:
        lab: Lab = request.getfixturevalue("lab")
        workdir = lab.files.workdir(TARGET) / "contract" / tmp_path.name
        made = Subject(_open_lab_target(lab), str(workdir), BRIDGE_ADDRESS, TARGET.namespace)
    workdir.mkdir(parents=True)
    try:
        yield made
    finally:
        made.host.close()


def _names_host(host: Host) -> str:
    """A regex for a one-line error that starts with the host's name."""
    return rf"^{re.escape(host.describe())}: "


def _marker() -> str:
    return f"orch-contract-{uuid.uuid4().hex[:12]}"


# --- run ---------------------------------------------------------------------------------


def test_run_reports_exit_status_stdout_and_stderr(subject: Subject) -> None:
    host = subject.host
    script = "import sys; print('out'); sys.stderr.write('err'); sys.exit(3)"
    done = host.run([host.python, "-c", script], check=False, timeout=30)
    assert (done.exit_code, done.stdout, done.stderr, done.ok) == (3, "out\n", "err", False)
    assert done.wall_seconds > 0
    with pytest.raises(HostError, match=_names_host(host) + r".* exited 3: err$"):
        host.run([host.python, "-c", script], timeout=30)
    assert host.run(["true"], timeout=30).ok


def test_a_missing_program_is_status_127_or_an_error_naming_the_host(subject: Subject) -> None:
    host = subject.host
    assert host.run(["orch-no-such-program"], check=False, timeout=30).exit_code == 127
    with pytest.raises(HostError, match=_names_host(host)):
        host.run(["orch-no-such-program"], timeout=30)


def test_run_passes_environment_and_working_directory(subject: Subject) -> None:
    host = subject.host
    odd = "x y'z $HOME `id`"
    script = "import os; print(os.getcwd()); print(os.environ['ORCH_ODD'])"
    done = host.run(
        [host.python, "-c", script], cwd=subject.workdir, env={"ORCH_ODD": odd}, timeout=30
    )
    assert done.stdout.splitlines() == [subject.workdir, odd]


def test_run_pins_to_cpus_and_counts_cpu_seconds(subject: Subject) -> None:
    host = subject.host
    done = host.run(["grep", "Cpus_allowed_list", "/proc/self/status"], cpus=[LAST_CPU])
    assert done.argv[:3] == ("taskset", "-c", str(LAST_CPU))
    assert done.stdout.split() == ["Cpus_allowed_list:", str(LAST_CPU)]
    burn = host.run([host.python, "-c", "sum(range(5_000_000))"], timeout=60)
    assert burn.cpu_seconds is not None and burn.cpu_seconds > 0


# --- timeouts and interruption -----------------------------------------------------------


@contextlib.contextmanager
def _ctrl_c_after(seconds: float) -> Iterator[None]:
    """Send this process's main thread a real SIGINT (it interrupts a blocking wait, as
    Ctrl-C does; `_thread.interrupt_main` would only be noticed when the wait ends).
    SIGINT may be ignored by whoever started the suite, so Python's handler is put back
    for the while."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(seconds, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGINT, previous)


def test_commands_are_killed_on_timeout_ctrl_c_and_close(subject: Subject) -> None:
    host = subject.host
    started = time.monotonic()
    with pytest.raises(HostError, match=_names_host(host) + "sleep 37 did not finish within 1 s"):
        host.run(["sleep", "37"], timeout=1)
    assert time.monotonic() - started < 5
    assert subject.gone("sleep 37")

    started = time.monotonic()
    with _ctrl_c_after(1.0), pytest.raises(KeyboardInterrupt):
        host.run(["sleep", "38"], timeout=60)
    assert time.monotonic() - started < 5
    assert subject.gone("sleep 38")

    pid = host.start_background(["sleep", "39"], log_path=f"{subject.workdir}/bg/sleep.log")
    assert host.exit_status(pid) is None
    # The PID is the process's own (once it has exec'd: wrappers exec, keeping it).
    assert _eventually(lambda: subject.processes().get(pid, "").strip() == "sleep 39", 5)
    host.close()
    assert subject.gone("sleep 39")


# --- files -------------------------------------------------------------------------------


def _partials(subject: Subject, *local: Path) -> list[str]:
    found = subject.host.run(["find", subject.workdir, "-name", "*.orch-partial"], timeout=30)
    here = [str(path) for folder in local for path in folder.rglob("*.orch-partial")]
    return found.stdout.split() + here


def test_put_and_get_round_trip_keeps_content_and_mode(subject: Subject, tmp_path: Path) -> None:
    host = subject.host
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(300_000))
    source.chmod(0o751)
    remote = f"{subject.workdir}/new/folder/copy.bin"
    host.put_file(source, remote)  # parent folders are created
    assert host.run(["stat", "-c", "%a", remote], timeout=30).stdout.strip() == "751"
    back = tmp_path / "back" / "copy.bin"
    host.get_file(remote, back)
    assert back.read_bytes() == source.read_bytes()
    assert stat.S_IMODE(back.stat().st_mode) == 0o751

    source.write_bytes(b"second version")
    source.chmod(0o640)
    host.put_file(source, remote)  # replaces
    host.get_file(remote, back)
    assert back.read_bytes() == b"second version"
    assert stat.S_IMODE(back.stat().st_mode) == 0o640
    assert _partials(subject, tmp_path) == []


def test_failed_transfers_leave_no_partial_file(subject: Subject, tmp_path: Path) -> None:
    host = subject.host
    source = tmp_path / "source.txt"
    source.write_text("content\n")
    taken = f"{subject.workdir}/taken"
    host.run(["mkdir", "-p", f"{taken}/inside"], timeout=30)
    with pytest.raises(HostError, match=_names_host(host) + "cannot upload "):
        host.put_file(source, taken)  # a non-empty folder is in the way
    with pytest.raises(HostError, match=_names_host(host) + "cannot upload "):
        host.put_file(tmp_path / "absent", f"{subject.workdir}/absent")

    kept = tmp_path / "kept.txt"
    kept.write_text("old\n")
    with pytest.raises(HostError, match=_names_host(host) + "cannot fetch "):
        host.get_file(f"{subject.workdir}/no-such-file", kept)
    assert kept.read_text() == "old\n"
    assert _partials(subject, tmp_path) == []


def test_provide_file_gives_a_path_that_holds_the_file(subject: Subject, tmp_path: Path) -> None:
    host = subject.host
    bundled = tmp_path / "tool.sh"
    bundled.write_text("#!/bin/sh\necho provided\n")
    bundled.chmod(0o755)
    path = host.provide_file(bundled, f"{subject.workdir}/bin/tool.sh")
    assert host.run([path], timeout=30).stdout == "provided\n"
    again = host.provide_file(bundled, f"{subject.workdir}/bin/tool.sh")
    assert again == path
    bundled.write_text("#!/bin/sh\necho changed\n")
    assert host.run([host.provide_file(bundled, path)], timeout=30).stdout == "changed\n"


def test_write_and_read_text(subject: Subject) -> None:
    host = subject.host
    path = f"{subject.workdir}/text/deeper/notes.txt"
    host.write_text(path, "héllo\nwörld\n")
    assert host.read_text(path) == "héllo\nwörld\n"
    host.write_text(path, "shorter\n")
    assert host.read_text(path) == "shorter\n"
    with pytest.raises(HostError, match=_names_host(host) + "cannot read "):
        host.read_text(f"{subject.workdir}/no-such-file")


def test_expand_home_as_the_hosts_user_sees_it(subject: Subject) -> None:
    host = subject.host
    home = host.run(["sh", "-c", 'printf %s "$HOME"'], timeout=30).stdout
    assert home.startswith("/")
    assert host.expand("~") == home
    assert host.expand("~/a/b") == f"{home}/a/b"
    assert host.expand("/not/~home") == "/not/~home"


# --- background processes ----------------------------------------------------------------


def _start(subject: Subject, script: str, marker: str, cpus: list[int] | None = None) -> int:
    host = subject.host
    log = f"{subject.workdir}/bg/{marker}.log"
    return host.start_background([host.python, "-c", script, marker], log_path=log, cpus=cpus)


def _log_says(subject: Subject, marker: str, text: str) -> bool:
    log = f"{subject.workdir}/bg/{marker}.log"
    return _eventually(lambda: text in subject.host.read_text(log), 15)


def test_start_background_pinned_with_its_own_pid_and_log(subject: Subject) -> None:
    host, marker = subject.host, _marker()
    script = "import time; print('started', flush=True); time.sleep(60)"
    pid = _start(subject, script, marker, cpus=[LAST_CPU])
    assert host.exit_status(pid) is None
    assert pid in host.running_children()
    assert _log_says(subject, marker, "started")
    status = dict(
        line.split(":\t", 1) for line in host.read_text(f"/proc/{pid}/status").splitlines()
    )
    assert status["Cpus_allowed_list"].strip() == str(LAST_CPU)
    assert marker in host.read_text(f"/proc/{pid}/cmdline")  # the PID is the process's own
    assert host.stop(pid) == -signal.SIGTERM
    assert subject.gone(marker)


def test_exit_status_of_processes_that_ended(subject: Subject) -> None:
    host = subject.host
    exited = _start(subject, "import sys; sys.exit(3)", _marker())
    assert _eventually(lambda: host.exit_status(exited) is not None, 15)
    assert host.exit_status(exited) == 3
    killed = _start(subject, "import os, signal; os.kill(os.getpid(), signal.SIGUSR1)", _marker())
    assert _eventually(lambda: host.exit_status(killed) is not None, 15)
    assert host.exit_status(killed) == -signal.SIGUSR1
    assert host.stop(exited) == 3  # stopping an ended process returns its status
    with pytest.raises(HostError, match=_names_host(host) + rf"process {exited} was not started"):
        host.exit_status(exited)
    assert host.stop(exited) is None


def test_stop_terminates_then_kills_after_the_grace_time(subject: Subject) -> None:
    host = subject.host
    polite = _marker()
    pid = _start(subject, "import time; print('ready', flush=True); time.sleep(60)", polite)
    assert _log_says(subject, polite, "ready")
    started = time.monotonic()
    assert host.stop(pid, grace=3) == -signal.SIGTERM
    assert time.monotonic() - started < 3
    assert subject.gone(polite)

    stubborn = _marker()
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    pid = _start(subject, script, stubborn)
    assert _log_says(subject, stubborn, "ready")
    started = time.monotonic()
    assert host.stop(pid, grace=0.5) == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - started < 5
    assert subject.gone(stubborn)
    assert pid not in host.running_children()


# --- network -----------------------------------------------------------------------------


def test_tcp_probe(subject: Subject) -> None:
    host = subject.host
    with socket.socket() as server:
        server.bind((subject.reach_me, 0))
        server.listen()
        port = server.getsockname()[1]
        assert host.tcp_probe(subject.reach_me, port)
    assert not host.tcp_probe(subject.reach_me, port)


def _kill_sessions(lab: Lab) -> None:
    sessions = sshd_pids(lab, TARGET, listener=False)
    assert sessions, "no sshd session serves the connection"
    for pid in sessions:
        os.kill(pid, signal.SIGKILL)


def test_lost_connection_reconnects_or_names_the_host(
    subject: Subject, request: pytest.FixtureRequest
) -> None:
    if subject.namespace is None:
        pytest.skip(
            "not applicable to LocalHost: it holds no connection (its commands are its own "
            "child processes), so there is nothing to lose"
        )
    lab: Lab = request.getfixturevalue("lab")
    host = subject.host

    # The session dies between commands: the next command reconnects.
    _kill_sessions(lab)
    assert _eventually(lambda: not sshd_pids(lab, TARGET, listener=False), 5)
    assert host.run(["echo", "again"], timeout=30).stdout == "again\n"
    # ... even at once, while paramiko may not yet have seen its session end (a race).
    for _ in range(5):
        _kill_sessions(lab)
        assert host.run(["echo", "again"], timeout=30).stdout == "again\n"

    # The session dies during a command: the command fails naming the host, and the
    # command, left running by the dead session, is stopped over a new connection.
    killer = threading.Timer(1.0, _kill_sessions, (lab,))
    killer.start()
    try:
        with pytest.raises(HostError) as lost:
            host.run(["sleep", "3703"], timeout=60)
    finally:
        killer.cancel()
    assert re.match(
        _names_host(host) + r"SSH connection lost while running sleep 3703; "
        r"reconnected and stopped it \(PID \d+\)$",
        str(lost.value),
    ), lost.value
    assert subject.gone("sleep 3703")

    # The network goes away: a command fails within the host's time limit, naming it;
    # once the network is back, the host works again.
    fast = _open_lab_target(lab, lab.variant("contract-fast", {"connect_timeout": 2}))
    try:
        assert fast.run(["true"], timeout=30).ok
        set_link(TARGET.veth, "down")
        try:
            started = time.monotonic()
            with pytest.raises(HostError, match=_names_host(fast)):
                fast.run(["true"], timeout=5)
            assert time.monotonic() - started < 8
        finally:
            set_link(TARGET.veth, "up")
        assert fast.run(["echo", "back"], timeout=60).stdout == "back\n"
    finally:
        fast.close()
