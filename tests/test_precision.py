"""--precision: the stopping rule, the rounds a precision needs and the time they take,
the coverage of the verdict's interval where the rule stops (a simulation), and which
servers each round visits."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from record_helpers import make_cell

from orchestrator.catalogue.read import load_catalogue
from orchestrator.load.points import LoadPoint
from orchestrator.results.aggregate import build_rows
from orchestrator.results.cell_result import CellResult, ProcessCpu
from orchestrator.results.precision import (
    MIN_ROUNDS,
    PairPrecision,
    cell_seconds,
    half_width,
    outlook,
    pair_precisions,
    rounds_needed,
    schedule_seconds,
)
from orchestrator.results.precision_record import PrecisionRecord
from orchestrator.results.stats import Estimate, paired_ratio_ci
from orchestrator.results.verdict import point_verdicts
from orchestrator.run.precision import _due

C100 = LoadPoint(kind="closed", vus=100)


def _pair(logs: list[float], point: str = "c100", language: str = "C") -> PairPrecision:
    """A pair whose rounds gave these log ratios, with the verdict's interval of them."""
    values = [(math.exp(x), 1.0) for x in logs]
    ratio = paired_ratio_ci(values) if values else None
    return PairPrecision(
        point, language, f"{language.lower()}-epoll", f"{language.lower()}-io_uring",
        "process", ratio, tuple(logs),
    )  # fmt: skip


def test_half_width_is_half_the_interval_on_the_log_scale() -> None:
    # (ln 1.02 - ln 0.98) / 2 = (0.0198026 + 0.0202027) / 2
    estimate = Estimate(1.0, 0.98, 1.02, 10, "wilcoxon", 0.95)
    assert half_width(estimate) == pytest.approx(0.0200027, abs=1e-7)
    assert half_width(Estimate(1.0, None, None, 1, "none", None)) is None
    assert half_width(None) is None


@pytest.mark.parametrize(
    ("sd", "target", "rounds"),
    [
        # z start (1.96 * 0.02 * 1.0233 / 0.01)^2 = 16.1; then with t: n=17: t(16) = 2.120
        # gives 2.120 * 0.02 * 1.0233 / sqrt(17) = 0.01052; n=18: t(17) = 2.110 gives
        # 0.01018; n=19: t(18) = 2.101 gives 0.00986 <= 0.01.
        (0.02, 0.01, 19),
        # (1.96 * 0.05 * 1.0233 / 0.03)^2 = 11.2; n=12: t(11) = 2.201 gives 0.03251; n=13:
        # t(12) = 2.179 gives 0.03092; n=14: t(13) = 2.160 gives 0.02954 <= 0.03.
        (0.05, 0.03, 14),
        # No scatter at all: the minimum rounds.
        (0.0, 0.01, MIN_ROUNDS),
        (0.001, 0.02, MIN_ROUNDS),
    ],
)
def test_rounds_needed_by_hand(sd: float, target: float, rounds: int) -> None:
    """The least n with t(0.975, n-1) * sd * sqrt(pi/3) / sqrt(n) <= target."""
    assert rounds_needed(sd, target) == rounds


def test_rounds_needed_grow_with_the_square_of_the_scatter() -> None:
    # This VM's scatter seen from 0.02 to 0.12: ±1% needs from 19 to about 580 rounds.
    assert rounds_needed(0.12, 0.01) == 582
    with pytest.raises(ValueError):
        rounds_needed(0.05, 0.0)


def test_a_pair_stops_on_width_after_the_minimum_rounds_never_on_significance() -> None:
    narrow = [0.05 + 0.004 * (-1) ** i for i in range(MIN_ROUNDS)]
    assert _pair(narrow[:-1]).reached(0.01) is False, "fewer rounds than the minimum"
    pair = _pair(narrow)
    assert pair.half_width is not None and pair.half_width < 0.01
    assert pair.reached(0.01) and not pair.includes_no_change
    # A clear difference with a wide interval goes on; no change, narrowly, stops.
    wide = _pair([0.2 + 0.1 * (-1) ** i for i in range(20)])
    assert not wide.includes_no_change and not wide.reached(0.05)
    flat = _pair([0.002 * (-1) ** i for i in range(12)])
    assert flat.includes_no_change and flat.reached(0.01)
    assert _pair([]).reached(0.5) is False and _pair([0.1]).sd is None


def _cpu_cell(server: str, rep: int, cpu_us: float, point: str = "c100") -> CellResult:
    requests = 100_000
    cpu = cpu_us * requests / 1e6
    return make_cell(
        f"{server}/{rep}",
        point=point,
        requests=requests,
        rps=50_000.0,
        server_cpu=ProcessCpu(
            user_seconds=cpu / 2, system_seconds=cpu / 2, wall_seconds=2, schedstat_seconds=cpu
        ),
    )


def test_the_rule_judges_the_verdicts_own_interval() -> None:
    """Same figure, same pairs, same interval: a failed cell drops its round from both."""
    rng = random.Random(7)
    cells = []
    for rep in range(1, 13):
        for language in ("c", "rust"):
            base = rng.uniform(4, 6)
            cells.append(
                _cpu_cell(f"{language}-epoll", rep, base * math.exp(rng.gauss(0.03, 0.02)))
            )
            cells.append(_cpu_cell(f"{language}-io_uring", rep, base))
    failed = cells[2].model_copy(update={"status": "failed", "load": None})  # rust-epoll/1
    cells[2] = failed
    rows = build_rows(cells, None, ["c100"])
    pairs = pair_precisions(cells, rows, [C100])
    verdict = point_verdicts(cells, rows, [C100])[0]
    assert [(p.language, p.rounds) for p in pairs] == [("C", 12), ("Rust", 11)]
    assert [p.ratio for p in pairs] == [v.cpu_ratio for v in verdict.languages]
    assert pairs[0].figure == "process"


# --- coverage at stopping ------------------------------------------------------------------


def _normal(rng: random.Random, sd: float) -> float:
    return rng.gauss(0.0, sd)


def _outlying(rng: random.Random, sd: float) -> float:
    """Symmetric, heavier tails: one round in ten three times as scattered."""
    return rng.gauss(0.0, sd * 3 if rng.random() < 0.1 else sd)


def _coverage(
    draw: Callable[[random.Random, float], float],
    sd: float,
    target: float,
    replications: int,
    seed: int,
) -> tuple[float, float]:
    """(share of intervals at stopping that hold the true ratio, mean rounds)."""
    rng = random.Random(seed)
    true_log = 0.03  # io_uring 3% cheaper
    covered, rounds = 0, 0
    for _ in range(replications):
        logs: list[float] = []
        while True:
            logs.append(true_log + draw(rng, sd))
            if len(logs) >= MIN_ROUNDS:  # no pair stops before (tested above)
                pair = _pair(logs)
                if pair.reached(target) or len(logs) >= 400:
                    break
        assert pair.ratio is not None and pair.ratio.low is not None
        assert pair.ratio.high is not None
        covered += pair.ratio.low <= math.exp(true_log) <= pair.ratio.high
        rounds += len(logs)
    return covered / replications, rounds / replications


@pytest.mark.parametrize(
    ("draw", "name"), [(_normal, "normal"), (_outlying, "outlying rounds")]
)  # fmt: skip
def test_intervals_at_stopping_cover_the_true_ratio(
    draw: Callable[[random.Random, float], float], name: str
) -> None:
    """Rounds drawn with a known ratio (io_uring 3% cheaper, per-round sd 0.05 of the log
    ratio), a pair stopped by the rule at ±2.5%: about 95% of its intervals hold the
    ratio (sequential stopping costs about a point: METHOD.md)."""
    coverage, rounds = _coverage(draw, 0.05, 0.025, 1500, seed=20)
    figure = f"{name}: coverage at stopping {coverage:.3f}, mean rounds {rounds:.1f}"
    print(figure)
    assert 0.92 <= coverage <= 0.98, figure
    assert rounds > MIN_ROUNDS, figure


# --- the time a precision takes ------------------------------------------------------------


def _timed(server: str, rep: int, at: int, length: int = 1, point: str = "c100") -> CellResult:
    start = f"2026-01-01T00:{at // 60:02d}:{at % 60:02d}+00:00"
    end_at = at + length
    end = f"2026-01-01T00:{end_at // 60:02d}:{end_at % 60:02d}+00:00"
    return _cpu_cell(server, rep, 5.0, point).model_copy(
        update={"started_at": start, "finished_at": end}
    )


def test_a_cell_takes_the_time_to_the_next_cell_within_a_session() -> None:
    cells = [
        _timed("c-epoll", 1, 0),
        _timed("c-io_uring", 1, 2),
        _timed("c-epoll", 2, 4),
        _timed("c-io_uring", 2, 7, length=2),  # the last before an interruption
        _timed("c-epoll", 3, 100),  # resumed
        _timed("c-io_uring", 3, 103, length=2),
    ]
    costs = cell_seconds(cells, ["2026-01-01T00:00:00+00:00", "2026-01-01T00:01:40+00:00"])
    # c-epoll: 2, 3, 3; c-io_uring: 2, its own 2 (not the 93 s across the resume), its own 2.
    assert costs == {
        ("c-epoll", "c100"): pytest.approx(8 / 3),
        ("c-io_uring", "c100"): pytest.approx(2.0),
    }


def test_rounds_get_cheaper_as_pairs_reach_the_target() -> None:
    costs = {("a", "p"): 2.0, ("b", "p"): 3.0, ("c", "p"): 1.0, ("d", "p"): 1.0}
    # Round 1: all four (7 s); rounds 2 and 3: a and b only (5 s each).
    assert schedule_seconds([(3, "p", ("a", "b")), (1, "p", ("c", "d"))], costs) == 17.0
    assert schedule_seconds([(1, "q", ("a", "b"))], costs) is None


def _interval_pair(rounds: int, half: float) -> PairPrecision:
    """A pair of `rounds` rounds whose Wilcoxon interval is exp(±half) around 1.03."""
    ratio = Estimate(1.03, 1.03 * math.exp(-half), 1.03 * math.exp(half), rounds, "wilcoxon", 0.95)
    logs = tuple(0.03 + 0.01 * (-1) ** i for i in range(rounds))
    return PairPrecision("c100", "C", "c-epoll", "c-io_uring", "process", ratio, logs)


def test_the_scatter_is_what_the_verdicts_interval_implies() -> None:
    # 16 rounds, half-width 0.02: 0.02 * sqrt(16) / (t(0.975, 15) = 2.1314 * 1.0233)
    # = 0.08 / 2.1812 = 0.03668, whatever the sample sd of the rounds (0.0103 here).
    pair = _interval_pair(16, 0.02)
    assert pair.scatter == pytest.approx(0.03668, abs=1e-5)
    assert pair.sd == pytest.approx(0.01033, abs=1e-5)
    # Below 6 rounds there is no Wilcoxon interval: the sample sd.
    few = _pair([0.03, 0.05, 0.01])
    assert few.scatter == few.sd == pytest.approx(0.02)


def test_outlook_counts_the_rounds_left_from_the_scatter() -> None:
    # Scatter 0.03668 needs 57 rounds for ±1%: n=55 gives t(54) = 2.0049 * 0.03668 *
    # 1.0233 / sqrt(55) = 0.01015; n=56: 0.01005; n=57: t(56) = 2.0032 gives 0.00996.
    pair = _interval_pair(16, 0.02)
    costs = {("c-epoll", "c100"): 1.5, ("c-io_uring", "c100"): 1.5}
    ahead = outlook([pair], 0.01, costs)
    assert ahead.rounds_left == 57 - 16
    assert ahead.seconds_left == pytest.approx(41 * 3.0)
    assert outlook([pair], 0.05, costs).rounds_left == 0


# --- which servers a round visits ----------------------------------------------------------


def test_rounds_visit_every_server_until_the_minimum_then_only_pairs_short_of_it() -> None:
    catalogue = load_catalogue()
    servers = [catalogue.by_name(n) for n in ("c-epoll", "c-io_uring", "zig-epoll", "zig-io_uring")]
    c10 = LoadPoint(kind="closed", vus=10)
    precision = PrecisionRecord(
        target=0.01, budget_seconds=60, min_rounds=10, points=["c10", "c100"]
    )
    narrow = [0.05 + 0.001 * (-1) ** i for i in range(10)]
    wide = [0.05 + 0.05 * (-1) ** i for i in range(10)]
    pairs = [
        _pair(narrow, "c10", "C"), _pair(wide, "c10", "Zig"),
        _pair(narrow, "c100", "C"), _pair(narrow, "c100", "Zig"),
    ]  # fmt: skip
    early = _due(pairs, [], [c10, C100], servers, precision, next_round=10)
    assert [(p.key, [s.name for s in chosen]) for p, chosen in early] == [
        ("c10", ["c-epoll", "c-io_uring", "zig-epoll", "zig-io_uring"]),
        ("c100", ["c-epoll", "c-io_uring", "zig-epoll", "zig-io_uring"]),
    ]
    later = _due(pairs, [], [c10, C100], servers, precision, next_round=11)
    assert [(p.key, [s.name for s in chosen]) for p, chosen in later] == [
        ("c10", ["zig-epoll", "zig-io_uring"])
    ]
    done = [_pair(narrow, "c10", "C"), _pair(narrow, "c10", "Zig")]
    assert _due(done, [], [c10], servers, precision, next_round=11) == []


def test_a_pair_whose_cells_keep_failing_gets_no_more_rounds() -> None:
    """More rounds would spend the budget on failures; a round that only gave no ratio
    (a figure not above zero) is no failure."""
    catalogue = load_catalogue()
    servers = [catalogue.by_name(n) for n in ("c-epoll", "c-io_uring")]
    precision = PrecisionRecord(target=0.01, budget_seconds=60, min_rounds=10, points=["c100"])
    wide = _pair([0.05 + 0.05 * (-1) ** i for i in range(4)])
    cells = []
    for rep in range(1, 11):
        failed = rep > 4  # 6 of 10 rounds with a failed io_uring cell
        cells.append(_cpu_cell("c-epoll", rep, 5.0))
        io = _cpu_cell("c-io_uring", rep, 5.0)
        cells.append(io.model_copy(update={"status": "failed", "load": None}) if failed else io)
    assert _due([wide], cells, [C100], servers, precision, next_round=11) == []
    # The same rounds measured, but with a figure of zero instead of a failure: no ratio
    # from them, and the pair goes on.
    zero = [c if c.status == "ok" else _cpu_cell(c.server, c.repetition, 0.0) for c in cells]
    assert [s.name for s in _due([wide], zero, [C100], servers, precision, 11)[0][1]] == [
        "c-epoll",
        "c-io_uring",
    ]
