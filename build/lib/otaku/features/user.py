"""User features: the share of each genre among the anime a user rated, plus the mean rating."""

from collections.abc import Mapping

import numpy as np
from scipy import sparse

from otaku.columns import RATING_MAX
from otaku.data.dataset import binarise


def user_feature_names(genres: list[str]) -> list[str]:
    """Column names of the user feature matrix."""
    return [f"share={genre}" for genre in genres] + ["mean_rating"]


def build_user_features(ratings: sparse.csr_matrix, item_genres: np.ndarray) -> np.ndarray:
    """Users x (genres + 1): genre shares among rated anime, and mean rating / 10.

    ``ratings`` is users x items (0 = not rated); ``item_genres`` items x genres 0/1.
    Users without ratings get zeros.
    """
    seen = binarise(ratings)
    counts = np.asarray(seen.sum(axis=1)).ravel()
    safe = np.maximum(counts, 1.0)[:, None]
    shares = np.asarray(seen @ item_genres) / safe
    mean = np.asarray(ratings.sum(axis=1)).ravel() / np.maximum(counts, 1.0) / RATING_MAX
    return np.hstack([shares, mean[:, None]]).astype(np.float32)


def features_from_history(
    item_indices: np.ndarray, ratings: np.ndarray, item_genres: np.ndarray
) -> np.ndarray:
    """The user feature vector of one user given their rated items (fold-in, no retraining)."""
    n_items = item_genres.shape[0]
    row = sparse.csr_matrix(
        (np.asarray(ratings, dtype=np.float32), (np.zeros(len(item_indices), int), item_indices)),
        shape=(1, n_items),
    )
    return build_user_features(row, item_genres)[0]


def features_from_preferences(preferences: Mapping[str, float], genres: list[str]) -> np.ndarray:
    """The user feature vector of a new user who states genre weights (unknown genres raise)."""
    unknown = sorted(set(preferences) - set(genres))
    if unknown:
        raise ValueError(f"unknown genre(s) {unknown}; known genres: {genres}")
    vector = np.zeros(len(genres) + 1, dtype=np.float32)
    for genre, weight in preferences.items():
        vector[genres.index(genre)] = float(weight)
    return vector
