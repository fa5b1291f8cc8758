"""The fixed hold-out: ratings no model is trained on, so champion and challenger can be
compared on ratings neither saw.

Which ratings are held out depends only on the seed and on ids: a test user is one whose
seeded hash of the id falls below :data:`TEST_USER_SHARE`, and 20% of a test user's ratings
(a seeded hash of user and anime) are held out. The data does not enter the rule, so a
rating held out today was held out for every model trained with the same rule and seed,
whenever it was trained. ``otaku train`` and ``otaku retrain`` both leave these ratings out
and record the rule in the bundle (:func:`holdout_record`); ``otaku retrain`` refuses to
compare with a champion whose record differs (:func:`unfair_because`).
"""

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from otaku.columns import Columns
from otaku.data.dataset import Dataset
from otaku.jobs.load import in_pool

RULE = "user-and-pair-hash/2"
# The test users' hash is salted apart from the future-user pool's (`in_pool` with the bare
# seed): rule 1 used the same hash, so every test user was pooled first and a pool share of
# 0.2 or more left nothing to hold out.
TEST_USER_SALT = 0x7E57
TEST_USER_SHARE = 0.2
HELD_OUT_SHARE = 0.2
MIN_TEST_RATINGS = 5  # users compared on their held-out ratings have at least this many


@dataclass(frozen=True)
class HeldOut:
    """The visible history and held-out ratings of each compared test user."""

    visible: dict[int, dict[int, float]]
    held: pd.DataFrame  # user_id, anime_id, rating


def held_out_mask(ratings: pd.DataFrame, seed: int) -> np.ndarray:
    """Which rating rows are held out (the same rows for the same ids and seed, always)."""
    users = ratings[Columns.user_id].to_numpy(np.int64)
    pair = users * 1_000_003 + ratings[Columns.anime_id].to_numpy(np.int64)
    test_users = in_pool(users, TEST_USER_SHARE, seed + TEST_USER_SALT)
    return test_users & in_pool(pair, HELD_OUT_SHARE, seed + 1)


def fixed_split(data: Dataset, seed: int) -> tuple[np.ndarray, HeldOut]:
    """The held-out mask over ``data.ratings`` and the comparison split it defines."""
    ratings = data.ratings
    held = held_out_mask(ratings, seed)
    test_users = np.unique(ratings[Columns.user_id].to_numpy(np.int64)[held])
    counts = ratings.groupby(Columns.user_id)[Columns.rating].transform("size").to_numpy()
    compared = np.isin(ratings[Columns.user_id].to_numpy(np.int64), test_users) & (
        counts >= MIN_TEST_RATINGS
    )
    visible: dict[int, dict[int, float]] = {}
    columns = [Columns.user_id, Columns.anime_id, Columns.rating]
    for user, anime, rating in ratings.loc[compared & ~held, columns].itertuples(index=False):
        visible.setdefault(int(user), {})[int(anime)] = float(rating)
    frame = ratings.loc[compared & held, columns]
    frame = frame[frame[Columns.user_id].isin(visible)].reset_index(drop=True)
    return held, HeldOut(visible, frame)


def holdout_record(ratings: pd.DataFrame, held: np.ndarray, seed: int) -> dict[str, Any]:
    """What a bundle records about the ratings it was not trained on."""
    pairs = ratings.loc[held, [Columns.user_id, Columns.anime_id]].to_numpy(np.int64)
    ordered = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))] if len(pairs) else pairs
    digest = hashlib.blake2b(np.ascontiguousarray(ordered).tobytes(), digest_size=16)
    return {
        "rule": RULE,
        "seed": seed,
        "test_user_share": TEST_USER_SHARE,
        "held_out_share": HELD_OUT_SHARE,
        "held_out_ratings": int(held.sum()),
        "held_out_hash": digest.hexdigest(),
    }


def unfair_because(metadata: dict[str, Any], seed: int) -> str | None:
    """Why a model may have been trained on ratings held out now (None: it was not)."""
    record = metadata.get("holdout")
    if not isinstance(record, dict):
        return "its bundle records no hold-out (trained on every rating, before hold-outs)"
    expected = {
        "rule": RULE,
        "seed": seed,
        "test_user_share": TEST_USER_SHARE,
        "held_out_share": HELD_OUT_SHARE,
    }
    differing = [key for key, value in expected.items() if record.get(key) != value]
    if differing:
        found = ", ".join(f"{key}={record.get(key)!r} (now {expected[key]!r})" for key in differing)
        return f"it was trained with another hold-out: {found}"
    return None
