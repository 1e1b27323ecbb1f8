"""Real runs to a precision on a tiny sweep (the C pair, one point, 0.3 s wrk cells): it
stops because its budget is spent, `--resume --budget` goes on and it stops because the
target is reached. And the main job's shape with a short profile: one round of the
table, then the verdict's k6 rounds until the budget."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_helpers import count_left
from orch_helpers import orch, require_two_cores, write_loopback_inventory
from record_helpers import one_run_dir, read_record

from orchestrator.results.rundir import RunDirectory

SERVERS = ("--server", "c-epoll", "--server", "c-io_uring")
TINY = ("--connections", "8", "--load-tool", "wrk", "--duration", "0.3s", "--warmup", "0")


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One inventory and workdir for the module: the C servers are built once."""
    require_two_cores()
    base = tmp_path_factory.mktemp("precision")
    write_loopback_inventory(base)
    return base


@pytest.fixture
def inventory(work: Path) -> Path:
    return work / "hosts.yaml"


def _left(test: str, work: Path) -> int:
    return count_left(test, {"local": None}, [work / "work"])["local"]


@pytest.mark.e2e
def test_a_run_stops_when_its_budget_is_spent_then_resumes_to_its_target(
    inventory: Path, tmp_path: Path
) -> None:
    """A loose target (±40%) and a budget of a few seconds: the budget ends the run after
    a round or two; `--resume --budget` gives it more time and it stops at the minimum
    rounds, where the loose target is reached."""
    out = tmp_path / "runs"
    done = orch(
        "run", "-i", str(inventory), *SERVERS, *TINY, "--precision", "40%", "--budget", "4s",
        "--out", str(out), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = one_run_dir(out)
    record = read_record(run_dir)
    assert record.status == "complete"
    assert record.precision is not None and record.precision.outcome == "budget"
    assert record.precision.spent_seconds < 4.0 * 1.5  # a round starts only if it fits
    first = {key.repetition for key in record.plan}
    assert 1 <= len(first) < 10
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "**Precision:** ±40% within 4s (asked): not reached at 8 connections by C" in report
    assert "the budget allowed" in report
    decide = next(x for x in report.splitlines() if x.startswith("- To decide at 8 connections"))
    assert "`orch run -i " in decide and "--connections 8 --load-tool wrk" in decide
    assert "--duration 0.3s --warmup 0s --precision 1%" in decide
    assert _left("budget spent", inventory.parent) == 0

    resumed = orch("run", "--resume", str(run_dir), "--budget", "5m", timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    said = resumed.stdout
    assert "then rounds until ±40% for every compared pair, within the 5m00s left" in said
    assert "  round 10 (" in said and "±40% reached" in said, said
    record = read_record(run_dir)
    assert record.status == "complete" and record.precision is not None
    assert record.precision.outcome == "reached"
    assert record.precision.spent_seconds < record.precision.budget_seconds
    # The minimum rounds, each holding both servers once, then nothing more.
    assert sorted({key.repetition for key in record.plan}) == list(range(1, 11))
    cells = RunDirectory.open(run_dir).read_cells()
    assert len(cells) == 20 and all(c.status == "ok" for c in cells)
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "**Precision:** ±40% within " in report and "reached for every language" in report
    assert _left("resume to a precision", inventory.parent) == 0
    again = orch("run", "--resume", str(run_dir), "--budget", "1m", timeout=60)
    assert again.returncode == 2 and "already reached ±40%" in again.stderr


@pytest.mark.e2e
def test_the_main_job_shape_with_a_short_profile(inventory: Path, tmp_path: Path) -> None:
    """`orch run` at the seed profile's k6 ramp without --repetitions (here squeezed to
    2 s and 20 VUs): the table's round, then the verdict's short rounds at the ramp's peak
    as constant VUs, until the budget."""
    out = tmp_path / "runs"
    done = orch(
        "run", "-i", str(inventory), *SERVERS, "--duration", "2s", "--vus", "20",
        "--warmup", "0", "--budget", "10s", "--out", str(out), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the table from one round at ramp to 20 VUs" in done.stdout
    run_dir = one_run_dir(out)
    record = read_record(run_dir)
    assert [p.key for p in record.points] == ["ramp20", "c20"]
    assert record.table_points == ["ramp20"]
    assert record.point_profiles["c20"].name == "verdict"
    assert record.precision is not None and record.precision.points == ["c20"]
    assert record.precision.outcome == "budget"
    table = [k for k in record.plan if k.point == "ramp20"]
    verdict = [k for k in record.plan if k.point == "c20"]
    assert sorted(k.server for k in table) == ["c-epoll", "c-io_uring"]
    assert {k.repetition for k in table} == {1} and len(verdict) >= 2
    cells = RunDirectory.open(run_dir).read_cells()
    long_cells = [c for c in cells if c.point == "c20"]
    assert all(c.load is not None and c.load.duration_seconds > 1.5 for c in long_cells)
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    head = report[report.index("## Verdict") : report.index("## System Specs")]
    assert "- At 20 connections " in head and "ramp to 20 VUs" not in head
    assert "--connections 20 --load-tool k6 --profile verdict --precision 1%" in head
    results = report[report.index("## Results") :]
    assert "**The verdict's rounds at 20 connections**" in results
    assert results.count("| Api | Language | Median Req. Duration |") == 2
    assert (run_dir / "requests.svg").is_file()
    assert _left("main job shape", inventory.parent) == 0
