"""The database schema (SQLAlchemy 2): anime, users, ratings, the pool of future users held
back for the daily simulation, batch-job runs, precomputed rankings, and online experiments
(their definitions, the impressions shown and the feedback given)."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utc_now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""


class Anime(Base):
    """One anime of the catalog (the columns the service and the features need)."""

    __tablename__ = "anime"

    anime_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(512))
    english_name: Mapped[str | None] = mapped_column(String(512))
    japanese_name: Mapped[str | None] = mapped_column(String(512))
    type: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(64))
    age_rating: Mapped[str | None] = mapped_column(String(64))
    genres: Mapped[list[str]] = mapped_column(JSON)
    start_year: Mapped[int | None] = mapped_column(Integer)
    numbers: Mapped[dict[str, Any]] = mapped_column(JSON)  # MAL numeric columns (Score, ...)
    synopsis: Mapped[str | None] = mapped_column(Text)


class User(Base):
    """A user with ratings in the live tables."""

    __tablename__ = "users"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    origin: Mapped[str] = mapped_column(String(16))  # dataset | api | simulated
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now, server_default=func.now()
    )


class Rating(Base):
    """A user's rating of an anime (1..10)."""

    __tablename__ = "ratings"
    __table_args__ = (CheckConstraint("rating BETWEEN 1 AND 10", name="rating_range"),)

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    )
    anime_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("anime.anime_id"), primary_key=True, index=True
    )
    rating: Mapped[int] = mapped_column(SmallInteger)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now, server_default=func.now()
    )


class FutureUser(Base):
    """A user held back from the live tables, to arrive later (the daily simulation). A user
    who arrived in the closed loop keeps the row (``arrived_at`` set): their ratings not yet
    given are the truth they act on when they are shown an anime."""

    __tablename__ = "future_users"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    arrived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class FutureRating(Base):
    """A rating of a future user."""

    __tablename__ = "future_ratings"
    __table_args__ = (CheckConstraint("rating BETWEEN 1 AND 10", name="future_rating_range"),)

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("future_users.user_id", ondelete="CASCADE"), primary_key=True
    )
    anime_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("anime.anime_id"), primary_key=True
    )
    rating: Mapped[int] = mapped_column(SmallInteger)


class JobRun(Base):
    """One run of a batch job (simulate-users, retrain): when, and how it ended."""

    __tablename__ = "job_runs"

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(32))  # running, done, promoted, kept, failed
    detail: Mapped[str | None] = mapped_column(Text)


class PrecomputedRanking(Base):
    """A known user's default ranking computed ahead of time (``otaku precompute``): valid
    only for the model version that computed it and the exact profile it was computed for
    (``profile_key``, the profile's fingerprint), so a stale row is never served."""

    __tablename__ = "precomputed_rankings"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    model_version: Mapped[str] = mapped_column(String(64))
    profile_key: Mapped[str] = mapped_column(String(64))
    anime_ids: Mapped[list[int]] = mapped_column(JSON)
    scores: Mapped[list[float]] = mapped_column(JSON)
    # The rating model's predictions for the first page's anime (raw, as it predicts them):
    # a stored first page then needs no model call (None: rows written before they were kept)
    first_page_ratings: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ExperimentRecord(Base):
    """An online experiment: its arms (JSON, see :mod:`otaku.experiments.definition`) and when
    it ran. ``running`` is True while it runs and NULL after: a unique column, so the database
    itself guarantees that at most one experiment runs at a time."""

    __tablename__ = "experiments"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    arms: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    running: Mapped[bool | None] = mapped_column(Boolean, unique=True, nullable=True)


class Impression(Base):
    """One recommendation page as it was shown: to whom, by which arm and model, which anime
    at which ranks, and how long it took. Written off the request path, in batches."""

    __tablename__ = "impressions"

    impression_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    experiment: Mapped[str | None] = mapped_column(String(64), index=True)
    arm: Mapped[str | None] = mapped_column(String(64))
    strategy: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    first_rank: Mapped[int] = mapped_column(Integer)  # the rank of anime_ids[0] (offset + 1)
    anime_ids: Mapped[list[int]] = mapped_column(JSON)
    latency_ms: Mapped[float] = mapped_column(Float)
    shown_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


CLICKED = "clicked"
NOT_INTERESTED = "not_interested"  # never recommended to that user again
FEEDBACK_KINDS = (CLICKED, NOT_INTERESTED)


class Feedback(Base):
    """A user's reaction to a shown anime other than a rating: "clicked", or "not_interested"
    (that anime is never recommended to the user again)."""

    __tablename__ = "feedback"
    __table_args__ = (
        CheckConstraint("kind IN ('clicked', 'not_interested')", name="feedback_kind"),
    )

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    )
    anime_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("anime.anime_id"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now, server_default=func.now(), index=True
    )
