"""The protocol split keeps test users known and holds out ~20% of their ratings."""

import numpy as np

from otaku.columns import Columns
from otaku.data.dataset import Dataset
from otaku.evaluation.split import split_users


def test_split_protocol(small_dataset: Dataset) -> None:
    split = split_users(small_dataset, seed=3)
    assert len(split.test_users) == round(0.2 * small_dataset.n_users)
    assert set(split.heldout[Columns.user_id]) == set(split.test_users)
    # test users remain known with a partial history, and nothing is lost or duplicated
    assert split.train.n_users == small_dataset.n_users
    assert len(split.train.ratings) + len(split.heldout) == len(small_dataset.ratings)
    for user in split.test_users[:5]:
        total = int((small_dataset.ratings[Columns.user_id] == user).sum())
        held = int((split.heldout[Columns.user_id] == user).sum())
        assert held == min(max(1, round(0.2 * total)), total - 1)
    again = split_users(small_dataset, seed=3)
    np.testing.assert_array_equal(again.test_users, split.test_users)
