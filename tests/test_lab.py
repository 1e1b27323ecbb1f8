"""Two-machine mode proven on the two-namespace lab (needs root: run in CI as root).

One lab serves the module (brought down at the end, also after a failure); the first
test brings a lab up and down on its own before that, so it must stay first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_helpers import Proc, processes
from lab_helpers import Lab, needs_root, running_lab
from lab_helpers import leftovers as _leftovers
from lab_helpers import processes_in as _processes_in
from orch_helpers import only_line, orch
from record_helpers import one_run_dir, read_cells, read_record
from server_helpers import REPO, SERVER_NAMES

from orchestrator.hosts.connect import open_hosts
from orchestrator.hosts.ssh import SshHost
from orchestrator.inventory import HostSpec, load_inventory
from orchestrator.lab.sshd import new_key
from orchestrator.lab.topology import BRIDGE, ROLES

pytestmark = needs_root

TARGET, LOAD = ROLES


def _no_agent_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "SSH_AUTH_SOCK"}


def _lab_sshds(lab_dir: Path) -> list[int]:
    """Live (non-zombie) sshd processes whose command line names this lab's folder."""
    return [p.pid for p in processes() if "sshd" in p.cmdline and str(lab_dir) in p.cmdline]


def test_lab_comes_up_and_goes_down_cleanly(tmp_path: Path) -> None:
    lab_dir, hosts = tmp_path / "lab", tmp_path / "lab-hosts.yaml"
    up = orch("lab", "up", "--dir", str(lab_dir), "-i", str(hosts), timeout=90)
    try:
        assert up.returncode == 0, up.stderr
        status = orch("lab", "status", "--dir", str(lab_dir), timeout=30)
        assert status.returncode == 0 and "lab: up" in status.stdout, status.stdout
        assert len(_lab_sshds(lab_dir)) == 2
        assert hosts.is_file() and (lab_dir / "known_hosts").is_file()
    finally:
        down = orch("lab", "down", "--dir", str(lab_dir), "-i", str(hosts), timeout=90)
    assert down.returncode == 0, down.stderr
    assert _leftovers() == []
    assert _lab_sshds(lab_dir) == []
    assert not lab_dir.exists() and not hosts.exists()
    again = orch("lab", "down", "--dir", str(lab_dir), "-i", str(hosts), timeout=90)
    assert again.returncode == 0, again.stderr  # idempotent
    status = orch("lab", "status", "--dir", str(lab_dir), timeout=30)
    assert status.returncode == 1 and "lab: down" in status.stdout


def test_lab_down_after_a_partial_up(tmp_path: Path) -> None:
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    (lab_dir / "sshd_target_config").write_text("# left by a failed up\n")
    subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True, timeout=30)
    subprocess.run(["ip", "netns", "add", TARGET.namespace], check=True, timeout=30)
    down = orch("lab", "down", "--dir", str(lab_dir), timeout=90)
    assert down.returncode == 0, down.stderr
    assert _leftovers() == []
    assert not lab_dir.exists()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One lab for the module's remaining tests, always brought down afterwards."""
    with running_lab(tmp_path_factory.mktemp("lab")) as running:
        yield running


def test_unknown_host_key_refused_then_accepted_on_request(lab: Lab) -> None:
    known = lab.tmp / "known_hosts_without_target"
    lines = lab.files.known_hosts.read_text().splitlines()
    known.write_text("".join(f"{line}\n" for line in lines if not line.startswith(TARGET.address)))
    inventory = lab.variant("unknown-key", {"known_hosts": str(known)})

    refused = orch("deploy", "-i", str(inventory), "--server", "c-epoll", timeout=60)
    message = only_line(refused.stderr)
    assert refused.returncode == 2
    assert TARGET.namespace in message and "--accept-new-host-keys" in message
    assert TARGET.address not in known.read_text()

    accepted = orch(
        "deploy", "-i", str(inventory), "--server", "c-epoll", "--accept-new-host-keys", timeout=600
    )
    assert accepted.returncode == 0, accepted.stderr
    assert f"{TARGET.address} ssh-ed25519 " in known.read_text()
    remembered = orch("deploy", "-i", str(inventory), "--server", "c-epoll", timeout=600)
    assert remembered.returncode == 0, remembered.stderr


def test_changed_host_key_is_always_refused(lab: Lab) -> None:
    # The load machine's key filed under the target's address: the key "changed".
    lines = lab.files.known_hosts.read_text().splitlines()
    load_key = next(line for line in lines if line.startswith(LOAD.address)).split(None, 1)[1]
    known = lab.tmp / "known_hosts_changed"
    known.write_text(f"{TARGET.address} {load_key}\n{LOAD.address} {load_key}\n")
    inventory = lab.variant("changed-key", {"known_hosts": str(known)})
    refused = orch(
        "deploy", "-i", str(inventory), "--server", "c-epoll", "--accept-new-host-keys", timeout=60
    )
    message = only_line(refused.stderr)
    assert refused.returncode == 1
    assert TARGET.namespace in message and "CHANGED" in message


def test_wrong_client_key_gives_a_clear_error(lab: Lab) -> None:
    stranger = lab.tmp / "stranger_ed25519"
    new_key(stranger, "not-authorised")
    inventory = lab.variant("wrong-key", {"key_file": str(stranger)})
    failed = orch(
        "deploy", "-i", str(inventory), "--server", "c-epoll", timeout=60, env=_no_agent_env()
    )
    message = only_line(failed.stderr)
    assert failed.returncode == 1
    assert TARGET.namespace in message and "authentication as root failed" in message
    assert str(stranger) in message

    missing = lab.variant("missing-key", {"key_file": str(lab.tmp / "no-such-key")})
    absent = orch("deploy", "-i", str(missing), "--server", "c-epoll", timeout=60)
    assert absent.returncode == 2
    assert "does not exist" in only_line(absent.stderr)


def test_unreachable_host_fails_within_its_time_limit(lab: Lab) -> None:
    inventory = lab.variant(
        "unreachable", {"address": "10.203.0.9", "connect_timeout": 2}, hosts=(TARGET.namespace,)
    )
    started = time.monotonic()
    failed = orch("deploy", "-i", str(inventory), "--server", "c-epoll", timeout=60)
    elapsed = time.monotonic() - started
    message = only_line(failed.stderr)
    assert failed.returncode == 1
    assert TARGET.namespace in message and "10.203.0.9" in message and "2 s" in message
    assert elapsed < 2 + 4, f"took {elapsed:.1f} s"  # 2 s limit plus interpreter start-up


def test_jump_host_reaches_the_target_through_the_load_machine(lab: Lab) -> None:
    inventory = lab.variant("jump", {"jump_host": LOAD.namespace}, hosts=(TARGET.namespace,))
    target, load = open_hosts(load_inventory(inventory))
    try:
        seen = target.run(["sh", "-c", 'uname -n; echo "$SSH_CONNECTION"'], timeout=30)
        hostname, connection = seen.stdout.splitlines()
        assert hostname == TARGET.hostname
        assert connection.split()[0] == LOAD.address  # it came from the load namespace
    finally:
        target.close()
        load.close()


def test_ssh_config_proxyjump_and_proxycommand_reach_the_target(lab: Lab) -> None:
    key, known = lab.files.client_key, lab.files.known_hosts
    common = f"  User root\n  IdentityFile {key}\n  UserKnownHostsFile {known}\n"
    proxy = (
        f"ssh -F /dev/null -i {key} -o UserKnownHostsFile={known} -o BatchMode=yes "
        f"-o StrictHostKeyChecking=yes -W %h:%p root@{LOAD.address}"
    )
    config = lab.tmp / "ssh_config"
    config.write_text(
        f"Host via-jump\n  HostName {TARGET.address}\n{common}  ProxyJump root@{LOAD.address}\n"
        f"Host via-proxy\n  HostName {TARGET.address}\n{common}  ProxyCommand {proxy}\n"
        f"Host {LOAD.address}\n{common}"
    )
    for alias in ("via-jump", "via-proxy"):
        host = SshHost("t", HostSpec(address=alias), ssh_config=config)
        try:
            seen = host.run(["sh", "-c", 'uname -n; echo "$SSH_CONNECTION"'], timeout=30)
        finally:
            host.close()
        hostname, connection = seen.stdout.splitlines()
        assert hostname == TARGET.hostname, alias
        assert connection.split()[0] == LOAD.address, alias


def test_orch_system_over_ssh_reads_each_machine(lab: Lab) -> None:
    hosts = str(lab.hosts_file)
    shown = orch("system", "-i", hosts, timeout=120)
    print(shown.stdout)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    target = lines.index(f"{TARGET.namespace} ({TARGET.address}): target")
    load = lines.index(f"{LOAD.namespace} ({LOAD.address}): load")
    assert lines[target + 2].startswith("  CPU 0 (server): ")
    assert lines[load + 2].startswith("  CPU 1 (load): ")
    # each reads its own namespace's interface: the veth renamed eth0, no IRQ lines
    assert sum(line.startswith("  network eth0: no interrupt lines") for line in lines) == 2
    # one machine (one boot id): its machine-wide warnings name both entries, once
    machine = f"{TARGET.namespace}, {LOAD.namespace}: "
    assert any(line.startswith(f"  - {machine}") for line in lines)
    tuned = orch("system", "tune", "-i", hosts, timeout=120)
    assert tuned.returncode == 0, tuned.stderr
    assert tuned.stdout.startswith(machine.rstrip(": ") + ": ")
    reset = orch("system", "reset", "-i", hosts, timeout=120)
    assert reset.returncode == 0, reset.stderr
    assert f"{TARGET.namespace}: " in reset.stdout and f"{LOAD.namespace}: " in reset.stdout


def _lo_packets(namespace: str) -> int:
    out = subprocess.run(
        ["ip", "-n", namespace, "-s", "-j", "link", "show", "lo"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    stats = json.loads(out)[0]["stats64"]
    return int(stats["rx"]["packets"]) + int(stats["tx"]["packets"])


class NamespaceWatcher:
    """Samples /proc while a run goes on: which network namespace each server and k6 is in."""

    def __init__(self, lab: Lab) -> None:
        self._servers = str(lab.files.workdir(TARGET))
        self._load = str(lab.files.workdir(LOAD))
        self.seen: dict[str, set[int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> NamespaceWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            for proc in processes():
                self._look(proc)

    def _look(self, proc: Proc) -> None:
        if proc.exe.startswith(self._servers) and proc.name in SERVER_NAMES:
            self.seen.setdefault(proc.name, set()).add(proc.netns)
        elif proc.name == "k6" and self._load in proc.cmdline:
            self.seen.setdefault("k6", set()).add(proc.netns)


def test_full_matrix_over_ssh_crosses_the_target_nic(lab: Lab) -> None:
    hosts = str(lab.hosts_file)
    deployed = orch("deploy", "-i", hosts, "--matrix", "full", timeout=1800)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    out = lab.tmp / "results"
    lo_before = _lo_packets(TARGET.namespace)
    with NamespaceWatcher(lab) as watcher:
        ran = orch(
            "run", "--matrix", "full", "--profile", "smoke", "-i", hosts, "--out", str(out),
            timeout=600,
        )  # fmt: skip
    lo_after = _lo_packets(TARGET.namespace)
    assert ran.returncode == 0, ran.stdout + ran.stderr

    run_dir = one_run_dir(out)
    record = read_record(run_dir)
    assert record.facts.target.hostname == TARGET.hostname
    assert record.facts.load.hostname == LOAD.hostname
    assert record.interface == "eth0"

    cells = read_cells(run_dir)
    assert sorted(c.server for c in cells) == sorted(SERVER_NAMES)
    total_requests = 0
    for cell in cells:
        load, nic = cell.load, cell.nic
        assert cell.status == "ok", cell
        assert load is not None and nic is not None, cell
        assert load.requests_per_second > 0 and load.failed_requests == 0, cell
        assert nic.interface == "eth0"
        assert nic.rx_packets >= load.requests and nic.tx_packets >= load.requests
        total_requests += load.requests
    assert lo_after - lo_before <= max(50, total_requests // 1000), (lo_before, lo_after)

    target_ns = os.stat(Path("/run/netns", TARGET.namespace)).st_ino
    load_ns = os.stat(Path("/run/netns", LOAD.namespace)).st_ino
    assert watcher.seen.get("k6") == {load_ns}, watcher.seen
    for server in SERVER_NAMES:
        assert watcher.seen.get(server) == {target_ns}, (server, watcher.seen)
    assert "| epoll | C |" in ran.stdout and "| io_uring | Zig |" in ran.stdout


def test_ctrl_c_during_a_run_stops_every_remote_process(lab: Lab) -> None:
    hosts = str(lab.hosts_file)
    deployed = orch("deploy", "-i", hosts, "--server", "c-epoll", timeout=600)
    assert deployed.returncode == 0, deployed.stderr
    # SIGINT may be ignored by whoever started the suite; orch must see Ctrl-C regardless.
    starter = (
        "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "runpy.run_module('orchestrator', run_name='__main__')"
    )
    argv = ["run", "--server", "c-epoll", "--profile", "quick", "-i", hosts]
    run = subprocess.Popen(
        [sys.executable, "-c", starter, *argv, "--out", str(lab.tmp / "interrupted")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(
            " run " in cmd and "k6" in cmd for cmd in _processes_in(LOAD.namespace).values()
        ):
            assert run.poll() is None and time.monotonic() < deadline, "k6 never started"
            time.sleep(0.1)
        run.send_signal(signal.SIGINT)
        output, _ = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 130, output
    for role in ROLES:
        deadline = time.monotonic() + 5
        while True:
            left = {
                pid: cmd
                for pid, cmd in _processes_in(role.namespace).items()
                if not cmd.startswith("sshd")
            }
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert left == {}, (role.namespace, left)


def _cost_per_request(run_dir: Path) -> tuple[float, float, float, float]:
    """Over a run's cells (per request, microseconds): target CPU, server process CPU,
    irq+softirq on the counted CPUs; and the share of the packets received on CPU 0, the
    server's."""
    target = process = interrupts = 0.0
    requests = on_server = received = 0
    for cell in read_cells(run_dir):
        cost, load = cell.cost, cell.load
        assert cost is not None and cost.target is not None and cost.network is not None
        assert load is not None and cell.status == "ok", cell.error
        assert cost.network.received is not None and sum(cost.network.net_rx.values()) > 0
        target += cost.target.busy_above_baseline
        process += cost.process.cpu_seconds
        interrupts += cost.target.interrupt_work
        requests += load.requests
        on_server += cost.network.received.get(0, 0)
        received += sum(cost.network.received.values())
    per = 1e6 / requests
    return target * per, process * per, interrupts * per, on_server / received


def test_receive_work_placed_on_the_server_cpu_or_away_over_the_veth(lab: Lab) -> None:
    """RPS on the target's veth moves its receive softirq onto the server's CPU or away,
    and the target-wide figure follows the work: the lab's one machine has two CPUs, so
    `other` is the load tool's CPU 1, which the target figure leaves out.

    Packets are counted machine-wide where the stack received them: a request is received
    twice (the bridge's port, on the load tool's CPU 1, then the target's eth0, where RPS
    sends it), an answer twice on the server's CPU 0 (it sends there, and a veth receives
    on the sending CPU). So CPU 0 receives about half with the work away, three quarters
    with it there. NET_RX counts do not show it: they count softirq runs, not packets,
    and RPS raises NET_RX on the sending CPU too (to send its IPIs). Without
    CONFIG_IRQ_TIME_ACCOUNTING (this kernel) softirq work that interrupts the server is
    charged to it as well, so its own figure rises with it; only the target's irq+softirq
    column tells that work apart."""
    hosts = str(lab.hosts_file)
    found = {}
    for placement in ("server", "other"):
        out = lab.tmp / f"placed-{placement}"
        ran = orch(
            "run", "-i", hosts, "--server", "c-epoll", "--load-tool", "wrk",
            "--connections", "100", "--duration", "1s", "--warmup", "0.3s",
            "--repetitions", "3", "--receive-work", placement, "--out", str(out), timeout=600,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert f"receive work of eth0 on CPU {0 if placement == 'server' else 1}" in ran.stdout
        run_dir = one_run_dir(out)
        record = read_record(run_dir)
        assert record.measurement is not None and record.measurement.counted_cpus == [0]
        found[placement] = _cost_per_request(run_dir)
    target_on, _, irq_on, share_on = found["server"]
    target_off, _, irq_off, share_off = found["other"]
    assert share_on > 0.65 and share_off < 0.6, found
    assert irq_on > 1.3 * irq_off, found
    assert target_on - target_off > 0.5 * (irq_on - irq_off), found
    mask = "/sys/class/net/eth0/queues/rx-0/rps_cpus"
    rps = subprocess.run(
        ["ip", "netns", "exec", TARGET.namespace, "cat", mask],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert int(rps.strip().replace(",", ""), 16) == 0  # put back: RPS off as the lab made it
