"""Online metrics per arm, read from what the database recorded: the impressions an
experiment showed, the ratings and "not interested" given after them.

- hit rate@k: the share of an arm's users who rated one of the anime shown to them in the top
  k >= 7 within the hit window after it was first shown (the user is the unit: users are
  independent, their pages are not);
- mean rating of shown-then-rated anime, dismiss rate (shown anime later marked "not
  interested"), catalogue coverage (distinct anime shown / catalogue), latency.
Each other arm is compared with the first (the control): a two-proportion z-test of hit rates,
a z-test of mean ratings, and the users per arm the observed hit-rate difference would need.
Mean rating and dismiss rate are ratios of per-user sums, their intervals and test taken by
the delta method over users (one user's ratings are not independent draws).
"""

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from otaku.columns import LIKED_THRESHOLD
from otaku.experiments.definition import ExperimentSpec
from otaku.experiments.stats import (
    Interval,
    TestResult,
    ratio_interval,
    ratio_test,
    sample_ratio_test,
    two_proportion_test,
    users_needed,
    wilson_interval,
)
from otaku.storage.database import Database
from otaku.storage.models import NOT_INTERESTED, Anime, Feedback, Impression, Rating

IN_CHUNK = 5_000  # user ids per IN (...) query


@dataclass(frozen=True)
class ArmReport:
    """One arm's online metrics."""

    arm: str
    strategy: str
    users: int
    impressions: int
    hit_users: int
    hit_rate: Interval
    rated: int
    mean_rating: Interval
    shown: int  # distinct (user, anime) pairs shown in the top k
    dismissed: int
    dismiss_rate: Interval
    coverage: float
    latency_p50_ms: float
    latency_p99_ms: float


@dataclass(frozen=True)
class ArmComparison:
    """One arm against the control."""

    arm: str
    control: str
    hit_rate_test: TestResult
    mean_rating_test: TestResult
    users_needed: float  # per arm, for the observed hit-rate difference (80% power, 5%)
    enough_users: bool


@dataclass(frozen=True)
class ExperimentReport:
    """An experiment's arms and their comparisons."""

    experiment: str
    k: int
    window_days: float
    catalog_size: int
    arms: list[ArmReport]
    comparisons: list[ArmComparison]
    sample_ratio: TestResult  # users per arm against the shares (a small p: do not trust)


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), IN_CHUNK):
        yield ids[start : start + IN_CHUNK]


def _shown(database: Database, name: str, k: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Impressions (arm, latency) and the (user, anime) pairs first shown in the top k."""
    with database.reading() as session:
        rows = session.execute(
            select(
                Impression.user_id,
                Impression.arm,
                Impression.first_rank,
                Impression.anime_ids,
                Impression.shown_at,
                Impression.latency_ms,
            ).where(Impression.experiment == name, Impression.user_id.is_not(None))
        ).all()
    impressions = pd.DataFrame(
        [(r.user_id, r.arm, r.latency_ms) for r in rows], columns=["user_id", "arm", "latency_ms"]
    )
    pairs = pd.DataFrame(
        [
            (r.user_id, r.arm, anime_id, r.shown_at)
            for r in rows
            for anime_id in r.anime_ids[: max(0, k - r.first_rank + 1)]
        ],
        columns=["user_id", "arm", "anime_id", "shown_at"],
    )
    pairs["shown_at"] = pd.to_datetime(pairs["shown_at"], utc=True)
    first = pairs.sort_values("shown_at").drop_duplicates(["user_id", "anime_id"])
    return impressions, first


def _after_shown(
    database: Database, columns: Sequence[Any], pairs: pd.DataFrame, window: timedelta
) -> pd.DataFrame:
    """Rows of (user, anime, ..., at) for the shown pairs, kept when ``at`` falls within the
    window after the anime was first shown to the user."""
    users = sorted(int(u) for u in pairs["user_id"].unique())
    names = ["user_id", "anime_id", "value", "at"]
    found: list[tuple[object, ...]] = []
    with database.reading() as session:
        user_column = columns[0]
        for chunk in _chunks(users):
            query = select(*columns).where(user_column.in_(chunk))
            found.extend(tuple(row) for row in session.execute(query))
    frame = pd.DataFrame(found, columns=names)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    merged = pairs.merge(frame, on=["user_id", "anime_id"])
    in_window = (merged["at"] >= merged["shown_at"]) & (merged["at"] <= merged["shown_at"] + window)
    return merged[in_window]


def _of_arm(frame: pd.DataFrame, arm: str) -> pd.DataFrame:
    return frame[frame["arm"] == arm]


@dataclass(frozen=True)
class PerUser:
    """An arm's users, one entry each: the sum and count of their shown-then-rated anime's
    ratings, and how many anime were shown to them and how many of those they dismissed."""

    rating_sums: np.ndarray
    rated: np.ndarray
    shown: np.ndarray
    dismissed: np.ndarray

    @classmethod
    def of(cls, pairs: pd.DataFrame, rated: pd.DataFrame, dismissed: pd.DataFrame) -> "PerUser":
        """Per user of ``pairs`` (users without a rating or a dismissal count 0)."""
        users = pd.Index(pairs["user_id"].unique())

        def by_user(grouped: pd.Series) -> np.ndarray:
            return grouped.reindex(users, fill_value=0).to_numpy(np.float64)

        values = rated["value"].astype(np.float64)
        return cls(
            rating_sums=by_user(values.groupby(rated["user_id"]).sum()),
            rated=by_user(rated.groupby("user_id").size()),
            shown=by_user(pairs.groupby("user_id").size()),
            dismissed=by_user(dismissed.groupby("user_id").size()),
        )


def _arm_report(
    arm: str,
    strategy: str,
    impressions: pd.DataFrame,
    pairs: pd.DataFrame,
    rated: pd.DataFrame,
    per_user: PerUser,
    catalog_size: int,
) -> ArmReport:
    users = pairs["user_id"].nunique()
    hits = rated[rated["value"] >= LIKED_THRESHOLD]["user_id"].nunique()
    latency = impressions["latency_ms"].to_numpy(dtype=np.float64)
    p50, p99 = np.percentile(latency, [50, 99]) if len(latency) else (math.nan, math.nan)
    return ArmReport(
        arm=arm,
        strategy=strategy,
        users=int(users),
        impressions=len(impressions),
        hit_users=int(hits),
        hit_rate=wilson_interval(int(hits), int(users)),
        rated=len(rated),
        mean_rating=ratio_interval(per_user.rating_sums, per_user.rated),
        shown=len(pairs),
        dismissed=int(per_user.dismissed.sum()),
        dismiss_rate=ratio_interval(per_user.dismissed, per_user.shown),
        coverage=pairs["anime_id"].nunique() / catalog_size if catalog_size else math.nan,
        latency_p50_ms=float(p50),
        latency_p99_ms=float(p99),
    )


def _compare(arm: ArmReport, control: ArmReport, per_user: dict[str, PerUser]) -> ArmComparison:
    needed = users_needed(control.hit_rate.value, arm.hit_rate.value)
    ours, theirs = per_user[arm.arm], per_user[control.arm]
    return ArmComparison(
        arm=arm.arm,
        control=control.arm,
        hit_rate_test=two_proportion_test(
            arm.hit_users, arm.users, control.hit_users, control.users
        ),
        mean_rating_test=ratio_test(ours.rating_sums, ours.rated, theirs.rating_sums, theirs.rated),
        users_needed=needed,
        enough_users=min(arm.users, control.users) >= needed,
    )


def experiment_report(
    database: Database, spec: ExperimentSpec, k: int = 10, window_days: float = 7.0
) -> ExperimentReport:
    """The online metrics of every arm of ``spec`` and each arm against the first."""
    if k < 1 or window_days <= 0:
        raise ValueError(f"need k >= 1 and window_days > 0, got {k} and {window_days}")
    window = timedelta(days=window_days)
    impressions, pairs = _shown(database, spec.name, k)
    rated = dismissed = pd.DataFrame(columns=[*pairs.columns, "value", "at"])
    if len(pairs):
        rated = _after_shown(
            database,
            [Rating.user_id, Rating.anime_id, Rating.rating, Rating.updated_at],
            pairs,
            window,
        )
        dismissed = _after_shown(
            database,
            [Feedback.user_id, Feedback.anime_id, Feedback.kind, Feedback.created_at],
            pairs,
            window,
        )
        dismissed = dismissed[dismissed["value"] == NOT_INTERESTED]
    with database.reading() as session:
        catalog_size = int(session.scalar(select(func.count()).select_from(Anime)) or 0)
    arms: list[ArmReport] = []
    per_user: dict[str, PerUser] = {}
    for arm in spec.arms:
        arm_pairs, arm_rated = _of_arm(pairs, arm.name), _of_arm(rated, arm.name)
        per_user[arm.name] = PerUser.of(arm_pairs, arm_rated, _of_arm(dismissed, arm.name))
        arms.append(
            _arm_report(
                arm.name,
                arm.strategy,
                _of_arm(impressions, arm.name),
                arm_pairs,
                arm_rated,
                per_user[arm.name],
                catalog_size,
            )
        )
    comparisons = [_compare(arm, arms[0], per_user) for arm in arms[1:]]
    sample_ratio = sample_ratio_test([arm.users for arm in arms], [a.share for a in spec.arms])
    return ExperimentReport(
        spec.name, k, window_days, catalog_size, arms, comparisons, sample_ratio
    )
