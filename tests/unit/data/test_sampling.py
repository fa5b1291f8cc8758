"""User samples sized by a rating budget: within the budget, whole users, seeded."""

import numpy as np
import pytest

from otaku.data.sampling import users_within_budget

COUNTS = np.random.default_rng(0).integers(0, 200, size=1000)


def test_a_sample_stays_within_the_budget_and_keeps_whole_users() -> None:
    users = users_within_budget(COUNTS, 20_000, seed=1)
    assert COUNTS[users].sum() <= 20_000
    assert COUNTS[users].sum() > 20_000 - COUNTS.max()  # the budget is spent, not wasted
    assert (COUNTS[users] > 0).all()
    assert np.array_equal(users, np.sort(np.unique(users)))


def test_a_sample_is_reproducible_by_seed() -> None:
    first = users_within_budget(COUNTS, 20_000, seed=1)
    assert np.array_equal(first, users_within_budget(COUNTS, 20_000, seed=1))
    assert not np.array_equal(first, users_within_budget(COUNTS, 20_000, seed=2))


def test_no_budget_or_a_large_one_keeps_every_user_with_ratings() -> None:
    everyone = np.flatnonzero(COUNTS > 0)
    assert np.array_equal(users_within_budget(COUNTS, None, seed=1), everyone)
    assert np.array_equal(users_within_budget(COUNTS, int(COUNTS.sum()), seed=1), everyone)


def test_a_sample_does_not_favour_heavy_or_light_raters() -> None:
    users = users_within_budget(COUNTS, int(COUNTS.sum()) // 2, seed=3)
    assert COUNTS[users].mean() == pytest.approx(COUNTS[COUNTS > 0].mean(), rel=0.1)


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        users_within_budget(COUNTS, 0, seed=1)
