"""How candidates are drawn from the sources' scores."""

import numpy as np

from otaku.pipeline.candidates import candidate_union


def test_each_source_gives_its_best_allowed_items_then_unscored_never_blocked() -> None:
    nan = np.nan
    scores = {
        "a": np.array([[0.9, 0.8, nan, 0.1, 0.7, nan]], dtype=np.float32),
        "b": np.array([[nan, 0.5, nan, 0.3, 0.2, 0.1]], dtype=np.float32),
    }
    allowed = np.array([[False, True, True, True, True, True]])
    quotas = [{"a": 2, "b": 5}]
    (chosen,) = candidate_union(scores, quotas, allowed)
    # a: its best allowed (1, 4); b: its scored items best first (1, 3, 4, 5), then the
    # one it has no opinion on (2); never the blocked item 0, whatever a or b think of it
    np.testing.assert_array_equal(chosen, [1, 4, 3, 5, 2])


def test_a_zero_quota_source_gives_nothing_and_rows_are_independent() -> None:
    scores = {"a": np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], dtype=np.float32)}
    allowed = np.ones((2, 3), dtype=bool)
    first, second = candidate_union(scores, [{"a": 1}, {"a": 0}], allowed)
    np.testing.assert_array_equal(first, [2])
    assert len(second) == 0
