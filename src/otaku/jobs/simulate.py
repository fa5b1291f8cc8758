"""`otaku simulate-users`: new users arrive, as the reference's daily job had them arrive.

Each run moves a seeded random 10–25 users from the future-user pool into the live tables with
their ratings, in one transaction.
"""

from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, insert, select

from otaku.storage.database import Database
from otaku.storage.models import FutureRating, FutureUser, Rating, User, utc_now
from otaku.storage.repository import Repository


@dataclass(frozen=True)
class ArrivalOutcome:
    """Who arrived."""

    user_ids: list[int]
    ratings: int
    pool_left: int


def simulate_arrivals(
    database: Database, seed: int, low: int = 10, high: int = 25
) -> ArrivalOutcome:
    """Move ``low``..``high`` pooled users (seeded choice) into the live tables."""
    if not 0 < low <= high:
        raise ValueError(f"need 0 < low <= high, got {low}..{high}")
    with database.transaction() as session:
        repo = Repository(session)
        pool = sorted(repo.ids(FutureUser.user_id))
        rng = np.random.default_rng([seed, len(pool)])  # a different draw as the pool shrinks
        count = min(int(rng.integers(low, high + 1)), len(pool))
        chosen = (
            sorted(int(u) for u in rng.choice(pool, size=count, replace=False)) if count else []
        )
        if chosen:
            stamp = utc_now()
            repo.bulk_insert(
                User, [{"user_id": u, "origin": "simulated", "created_at": stamp} for u in chosen]
            )
            moved = session.execute(
                select(FutureRating.user_id, FutureRating.anime_id, FutureRating.rating).where(
                    FutureRating.user_id.in_(chosen)
                )
            ).all()
            rows = [
                {"user_id": u, "anime_id": a, "rating": r, "updated_at": stamp} for u, a, r in moved
            ]
            if rows:
                session.execute(insert(Rating), rows)
            session.execute(delete(FutureRating).where(FutureRating.user_id.in_(chosen)))
            session.execute(delete(FutureUser).where(FutureUser.user_id.in_(chosen)))
        else:
            moved = []
        return ArrivalOutcome(chosen, len(moved), len(pool) - len(chosen))
