"""The hosts' systems in run.json, in the report's System Specs and in `orch compare`: only
runs that recorded them show them, older ones render as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from record_helpers import make_record, make_run_dir
from system_helpers import INTEL, RecordingServices, copy_tree, recorded_ethtool, tree_host

from orchestrator.report.compare import compare_runs
from orchestrator.report.markdown import render_markdown
from orchestrator.results.record import RunRecord
from orchestrator.system.model import SystemFacts, SystemRecord
from orchestrator.system.session import read_hosts, tune_hosts
from orchestrator.system.warning_rules import find_warnings


@pytest.fixture
def intel_system(tmp_path: Path) -> SystemRecord:
    """The Intel tree read as host `local` (the record helpers' inventory), tuned for a
    run: the record a tuned run on it keeps."""
    root = copy_tree(INTEL, tmp_path)
    host = tree_host(
        root,
        {"server": [0], "load": [1]},
        "eno1",
        name="local",
        ethtool=recorded_ethtool(INTEL),
        services=RecordingServices(),
    )
    before = read_hosts([host])
    (result,) = tune_hosts([host], before, "run-tune", "run")
    after = read_hosts([host])
    assert result.change_set is not None
    return SystemRecord(
        hosts=after,
        warnings=find_warnings(after),
        tune=True,
        changes=[result.change_set],
        not_tuned={"local": result.left_alone} if result.left_alone else {},
    )


def _with_governor(system: SystemRecord, governor: str) -> SystemRecord:
    facts = system.hosts["local"]
    cpus = [
        cpu.model_copy(
            update={"frequency": cpu.frequency.model_copy(update={"governor": governor})}
        )
        if cpu.frequency
        else cpu
        for cpu in facts.cpus
    ]
    changed: SystemFacts = facts.model_copy(update={"cpus": cpus})
    return system.model_copy(update={"hosts": {"local": changed}})


def test_run_json_keeps_the_system_and_reads_it_back(intel_system: SystemRecord) -> None:
    record = make_record(system=intel_system)
    again = RunRecord.model_validate_json(record.model_dump_json())
    assert again.system == intel_system
    assert again.system is not None and again.system.changes[0].scope == "run"
    older = record.model_dump(mode="json")
    del older["system"]
    older["format_version"] = 3
    assert RunRecord.model_validate(older).system is None


def test_system_specs_show_each_host_the_warnings_and_the_tune(
    intel_system: SystemRecord,
) -> None:
    report = render_markdown(make_record(system=intel_system), [], [])
    specs = report[report.index("## System Specs") : report.index("## Method")]
    lines = specs.splitlines()
    system = [line for line in lines if line.startswith("- System of local")]
    assert len(system) == 1
    assert "SMT on" in system[0]
    assert "governor performance (intel_pstate) on CPU 0 (server), 1 (load)" in system[0]
    assert "turbo off (intel_pstate no_turbo)" in system[0]
    assert "deep idle states enabled on CPU 0: none" in system[0]
    assert "irqbalance running (PID 873)" in system[0]  # the tree cannot stop it
    network = lines[lines.index(system[0]) + 1]
    assert network.startswith("  - Network eno1 (0000:03:00.0, igb): receive IRQs (IRQ→CPUs)")
    assert "131→0, 132→1" in network and "combined 4, adaptive-rx off, rx-usecs 3" in network
    warnings = [line for line in lines if line.startswith("  - local: ")]
    assert any("SMT" not in w and "receive interrupts of eno1" in w for w in warnings)
    assert f"- System warnings ({len(intel_system.warnings)}; " in specs
    tuned = next(line for line in lines if line.startswith("- Tuned for the run on local"))
    assert "governor of CPU 0: powersave -> performance" in tuned
    assert "turbo (intel_pstate no_turbo): 0 -> 1" in tuned and "irqbalance: stopped" in tuned


def test_runs_without_system_facts_show_none() -> None:
    report = render_markdown(make_record(), [], [])
    assert "System of" not in report and "System warnings" not in report


def test_compare_names_what_differs_between_the_systems(
    intel_system: SystemRecord, tmp_path: Path
) -> None:
    a = make_run_dir(tmp_path / "a", make_record(system=intel_system))
    b = make_run_dir(tmp_path / "b", make_record(system=_with_governor(intel_system, "powersave")))
    compared = compare_runs(a, b)
    assert "**The runs' systems differ" in compared
    assert "- target: CPU 0 (server) governor: performance in A, powersave in B" in compared
    assert "- load: CPU 1 (load) governor: performance in A, powersave in B" in compared

    same = compare_runs(a, make_run_dir(tmp_path / "c", make_record(system=intel_system)))
    assert "systems differ" not in same and "recorded no system facts" not in same

    older = compare_runs(make_run_dir(tmp_path / "d", make_record()), a)
    assert "Run A recorded no system facts" in older
    neither = compare_runs(make_run_dir(tmp_path / "e"), make_run_dir(tmp_path / "f"))
    assert "system" not in neither.lower()
