"""Ranking and rating metrics as pure functions (binary relevance for ranking)."""

from collections.abc import Sequence

import numpy as np


def precision_at_k(recommended: Sequence[int], relevant: set[int], k: int = 10) -> float:
    """Share of the top ``k`` that is relevant (the denominator is ``k``)."""
    top = list(recommended)[:k]
    return sum(item in relevant for item in top) / k


def recall_at_k(recommended: Sequence[int], relevant: set[int], k: int = 10) -> float:
    """Share of the relevant items found in the top ``k`` (0 when nothing is relevant)."""
    if not relevant:
        return 0.0
    return sum(item in relevant for item in list(recommended)[:k]) / len(relevant)


def ndcg_at_k(recommended: Sequence[int], relevant: set[int], k: int = 10) -> float:
    """Normalised DCG with binary gains; the ideal list puts min(|relevant|, k) hits first."""
    if not relevant:
        return 0.0
    gains = [1.0 if item in relevant else 0.0 for item in list(recommended)[:k]]
    dcg = sum(gain / np.log2(position + 2) for position, gain in enumerate(gains))
    ideal = sum(1.0 / np.log2(position + 2) for position in range(min(len(relevant), k)))
    return float(dcg / ideal)


def catalog_coverage(recommendations: Sequence[Sequence[int]], n_items: int) -> float:
    """Share of the catalog that appears in at least one recommendation list."""
    if n_items == 0:
        return 0.0
    return len({item for items in recommendations for item in items}) / n_items


def mean_absolute_error(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(predicted) - np.asarray(actual))))


def median_absolute_error(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Median absolute error."""
    return float(np.median(np.abs(np.asarray(predicted) - np.asarray(actual))))
