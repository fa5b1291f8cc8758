"""The feature vector stored for each live user (``user_preferences``).

One rule for every writer — ``otaku data load``, the daily arrivals and the API's rating
writes — over one genre vocabulary: the genres of the database's own catalog, sorted. The
vector is the model's user-feature layout (:func:`otaku.features.user.build_user_features`):
the share of each genre among the anime rated, then the mean rating / 10. A user without
ratings has no stored vector.
"""

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from sqlalchemy import delete, func, select

from otaku.columns import Columns
from otaku.features.user import build_user_features
from otaku.storage.models import Anime, UserPreference, utc_now
from otaku.storage.repository import Repository


@dataclass(frozen=True)
class CatalogGenres:
    """The catalog's genres as arrays: sorted anime ids, the vocabulary, anime x genre 0/1."""

    anime_ids: np.ndarray
    vocabulary: list[str]
    matrix: np.ndarray

    def columns_of(self, anime_ids: np.ndarray) -> np.ndarray:
        """Row of each anime in :attr:`matrix` (ValueError for an anime not in the catalog)."""
        columns = np.searchsorted(self.anime_ids, anime_ids)
        inside = np.minimum(columns, self.anime_ids.size - 1)
        known = (columns < self.anime_ids.size) & (self.anime_ids[inside] == anime_ids)
        if not known.all():
            raise ValueError(f"anime {int(anime_ids[~known][0])} is rated but not in the catalog")
        return columns


# Anime rows are only ever added (by loads), so (database, count, largest id) identifies a
# catalog; reading and parsing every anime's genres on each API write cost ~190 ms.
_CACHE: dict[tuple[str, int, int], CatalogGenres] = {}
_CACHE_LOCK = threading.Lock()


def refresh_preferences(
    repo: Repository, user_ids: Sequence[int], ratings: pd.DataFrame | None = None
) -> int:
    """Recompute and store (replacing any stored) the feature vectors of ``user_ids`` from
    ``ratings`` — all their current ratings (user_id, anime_id, rating) — or, by default,
    from their ratings in the database. Returns how many vectors were stored. Runs in the
    repository's transaction."""
    users = np.unique(np.asarray(user_ids, dtype=np.int64))
    if users.size == 0:
        return 0
    user_list = [int(user) for user in users]
    if ratings is None:
        ratings = repo.ratings_frame(user_list)
    repo.session.execute(delete(UserPreference).where(UserPreference.user_id.in_(user_list)))
    rated_users = np.unique(ratings[Columns.user_id].to_numpy(np.int64))
    if rated_users.size == 0:
        return 0
    catalog = catalog_genres(repo)
    matrix = sparse.csr_matrix(
        (
            ratings[Columns.rating].to_numpy(np.float32),
            (
                np.searchsorted(rated_users, ratings[Columns.user_id].to_numpy(np.int64)),
                catalog.columns_of(ratings[Columns.anime_id].to_numpy(np.int64)),
            ),
        ),
        shape=(rated_users.size, catalog.anime_ids.size),
    )
    features = build_user_features(matrix, catalog.matrix)
    stamp = utc_now()
    return repo.bulk_insert(
        UserPreference,
        [
            {
                "user_id": int(user),
                "features": [round(float(value), 6) for value in features[row]],
                "genres": catalog.vocabulary,
                "mean_rating": float(features[row, -1]) * 10.0,
                "updated_at": stamp,
            }
            for row, user in enumerate(rated_users)
        ],
    )


def catalog_genres(repo: Repository) -> CatalogGenres:
    """The database catalog's genre table (read once per catalog, then cached)."""
    count, largest = repo.session.execute(
        select(func.count(), func.coalesce(func.max(Anime.anime_id), 0))
    ).one()
    key = (repo.session.connection().engine.url.render_as_string(), int(count), int(largest))
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    rows = sorted(
        (int(anime_id), list(genres))
        for anime_id, genres in repo.session.execute(select(Anime.anime_id, Anime.genres))
    )
    vocabulary = sorted({genre for _, genres in rows for genre in genres})
    position = {genre: column for column, genre in enumerate(vocabulary)}
    matrix = np.zeros((len(rows), len(vocabulary)), dtype=np.float32)
    for row, (_, genres) in enumerate(rows):
        matrix[row, [position[genre] for genre in genres]] = 1.0
    table = CatalogGenres(np.array([a for a, _ in rows], dtype=np.int64), vocabulary, matrix)
    with _CACHE_LOCK:
        if len(_CACHE) >= 8:  # a few databases per process at most (tests make many)
            _CACHE.clear()
        _CACHE[key] = table
    return table
