"""The pure parts of fault handling: exit statuses in words, CPU lists, the resume plan,
the run lock, and what the report says about failures and unfinished runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.deploy.cpus import format_cpu_list
from orchestrator.errors import UserError
from orchestrator.hosts.base import describe_exit
from orchestrator.load.points import profile_from_record, resolve_profile
from orchestrator.load.result import LoadResult
from orchestrator.report.markdown import render_markdown
from orchestrator.results.cell import CellResult, RunDirectory
from orchestrator.run.resume import plan_resumption

INVENTORY = {
    "hosts": {"local": {"connection": "local"}},
    "target": {"host": "local", "cpus": [0]},
    "load": {"host": "local", "cpus": [1]},
}


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


def test_profile_survives_the_round_trip_through_run_json() -> None:
    profile = resolve_profile("smoke", "3s", 10, "0", None)
    record = {
        "name": profile.name,
        "stages": profile.k6_stages(),
        "warmup_seconds": profile.warmup_seconds,
        "rate": profile.rate,
    }
    again = profile_from_record(json.loads(json.dumps(record)))
    assert again == profile
    with pytest.raises(UserError, match="unreadable profile"):
        profile_from_record({"name": "x"})


def _cell(key: str, status: str = "ok", failed: int = 0) -> CellResult:
    server, repetition = key.split("/")
    language, api = server.split("-", 1)
    return CellResult(
        server=server,
        api=api,
        language=language,
        repetition=int(repetition),
        status="ok" if status == "ok" else "failed",
        error=None
        if status == "ok"
        else "server was killed by SIGSEGV (signal 11) during the load",
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:05+00:00",
        load=LoadResult(
            tool="k6",
            requests=1000,
            failed_requests=failed,
            duration_seconds=5,
            requests_per_second=200,
            latency_ms={"med": 1.0},
        ),
        server_log_tail="listening on 127.0.0.1:8000 | segfault here",
    )


def _run_dir(tmp_path: Path, status: str = "interrupted") -> RunDirectory:
    run_dir = RunDirectory.create(tmp_path, "t")
    profile = resolve_profile("smoke")
    run_dir.write_run(
        {
            "id": run_dir.path.name,
            "status": status,
            "inventory": INVENTORY,
            "profile": {
                "name": profile.name,
                "stages": profile.k6_stages(),
                "warmup_seconds": profile.warmup_seconds,
                "rate": None,
            },
            "load_tool": {"name": "wrk-pipelined-16", "kind": "wrk", "pipeline": 16},
            "repetitions": 2,
            "baseline": "c-epoll",
            "plan": ["c-epoll/1", "c-io_uring/1", "c-io_uring/2", "c-epoll/2"],
        }
    )
    return run_dir


def test_resume_plan_takes_everything_from_run_json(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path)
    run_dir.write_cell(_cell("c-epoll/1"))
    run_dir.write_cell(_cell("c-io_uring/2", status="failed"))
    plan = plan_resumption(run_dir.path)
    assert [c.key for c in plan.missing] == ["c-io_uring/1", "c-epoll/2"]  # failed cells stay
    assert [s.name for s in plan.options.servers] == ["c-epoll", "c-io_uring"]
    assert (plan.options.load_tool, plan.options.pipeline) == ("wrk-pipelined", 16)
    smoke = resolve_profile("smoke")
    resumed = plan.options.profile
    assert plan.options.repetitions == 2
    assert (resumed.stages, resumed.warmup_seconds) == (smoke.stages, smoke.warmup_seconds)
    assert plan.inventory.target.cpus == [0]

    for key in ("c-io_uring/1", "c-epoll/2"):
        run_dir.write_cell(_cell(key))
    with pytest.raises(UserError) as caught:
        plan_resumption(run_dir.path)
    assert str(caught.value) == (
        f"{run_dir.path}: the run is already complete (4 of 4 cells measured); nothing to resume"
    )


def test_unfinished_cell_folders_and_stale_temporaries_are_cleared(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path)
    run_dir.write_cell(_cell("c-epoll/1"))
    half = run_dir.cell_dir("c-io_uring", 1)
    half.mkdir(parents=True)
    (half / "k6-output.txt").write_text("partial")
    (run_dir.path / ".run.json.x1.tmp").write_text("{")
    run_dir.clear_unfinished("c-io_uring", 1)
    run_dir.clear_unfinished("c-epoll", 1)  # finished: kept
    run_dir.remove_stale_temporaries()
    assert not half.exists() and not (run_dir.path / ".run.json.x1.tmp").exists()
    assert run_dir.measured() == {"c-epoll/1"}


def test_one_orch_per_run_directory(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path)
    with run_dir.lock(), pytest.raises(UserError, match="another orch"), run_dir.lock():
        pass
    with run_dir.lock():  # released again
        pass


def test_report_lists_failures_failed_requests_and_what_is_missing(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path)
    record = run_dir.read_run()
    record["interrupted_by"] = "SIGTERM"
    cells = [_cell("c-epoll/1", status="failed", failed=250), _cell("c-io_uring/1", failed=3)]
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
    stopped = {**record, "status": "stopped", "stop_reason": "box (10.0.0.2): unreachable"}
    assert "**This run stopped early: box (10.0.0.2): unreachable.**" in render_markdown(
        stopped, cells, []
    )
    assert "This run" not in render_markdown({**record, "status": "complete"}, cells, [])
