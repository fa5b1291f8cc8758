"""`otaku data load`: a validated dataset into the database, in one transaction.

Idempotent: anime already in the catalog and users already known (live or in the future-user
pool) are skipped, so a second run of the same files adds nothing, and ratings a user changed
through the API are never overwritten by the file. A share of the new users (chosen by a
seeded hash of their id, so every run chooses the same ones) goes to the future-user pool that
``otaku simulate-users`` draws from.
"""

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from otaku.columns import MAL_NUMERIC_COLUMNS, Columns
from otaku.data.dataset import Dataset
from otaku.progress import StepBar, track
from otaku.storage.database import Database
from otaku.storage.models import (
    Anime,
    Base,
    FutureRating,
    FutureUser,
    Rating,
    User,
)
from otaku.storage.models import utc_now as now
from otaku.storage.repository import CHUNK_ROWS, Repository


@dataclass(frozen=True)
class LoadOutcome:
    """What a load added, and how fast."""

    anime: int
    users: int
    ratings: int
    future_users: int
    future_ratings: int
    seconds: float
    rating_seconds: float  # writing the live and future ratings only

    @property
    def ratings_per_second(self) -> float:
        """Live and future ratings per second of the whole transaction (catalog included)."""
        return (self.ratings + self.future_ratings) / max(self.seconds, 1e-9)

    @property
    def rating_insert_rate(self) -> float:
        """Live and future ratings per second while writing ratings."""
        return (self.ratings + self.future_ratings) / max(self.rating_seconds, 1e-9)


def in_pool(user_ids: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Which users go to the future pool: a seeded SplitMix64 hash of the id below ``share``
    (the same users on every run with the same seed)."""
    mixed = user_ids.astype(np.uint64) ^ np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
    mixed = (mixed ^ (mixed >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    mixed = (mixed ^ (mixed >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed ^= mixed >> np.uint64(31)
    return (mixed >> np.uint64(11)).astype(np.float64) / 2.0**53 < share


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def anime_rows(data: Dataset, skip: set[int]) -> list[dict[str, Any]]:
    """Database rows of the catalog's anime not in ``skip``."""
    catalog = data.catalog
    numeric = [column for column in MAL_NUMERIC_COLUMNS if column in catalog.columns]
    rows = []
    for position, record in enumerate(catalog.to_dict("records")):
        anime_id = int(record[Columns.anime_id])
        if anime_id in skip:
            continue
        year = _number(record.get(Columns.start_year))
        rows.append(
            {
                "anime_id": anime_id,
                "name": str(record[Columns.name]),
                "english_name": _text(record.get(Columns.english_name)),
                "japanese_name": _text(record.get(Columns.japanese_name)),
                "type": _text(record.get(Columns.type)),
                "source": _text(record.get(Columns.source)),
                "age_rating": _text(record.get(Columns.age_rating)),
                "genres": list(record[Columns.genres]),
                "start_year": None if year is None else int(year),
                "numbers": {column: _number(record[column]) for column in numeric},
                "synopsis": _text(data.synopses[position]),
            }
        )
    return rows


def _insert_in_chunks(
    repo: Repository, table: type[Base], rows: list[dict[str, Any]], label: str
) -> int:
    chunks = [rows[i : i + CHUNK_ROWS] for i in range(0, len(rows), CHUNK_ROWS)]
    for chunk in track(chunks, label, total=len(chunks)):
        repo.bulk_insert(table, chunk)
    return len(rows)


def _insert_frame(repo: Repository, table: type[Base], frame: pd.DataFrame) -> int:
    total = max(1, -(-len(frame) // CHUNK_ROWS))
    with StepBar(f"Loading {table.__tablename__}", total) as bar:
        return repo.bulk_insert_frame(table, frame, bar.advance)


def load_dataset(
    database: Database, data: Dataset, pool_share: float, seed: int, origin: str = "dataset"
) -> LoadOutcome:
    """Write ``data`` into the database in one transaction (all of it, or nothing)."""
    if not 0.0 <= pool_share < 1.0:
        raise ValueError(f"pool share must be in [0, 1), got {pool_share}")
    started = time.perf_counter()
    with database.transaction() as session:
        repo = Repository(session)
        anime = anime_rows(data, repo.ids(Anime.anime_id))
        _insert_in_chunks(repo, Anime, anime, "Loading anime")
        known = repo.ids(User.user_id) | repo.ids(FutureUser.user_id)
        ratings = data.ratings
        user_ids = ratings[Columns.user_id].to_numpy(np.int64)
        fresh = ~np.isin(user_ids, np.fromiter(known, np.int64, len(known)))
        pooled = in_pool(user_ids, pool_share, seed)
        live_users = np.unique(user_ids[fresh & ~pooled])
        future_users = np.unique(user_ids[fresh & pooled])
        stamp = now()
        repo.bulk_insert(
            User,
            [{"user_id": int(u), "origin": origin, "created_at": stamp} for u in live_users],
        )
        repo.bulk_insert(FutureUser, [{"user_id": int(u)} for u in future_users])
        frame = ratings[[Columns.user_id, Columns.anime_id, Columns.rating]]
        writing = time.perf_counter()
        added = _insert_frame(repo, Rating, frame[fresh & ~pooled])  # updated_at: now()
        added_future = _insert_frame(repo, FutureRating, frame[fresh & pooled])
        rating_seconds = time.perf_counter() - writing
    return LoadOutcome(
        len(anime),
        len(live_users),
        added,
        len(future_users),
        added_future,
        time.perf_counter() - started,
        rating_seconds,
    )
