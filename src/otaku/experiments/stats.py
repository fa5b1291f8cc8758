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


def _two_sided(z: float) -> TestResult:
    """A standard normal statistic with its two-sided p-value."""
    return TestResult(z, math.erfc(abs(z) / math.sqrt(2)))


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
    return _two_sided((successes_a / trials_a - successes_b / trials_b) / spread)


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


def _ratio_and_variance(numerators: np.ndarray, denominators: np.ndarray) -> tuple[float, float]:
    """sum(numerators) / sum(denominators) over independent units and the delta method's
    variance of it: (s_x^2 - 2 r s_xy + r^2 s_y^2) / (n * mean(y)^2)."""
    x = np.asarray(numerators, dtype=np.float64)
    y = np.asarray(denominators, dtype=np.float64)
    if len(x) == 0 or y.sum() <= 0:
        return math.nan, math.nan
    ratio = float(x.sum() / y.sum())
    if len(x) < 2:
        return ratio, math.nan
    covariance = np.cov(x, y, ddof=1)
    spread = covariance[0, 0] - 2 * ratio * covariance[0, 1] + ratio**2 * covariance[1, 1]
    return ratio, float(max(spread, 0.0) / (len(x) * y.mean() ** 2))


def ratio_interval(
    numerators: np.ndarray, denominators: np.ndarray, alpha: float = ALPHA
) -> Interval:
    """A ratio of sums over independent units (each user's ratings summed over their count
    of ratings, say) with its delta-method normal interval. A user's ratings or pages are
    not independent of each other, users are: treating each rating as a draw would make
    the interval too narrow for users who rate a lot."""
    ratio, variance = _ratio_and_variance(numerators, denominators)
    if math.isnan(variance):
        return Interval(ratio, math.nan, math.nan)
    half = float(stats.norm.ppf(1 - alpha / 2)) * math.sqrt(variance)
    return Interval(ratio, ratio - half, ratio + half)


def ratio_test(
    numerators_a: np.ndarray,
    denominators_a: np.ndarray,
    numerators_b: np.ndarray,
    denominators_b: np.ndarray,
) -> TestResult:
    """Two-sided z-test of two ratios of sums, each with its delta-method variance over
    its own units (NaN when either arm has fewer than two units or nothing to divide)."""
    ratio_a, variance_a = _ratio_and_variance(numerators_a, denominators_a)
    ratio_b, variance_b = _ratio_and_variance(numerators_b, denominators_b)
    if math.isnan(variance_a) or math.isnan(variance_b):
        return TestResult(math.nan, math.nan)
    spread = math.sqrt(variance_a + variance_b)
    if spread == 0:
        return TestResult(0.0, 1.0) if ratio_a == ratio_b else TestResult(math.inf, 0.0)
    return _two_sided((ratio_a - ratio_b) / spread)


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
