"""The statistics of an experiment report: intervals, tests between arms, and how many users
an arm needs before a difference can be told apart from chance (pure functions)."""

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.8


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class TestResult:
    """A two-sided test between two arms."""

    statistic: float
    p_value: float


def wilson_interval(successes: int, trials: int, alpha: float = ALPHA) -> Interval:
    """A proportion with its Wilson score interval (sound for small counts and 0 or 1)."""
    if trials <= 0:
        return Interval(math.nan, math.nan, math.nan)
    z = float(stats.norm.ppf(1 - alpha / 2))
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    return Interval(share, max(0.0, centre - half), min(1.0, centre + half))


def two_proportion_test(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int
) -> TestResult:
    """Pooled two-proportion z-test (two-sided)."""
    if trials_a <= 0 or trials_b <= 0:
        return TestResult(math.nan, math.nan)
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    if spread == 0:
        return TestResult(0.0, 1.0)
    z = (successes_a / trials_a - successes_b / trials_b) / spread
    return TestResult(z, math.erfc(abs(z) / math.sqrt(2)))


def mean_interval(values: np.ndarray, alpha: float = ALPHA) -> Interval:
    """A mean with its Student-t interval (NaN bounds for fewer than two values)."""
    n = len(values)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan)
    mean = float(np.mean(values))
    if n < 2:
        return Interval(mean, math.nan, math.nan)
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * float(np.std(values, ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half)


def welch_test(values_a: np.ndarray, values_b: np.ndarray) -> TestResult:
    """Welch's t-test of two means (two-sided; NaN with fewer than two values in an arm)."""
    if len(values_a) < 2 or len(values_b) < 2:
        return TestResult(math.nan, math.nan)
    result = stats.ttest_ind(values_a, values_b, equal_var=False)
    return TestResult(float(result.statistic), float(result.pvalue))


def users_needed(rate_a: float, rate_b: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Users per arm needed to detect the difference between two hit rates with this power
    (normal approximation); infinite when the rates are equal."""
    if rate_a == rate_b or math.isnan(rate_a) or math.isnan(rate_b):
        return math.inf
    z_alpha = float(stats.norm.ppf(1 - alpha / 2))
    z_power = float(stats.norm.ppf(power))
    mean = (rate_a + rate_b) / 2
    spread = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_power * math.sqrt(
        rate_a * (1 - rate_a) + rate_b * (1 - rate_b)
    )
    return math.ceil(spread * spread / ((rate_a - rate_b) ** 2))


def sample_ratio_test(users: list[int], shares: list[float]) -> TestResult:
    """Chi-square test of the users seen per arm against the arms' shares: a small p-value
    (a sample ratio mismatch) means assignment or logging lost users of some arm, and the
    arms' figures should not be trusted."""
    total = sum(users)
    if total == 0:
        return TestResult(math.nan, math.nan)
    expected = [total * share for share in shares]
    result = stats.chisquare(users, expected)
    return TestResult(float(result.statistic), float(result.pvalue))
