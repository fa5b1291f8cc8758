"""Duplicate pairs by packed keys: the same answer as pandas, for small and huge ids."""

import numpy as np
import pandas as pd
import pytest

from otaku.data.pairs import find_duplicates


@pytest.mark.parametrize("scale", [1, 2**40])  # 2**40: too large to pack, codes are used
def test_duplicates_match_pandas(scale: int) -> None:
    rng = np.random.default_rng(5)
    users = rng.integers(0, 30, 2000).astype(np.int64) * scale
    anime = rng.integers(0, 40, 2000).astype(np.int64) * scale
    frame = pd.DataFrame({"u": users, "a": anime})
    found = find_duplicates(users, anime)
    assert np.array_equal(found.repeats, np.flatnonzero(frame.duplicated(keep="first")))
    assert np.array_equal(found.superseded, np.flatnonzero(frame.duplicated(keep="last")))
    assert found.count == int(frame.duplicated().sum())


def test_no_rows_no_duplicates() -> None:
    empty = np.array([], dtype=np.int64)
    assert find_duplicates(empty, empty).count == 0
