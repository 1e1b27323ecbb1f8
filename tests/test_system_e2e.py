"""`orch system` and `orch run --tune` on this machine in loopback mode: what it found, what
it could not tune, and run.json holding it. The outputs are printed for the record."""

from __future__ import annotations

from pathlib import Path

from orch_helpers import orch, write_loopback_inventory
from record_helpers import one_run_dir, read_record

from orchestrator.hosts.local import LocalHost
from orchestrator.inventory import load_inventory
from orchestrator.run.system_state import system_hosts
from orchestrator.system.changes import saved_change_sets
from orchestrator.system.differences import fingerprint
from orchestrator.system.session import read_hosts


def _fingerprints(inventory: Path) -> dict[str, dict[str, str]]:
    hosts = system_hosts(load_inventory(inventory), {"local": LocalHost()})
    return {name: fingerprint(facts) for name, facts in read_hosts(hosts).items()}


def test_orch_system_tune_and_reset_on_this_machine(tmp_path: Path) -> None:
    inventory = write_loopback_inventory(tmp_path)
    shown = orch("system", "-i", str(inventory), timeout=120)
    print(shown.stdout)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "local: target, load"
    assert any(line.startswith("  CPU 0 (server): core ") for line in lines)
    assert any(line.startswith("  CPU 1 (load): core ") for line in lines)
    assert any(line.startswith("  network lo: ") for line in lines)
    assert any(line.startswith("  kernel ") and "IRQ time accounting" in line for line in lines)
    warnings = next(i for i, line in enumerate(lines) if line.startswith("Warnings"))
    assert all(line.startswith("  - local: ") for line in lines[warnings + 1 :])

    before = _fingerprints(inventory)
    tuned = orch("system", "tune", "-i", str(inventory), timeout=120)
    print(tuned.stdout)
    assert tuned.returncode == 0, tuned.stderr
    assert tuned.stdout.startswith("local: ")
    reset = orch("system", "reset", "-i", str(inventory), timeout=120)
    print(reset.stdout)
    assert reset.returncode == 0, reset.stderr
    assert _fingerprints(inventory) == before


def test_a_tuned_run_records_the_system_and_puts_it_back(tmp_path: Path) -> None:
    inventory = write_loopback_inventory(tmp_path)
    out = tmp_path / "results"
    ran = orch(
        "run",
        "--tune",
        "--server",
        "c-epoll",
        "--profile",
        "smoke",
        "--repetitions",
        "1",
        "-i",
        str(inventory),
        "--out",
        str(out),
        timeout=600,
    )
    tune_lines = [line for line in ran.stdout.splitlines() if line.startswith("tune: ")]
    print("\n".join(tune_lines))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert tune_lines and tune_lines[0].startswith("tune: local: ")

    run_dir = one_run_dir(out)
    record = read_record(run_dir)
    system = record.system
    assert system is not None and system.tune
    assert list(system.hosts) == ["local"]
    facts = system.hosts["local"]
    assert [(cpu.cpu, cpu.roles) for cpu in facts.cpus] == [(0, ["server"]), (1, ["load"])]
    assert facts.network is not None and facts.network.interface == "lo"
    assert system.warnings and all(w.host == "local" for w in system.warnings)
    # what --tune could not change is recorded, and what it changed was put back
    assert system.changes or system.not_tuned["local"]
    hosts = system_hosts(load_inventory(inventory), {"local": LocalHost()})
    assert saved_change_sets(hosts[0].access) == []
    report = (run_dir / "report.md").read_text()
    specs = report[report.index("## System Specs") : report.index("## Method")]
    print(specs)
    assert "- System of local (target, load): " in specs
    assert "  - Network lo: " in specs and "- System warnings (" in specs
