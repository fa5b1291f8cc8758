"""The fixed hold-out: stable whatever else is in the data, recorded in bundles, and a model
trained under another rule (or none) is recognised as having seen it."""

import numpy as np
import pandas as pd
import pytest

from otaku.columns import Columns
from otaku.data.dataset import Dataset
from otaku.jobs.holdout import (
    HELD_OUT_SHARE,
    TEST_USER_SHARE,
    fixed_split,
    held_out_mask,
    holdout_record,
    unfair_because,
)


def _ratings(users: range, anime: range) -> pd.DataFrame:
    pairs = [(u, a, 1 + (u * 7 + a) % 10) for u in users for a in anime]
    return pd.DataFrame(pairs, columns=[Columns.user_id, Columns.anime_id, Columns.rating])


def test_a_rating_is_held_out_whatever_else_the_data_holds() -> None:
    small = _ratings(range(1, 200), range(1, 30))
    grown = pd.concat([small, _ratings(range(200, 400), range(1, 40))], ignore_index=True)
    grown = grown.sample(frac=1.0, random_state=1).reset_index(drop=True)
    held_small = set(map(tuple, small[held_out_mask(small, 42)].to_numpy()[:, :2].tolist()))
    held_grown = set(map(tuple, grown[held_out_mask(grown, 42)].to_numpy()[:, :2].tolist()))
    assert held_small and held_small <= held_grown
    share = held_out_mask(grown, 42).mean()
    assert share == pytest.approx(TEST_USER_SHARE * HELD_OUT_SHARE, abs=0.015)
    assert not np.array_equal(held_out_mask(grown, 42), held_out_mask(grown, 43))


def test_the_split_compares_users_on_ratings_they_did_not_show(small_dataset: Dataset) -> None:
    held, split = fixed_split(small_dataset, 42)
    assert held.any() and len(split.held) > 0
    for _, group in split.held.groupby(Columns.user_id):
        user = int(group[Columns.user_id].iloc[0])
        assert not set(group[Columns.anime_id]) & set(split.visible[user])


def test_the_record_names_the_rule_and_hashes_the_set() -> None:
    ratings = _ratings(range(1, 300), range(1, 20))
    held = held_out_mask(ratings, 42)
    record = holdout_record(ratings, held, 42)
    shuffled = ratings.sample(frac=1.0, random_state=3).reset_index(drop=True)
    again = holdout_record(shuffled, held_out_mask(shuffled, 42), 42)
    assert record == again  # the order of the rows does not matter
    assert record["held_out_ratings"] == int(held.sum()) > 0
    assert unfair_because({"holdout": record}, 42) is None


@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        ({}, "records no hold-out"),
        ({"holdout": {"rule": "user-and-pair-hash/2", "seed": 7}}, "seed=7 (now 42)"),
        ({"holdout": {"rule": "older", "seed": 42}}, "rule='older'"),
    ],
)
def test_models_trained_under_another_rule_saw_the_hold_out(
    metadata: dict[str, object], says: str
) -> None:
    record = {"test_user_share": TEST_USER_SHARE, "held_out_share": HELD_OUT_SHARE}
    if "holdout" in metadata:
        metadata = {"holdout": {**record, **metadata["holdout"]}}  # type: ignore[dict-item]
    reason = unfair_because(metadata, 42)
    assert reason is not None and says in reason


def test_test_users_do_not_depend_on_the_future_user_pool() -> None:
    from otaku.jobs.load import in_pool

    users = np.arange(1, 20_001, dtype=np.int64)
    ratings = pd.DataFrame({Columns.user_id: users, Columns.anime_id: np.ones_like(users)})
    held_users = set(users[held_out_mask(ratings, 42)].tolist())
    live = users[~in_pool(users, 0.3, 42)]  # what stays after a 30% pool is held back
    kept = held_users & set(live.tolist())
    # about 70% of the test users stay live (rule 1 kept none with a pool share >= 0.2)
    assert len(kept) / len(held_users) == pytest.approx(0.7, abs=0.05)
