"""Statistics over repetitions: medians with 95% confidence intervals, ratios, CV.

Methods, chosen for the handful of repetitions a benchmark affords:

- n >= 6: the distribution-free interval for the median from order statistics. The
  interval [x(j), x(n+1-j)] covers the true median with probability P(j <= B <= n-j),
  B ~ Binomial(n, 1/2); j is the largest rank keeping that at or above 95%. No
  assumption about the shape of the distribution is needed.
- 2 <= n <= 5: no pair of order statistics reaches 95% (n = 5 gives at most 93.75%), so
  the Student t interval is used, on the logarithms of the values when all are positive
  (every figure orch reports is: the interval then stays positive and is that of the
  geometric mean), else on the values. It assumes roughly (log-)normal repetitions,
  plausible for Req/s, itself an average over many thousands of requests. It always
  contains the median for n <= 5, since t(n-1)/sqrt(n) > 1 there.
- n = 1: no interval.

Ratios (A's Req/s over the baseline's) use the same methods on the per-round ratios of
paired repetitions (t on their logarithms); independent samples (two runs) use Welch's
t interval of the difference of mean logarithms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from statistics import fmean, median, stdev

CONFIDENCE = 0.95
MIN_ORDER_STATISTIC_N = 6

METHOD_NONE = "none"
METHOD_T = "t"
METHOD_ORDER = "order statistics"
METHOD_WELCH = "welch"
METHOD_WILCOXON = "wilcoxon"


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval (low/high None: no interval)."""

    value: float
    low: float | None
    high: float | None
    n: int
    method: str
    confidence: float | None  # the interval's coverage: 0.95 for t, exact for order stats

    @property
    def has_interval(self) -> bool:
        """True when an interval could be computed."""
        return self.low is not None and self.high is not None

    def excludes(self, value: float) -> bool:
        """True when the interval lies wholly above or below `value` (a significant result)."""
        if self.low is None or self.high is None:
            return False
        return value < self.low or value > self.high


def t_quantile_975(df: float) -> float:
    """Student's t 97.5% quantile for `df` degrees of freedom (fractional df too, as
    Welch's interval has them)."""
    if df < 1:
        raise ValueError("degrees of freedom must be at least 1")
    # scipy.stats takes about a second to import; only reports need it.
    from scipy.stats import t as student_t

    return float(student_t.ppf(0.975, df))


def binomial_tail(n: int, k: int) -> float:
    """P(B <= k) for B ~ Binomial(n, 1/2)."""
    from scipy.stats import binom

    return float(binom.cdf(k, n, 0.5))


def median_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int, float] | None:
    """1-based ranks (j, n+1-j) of the order-statistic interval for the median, and its coverage.

    None when even (1, n) covers less than `confidence`.
    """
    best: tuple[int, int, float] | None = None
    for j in range(1, n // 2 + 1):
        coverage = 1 - 2 * binomial_tail(n, j - 1)
        if coverage < confidence:
            break
        best = (j, n + 1 - j, coverage)
    return best


def _t_interval(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    centre = fmean(values)
    half = t_quantile_975(n - 1) * stdev(values) / math.sqrt(n)
    return centre - half, centre + half


def t_interval(values: Sequence[float]) -> tuple[float, float]:
    """95% Student t interval: of the geometric mean when all values are positive, else
    of the arithmetic mean. Equal values give their value both ways (exp(log(v)) may
    differ from v in its last bit, and an interval must not exclude its own centre)."""
    if min(values) == max(values):
        return values[0], values[0]
    if all(v > 0 for v in values):
        low, high = _t_interval([math.log(v) for v in values])
        return math.exp(low), math.exp(high)
    return _t_interval(values)


def median_ci(values: Sequence[float]) -> Estimate:
    """The median of `values` with a 95% interval (see the module docstring for the method)."""
    if not values:
        raise ValueError("no values")
    data = sorted(values)
    n = len(data)
    centre = median(data)
    if n == 1:
        return Estimate(centre, None, None, 1, METHOD_NONE, None)
    ranks = median_ranks(n) if n >= MIN_ORDER_STATISTIC_N else None
    if ranks is not None:
        j, k, coverage = ranks
        return Estimate(centre, data[j - 1], data[k - 1], n, METHOD_ORDER, coverage)
    low, high = t_interval(data)
    return Estimate(centre, low, high, n, METHOD_T, CONFIDENCE)


# Cached: a run to a precision asks for it after every round, n up to a few hundred.
@cache
def signed_rank_critical(n: int, confidence: float = CONFIDENCE) -> tuple[int, float] | None:
    """The Wilcoxon signed-rank critical value for n pairs: the largest c with
    P(T <= c) <= (1 - confidence) / 2 under no difference, and the coverage
    1 - 2 P(T <= c) of the interval it gives. None when even c = 0 is too likely (n < 6).

    The exact distribution of T: each of the ranks 1..n adds to T with probability 1/2.
    """
    total = n * (n + 1) // 2
    ways = [1] + [0] * total
    for rank in range(1, n + 1):
        for s in range(total, rank - 1, -1):
            ways[s] += ways[s - rank]
    tail, c = 0.0, -1
    for s in range(total + 1):
        tail += ways[s] / 2**n
        if tail > (1 - confidence) / 2:
            break
        c = s
    if c < 0:
        return None
    below = sum(ways[: c + 1]) / 2**n
    return c, 1 - 2 * below


def hodges_lehmann_ci(values: Sequence[float]) -> tuple[float, float, float, float] | None:
    """(estimate, low, high, coverage) of the centre of symmetric values: the median of
    the Walsh averages (x_i + x_j) / 2, i <= j, and the Wilcoxon signed-rank interval
    [W(c+1), W(M-c)] over those M averages. None below 6 values."""
    n = len(values)
    critical = signed_rank_critical(n)
    if critical is None:
        return None
    c, coverage = critical
    walsh = sorted((values[i] + values[j]) / 2 for i in range(n) for j in range(i, n))
    return median(walsh), walsh[c], walsh[len(walsh) - 1 - c], coverage


def paired_ratio_ci(pairs: Sequence[tuple[float, float]], point: float | None = None) -> Estimate:
    """Interval for a/b from paired samples (a_i, b_i), e.g. one pair per interleaved round.

    From 6 pairs: the Hodges-Lehmann estimate and Wilcoxon signed-rank interval of the
    log ratios (distribution-free for symmetric noise, robust to an odd round, and about as
    tight as a t interval on normal data); 2 to 5 pairs: the t interval of the log ratios.
    The point is `point` when given (the ratio of medians a table shows), else that
    estimate. Non-positive values are left out (no ratio exists).
    """
    ratios = [a / b for a, b in pairs if a > 0 and b > 0]
    if not ratios:
        raise ValueError("no positive pairs")
    n = len(ratios)
    if n == 1:
        return Estimate(point if point is not None else ratios[0], None, None, 1, METHOD_NONE, None)
    found = hodges_lehmann_ci([math.log(r) for r in ratios]) if n >= MIN_ORDER_STATISTIC_N else None
    if found is not None:
        centre, low, high, coverage = found
        value = point if point is not None else math.exp(centre)
        return Estimate(value, math.exp(low), math.exp(high), n, METHOD_WILCOXON, coverage)
    low_t, high_t = t_interval(ratios)
    value = point if point is not None else median(ratios)
    return Estimate(value, low_t, high_t, n, METHOD_T, CONFIDENCE)


def welch_ratio_ci(a: Sequence[float], b: Sequence[float]) -> Estimate:
    """Interval for the ratio of a's level to b's from two independent samples.

    Welch's t interval of mean(log a) - mean(log b), exponentiated: a ratio of geometric
    means. The point is median(a) / median(b). Needs two positive values on each side.
    """
    la = [math.log(x) for x in a if x > 0]
    lb = [math.log(x) for x in b if x > 0]
    if not la or not lb:
        raise ValueError("no positive values")
    centre = median([x for x in a if x > 0]) / median([x for x in b if x > 0])
    if len(la) < 2 or len(lb) < 2:
        return Estimate(centre, None, None, min(len(la), len(lb)), METHOD_NONE, None)
    va, vb = stdev(la) ** 2 / len(la), stdev(lb) ** 2 / len(lb)
    diff = fmean(la) - fmean(lb)
    se = math.sqrt(va + vb)
    if se == 0:
        n = len(la) + len(lb)
        return Estimate(centre, math.exp(diff), math.exp(diff), n, METHOD_WELCH, CONFIDENCE)
    df = (va + vb) ** 2 / (va**2 / (len(la) - 1) + vb**2 / (len(lb) - 1))
    half = t_quantile_975(max(1.0, df)) * se
    low, high = math.exp(diff - half), math.exp(diff + half)
    return Estimate(centre, low, high, len(la) + len(lb), METHOD_WELCH, CONFIDENCE)


def coefficient_of_variation(values: Sequence[float]) -> float | None:
    """Sample standard deviation over the mean (None below two values or at a zero mean)."""
    if len(values) < 2:
        return None
    centre = fmean(values)
    return stdev(values) / centre if centre else None


def describe_method(methods: set[str]) -> str:
    """One sentence saying how the intervals in a table were computed."""
    parts = []
    if METHOD_ORDER in methods:
        parts.append(
            "distribution-free order-statistics interval of the median (exact binomial "
            "coverage >= 95%, used from 6 repetitions)"
        )
    if METHOD_T in methods:
        parts.append(
            "Student t interval on the logarithms, i.e. of the geometric mean (assumes "
            "roughly log-normal repetitions; used for 2-5 repetitions, where no "
            "order-statistics interval reaches 95%)"
        )
    if METHOD_WILCOXON in methods:
        parts.append(
            "for ratios of paired rounds, the Hodges-Lehmann estimate with the Wilcoxon "
            "signed-rank interval of the log ratios (distribution-free for symmetric "
            "noise; used from 6 rounds)"
        )
    if METHOD_WELCH in methods:
        parts.append("Welch t interval of the ratio of geometric means (independent runs)")
    if not parts:
        return "no confidence intervals: a single repetition gives none"
    return "95% confidence intervals: " + "; ".join(parts)
