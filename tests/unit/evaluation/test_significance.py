"""The paired bootstrap: centred on the mean difference, wide where differences vary, narrow
and significant where one side is consistently better, and reproducible by seed."""

import numpy as np
import pytest

from otaku.evaluation.significance import paired_bootstrap


def test_a_constant_difference_has_a_zero_width_interval() -> None:
    better = np.array([0.5, 0.7, 0.2, 0.9])
    interval = paired_bootstrap(better, better - 0.1)
    assert interval.mean == pytest.approx(0.1)
    assert interval.low == pytest.approx(0.1) and interval.high == pytest.approx(0.1)
    assert interval.significant


def test_pairing_removes_the_spread_between_users() -> None:
    rng = np.random.default_rng(0)
    users = rng.uniform(0, 1, 400)  # users differ a lot...
    first = users + 0.02 + rng.normal(0, 0.01, 400)  # ...but the first model is always a bit better
    interval = paired_bootstrap(first, users)
    assert interval.significant and 0.015 < interval.low < interval.mean < interval.high < 0.025


def test_no_difference_is_not_significant_and_matches_the_normal_approximation() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 500), rng.normal(0, 1, 500)
    interval = paired_bootstrap(a, b, seed=3)
    difference = a - b
    half_width = 1.96 * difference.std(ddof=1) / np.sqrt(len(difference))
    assert interval.mean == pytest.approx(difference.mean())
    assert interval.high - interval.low == pytest.approx(2 * half_width, rel=0.1)
    assert interval.low < 0 < interval.high and not interval.significant
    assert paired_bootstrap(a, b, seed=3) == interval


def test_unpaired_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="equally long"):
        paired_bootstrap(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="non-empty"):
        paired_bootstrap(np.ones(0), np.ones(0))
