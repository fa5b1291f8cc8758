"""`otaku simulate-users`: new users arrive from the future-user pool, as the reference's daily
job had them arrive, and (in the closed loop) act on what they are shown.

Plain arrivals move users into the live tables with all their ratings. In the closed loop a
user arrives with a few of their ratings (a new user telling us what they liked); the rest
stay in the pool as the truth they act on: every day each arrived user asks for
recommendations through the served path (their experiment arm included), "watches" the
shown anime they truly rated and rates them with their true rating, and marks some of the
others "not interested".
"""

from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import delete, insert, select, update

from otaku.storage.database import Database
from otaku.storage.models import FutureRating, FutureUser, Rating, User, utc_now
from otaku.storage.repository import Repository


@dataclass(frozen=True)
class ArrivalOutcome:
    """Who arrived."""

    user_ids: list[int]
    ratings: int
    pool_left: int


def _pool(repo: Repository) -> list[int]:
    return sorted(
        int(u)
        for u in repo.session.scalars(
            select(FutureUser.user_id).where(FutureUser.arrived_at.is_(None))
        )
    )


def _starters(moved: list[tuple[int, int, int]], keep: int, rng: np.random.Generator) -> list[int]:
    """Indexes of up to ``keep`` seeded-random ratings per user."""
    by_user: dict[int, list[int]] = {}
    for index, (user_id, _, _) in enumerate(moved):
        by_user.setdefault(user_id, []).append(index)
    chosen: list[int] = []
    for user_id in sorted(by_user):
        indexes = by_user[user_id]
        count = min(keep, len(indexes))
        chosen.extend(int(i) for i in rng.choice(indexes, size=count, replace=False))
    return sorted(chosen)


def simulate_arrivals(
    database: Database,
    seed: int,
    low: int = 10,
    high: int = 25,
    starter_ratings: int | None = None,
) -> ArrivalOutcome:
    """Move ``low``..``high`` pooled users (seeded choice) into the live tables, with all
    their ratings, or (``starter_ratings``) with that many of them, the rest kept as truth."""
    if not 0 < low <= high:
        raise ValueError(f"need 0 < low <= high, got {low}..{high}")
    if starter_ratings is not None and starter_ratings < 0:
        raise ValueError(f"starter_ratings must be >= 0, got {starter_ratings}")
    with database.transaction() as session:
        repo = Repository(session)
        pool = _pool(repo)
        rng = np.random.default_rng([seed, len(pool)])  # a different draw as the pool shrinks
        count = min(int(rng.integers(low, high + 1)), len(pool))
        chosen = (
            sorted(int(u) for u in rng.choice(pool, size=count, replace=False)) if count else []
        )
        if not chosen:
            return ArrivalOutcome([], 0, len(pool))
        stamp = utc_now()
        repo.bulk_insert(
            User, [{"user_id": u, "origin": "simulated", "created_at": stamp} for u in chosen]
        )
        moved = [
            (int(u), int(a), int(r))
            for u, a, r in session.execute(
                select(FutureRating.user_id, FutureRating.anime_id, FutureRating.rating)
                .where(FutureRating.user_id.in_(chosen))
                .order_by(FutureRating.user_id, FutureRating.anime_id)
            )
        ]
        if starter_ratings is not None:
            moved = [moved[i] for i in _starters(moved, starter_ratings, rng)]
        rows = [
            {"user_id": u, "anime_id": a, "rating": r, "updated_at": stamp} for u, a, r in moved
        ]
        if rows:
            session.execute(insert(Rating), rows)
        if starter_ratings is None:
            session.execute(delete(FutureRating).where(FutureRating.user_id.in_(chosen)))
            session.execute(delete(FutureUser).where(FutureUser.user_id.in_(chosen)))
        else:
            for user_id, anime_id, _ in moved:
                session.execute(
                    delete(FutureRating).where(
                        FutureRating.user_id == user_id, FutureRating.anime_id == anime_id
                    )
                )
            session.execute(
                update(FutureUser).where(FutureUser.user_id.in_(chosen)).values(arrived_at=stamp)
            )
        return ArrivalOutcome(chosen, len(moved), len(pool) - len(chosen))


@dataclass
class DayOutcome:
    """What one simulated day did."""

    day: int
    arrived: int
    asked: int
    rated: int
    dismissed: int
    arms: dict[str, int] = field(default_factory=dict)  # pages served per arm


def truth_of(database: Database) -> dict[int, dict[int, int]]:
    """Arrived users' ratings not yet given (user → anime → rating)."""
    with database.reading() as session:
        rows = session.execute(
            select(FutureRating.user_id, FutureRating.anime_id, FutureRating.rating)
            .join(FutureUser, FutureUser.user_id == FutureRating.user_id)
            .where(FutureUser.arrived_at.is_not(None))
        ).all()
        arrived = session.scalars(
            select(FutureUser.user_id).where(FutureUser.arrived_at.is_not(None))
        ).all()
    truth: dict[int, dict[int, int]] = {int(u): {} for u in arrived}
    for user_id, anime_id, rating in rows:
        truth[int(user_id)][int(anime_id)] = int(rating)
    return truth


def forget_truth(database: Database, user_id: int, anime_ids: list[int]) -> None:
    """Drop truth rows that became real ratings."""
    if not anime_ids:
        return
    with database.transaction() as session:
        session.execute(
            delete(FutureRating).where(
                FutureRating.user_id == user_id, FutureRating.anime_id.in_(anime_ids)
            )
        )
