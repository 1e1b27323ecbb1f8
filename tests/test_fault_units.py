"""The pure parts of fault handling: exit statuses in words, CPU lists, the resume plan,
the run lock, and what the report says about failures and unfinished runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from record_helpers import make_cell, make_record, make_run_dir

from orchestrator.deploy.cpus import format_cpu_list
from orchestrator.errors import UserError
from orchestrator.hosts.base import describe_exit
from orchestrator.load.points import LoadPoint, resolve_profile
from orchestrator.report.markdown import render_markdown
from orchestrator.results.cell_result import CellKey, CellResult
from orchestrator.results.record import RunRecord
from orchestrator.results.rundir import RunDirectory
from orchestrator.run.resume import plan_resume

PLAN = ("c-epoll/1", "c-io_uring/1", "c-io_uring/2", "c-epoll/2")
PIPELINED = LoadPoint(kind="closed", vus=20, pipeline=16)


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (0, "exited with status 0"),
        (3, "exited with status 3"),
        (-11, "was killed by SIGSEGV (signal 11)"),
        (-9, "was killed by SIGKILL (signal 9)"),
        (-99, "was killed by an unknown signal (signal 99)"),
        (None, "ended without an exit status"),
    ],
)
def test_describe_exit(status: int | None, words: str) -> None:
    assert describe_exit(status) == words


@pytest.mark.parametrize(
    ("cpus", "text"),
    [([0, 1, 2, 5], "0-2,5"), ([3], "3"), ([7, 1, 0], "0-1,7"), ([], "none"), ([4, 6], "4,6")],
)
def test_format_cpu_list(cpus: list[int], text: str) -> None:
    assert format_cpu_list(cpus) == text


def test_profile_survives_the_round_trip_through_run_json(tmp_path: Path) -> None:
    profile = resolve_profile("smoke", "3s", 10, "0", None)
    record = make_record(profile=profile)
    again = RunRecord.model_validate(json.loads(record.model_dump_json()))
    assert again.profile == profile
    broken = make_run_dir(tmp_path, record)
    data = {**broken.read_run().model_dump(mode="json"), "profile": {"name": "x"}}
    (broken.path / "run.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(UserError, match=r"unreadable run file: profile\.stages"):
        broken.read_run()


def _cell(key: str, status: str = "ok", failed: int = 0) -> CellResult:
    return make_cell(
        key,
        status=status,
        failed=failed,
        error=None
        if status == "ok"
        else "server was killed by SIGSEGV (signal 11) during the load",
        server_log_tail="listening on 127.0.0.1:8000 | segfault here",
    )


def _run_dir(tmp_path: Path, status: str = "interrupted") -> RunDirectory:
    record = make_record(
        plan=PLAN,
        points=[PIPELINED],
        tool="wrk-pipelined",
        pipeline=16,
        status=status,
        baseline="c-epoll",
    )
    return make_run_dir(tmp_path, record)


def _key(text: str) -> CellKey:
    server, repetition = text.split("/")
    return CellKey(server=server, point=PIPELINED.key, repetition=int(repetition))


def test_resume_plan_takes_everything_from_run_json(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path)
    run_dir.write_cell(_at_point(_cell("c-epoll/1")))
    run_dir.write_cell(_at_point(_cell("c-io_uring/2", status="failed")))
    plan = plan_resume(run_dir.path)
    missing = [c.key.label(with_point=False) for c in plan.missing]
    assert missing == ["c-io_uring/1", "c-epoll/2"]  # failed cells stay
    assert [s.name for s in plan.options.servers] == ["c-epoll", "c-io_uring"]
    assert (plan.options.load_tool, plan.options.pipeline) == ("wrk-pipelined", 16)
    smoke = resolve_profile("smoke")
    resumed = plan.options.profile
    assert plan.options.repetitions == 2
    assert (resumed.stages, resumed.warmup_seconds) == (smoke.stages, smoke.warmup_seconds)
    assert plan.options.points == [PIPELINED]
    assert plan.run_dir.read_run().inventory.target.cpus == [0]

    for key in ("c-io_uring/1", "c-epoll/2"):
        run_dir.write_cell(_at_point(_cell(key)))
    with pytest.raises(UserError) as caught:
        plan_resume(run_dir.path)
    assert str(caught.value) == (
        f"{run_dir.path}: the run is already complete (4 of 4 cells measured); nothing to resume"
    )


def test_unfinished_cell_folders_and_stale_temporaries_are_cleared(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path)
    run_dir.write_cell(_at_point(_cell("c-epoll/1")))
    half = run_dir.cell_dir(_key("c-io_uring/1"))
    half.mkdir(parents=True)
    (half / "k6-output.txt").write_text("partial")
    (run_dir.path / ".run.json.x1.tmp").write_text("{")
    run_dir.clear_unfinished(_key("c-io_uring/1"))
    run_dir.clear_unfinished(_key("c-epoll/1"))  # finished: kept
    run_dir.remove_stale_temporaries()
    assert not half.exists() and not (run_dir.path / ".run.json.x1.tmp").exists()
    assert run_dir.measured() == {_key("c-epoll/1")}


def test_one_orch_per_run_directory(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path)
    with run_dir.lock(), pytest.raises(UserError, match="another orch"), run_dir.lock():
        pass
    with run_dir.lock():  # released again
        pass


def test_report_lists_failures_failed_requests_and_what_is_missing(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path)
    record = run_dir.read_run().model_copy(update={"interrupted_by": "SIGTERM"})
    cells = [
        _at_point(_cell("c-epoll/1", status="failed", failed=250)),
        _at_point(_cell("c-io_uring/1", failed=3)),
    ]
    markdown = render_markdown(record, cells, [])
    assert "- c-epoll repetition 1: server was killed by SIGSEGV (signal 11)" in markdown
    assert "  - server log (last lines): listening on 127.0.0.1:8000 | segfault here" in markdown
    assert "## Failed requests" in markdown
    assert "- c-epoll repetition 1 (failed cell): k6 counted 250 failed of 1,000 requests" in (
        markdown
    )
    assert "- c-io_uring repetition 1: k6 counted 3 failed of 1,000 requests (0.3%)" in markdown
    assert "**This run was interrupted (SIGTERM).** 2 of 4 cells measured; not measured: " in (
        markdown
    )
    stopped = record.model_copy(
        update={"status": "stopped", "stop_reason": "box (10.0.0.2): unreachable"}
    )
    assert "**This run stopped early: box (10.0.0.2): unreachable.**" in render_markdown(
        stopped, cells, []
    )
    assert "This run" not in render_markdown(
        record.model_copy(update={"status": "complete"}), cells, []
    )


def _at_point(cell: CellResult) -> CellResult:
    return cell.model_copy(update={"point": PIPELINED.key})
