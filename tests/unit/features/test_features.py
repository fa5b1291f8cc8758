"""Item and user features on tiny inline frames."""

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from otaku.columns import Columns
from otaku.features.item import build_item_features, genre_matrix, genre_vocabulary
from otaku.features.user import (
    build_user_features,
    features_from_history,
    features_from_preferences,
    user_feature_names,
)


def catalog() -> pd.DataFrame:
    return pd.DataFrame(
        {
            Columns.anime_id: [1, 2, 3],
            Columns.genres: [["Action", "Drama"], ["Drama"], []],
            Columns.type: ["TV", "Movie", ""],
            Columns.source: ["Manga", "Original", "Manga"],
            Columns.age_rating: ["PG-13", "R+", ""],
            Columns.start_year: [1998.0, 2005.0, np.nan],
            "Score": [8.0, 6.0, np.nan],
            "Members": [100.0, 300.0, 200.0],
        }
    )


def test_item_features_scale_and_one_hot() -> None:
    features = build_item_features(catalog())
    names = features.names
    values = features.values
    assert names[:2] == ["Score", "Members"]  # absent MAL columns are simply left out
    np.testing.assert_allclose(values[:, 0], [1.0, 0.0, 0.0])  # missing score -> 0
    np.testing.assert_allclose(values[:, 1], [0.0, 1.0, 0.5])
    assert "genre=Action" in names and "type=TV" in names and "decade=1990s" in names
    assert "type=" not in names  # empty categories are not a category
    assert values[0, names.index("decade=1990s")] == 1.0
    assert values[2, names.index("genre=Drama")] == 0.0
    assert values.shape == (3, len(names))


def test_genre_vocabulary_comes_from_data() -> None:
    assert genre_vocabulary(catalog()) == ["Action", "Drama"]
    matrix = genre_matrix(catalog(), ["Action", "Drama"])
    assert matrix.tolist() == [[1, 1], [0, 1], [0, 0]]


def test_user_features_are_genre_shares_and_mean_rating() -> None:
    genres = genre_matrix(catalog(), ["Action", "Drama"])
    ratings = sparse.csr_matrix(np.array([[8, 6, 0], [0, 0, 0], [0, 0, 10]], dtype=np.float32))
    features = build_user_features(ratings, genres)
    np.testing.assert_allclose(features[0], [0.5, 1.0, 0.7])
    np.testing.assert_allclose(features[1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(features[2], [0.0, 0.0, 1.0])
    assert user_feature_names(["Action", "Drama"]) == ["share=Action", "share=Drama", "mean_rating"]
    np.testing.assert_allclose(
        features_from_history(np.array([0, 1]), np.array([8, 6]), genres), features[0]
    )


def test_preferences_vector_and_unknown_genre() -> None:
    vector = features_from_preferences({"Drama": 0.4}, ["Action", "Drama"])
    np.testing.assert_allclose(vector, [0.0, 0.4, 0.0])
    with pytest.raises(ValueError, match="Mecha"):
        features_from_preferences({"Mecha": 1}, ["Action", "Drama"])
