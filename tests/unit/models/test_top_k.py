"""The shared top-k helpers every ranking goes through."""

import numpy as np

from otaku.models.base import lowest_k, top_k


def test_top_k_orders_each_row_best_first_and_keeps_index_order_on_ties() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.2], [3.0, 1.0, 2.0, 0.0, 4.0]])
    np.testing.assert_array_equal(top_k(scores, 3), [[1, 3, 2], [4, 0, 2]])


def test_lowest_k_of_one_row_and_a_k_beyond_the_row() -> None:
    costs = np.array([2.0, -1.0, np.inf, 0.0, -1.0])
    np.testing.assert_array_equal(lowest_k(costs, 2), [1, 4])
    np.testing.assert_array_equal(lowest_k(costs, 10), [1, 4, 3, 0, 2])


def test_top_k_agrees_with_a_full_sort_on_random_rows() -> None:
    scores = np.random.default_rng(5).random((20, 500)).astype(np.float32)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :30]
    np.testing.assert_array_equal(top_k(scores, 30), expected)
