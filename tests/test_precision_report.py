"""--precision as options, in run.json and in reports: the defaults of sweeps and of the
main job, bad input, the main job's report, the verdict's `To decide` lines and `orch
compare`'s verdicts."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from orch_helpers import orch
from record_helpers import make_cell, make_record, make_run_dir
from server_helpers import REPO

from orchestrator.catalogue.read import load_catalogue
from orchestrator.errors import UserError
from orchestrator.inventory import load_inventory
from orchestrator.load.points import PROFILES, LoadPoint
from orchestrator.report.compare import compare_runs
from orchestrator.report.decide import budget_text
from orchestrator.report.write import RunReport, write_reports
from orchestrator.results.cell_result import CellResult, CoreCpu, LoadCpu, ProcessCpu
from orchestrator.results.precision import pair_precisions, rounds_needed
from orchestrator.results.precision_record import PrecisionOutcome, PrecisionRecord
from orchestrator.results.record import RunRecord
from orchestrator.results.rundir import RunDirectory
from orchestrator.run.execute import extend_budget
from orchestrator.run.options import RunRequest, build_options
from orchestrator.run.precision_options import parse_precision
from orchestrator.run.resume import plan_resume

RAMP = LoadPoint(kind="ramp", vus=500)
C500 = LoadPoint(kind="closed", vus=500)
C100 = LoadPoint(kind="closed", vus=100)


def _options(**given: object):  # type: ignore[no-untyped-def]
    inv = load_inventory(REPO / "hosts.yaml")
    return build_options(inv, load_catalogue(inv), RunRequest(**given))  # type: ignore[arg-type]


def test_a_sweep_without_repetitions_runs_to_the_default_precision() -> None:
    opts = _options(matrix="c", load_tool="wrk", connections="10,100")
    assert opts.precision is not None and not opts.precision.asked
    assert (opts.precision.target, opts.precision.budget_seconds) == (0.01, 900.0)
    assert opts.repetitions == opts.precision.min_rounds == 10
    asked = _options(matrix="c", load_tool="wrk", connections="10", precision="2%", budget="5m")
    assert asked.precision is not None and asked.precision.asked
    assert (asked.precision.target, asked.precision.budget_seconds) == (0.02, 300.0)
    fixed = _options(matrix="c", load_tool="wrk", connections="10", repetitions=7)
    assert fixed.precision is None and fixed.repetitions == 7
    assert _options(matrix="c", load_tool="k6", rates="auto").precision is None


def test_the_main_job_is_a_table_round_then_verdict_rounds() -> None:
    opts = _options(matrix="full")
    assert opts.points == [RAMP, C500]
    assert opts.table_points == ["ramp500"] and opts.repetitions == 1
    assert opts.point_profiles == {"c500": PROFILES["verdict"]}
    assert opts.profile.name == "seed"
    assert opts.precision is not None and opts.precision.record(
        opts.points, opts.table_points
    ).points == ["c500"]
    short = _options(matrix="c", duration="2s", vus=20, budget="20s")
    assert short.points == [LoadPoint(kind="ramp", vus=20), LoadPoint(kind="closed", vus=20)]
    assert short.precision is not None and short.precision.budget_seconds == 20.0
    assert short.profile.name == "seed*" and short.profile.duration == 2.0
    # Other profiles keep their one round (the tests' short cells are smoke).
    smoke = _options(matrix="c", profile="smoke")
    assert smoke.precision is None and smoke.points == [LoadPoint(kind="ramp", vus=20)]
    assert smoke.repetitions == 1
    # The seed's three rounds, as before, when asked for; wrk and --rate keep their defaults.
    assert _options(matrix="full", repetitions=3).points == [RAMP]
    assert _options(matrix="c", load_tool="wrk").precision is None
    assert _options(matrix="c", rate=2000).precision is None
    wrk = _options(matrix="c", load_tool="wrk", precision="3%")
    assert wrk.precision is not None and wrk.points == [C500] and not wrk.table_points


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"precision": "1%", "repetitions": 5}, "--precision: give a number of rounds"),
        ({"budget": "5m", "repetitions": 5}, "--budget: give a number of rounds"),
        ({"precision": "0%"}, "--precision: '0%' must lie above 0% and below 50%"),
        ({"precision": "fine"}, "--precision: cannot read 'fine'"),
        ({"budget": "soon"}, "--budget: cannot read 'soon'"),
        ({"rates": "auto", "precision": "1%"}, "--precision: --rates auto searches"),
    ],
)
def test_bad_precision_options_are_refused(given: dict[str, object], message: str) -> None:
    with pytest.raises(UserError) as refused:
        _options(matrix="c", load_tool="k6", connections="10", **given)
    assert str(refused.value).startswith(message)


def test_precision_is_read_in_percent() -> None:
    assert parse_precision("1%") == 0.01
    assert parse_precision(" 0.5 % ") == pytest.approx(0.005)
    assert parse_precision("2") == 0.02


def test_the_cli_refuses_precision_with_repetitions_in_one_line() -> None:
    done = orch("run", "--matrix", "c", "--precision", "1%", "--repetitions", "3", timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "orch: error: --precision: give a number of rounds (--repetitions) or a precision "
        "(--precision, --budget), not both"
    ]
    resumed = orch("run", "--resume", "results/none", "--precision", "5%", timeout=60)
    assert resumed.returncode == 2 and "--precision cannot be combined with it" in resumed.stderr


def test_budget_text_rounds_up_to_minutes() -> None:
    assert [budget_text(s) for s in (10, 60, 61, 3600, 17000)] == [
        "1m",
        "1m",
        "2m",
        "1h00m",
        "4h44m",
    ]


# --- reports -------------------------------------------------------------------------------


def _cell(
    server: str,
    point: str,
    rep: int,
    cpu_us: float,
    at: int,
    length: int = 2,
    busy: float = 0.16,
    load_share: float = 0.98,
) -> CellResult:
    requests = 20_000
    cpu = cpu_us * requests / 1e6
    start = f"2026-01-01T{at // 3600:02d}:{at % 3600 // 60:02d}:{at % 60:02d}+00:00"
    end = at + length
    finish = f"2026-01-01T{end // 3600:02d}:{end % 3600 // 60:02d}:{end % 60:02d}+00:00"
    return make_cell(
        f"{server}/{rep}",
        point=point,
        requests=requests,
        rps=10_000.0,
        server_cpu=ProcessCpu(
            user_seconds=cpu / 2, system_seconds=cpu / 2, wall_seconds=2, schedstat_seconds=cpu
        ),
        server_cores=CoreCpu(
            cpus=[0], busy_seconds=2 * busy, softirq_seconds=0, idle_seconds=2 * (1 - busy),
            steal_seconds=0,
        ),
        load_cpu=LoadCpu(cpu_seconds=2 * load_share, wall_seconds=2, cpus=1),
    ).model_copy(update={"started_at": start, "finished_at": finish})  # fmt: skip


def _main_job(
    tmp_path: Path,
    rounds: int,
    sd: float,
    outcome: PrecisionOutcome,
    seed: int | None = None,
    zig: float = 0.05,
) -> tuple[Path, RunRecord]:
    """A main job's run: one seed round at ramp500 (95 s cells), `rounds` verdict rounds
    of C (no difference) and Zig (epoll `zig` more in log) at c500, 2 s cells one every
    2 s, per-round scatter `sd`: random with a `seed`, else -sd, -sd/3, +sd/3, +sd in turn."""
    rng = random.Random(seed)
    cells, at = [], 0
    for server in ("c-epoll", "c-io_uring", "zig-epoll", "zig-io_uring"):
        cells.append(_cell(server, "ramp500", 1, 6.0, at, length=95))
        at += 95
    for rep in range(1, rounds + 1):
        for language, shift in (("c", 0.0), ("zig", zig)):
            base = rng.uniform(5, 7)
            noise = sd * (rep % 4 - 1.5) / 1.5 if seed is None else rng.gauss(0, sd)
            epoll = base * math.exp(shift + noise)
            cells.append(_cell(f"{language}-epoll", "c500", rep, epoll, at))
            cells.append(_cell(f"{language}-io_uring", "c500", rep, base, at + 2))
            at += 4
    precision = PrecisionRecord(
        target=0.01, budget_seconds=900, min_rounds=10, points=["c500"], asked=False,
        spent_seconds=at - 380, outcome=outcome,
    )  # fmt: skip
    record = make_record(
        plan=[f"{c.server}/{c.point}/{c.repetition}" for c in cells],
        points=[RAMP, C500],
        profile=PROFILES["seed"],
        precision=precision,
        point_profiles={"c500": PROFILES["verdict"]},
        table_points=["ramp500"],
        status="complete",
    )
    run_dir = make_run_dir(tmp_path, record)
    for cell in cells:
        run_dir.write_cell(cell)
    return run_dir.path, run_dir.read_run()


def _verdict(report: str) -> str:
    return report[report.index("## Verdict") : report.index("## System Specs")]


def test_the_main_jobs_report_keeps_the_table_and_decides_at_the_verdict_point(
    tmp_path: Path,
) -> None:
    path, _ = _main_job(tmp_path, 40, 0.01, "reached")
    report = write_reports(RunDirectory.open(path), ("md",))["md"]
    verdict = _verdict(report)
    assert "- At 500 connections " in verdict and "ramp to 500 VUs" not in verdict
    assert (
        "**Precision:** ±1% within 15m00s (the default without --repetitions): reached" in verdict
    )
    # C's interval includes no change but is narrower than ±1%: nothing to price.
    decide = next(x for x in verdict.splitlines() if x.startswith("- To decide at 500"))
    assert decide.startswith("- To decide at 500 connections: C shows no change within ±0.")
    assert decide.endswith("a difference, if any, is smaller than that.")
    results = report[report.index("## Results") :]
    assert "**The verdict's rounds at 500 connections** (40 rounds of" in results
    assert results.count("| Api | Language |") == 2
    assert "- The verdict's rounds at 500 connections: profile `verdict`, 2 s after a 1 s" in report


def test_an_undecided_point_says_what_would_decide_it(tmp_path: Path) -> None:
    path, record = _main_job(tmp_path, 12, 0.08, "budget")
    run_dir = RunDirectory.open(path)
    verdict = _verdict(write_reports(run_dir, ("md",))["md"])
    assert (
        "**Precision:** ±1% within 15m00s (the default without --repetitions): not reached"
        in verdict
    )
    assert "the budget allowed" in verdict
    line = next(x for x in verdict.splitlines() if x.startswith("- To decide at 500 connections"))
    # Each pair's rounds for ±1% and ±2% come from its own scatter.

    loaded = RunReport.load(run_dir)
    pairs = pair_precisions(loaded.cells, loaded.rows, record.verdict_points)
    c = next(p for p in pairs if p.language == "C")
    assert c.scatter is not None
    needs = (rounds_needed(c.scatter, 0.01), rounds_needed(c.scatter, 0.02))
    assert (
        f"C {needs[0]} and {needs[1]} rounds for ±1% and ±2% (per-round scatter {c.scatter:.3f}"
        in line
    )
    # The command that runs them, with a budget 20% over the estimate: every round of two
    # languages at c500 takes 4 cells of 2 s here.
    most = max(rounds_needed(p.scatter, 0.01) for p in pairs if p.scatter is not None)
    assert "`orch run --server c-epoll --server c-io_uring" in line
    assert "--connections 500 --load-tool k6 --profile verdict --precision 1% --budget" in line
    assert f"±1% in about {most * 8 // 60}m" in line
    bound = next(x for x in verdict.splitlines() if "load-bound" in x)
    assert bound.startswith("- At 500 connections every compared row was load-bound: k6 kept")
    assert "about 6 load CPUs of k6" in bound and "--load-tool wrk" in bound


def test_compare_says_when_two_runs_cannot_be_told_apart(tmp_path: Path) -> None:
    """Zig's ratio 5% in both runs cannot be told apart; 5% against 15% can."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    first, _ = _main_job(tmp_path / "a", 30, 0.03, "reached")
    second, _ = _main_job(tmp_path / "b", 30, 0.03, "reached", seed=2)
    third, _ = _main_job(tmp_path / "c", 30, 0.03, "reached", seed=3, zig=0.15)
    same = compare_runs(RunDirectory.open(first), RunDirectory.open(second))
    verdicts = same[same.index("## Verdicts") :]
    assert "- At 500 connections, C: io_uring's CPU per request" in verdicts
    assert verdicts.count("the runs cannot tell these apart") == 2, verdicts
    apart = compare_runs(RunDirectory.open(first), RunDirectory.open(third))
    zig = next(x for x in apart.splitlines() if x.startswith("- At 500 connections, Zig"))
    assert "**the runs differ** (B's ratio over A's +1" in zig, zig


def _stopped_sweep(tmp_path: Path, outcome: PrecisionOutcome) -> Path:
    """A run to a precision with both cells of its one round measured."""
    precision = PrecisionRecord(
        target=0.01, budget_seconds=60, min_rounds=10, points=["c100"], spent_seconds=20,
        outcome=outcome,
    )  # fmt: skip
    record = make_record(
        plan=["c-epoll/c100/1", "c-io_uring/c100/1"], points=[C100], tool="wrk",
        profile=PROFILES["sweep-short"], precision=precision,
        status="interrupted" if outcome == "running" else "complete",
    )  # fmt: skip
    run_dir = make_run_dir(tmp_path, record)
    for server in ("c-epoll", "c-io_uring"):
        run_dir.write_cell(_cell(server, "c100", 1, 6.0, 0))
    return run_dir.path


def test_resume_goes_on_adding_rounds_where_a_run_stopped_between_them(tmp_path: Path) -> None:
    """SIGTERM between rounds leaves no planned cell missing, but rounds to add."""
    plan = plan_resume(_stopped_sweep(tmp_path / "a", "running"))
    assert plan.missing == [] and len(plan.planned) == 2 and plan.more_seconds is None
    spent = _stopped_sweep(tmp_path / "b", "budget")
    with pytest.raises(UserError, match="the run is already complete"):
        plan_resume(spent)
    more = plan_resume(spent, more_seconds=120.0)
    assert more.more_seconds == 120.0
    record = extend_budget(RunDirectory.open(spent).read_run(), more.more_seconds)
    assert record.precision is not None
    assert (record.precision.budget_seconds, record.precision.outcome) == (140.0, "running")
    with pytest.raises(UserError, match="already reached ±1% for every compared pair"):
        plan_resume(_stopped_sweep(tmp_path / "c", "reached"), more_seconds=60.0)
    fixed = make_run_dir(tmp_path / "d", make_record(plan=["c-epoll/1"], status="interrupted"))
    with pytest.raises(UserError, match=r"--budget: .* ran a fixed number of rounds"):
        plan_resume(fixed.path, more_seconds=60.0)
