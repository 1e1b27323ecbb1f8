"""`orch system`'s reader, warnings and tuner on captured trees: a bare-metal Intel host
(intel_pstate, SMT), an AMD host (acpi-cpufreq, boost, nosmt), and this machine, captured
by the test. Tune followed by reset must leave every file of a tree as it was."""

from __future__ import annotations

import ast
import contextlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from system_helpers import (
    AMD,
    INTEL,
    INTERFACES,
    FailingHost,
    RecordingHost,
    RecordingServices,
    capture_tree,
    copy_tree,
    recorded_ethtool,
    snapshot,
    tree_host,
)

from orchestrator.errors import UserError
from orchestrator.hosts.local import LocalHost
from orchestrator.measure.interface import detect_interface
from orchestrator.run.signals import Interrupted
from orchestrator.run.system_state import run_system
from orchestrator.system import collector
from orchestrator.system.access import SystemAccess
from orchestrator.system.change_set import ChangeSet, FileChange
from orchestrator.system.changes import (
    FileWish,
    apply,
    plan_changes,
    reset_from_saved,
    saved_change_sets,
    state_path,
)
from orchestrator.system.differences import fingerprint
from orchestrator.system.model import SystemFacts
from orchestrator.system.session import (
    RUN_TUNE,
    SystemHost,
    read_hosts,
    read_system,
    reset_hosts,
    restore_left_by_runs,
    tune_hosts,
)
from orchestrator.system.warning_rules import find_warnings

CPU = "sys/devices/system/cpu"
ROLES = {INTEL: {"server": [0], "load": [4]}, AMD: {"server": [2], "load": [4, 5]}}


def _host(
    name: str,
    root: Path,
    services: RecordingServices | None = None,
    roles: dict[str, list[int]] | None = None,
) -> SystemHost:
    return tree_host(
        root,
        roles or ROLES[name],
        INTERFACES[name],
        name=name,
        ethtool=recorded_ethtool(name),
        services=services or RecordingServices(),
    )


def _read(name: str, tmp_path: Path, **roles: list[int]) -> SystemFacts:
    return read_system(_host(name, copy_tree(name, tmp_path), roles=roles or None))


def test_intel_tree_readings(tmp_path: Path) -> None:
    facts = _read(INTEL, tmp_path)
    assert facts.cpu_model == "Intel(R) Xeon(R) CPU E3-1230 v6 @ 3.50GHz"
    assert facts.online == list(range(8)) and facts.physical_cores == 4
    assert facts.smt_control == "on" and facts.smt_active
    server, load = facts.cpus
    assert (server.cpu, server.roles, server.siblings, server.core_id) == (0, ["server"], [0, 4], 0)
    assert (load.cpu, load.roles, load.siblings, load.core_id) == (4, ["load"], [0, 4], 0)
    frequency = server.frequency
    assert frequency is not None
    assert frequency.policy == "/sys/devices/system/cpu/cpufreq/policy0"
    assert (frequency.driver, frequency.governor) == ("intel_pstate", "powersave")
    assert frequency.governors == ["performance", "powersave"]
    assert (frequency.min_khz, frequency.max_khz, frequency.hw_max_khz) == (
        800000,
        3900000,
        3900000,
    )
    assert frequency.epp == "balance_performance" and frequency.policy_cpus == [0]
    assert facts.cpufreq_driver == "intel_pstate" and facts.pstate_status == "active"
    assert [s.name for s in server.idle_states] == ["POLL", "C1", "C1E", "C3", "C6", "C7s", "C8"]
    assert [s.name for s in server.idle_states if s.disabled] == ["C8"]
    assert [s.name for s in server.deep_enabled] == ["C1E", "C3", "C6", "C7s"]
    assert server.idle_states[3].latency_us == 70
    assert facts.turbo is not None and facts.turbo.enabled
    assert facts.turbo.control == "intel_pstate no_turbo"
    assert facts.turbo.path == f"/{CPU}/intel_pstate/no_turbo"
    assert facts.cpuidle_driver == "intel_idle" and facts.cpuidle_governor == "menu"
    assert facts.isolcpus == facts.nohz_full == facts.rcu_nocbs == []
    assert facts.kernel == "6.1.0-18-amd64"
    assert facts.kernel_config.source == "/boot/config-6.1.0-18-amd64"
    assert facts.kernel_config.hz == 250 and facts.kernel_config.tick == "NO_HZ_IDLE"
    assert facts.irq_time_accounting is True
    assert (
        not facts.virtualisation.virtual and facts.virtualisation.dmi == "Supermicro Super Server"
    )
    assert facts.steal is not None and facts.steal.share == 0.0
    assert len(facts.mitigations) == 13
    assert facts.mitigation_counts == {"vulnerable": 0, "mitigated": 12, "not affected": 1}
    assert facts.mitigations["meltdown"] == "Mitigation: PTI"
    assert facts.thp == "madvise" and facts.swap_total_kib == 8388604 and facts.swappiness == 60
    assert facts.io_uring_disabled is None  # 6.1 has no such sysctl
    assert facts.irqbalance_pids == [873]
    network = facts.network
    assert network is not None and network.present
    assert (network.device, network.driver) == ("0000:03:00.0", "igb")
    assert [line.name for line in network.irqs] == ["eno1", *(f"eno1-TxRx-{q}" for q in range(4))]
    assert [line.irq for line in network.receive_irqs] == [131, 132, 133, 134]
    assert [line.affinity for line in network.receive_irqs] == [[0], [1], [2], [3]]
    assert network.receive_irqs[0].ran_on == [0] and network.irqs[0].affinity == [5]
    assert network.rps == {f"rx-{q}": [] for q in range(4)}
    assert network.xps == {f"tx-{q}": [] for q in range(4)}
    assert network.rps_sock_flow_entries == 0
    ethtool = network.ethtool
    assert ethtool is not None and ethtool.problems == {}
    assert ethtool.channels == {
        "max rx": "n/a", "max tx": "n/a", "max other": "1", "max combined": "4",
        "rx": "n/a", "tx": "n/a", "other": "1", "combined": "4",
    }  # fmt: skip
    assert ethtool.coalesce is not None and ethtool.coalesce["rx-usecs"] == "3"
    assert ethtool.coalesce["adaptive-rx"] == "off"
    assert ethtool.features is not None
    assert ethtool.features["generic-receive-offload"] == "on"
    assert ethtool.features["large-receive-offload"] == "off [fixed]"


def test_intel_tree_warnings(tmp_path: Path) -> None:
    facts = {INTEL: _read(INTEL, tmp_path)}
    warnings = find_warnings(facts)
    by_kind = {(w.kind, w.cpu): w for w in warnings}
    assert sorted({w.kind for w in warnings}) == [
        "deep-idle",
        "governor",
        "irq-on-server",
        "irqbalance",
        "not-isolated",
        "smt-siblings",
        "turbo",
    ]
    siblings = by_kind["smt-siblings", 0]
    assert siblings.host == INTEL
    assert siblings.what == "CPU 0 (server) and CPU 4 (load) are SMT siblings"
    assert "share a core's execution units" in siblings.why and "smt/control" in siblings.fix
    assert by_kind["governor", 0].what == "governor powersave on CPU 0 (server)"
    assert by_kind["governor", 4].what == "governor powersave on CPU 4 (load)"
    assert "orch system tune" in by_kind["governor", 0].fix
    assert by_kind["turbo", None].what == "turbo boost is on (intel_pstate no_turbo)"
    deep = by_kind["deep-idle", 0].what
    assert "C1E (10 µs), C3 (70 µs), C6 (85 µs), C7s (124 µs)" in deep and "C8" not in deep
    assert by_kind["irqbalance", None].what == "irqbalance is running (PID 873)"
    assert "move the NIC's interrupts" in by_kind["irqbalance", None].why
    irq = by_kind["irq-on-server", 0]
    assert "IRQ 131 eno1-TxRx-0" in irq.what and "/proc/irq/131/smp_affinity_list" in irq.fix
    assert "isolcpus=0 nohz_full=0" in by_kind["not-isolated", 0].fix


def test_a_free_smt_sibling_of_the_server_is_warned_about(tmp_path: Path) -> None:
    facts = {INTEL: _read(INTEL, tmp_path, server=[0], load=[1, 2])}
    kinds = {(w.kind, w.cpu) for w in find_warnings(facts)}
    assert ("smt-siblings", 0) not in kinds
    assert ("smt-free-sibling", 0) in kinds


def test_amd_tree_readings(tmp_path: Path) -> None:
    facts = _read(AMD, tmp_path)
    assert facts.cpu_model == "AMD EPYC 7232P 8-Core Processor"
    assert facts.smt_control == "off" and not facts.smt_active
    assert facts.online == list(range(8)) and facts.physical_cores == 8
    server = facts.cpus[0]
    assert (server.cpu, server.siblings) == (2, [2])
    assert server.frequency is not None
    assert (server.frequency.driver, server.frequency.governor) == ("acpi-cpufreq", "schedutil")
    assert server.frequency.epp is None and server.frequency.cur_khz == 3100000
    assert facts.turbo is not None
    assert (facts.turbo.control, facts.turbo.enabled) == ("cpufreq boost", True)
    assert facts.turbo.path == f"/{CPU}/cpufreq/boost" and facts.turbo.off_value == "0"
    assert [(s.name, s.latency_us) for s in server.idle_states] == [
        ("POLL", 0),
        ("C1", 1),
        ("C2", 400),
    ]
    assert [s.name for s in server.deep_enabled] == ["C2"]
    assert facts.isolcpus == facts.nohz_full == facts.rcu_nocbs == [2, 3]
    assert facts.kernel_config.source == "/proc/config.gz"
    assert facts.kernel_config.hz == 1000 and facts.kernel_config.tick == "NO_HZ_FULL"
    assert facts.irq_time_accounting is False
    assert facts.io_uring_disabled == "0" and facts.thp == "always" and facts.swap_total_kib == 0
    assert facts.irqbalance_pids == []
    network = facts.network
    assert network is not None and (network.device, network.driver) == ("0000:41:00.0", "mlx5_core")
    assert len(network.irqs) == 9 and len(network.receive_irqs) == 8
    assert not network.irqs[0].receive and network.irqs[0].name.startswith("mlx5_async0")
    assert network.receive_irqs[2].affinity == [2]
    assert network.xps["tx-2"] == [2] and network.rps["rx-2"] == []
    assert network.rps_sock_flow_entries == 32768
    assert network.ethtool is not None and network.ethtool.coalesce is not None
    assert network.ethtool.coalesce["adaptive-rx"] == "on"


def test_amd_tree_warnings(tmp_path: Path) -> None:
    warnings = find_warnings({AMD: _read(AMD, tmp_path)})
    assert sorted((w.kind, w.cpu) for w in warnings) == [
        ("deep-idle", 2),
        ("governor", 2),
        ("governor", 4),
        ("governor", 5),
        ("irq-on-server", 2),
        ("no-irq-time", None),
        ("turbo", None),
    ]
    text = {w.kind: w.describe() for w in warnings if w.cpu in (None, 2)}
    assert "governor schedutil on CPU 2 (server)" in text["governor"]
    assert "C2 (400 µs)" in text["deep-idle"]
    assert "CONFIG_IRQ_TIME_ACCOUNTING is off" in text["no-irq-time"]
    assert "IRQ 101 mlx5_comp2@pci:0000:41:00.0" in text["irq-on-server"]


EXPECTED_TUNE = {
    INTEL: {
        f"{CPU}/cpufreq/policy0/scaling_governor": "performance\n",
        f"{CPU}/cpufreq/policy4/scaling_governor": "performance\n",
        f"{CPU}/intel_pstate/no_turbo": "1\n",
        **{f"{CPU}/cpu0/cpuidle/state{index}/disable": "1\n" for index in (2, 3, 4, 5)},
    },
    AMD: {
        **{f"{CPU}/cpufreq/policy{cpu}/scaling_governor": "performance\n" for cpu in (2, 4, 5)},
        f"{CPU}/cpufreq/boost": "0\n",
        f"{CPU}/cpu2/cpuidle/state2/disable": "1\n",
    },
}


@pytest.mark.parametrize("name", [INTEL, AMD])
def test_tune_then_reset_leaves_every_file_as_it_was(name: str, tmp_path: Path) -> None:
    root = copy_tree(name, tmp_path)
    state = root / state_path("tune").lstrip("/")
    services = RecordingServices(check=state)
    host = _host(name, root, services)
    before = snapshot(root)

    (result,) = tune_hosts([host], read_hosts([host]))

    after = snapshot(root)
    changed = {rel for rel in after if rel in before and after[rel] != before[rel]}
    assert changed == set(EXPECTED_TUNE[name])
    for rel, value in EXPECTED_TUNE[name].items():
        assert (root / rel).read_text() == value, rel
    saved = ChangeSet.model_validate_json(state.read_text())
    assert result.change_set == saved and saved.scope == "manual" and saved.host == name
    files = {c.path: c.old for c in saved.changes if isinstance(c, FileChange)}
    assert files == {f"/{rel}": before[rel][1].decode() for rel in EXPECTED_TUNE[name]}  # type: ignore[union-attr]
    irqbalance = [("irqbalance", "stop")] if name == INTEL else []
    assert services.actions == irqbalance
    assert all(services.saved_when_acting)  # the state was saved before the service stopped

    (done,) = reset_hosts([host])
    assert done == (name, [saved])
    assert snapshot(root) == before
    assert not state.exists()
    assert services.actions == irqbalance + [("irqbalance", "start")] * len(irqbalance)


def test_the_state_is_saved_before_any_setting_is_written(tmp_path: Path) -> None:
    root = copy_tree(INTEL, tmp_path)
    recording = RecordingHost()
    host = tree_host(
        root, ROLES[INTEL], "eno1", name=INTEL, services=RecordingServices(), host=recording
    )
    tune_hosts([host], read_hosts([host]))
    first_write = next(i for i, step in enumerate(recording.order) if step.startswith("write"))
    assert recording.order[0] == f"put {root}{state_path('tune')}"
    assert first_write > 0


def test_tuning_again_keeps_the_first_old_values(tmp_path: Path) -> None:
    root = copy_tree(AMD, tmp_path)
    host = _host(AMD, root)
    before = snapshot(root)
    tune_hosts([host], read_hosts([host]))
    (again,) = tune_hosts([host], read_hosts([host]))
    assert again.made == [] and "governor of CPU 2: already performance" in again.already
    governor = root / CPU / "cpufreq" / "policy2" / "scaling_governor"
    governor.write_text("ondemand\n")  # someone changed it since
    (third,) = tune_hosts([host], read_hosts([host]))
    assert [c.describe() for c in third.made] == ["governor of CPU 2: ondemand -> performance"]
    (saved,) = saved_change_sets(host.access)
    olds = {c.path: c.old for c in saved.changes if isinstance(c, FileChange)}
    assert olds[f"/{CPU}/cpufreq/policy2/scaling_governor"] == "schedutil\n"
    assert len(saved.changes) == 5
    reset_hosts([host])
    assert snapshot(root) == before


def test_a_read_only_setting_is_one_line_and_nothing_changes(tmp_path: Path) -> None:
    root = copy_tree(AMD, tmp_path)
    (root / CPU / "cpufreq" / "boost").chmod(0o444)
    host = _host(AMD, root)
    before = snapshot(root)
    with pytest.raises(UserError) as refused:
        tune_hosts([host], read_hosts([host]))
    message = str(refused.value)
    assert "\n" not in message
    assert f"cannot tune turbo (cpufreq boost): /{CPU}/cpufreq/boost is read-only" in message
    assert snapshot(root) == before
    assert saved_change_sets(host.access) == []


def test_a_failed_write_puts_back_what_was_written(tmp_path: Path) -> None:
    root = copy_tree(INTEL, tmp_path)
    failing = FailingHost(f"{CPU}/cpu0/cpuidle/state4/disable")  # C6 refuses
    host = tree_host(
        root, ROLES[INTEL], "eno1", name=INTEL, services=RecordingServices(), host=failing
    )
    before = snapshot(root)
    with pytest.raises(UserError) as failed:
        tune_hosts([host], read_hosts([host]))
    message = str(failed.value)
    assert "cannot change idle state C6 of CPU 0: cannot write" in message
    assert "Invalid argument; the 5 changes made before it were put back" in message
    assert snapshot(root) == before
    assert saved_change_sets(host.access) == []


def test_irqbalance_outside_systemd_is_refused_before_anything_changes(tmp_path: Path) -> None:
    root = copy_tree(INTEL, tmp_path)
    services = RecordingServices(refuse="irqbalance runs, but not under systemd")
    host = _host(INTEL, root, services)
    before = snapshot(root)
    with pytest.raises(UserError, match="cannot tune irqbalance: irqbalance runs, but not"):
        tune_hosts([host], read_hosts([host]))
    assert snapshot(root) == before and services.actions == []


def test_what_a_killed_run_left_is_put_back_by_the_next(tmp_path: Path) -> None:
    root = copy_tree(AMD, tmp_path)
    host = _host(AMD, root)
    before = snapshot(root)
    tune_hosts([host], read_hosts([host]), RUN_TUNE, "run")  # then orch was kill -9'd
    assert snapshot(root) != before
    said: list[str] = []
    restore_left_by_runs([host], said.append)
    assert snapshot(root) == before
    assert len(said) == 1 and said[0].startswith(f"{AMD}: put back 5 settings left changed")


def test_a_run_that_still_runs_keeps_its_changes(tmp_path: Path) -> None:
    root = copy_tree(AMD, tmp_path)
    host = _host(AMD, root)
    tune_hosts([host], read_hosts([host]), RUN_TUNE, "run")
    state = root / state_path(RUN_TUNE).lstrip("/")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "orch"])
    try:
        saved = ChangeSet.model_validate_json(state.read_text())
        state.write_text(saved.model_copy(update={"pid": other.pid}).model_dump_json())
        with pytest.raises(UserError, match=f"an orch run that still runs \\(PID {other.pid}"):
            restore_left_by_runs([host], print)
        assert state.exists()
    finally:
        other.kill()
        other.wait()
    restore_left_by_runs([host], print)  # it ended: now it is put back
    assert not state.exists()


@pytest.mark.parametrize(
    "ending",
    [None, RuntimeError("a cell failed"), KeyboardInterrupt(), Interrupted("SIGTERM")],
    ids=["end", "failure", "ctrl-c", "sigterm"],
)
def test_a_tuned_run_puts_back_however_it_ends(
    ending: BaseException | None, tmp_path: Path
) -> None:
    root = copy_tree(INTEL, tmp_path)
    services = RecordingServices()
    host = _host(INTEL, root, services)
    before = snapshot(root)
    said: list[str] = []
    ended: contextlib.AbstractContextManager[object] = (
        contextlib.nullcontext() if ending is None else pytest.raises(type(ending))
    )
    with ended, run_system([host], True, said.append) as record:
        assert snapshot(root) != before  # tuned while the run measures
        assert record.tune and [c.name for c in record.changes] == [RUN_TUNE]
        governor = record.hosts[INTEL].cpus[0].frequency
        assert governor is not None and governor.governor == "performance"  # read after
        assert {w.kind for w in record.warnings} >= {"smt-siblings", "irqbalance"}
        if ending is not None:
            raise ending
    assert snapshot(root) == before
    assert services.actions == [("irqbalance", "stop"), ("irqbalance", "start")]
    assert said[-1] == f"tune: {INTEL}: put back 8 settings"


def test_placement_through_the_generic_api(tmp_path: Path) -> None:
    """What the placement of network receive work (issue 19) does with the same API."""
    root = copy_tree(INTEL, tmp_path)
    access = SystemAccess(LocalHost(), str(tmp_path / "work"), str(root))
    before = snapshot(root)
    wishes = [
        FileWish("/proc/irq/131/smp_affinity_list", "2-3", "IRQ 131 eno1-TxRx-0"),
        FileWish("/sys/class/net/eno1/queues/rx-0/rps_cpus", "c", "RPS of eno1 rx-0"),
        FileWish("/proc/irq/132/smp_affinity_list", "1", "IRQ 132 eno1-TxRx-1"),
        FileWish("/proc/irq/999/smp_affinity_list", "2", "IRQ 999"),
    ]
    plan = plan_changes(access, wishes)
    assert plan.already == ["IRQ 132 eno1-TxRx-1: already 1"]
    assert plan.absent == ["IRQ 999: /proc/irq/999/smp_affinity_list does not exist"]
    change_set = apply(access, plan, "run-placement", "run")
    assert change_set is not None and [c.describe() for c in change_set.changes] == [
        "IRQ 131 eno1-TxRx-0: 0 -> 2-3",
        "RPS of eno1 rx-0: 00 -> c",
    ]
    assert (root / "proc/irq/131/smp_affinity_list").read_text() == "2-3\n"
    assert reset_from_saved(access, ["run-placement"]) == [change_set]
    assert snapshot(root) == before


def _live_interface() -> str:
    return detect_interface(LocalHost(), "192.0.2.1") or "lo"


def test_this_machine_captured_reads_as_the_machine_itself(tmp_path: Path) -> None:
    roles = {"server": [0], "load": [1]}
    interface = _live_interface()
    root = tmp_path / "captured"
    capture_tree(root, roles, interface)
    live = SystemHost("live", SystemAccess(LocalHost(), str(tmp_path / "work")), roles, interface)
    captured = tree_host(root, roles, interface, name="live", services=RecordingServices())
    # ethtool is a command: the same answers for both, from this machine
    captured.run_command = None
    from_live, from_tree = read_system(live), read_system(captured)
    assert fingerprint(from_tree) == fingerprint(from_live)
    assert from_tree.euid == from_live.euid and from_tree.boot_id == from_live.boot_id
    assert (root / "proc" / "cpuinfo").is_file()

    before = snapshot(root)
    (result,) = tune_hosts([captured], {"live": from_tree})
    if from_live.cpus[0].frequency is None:  # a VM like this one: nothing to set
        assert any("no cpufreq here" in line for line in result.left_alone)
    if from_live.turbo is None:
        assert any(line.startswith("turbo/boost: no") for line in result.left_alone)
    reset_hosts([captured])
    assert snapshot(root) == before


def test_the_collector_needs_only_the_standard_library() -> None:
    tree = ast.parse(Path(collector.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_no_neighbour_of_the_collector_shadows_the_standard_library() -> None:
    """Run as a program from its folder, the collector imports its neighbours first."""
    names = {path.stem for path in Path(collector.__file__).parent.glob("*.py")}
    assert names & set(sys.stdlib_module_names) == set()


def _oldest_python() -> str:
    """Python 3.8, the oldest the collector runs on, when this machine has one (pyenv's
    included); else this one."""
    pyenv = sorted(Path.home().glob(".pyenv/versions/3.8*/bin/python3.8"))
    found = shutil.which("python3.8")
    if pyenv:
        return str(pyenv[0])
    return found if found and "/shims/" not in found else sys.executable


def test_the_collector_prints_json_as_a_program(tmp_path: Path) -> None:
    root = copy_tree(AMD, tmp_path)
    python = _oldest_python()
    print(f"collector run with {python}")
    printed = subprocess.run(
        [python, collector.__file__, "facts", "--root", str(root), "--role", "server:2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    data = json.loads(printed.stdout)
    assert data["cpus"][0]["frequency"]["governor"] == "schedutil"
    assert data["network"] is None
