"""The DESIGN.md protocol split: 20% test users; a random 20% of each test user's ratings is
held out; everything else is training data (test users stay known, with a partial history)."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from otaku.columns import LIKED_THRESHOLD, Columns
from otaku.data.dataset import Dataset


@dataclass(frozen=True)
class EvaluationSplit:
    """Training data, the test users and their held-out ratings."""

    train: Dataset
    test_users: np.ndarray
    heldout: pd.DataFrame


def split_users(
    data: Dataset, test_share: float = 0.2, holdout_share: float = 0.2, seed: int = 42
) -> EvaluationSplit:
    """Split ``data`` per the protocol (users with fewer than 2 ratings are never test users)."""
    rng = np.random.default_rng(seed)
    user_idx = data.ratings[Columns.user_idx].to_numpy()
    counts = np.bincount(user_idx, minlength=data.n_users)
    n_test = round(test_share * data.n_users)
    eligible = np.flatnonzero(counts >= 2)
    test = np.sort(rng.choice(eligible, size=min(n_test, len(eligible)), replace=False))
    is_test = np.zeros(data.n_users, dtype=bool)
    is_test[test] = True
    held = np.zeros(len(user_idx), dtype=bool)
    positions_by_user = pd.Series(np.arange(len(user_idx))).groupby(user_idx)
    for user in test:
        positions = positions_by_user.get_group(user).to_numpy()
        n_held = min(max(1, round(holdout_share * len(positions))), len(positions) - 1)
        held[rng.choice(positions, size=n_held, replace=False)] = True
    return EvaluationSplit(
        train=data.subset(~held),
        test_users=data.users.to_external(test),
        heldout=data.ratings[held].reset_index(drop=True),
    )


def relevant_by_user(heldout: pd.DataFrame) -> dict[int, set[int]]:
    """Held-out anime each test user rated >= 7 (the protocol's relevant set), by user id."""
    liked = heldout[heldout[Columns.rating] >= LIKED_THRESHOLD]
    return sets_by_user(liked)


def sets_by_user(frame: pd.DataFrame) -> dict[int, set[int]]:
    """The anime ids of each user id in a ratings frame."""
    users = frame[Columns.user_id].to_numpy(np.int64)
    anime = frame[Columns.anime_id].to_numpy(np.int64)
    sets: dict[int, set[int]] = {}
    for user, item in zip(users.tolist(), anime.tolist(), strict=True):
        sets.setdefault(user, set()).add(item)
    return sets
