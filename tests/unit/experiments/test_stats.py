"""The report's statistics against values computed by hand (and by scipy's own routines)."""

import math

import numpy as np
import pytest
from scipy import stats

from otaku.experiments.stats import (
    mean_interval,
    sample_ratio_test,
    two_proportion_test,
    users_needed,
    welch_test,
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


def test_mean_interval_and_welch_by_hand() -> None:
    values = np.array([6.0, 8.0, 7.0, 9.0])  # mean 7.5, sd 1.29099, t(3) = 3.182446
    interval = mean_interval(values)
    half = 3.182446 * 1.2909944 / 2
    assert (interval.value, interval.low, interval.high) == pytest.approx(
        (7.5, 7.5 - half, 7.5 + half), abs=1e-5
    )
    other = np.array([5.0, 6.0, 7.0])  # mean 6, var 1: se = sqrt(1.6667/4 + 1/3) = 0.866025
    result = welch_test(values, other)
    assert result.statistic == pytest.approx(1.5 / 0.8660254, abs=1e-5)
    assert math.isnan(welch_test(values, np.array([5.0])).p_value)


def test_sample_ratio_test_by_hand() -> None:
    # 246 vs 205 users for 50/50: chi2 = 2 * 20.5^2 / 225.5 = 3.7273, p = 0.0535 (1 df)
    result = sample_ratio_test([246, 205], [0.5, 0.5])
    assert result.statistic == pytest.approx(3.72727, abs=1e-4)
    assert result.p_value == pytest.approx(0.05352, abs=1e-4)
    assert sample_ratio_test([30, 70], [0.3, 0.7]).p_value == pytest.approx(1.0)
