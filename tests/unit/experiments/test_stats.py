"""The report's statistics against values computed by hand (and by scipy's own routines)."""

import math

import numpy as np
import pytest
from scipy import stats

from otaku.experiments.stats import (
    mean_interval,
    ratio_interval,
    ratio_test,
    sample_ratio_test,
    two_proportion_test,
    users_needed,
    wilson_interval,
)


def test_wilson_interval_by_hand() -> None:
    # 5 of 10, z = 1.959964: centre 0.5, half = z*sqrt(.025 + z^2/400)/(1 + z^2/10)
    z = 1.959963985
    half = z * math.sqrt(0.25 / 10 + z * z / 400) / (1 + z * z / 10)
    interval = wilson_interval(5, 10)
    assert interval.value == 0.5
    assert (interval.low, interval.high) == pytest.approx((0.5 - half, 0.5 + half))
    assert (interval.low, interval.high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    scipy_ci = stats.binomtest(3, 40).proportion_ci(method="wilson")
    ours = wilson_interval(3, 40)
    assert (ours.low, ours.high) == pytest.approx((scipy_ci.low, scipy_ci.high))
    assert wilson_interval(0, 20).low == 0.0


def test_two_proportion_z_test_by_hand() -> None:
    # 30/100 vs 20/100: pooled 0.25, se = sqrt(.25 * .75 * .02) = 0.0612372, z = 1.63299
    result = two_proportion_test(30, 100, 20, 100)
    assert result.statistic == pytest.approx(1.63299, abs=1e-5)
    assert result.p_value == pytest.approx(0.102470, abs=1e-5)
    assert two_proportion_test(0, 10, 0, 10).p_value == 1.0


def test_users_needed_by_hand() -> None:
    # the textbook 30% vs 20% at 5% / 80% power: 293.2 → 294 users per arm
    assert users_needed(0.3, 0.2) == 294
    assert users_needed(0.2, 0.2) == math.inf


def test_mean_interval_by_hand() -> None:
    values = np.array([6.0, 8.0, 7.0, 9.0])  # mean 7.5, sd 1.29099, t(3) = 3.182446
    interval = mean_interval(values)
    half = 3.182446 * 1.2909944 / 2
    assert (interval.value, interval.low, interval.high) == pytest.approx(
        (7.5, 7.5 - half, 7.5 + half), abs=1e-5
    )
    assert math.isnan(mean_interval(np.array([5.0])).low)


def test_ratio_interval_by_the_delta_method_by_hand() -> None:
    # Four users' rating sums and counts: (8, 8), (7), (9, 10, 8), none. r = 50 / 6.
    # s_x^2 = 409 / 3, s_y^2 = 5 / 3, s_xy = 45 / 3, mean y = 1.5, n = 4:
    # var = (136.3333 - 2 r 15 + r^2 1.6667) / (4 * 2.25) = 2.074074 / 9 = 0.2304527
    sums, counts = np.array([16.0, 7.0, 27.0, 0.0]), np.array([2.0, 1.0, 3.0, 0.0])
    interval = ratio_interval(sums, counts)
    half = 1.959964 * math.sqrt(0.2304527)
    assert (interval.value, interval.low, interval.high) == pytest.approx(
        (50 / 6, 50 / 6 - half, 50 / 6 + half), abs=1e-5
    )
    single = ratio_interval(np.array([8.0]), np.array([1.0]))
    assert single.value == 8.0 and math.isnan(single.low)
    assert math.isnan(ratio_interval(np.zeros(3), np.zeros(3)).value)


def test_ratio_test_by_hand() -> None:
    # the arm above against (7, 7), (6): r = 20 / 3, s_x^2 = 32, s_y^2 = 0.5, s_xy = 4, n = 2:
    # var = (32 - 2 r 4 + r^2 0.5) / (2 * 2.25) = 0.197531; z = (50/6 - 20/3) / sqrt(sum)
    result = ratio_test(
        np.array([16.0, 7.0, 27.0, 0.0]),
        np.array([2.0, 1.0, 3.0, 0.0]),
        np.array([14.0, 6.0]),
        np.array([2.0, 1.0]),
    )
    z = (50 / 6 - 20 / 3) / math.sqrt(0.2304527 + 0.1975309)
    assert result.statistic == pytest.approx(z, abs=1e-4)
    assert result.p_value == pytest.approx(0.010846, abs=1e-5)
    assert math.isnan(ratio_test(np.ones(3), np.ones(3), np.ones(1), np.ones(1)).p_value)


def test_a_user_who_rates_a_lot_widens_the_interval_as_one_user() -> None:
    # 20 users rate once (alternating 6 and 8); one more rates 200 anime, all 10. Counted per
    # rating, the 200 look like 200 independent draws; counted by user, they are one.
    sums = np.array([6.0, 8.0] * 10 + [2000.0])
    counts = np.array([1.0] * 20 + [200.0])
    by_user = ratio_interval(sums, counts)
    ratings = np.array([6.0, 8.0] * 10 + [10.0] * 200)
    per_rating_half = 1.96 * ratings.std(ddof=1) / math.sqrt(len(ratings))
    assert by_user.value == pytest.approx(ratings.mean())
    assert by_user.high - by_user.value > 3 * per_rating_half


def test_sample_ratio_test_by_hand() -> None:
    # 246 vs 205 users for 50/50: chi2 = 2 * 20.5^2 / 225.5 = 3.7273, p = 0.0535 (1 df)
    result = sample_ratio_test([246, 205], [0.5, 0.5])
    assert result.statistic == pytest.approx(3.72727, abs=1e-4)
    assert result.p_value == pytest.approx(0.05352, abs=1e-4)
    assert sample_ratio_test([30, 70], [0.3, 0.7]).p_value == pytest.approx(1.0)
