"""Statistics on known data, against expectations worked out by hand (shown in comments)."""

from __future__ import annotations

import math

import pytest

from orchestrator.results.stats import (
    METHOD_NONE,
    METHOD_ORDER,
    METHOD_T,
    METHOD_WELCH,
    METHOD_WILCOXON,
    binomial_tail,
    coefficient_of_variation,
    describe_method,
    hodges_lehmann_ci,
    median_ci,
    median_ranks,
    paired_ratio_ci,
    signed_rank_critical,
    t_quantile_975,
    welch_ratio_ci,
)

E = math.e


def _t_cdf(x: float, df: float, steps: int = 20_000) -> float:
    """P(T <= x) for x >= 0 by Simpson's rule on the t density: independent of scipy."""
    scale = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))

    def density(t: float) -> float:
        return float(scale * (1 + t * t / df) ** (-(df + 1) / 2))

    h = x / steps
    total = density(0.0) + density(x)
    total += sum((4 if i % 2 else 2) * density(i * h) for i in range(1, steps))
    return 0.5 + total * h / 3


def test_t_quantiles_match_the_published_table_and_the_density() -> None:
    # Published two-sided 95% values (e.g. NIST/SEMATECH e-Handbook, table 1.3.6.7.2).
    for df, value in ((1, 12.7062), (2, 4.3027), (3, 3.1824), (10, 2.2281), (30, 2.0423)):
        assert t_quantile_975(df) == pytest.approx(value, abs=1e-4)
    # Closed forms: df 1 is Cauchy, tan(0.475 pi); df 2 is (2p-1) / sqrt(2p(1-p)).
    assert t_quantile_975(1) == pytest.approx(math.tan(0.475 * math.pi))
    assert t_quantile_975(2) == pytest.approx(0.95 / math.sqrt(2 * 0.975 * 0.025))
    # Fractional df (Welch): the quantile's cumulative probability, integrated by hand.
    for fractional in (2.5, 7.3, 45.0):
        assert _t_cdf(t_quantile_975(fractional), fractional) == pytest.approx(0.975, abs=1e-6)
    assert t_quantile_975(1e12) == pytest.approx(1.96, abs=1e-4)
    with pytest.raises(ValueError):
        t_quantile_975(0.5)


def test_binomial_tail() -> None:
    assert binomial_tail(3, 0) == pytest.approx(1 / 8)
    assert binomial_tail(4, 1) == pytest.approx(5 / 16)  # (1 + 4) / 16
    assert binomial_tail(6, 6) == pytest.approx(1.0)


def ranks(n: int) -> tuple[int, int, float]:
    found = median_ranks(n)
    assert found is not None
    return found


def test_order_statistic_ranks_for_the_median() -> None:
    # [x(1), x(n)] covers the median with 1 - 2 / 2^n: 93.75% at n = 5, too little.
    assert median_ranks(5) is None
    assert ranks(6)[:2] == (1, 6) and ranks(6)[2] == pytest.approx(1 - 2 / 64)
    # n = 8: j = 2 would give 1 - 2 * (1 + 8) / 256 = 92.97%, so j = 1 (99.22%).
    assert ranks(8)[:2] == (1, 8) and ranks(8)[2] == pytest.approx(1 - 2 / 256)
    # n = 9: j = 2 gives 1 - 2 * (1 + 9) / 512 = 96.09%; j = 3 would give 82.03%.
    assert ranks(9)[:2] == (2, 8) and ranks(9)[2] == pytest.approx(1 - 20 / 512)
    # n = 12: j = 3 gives 1 - 2 * (1 + 12 + 66) / 4096 = 96.14%.
    assert ranks(12)[:2] == (3, 10) and ranks(12)[2] == pytest.approx(1 - 158 / 4096)


def test_one_value_has_no_interval() -> None:
    est = median_ci([42.0])
    assert est.value == 42.0
    assert (est.low, est.high, est.method, est.n) == (None, None, METHOD_NONE, 1)
    assert not est.has_interval and not est.excludes(0.0)


def test_small_n_uses_t_on_the_logarithms() -> None:
    # logs 1, 2, 3: mean 2, s = 1, half-width t(2) * 1 / sqrt(3) = 4.3027 / 1.7321 = 2.4842
    est = median_ci([E**3, E**1, E**2])
    assert est.value == pytest.approx(E**2)
    assert est.method == METHOD_T and est.confidence == 0.95 and est.n == 3
    assert est.low == pytest.approx(math.exp(2 - 2.48417), rel=1e-4)
    assert est.high == pytest.approx(math.exp(2 + 2.48417), rel=1e-4)
    assert est.low is not None and est.high is not None
    assert est.low < est.value < est.high


def test_non_positive_values_fall_back_to_the_plain_t_interval() -> None:
    # mean 0, s = 1, half-width 4.3027 / sqrt(3) = 2.4842
    est = median_ci([-1.0, 0.0, 1.0])
    assert est.value == 0.0
    assert est.low == pytest.approx(-2.48417, rel=1e-4)
    assert est.high == pytest.approx(2.48417, rel=1e-4)


def test_equal_values_give_an_interval_holding_their_value() -> None:
    # exp(log(20000)) is 19999.99999999998: an h2load rate held exactly in both rounds
    # once gave an interval below its own median (and a plot's whisker of negative length).
    est = median_ci([20000.0, 20000.0])
    assert (est.value, est.low, est.high) == (20000.0, 20000.0, 20000.0)


def test_six_or_more_use_order_statistics() -> None:
    est = median_ci([5.0, 1.0, 4.0, 2.0, 6.0, 3.0])
    assert est.value == 3.5
    assert (est.low, est.high, est.method) == (1.0, 6.0, METHOD_ORDER)
    assert est.confidence == pytest.approx(0.96875)
    nine = median_ci([float(x) for x in (9, 1, 8, 2, 7, 3, 6, 4, 5)])
    assert (nine.value, nine.low, nine.high) == (5.0, 2.0, 8.0)


def test_paired_ratios_consistent_across_rounds_are_significant() -> None:
    # Every round: A is 10% above the baseline although the rounds drift 3x.
    pairs = [(110.0, 100.0), (220.0, 200.0), (330.0, 300.0)]
    est = paired_ratio_ci(pairs, point=1.1)
    assert est.value == pytest.approx(1.1)
    assert est.low == pytest.approx(1.1) and est.high == pytest.approx(1.1)
    assert est.excludes(1.0)


def test_paired_ratios_straddling_one_are_not_significant() -> None:
    # log ratios -0.1, 0, 0.1: mean 0, s = 0.1, half-width 4.3027 * 0.1 / sqrt(3) = 0.24842
    pairs = [(100 * math.exp(-0.1), 100.0), (50.0, 50.0), (80 * math.exp(0.1), 80.0)]
    est = paired_ratio_ci(pairs)
    assert est.value == pytest.approx(1.0)
    assert est.low == pytest.approx(math.exp(-0.248417), rel=1e-4)
    assert est.high == pytest.approx(math.exp(0.248417), rel=1e-4)
    assert not est.excludes(1.0)


def test_a_single_pair_has_no_interval_and_bad_pairs_are_skipped() -> None:
    est = paired_ratio_ci([(120.0, 100.0), (0.0, 100.0)])
    assert est.value == pytest.approx(1.2) and not est.has_interval
    with pytest.raises(ValueError):
        paired_ratio_ci([(0.0, 1.0)])


def test_welch_ratio_of_two_independent_samples() -> None:
    # log a = 0, 0.2 and log b = 0.1, 0.3: difference of means 0.1; each variance of the
    # mean 0.02 / 2 = 0.01, se = sqrt(0.02); Welch df = 0.02^2 / (0.01^2 + 0.01^2) = 2.
    a = [1.0, math.exp(0.2)]
    b = [math.exp(0.1), math.exp(0.3)]
    est = welch_ratio_ci(b, a)
    half = 4.3027 * math.sqrt(0.02)
    assert est.method == METHOD_WELCH
    assert est.value == pytest.approx(math.exp(0.1))  # median(b) / median(a)
    assert est.low == pytest.approx(math.exp(0.1 - half), rel=1e-4)
    assert est.high == pytest.approx(math.exp(0.1 + half), rel=1e-4)
    assert not est.excludes(1.0)
    assert not welch_ratio_ci([2.0], [1.0, 1.1]).has_interval


def test_welch_ratio_with_no_spread_is_exact() -> None:
    est = welch_ratio_ci([2.0, 2.0], [1.0, 1.0])
    assert (est.value, est.low, est.high) == (2.0, 2.0, 2.0)
    assert est.excludes(1.0)


def test_coefficient_of_variation() -> None:
    # mean 100, sample standard deviation 10
    assert coefficient_of_variation([90.0, 100.0, 110.0]) == pytest.approx(0.1)
    assert coefficient_of_variation([5.0]) is None


def test_method_descriptions() -> None:
    assert "no confidence intervals" in describe_method(set())
    assert "Student t" in describe_method({METHOD_T})
    text = describe_method({METHOD_T, METHOD_ORDER})
    assert "order-statistics" in text and "Student t" in text


def test_signed_rank_critical_values_match_the_published_table() -> None:
    # Two-sided 5% critical values of Wilcoxon's T, as printed in the usual tables.
    published = {6: 0, 7: 2, 8: 3, 9: 5, 10: 8, 12: 13, 15: 25, 20: 52, 25: 89, 30: 137}
    for n, critical in published.items():
        found = signed_rank_critical(n)
        assert found is not None and found[0] == critical, n
        assert found[1] >= 0.95
    assert signed_rank_critical(5) is None  # 2 / 32 = 6.25% already: no 95% interval
    assert signed_rank_critical(6) == (0, 1 - 2 / 64)


def test_hodges_lehmann_estimate_and_interval_by_hand() -> None:
    # 1..6: the 21 Walsh averages have median 3.5; at n = 6 the interval is [W(1), W(21)].
    found = hodges_lehmann_ci([3.0, 1.0, 6.0, 2.0, 5.0, 4.0])
    assert found is not None
    assert found == pytest.approx((3.5, 1.0, 6.0, 0.96875))
    # One wild round among eight: 28 averages of 0.1, seven of 2.55, one of 5.
    # n = 8: c = 3, so [W(4), W(33)] = [0.1, 2.55]; the median stays at 0.1.
    estimate, low, high, _ = hodges_lehmann_ci([0.1] * 7 + [5.0]) or (0, 0, 0, 0)
    assert (estimate, low, high) == pytest.approx((0.1, 0.1, 2.55))


def test_paired_ratios_from_six_rounds_use_the_signed_rank_interval() -> None:
    pairs = [(100 * math.exp(x / 100), 100.0) for x in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)]
    est = paired_ratio_ci(pairs)
    assert est.method == METHOD_WILCOXON and est.n == 6
    assert est.value == pytest.approx(math.exp(0.035))
    assert (est.low, est.high) == pytest.approx((math.exp(0.01), math.exp(0.06)))
    assert paired_ratio_ci(pairs, point=1.5).value == 1.5
