"""Metrics on hand-computed cases."""

import math

import numpy as np
import pytest

from otaku.evaluation.metrics import (
    catalog_coverage,
    mean_absolute_error,
    median_absolute_error,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)


def test_precision_and_recall() -> None:
    assert precision_at_k([1, 2, 3, 4], {2, 4, 9}, k=4) == 0.5
    assert recall_at_k([1, 2, 3, 4], {2, 4, 9}, k=4) == pytest.approx(2 / 3)
    assert precision_at_k([1, 2], {1}, k=10) == 0.1  # the denominator is k
    assert recall_at_k([1], set(), k=10) == 0.0


def test_ndcg_hand_computed() -> None:
    # hits at positions 1 and 3, two relevant: DCG = 1 + 1/log2(4); IDCG = 1 + 1/log2(3)
    expected = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k([7, 8, 9], {7, 9}, k=3) == pytest.approx(expected)
    assert ndcg_at_k([7, 9, 8], {7, 9}, k=3) == pytest.approx(1.0)
    assert ndcg_at_k([1, 2, 3], {7}, k=3) == 0.0
    # more relevant than k: the ideal list is k hits long
    assert ndcg_at_k([1, 2], {1, 2, 3, 4}, k=2) == pytest.approx(1.0)


def test_coverage_and_errors() -> None:
    assert catalog_coverage([[1, 2], [2, 3]], 10) == 0.3
    assert catalog_coverage([], 0) == 0.0
    predicted, actual = np.array([7.0, 8.0, 5.0]), np.array([8.0, 8.0, 9.0])
    assert mean_absolute_error(predicted, actual) == pytest.approx(5 / 3)
    assert median_absolute_error(predicted, actual) == pytest.approx(1.0)
