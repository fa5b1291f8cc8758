"""The feature vector stored for each live user (``user_preferences``).

One rule for every writer — ``otaku data load``, the daily arrivals and the API's rating
writes — over one genre vocabulary: the genres of the database's own catalog, sorted. The
vector is the model's user-feature layout (:func:`otaku.features.user.build_user_features`):
the share of each genre among the anime rated, then the mean rating / 10.
"""

import numpy as np
import pandas as pd
from scipy import sparse
from sqlalchemy import delete, select

from otaku.columns import Columns
from otaku.features.user import build_user_features
from otaku.storage.models import Anime, UserPreference, utc_now
from otaku.storage.repository import Repository


def store_preferences(repo: Repository, ratings: pd.DataFrame) -> int:
    """Compute and store (replacing any stored) the feature vectors of the users in
    ``ratings``, which must hold *all* their current ratings (user_id, anime_id, rating).
    Returns how many users were stored. Runs in the repository's transaction."""
    users = np.unique(ratings[Columns.user_id].to_numpy(np.int64))
    if users.size == 0:
        return 0
    anime_ids, vocabulary, item_genres = _catalog_genres(repo)
    rated = ratings[Columns.anime_id].to_numpy(np.int64)
    columns = np.searchsorted(anime_ids, rated)
    known = (columns < anime_ids.size) & (
        anime_ids[np.minimum(columns, anime_ids.size - 1)] == rated
    )
    if not known.all():
        raise ValueError(f"anime {int(rated[~known][0])} is rated but not in the catalog")
    rows = np.searchsorted(users, ratings[Columns.user_id].to_numpy(np.int64))
    matrix = sparse.csr_matrix(
        (ratings[Columns.rating].to_numpy(np.float32), (rows, columns)),
        shape=(users.size, anime_ids.size),
    )
    features = build_user_features(matrix, item_genres)
    stamp = utc_now()
    user_list = [int(user) for user in users]
    repo.session.execute(delete(UserPreference).where(UserPreference.user_id.in_(user_list)))
    return repo.bulk_insert(
        UserPreference,
        [
            {
                "user_id": user,
                "features": [round(float(value), 6) for value in features[row]],
                "genres": vocabulary,
                "mean_rating": float(features[row, -1]) * 10.0,
                "updated_at": stamp,
            }
            for row, user in enumerate(user_list)
        ],
    )


def _catalog_genres(repo: Repository) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Sorted anime ids, the sorted genre vocabulary, and the anime x genre 0/1 matrix."""
    rows = sorted(
        (int(anime_id), list(genres))
        for anime_id, genres in repo.session.execute(select(Anime.anime_id, Anime.genres))
    )
    vocabulary = sorted({genre for _, genres in rows for genre in genres})
    position = {genre: column for column, genre in enumerate(vocabulary)}
    matrix = np.zeros((len(rows), len(vocabulary)), dtype=np.float32)
    for row, (_, genres) in enumerate(rows):
        matrix[row, [position[genre] for genre in genres]] = 1.0
    return np.array([anime_id for anime_id, _ in rows], dtype=np.int64), vocabulary, matrix
