"""Run directories written by orch 0.1.0 (tests/data/runs-0.1.0, made by that release):
the typed record reads them, `orch report` renders the same report, and `orch run
--resume` finishes the interrupted one in its own layout."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from orch_helpers import orch
from server_helpers import free_port

from orchestrator.commands import report_run
from orchestrator.load.points import LoadPoint
from orchestrator.results.cell_result import CellKey
from orchestrator.results.record import FORMAT_VERSION, RunRecord
from orchestrator.results.rundir import RunDirectory

OLD_RUNS = Path(__file__).parent / "data" / "runs-0.1.0"
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(OLD_RUNS / name, target)
    return target


def _numbers(line: str) -> tuple[str, list[float]]:
    """The line with every number replaced by `#`, and the numbers."""
    values = [float(m.replace(",", "")) for m in NUMBER.findall(line)]
    return NUMBER.sub("#", line), values


def _same_report(old: str, new: str) -> None:
    """Identical text; numbers equal, but for the last digit of an interval bound that the
    exact t quantile (scipy: 12.706205 for df 1) moves where 0.1.0's table had 12.7062."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    assert len(old_lines) == len(new_lines)
    for before, after in zip(old_lines, new_lines, strict=True):
        shape_before, values_before = _numbers(before)
        shape_after, values_after = _numbers(after)
        assert shape_after == shape_before, after
        assert values_after == pytest.approx(values_before, rel=2e-5), after


def _without_verdict(report: str) -> tuple[str, str]:
    """(the report without its Verdict section, that section), orch 0.2.0 having added it."""
    start = report.index("## Verdict\n")
    end = report.index("## System Specs\n")
    return report[:start] + report[end:], report[start:end]


NO_CLEAR_DIFFERENCE = "no winner (an interval includes no change). Req/s was set by the load tool."
# What each old run's Verdict section opens with: the complete runs compare C's epoll and
# io_uring at their one point; the interrupted one measured only c-epoll, so it has no pair.
OPENING_VERDICTS = [
    pytest.param(
        "k6-complete",
        "- At ramp to 20 VUs no clear difference in C (io_uring's CPU per request +6.6%, "
        f"-43.6…+101.8%): {NO_CLEAR_DIFFERENCE}",
        id="k6-complete",
    ),
    pytest.param(
        "wrk-complete",
        "- At 20 connections no clear difference in C (io_uring's CPU per request +9.5%, "
        f"-13.2…+38.1%): {NO_CLEAR_DIFFERENCE}",
        id="wrk-complete",
    ),
    pytest.param(
        "wrk-interrupted",
        "No language was measured with both epoll and io_uring at the same load point: no verdict.",
        id="wrk-interrupted",
    ),
]


@pytest.mark.parametrize(("name", "opening"), OPENING_VERDICTS)
def test_old_runs_render_the_same_report(name: str, opening: str, tmp_path: Path) -> None:
    run_dir = _copy(name, tmp_path)
    old = (run_dir / "report.md").read_text(encoding="utf-8")
    printed = report_run(run_dir, "all", None)
    assert printed == (run_dir / "report.md").read_text(encoding="utf-8")
    rest, verdict = _without_verdict(printed)
    _same_report(old, rest)
    assert verdict.startswith(f"## Verdict\n\n{opening}\n\n"), verdict


def test_old_record_is_read_as_today_s_model(tmp_path: Path) -> None:
    record = RunDirectory.open(_copy("wrk-interrupted", tmp_path)).read_run()
    assert record.format_version == FORMAT_VERSION
    assert record.cell_layout == "server/repetition"
    assert record.points == [LoadPoint(kind="closed", vus=20)]
    assert record.load_tool.name == "wrk" and record.load_tool.label == "wrk"
    assert record.profile.duration == 4.0 and record.profile.warmup_seconds == 1.0
    assert record.plan[1] == CellKey(server="zig-io_uring", point="c20", repetition=1)
    assert [record.cell_label(key) for key in record.plan] == [
        "c-epoll/1",
        "zig-io_uring/1",
        "zig-io_uring/2",
        "c-epoll/2",
    ]
    assert record.status == "interrupted" and record.interrupted_by == "SIGTERM"
    assert record.load_model().startswith("closed loop: wrk, 20 connections")
    k6 = RunDirectory.open(_copy("k6-complete", tmp_path)).read_run()
    assert k6.points == [LoadPoint(kind="ramp", vus=20)] and k6.load_tool.name == "k6"
    cells = RunDirectory.open(tmp_path / "k6-complete").read_cells()
    assert {c.point for c in cells} == {"ramp20"} and len(cells) == 4
    assert all(c.load is not None and c.load.latency.p99 for c in cells)


def test_a_record_from_a_newer_orch_is_refused(tmp_path: Path) -> None:
    record = RunDirectory.open(_copy("k6-complete", tmp_path)).read_run()
    data = json.loads(record.model_dump_json())
    data["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(ValueError, match="written by a newer orch"):
        RunRecord.model_validate(data)


@pytest.mark.e2e
def test_interrupted_old_run_resumes_in_its_own_layout(tmp_path: Path) -> None:
    run_dir = _copy("wrk-interrupted", tmp_path)
    # The run's recorded inventory, pointed at a free port and this test's work folder. Edited
    # as JSON, not through RunRecord: run.json must stay in 0.1.0's format for the resume.
    data = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    data["inventory"]["target"]["listen"]["port"] = free_port("127.0.0.1")
    data["inventory"]["workdir"] = str(tmp_path / "work")
    (run_dir / "run.json").write_text(json.dumps(data), encoding="utf-8")
    done = orch("run", "--resume", str(run_dir), timeout=900)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "3 of 4 cells missing (zig-io_uring/1, zig-io_uring/2, c-epoll/2)" in done.stdout
    results = sorted(
        p.relative_to(run_dir).as_posix() for p in run_dir.glob("cells/**/result.json")
    )
    assert results == [
        "cells/c-epoll/1/result.json",
        "cells/c-epoll/2/result.json",
        "cells/zig-io_uring/1/result.json",
        "cells/zig-io_uring/2/result.json",
    ]
    record = RunDirectory.open(run_dir).read_run()
    assert record.status == "complete" and record.cell_layout == "server/repetition"
    assert [[record.cell_label(k) for k in r.cells] for r in record.resumed] == [
        ["zig-io_uring/1", "zig-io_uring/2", "c-epoll/2"]
    ]
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "| io_uring | Zig |" in report and "This run" not in report
