"""Users as the service sees them: their current ratings live in the database, each write is
one transaction, and the next recommendation folds the new ratings in (no retraining).

When the database cannot be reached, reads fall back to the newest ratings this process knows
(or the model's training data) and say so in the answer, a user known to neither gets 503,
and writes fail with :class:`DatabaseUnavailableError` (503): nothing is half-written.
"""

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, bindparam, literal, select, union_all
from sqlalchemy.exc import IntegrityError, OperationalError

from otaku.pipeline.cache import LruCache
from otaku.pipeline.engine import Engine, UnknownAnimeError
from otaku.pipeline.precomputed import PRECOMPUTED_STRATEGY, StoredRanking, adopt_stored
from otaku.pipeline.profiles import Profile, UnknownUserError
from otaku.storage.database import Database
from otaku.storage.models import NOT_INTERESTED, Feedback, PrecomputedRanking, Rating, User
from otaku.storage.repository import Repository, UserIdsExhaustedError

__all__ = [
    "CurrentProfile",
    "DatabaseUnavailableError",
    "NoSuchRatingError",
    "UserDirectory",
    "UserExistsError",
    "UserIdsExhaustedError",
]

log = logging.getLogger(__name__)


_RATINGS_OF = select(Rating.anime_id, Rating.rating).where(Rating.user_id == bindparam("user_id"))
DISMISSED = 0  # the rating column of a dismissal in _HISTORY_OF (ratings are 1..10)
# ratings and "not interested" anime in one round trip
_DISMISSED_OF = select(Feedback.anime_id).where(
    Feedback.user_id == bindparam("user_id"), Feedback.kind == NOT_INTERESTED
)
_HISTORY_OF = union_all(_RATINGS_OF, _DISMISSED_OF.add_columns(literal(DISMISSED)))
_USER = select(User.user_id).where(User.user_id == bindparam("user_id"))
_STORED_RANKING = select(
    PrecomputedRanking.model_version,
    PrecomputedRanking.profile_key,
    PrecomputedRanking.anime_ids,
    PrecomputedRanking.scores,
    PrecomputedRanking.first_page_ratings,
).where(PrecomputedRanking.user_id == bindparam("user_id"))


UNREACHABLE = "the database is unavailable, so writes are refused for now; try again shortly"


class DatabaseUnavailableError(RuntimeError):
    """The database cannot be reached right now."""


class UserExistsError(ValueError):
    """A user with that id already exists."""


class NoSuchRatingError(LookupError):
    """The user has not rated that anime."""


RECENT_USERS = 20_000
TRAINED_FALLBACK = (
    "the database is unavailable: answered from the ratings the model was trained on; "
    "ratings given since then are not taken into account"
)
RECENT_FALLBACK = (
    "the database is unavailable: answered from the ratings this server last read or wrote "
    "for this user; changes made elsewhere since then are not taken into account"
)


@dataclass(frozen=True)
class CurrentProfile:
    """A user's profile, and why it may be out of date (None: it is current)."""

    profile: Profile
    degraded: str | None = None
    precomputed: bool = False  # the engine holds the user's precomputed ranking for it


class UserDirectory:
    """Reads and writes users' ratings (the database is optional: without one, the model's
    training data is all there is).

    Writes for one user run one at a time (a row lock on PostgreSQL, ``BEGIN IMMEDIATE`` on
    SQLite), so a double-clicked "Rate", or a rating changed and deleted at once, both succeed
    in some order. What this process last read or wrote of each user (up to
    :data:`RECENT_USERS` users) is kept, so that while the database is down a user's answer
    is built from their newest ratings known here, and says so.
    """

    def __init__(self, database: Database | None) -> None:
        self.database = database
        self._recent: LruCache[int, tuple[np.ndarray, np.ndarray]] = LruCache(RECENT_USERS)
        # ... and the anime each of them dismissed, kept apart: a user only the model knows
        # has dismissals but no ratings here
        self._recent_dismissed: LruCache[int, tuple[int, ...]] = LruCache(RECENT_USERS)
        # Who asked lately, newest first: a new model warms them before anyone else.
        self.asked: LruCache[int, bool] = LruCache(RECENT_USERS)

    def _require_database(self) -> Database:
        if self.database is None:
            raise DatabaseUnavailableError("no database is configured: writes are disabled")
        return self.database

    def _remember(self, user_id: int, ratings: Mapping[int, int]) -> None:
        anime_ids = np.fromiter(ratings.keys(), dtype=np.int64, count=len(ratings))
        values = np.fromiter(ratings.values(), dtype=np.int8, count=len(ratings))
        self._recent.put(user_id, (anime_ids, values))

    def _remembered(self, user_id: int) -> dict[int, int] | None:
        recent = self._recent.get(user_id)
        if recent is None:
            return None
        return dict(zip(recent[0].tolist(), recent[1].tolist(), strict=True))

    def current(
        self, engine: Engine, user_id: int, precomputed_page: bool = False
    ) -> CurrentProfile:
        """The user's current profile; unknown everywhere → :class:`UnknownUserError`; the
        database down and the user unknown to this server → :class:`DatabaseUnavailableError`
        (a 503, not a confident 404).

        ``precomputed_page``: the page asked for can be read from a precomputed ranking
        (:func:`otaku.pipeline.precomputed.answers_from_precomputed`). Unless the engine holds
        the ranking already, the user's stored one is read on the same connection and handed
        to the engine when it is valid for this model and these ratings."""
        self.asked.put(user_id, True)
        if self.database is None:
            return CurrentProfile(engine.known_profile(user_id))
        try:
            with self.database.engine.connect() as connection:
                ratings, dismissed = _history_of(connection, user_id)
                profile = (  # a user only the model knows: as trained
                    engine.known_profile(user_id)
                    if ratings is None
                    else engine.profile_from_ratings(user_id, ratings)
                )
                if dismissed:
                    profile = engine.with_dismissed(profile, dismissed)
                adopted = precomputed_page and _adopt_stored(connection, engine, user_id, profile)
        except OperationalError as error:
            log.warning("database unreachable, answering from what is known here: %s", error)
            return self._without_database(engine, user_id)
        if ratings is not None:
            self._remember(user_id, ratings)
        self._recent_dismissed.put(user_id, tuple(dismissed))
        return CurrentProfile(profile, precomputed=adopted)

    def _without_database(self, engine: Engine, user_id: int) -> CurrentProfile:
        """The user's answer from what this process knows: their last ratings read or written
        here, else their training ratings; the dismissals last seen here excluded either
        way."""
        remembered = self._remembered(user_id)
        if remembered is not None:
            profile, source = engine.profile_from_ratings(user_id, remembered), RECENT_FALLBACK
        else:
            try:
                profile, source = engine.known_profile(user_id), TRAINED_FALLBACK
            except UnknownUserError:
                raise DatabaseUnavailableError(
                    f"the database is unavailable and user {user_id} is not in the served "
                    "model, so their ratings cannot be read now; try again shortly"
                ) from None
        dismissed = self._recent_dismissed.get(user_id)
        if dismissed:
            profile = engine.with_dismissed(profile, dismissed)
        return CurrentProfile(profile, source)

    def current_ratings(self, user_id: int) -> dict[int, int] | None:
        """The user's ratings (None when the user is not in the database)."""
        assert self.database is not None
        with self.database.engine.connect() as connection:
            return _ratings_of(connection, user_id)

    def stored_ranking(self, user_id: int) -> StoredRanking | None:
        """The user's precomputed ranking as stored (None: there is none)."""
        assert self.database is not None
        with self.database.engine.connect() as connection:
            return _stored_ranking(connection, user_id)

    @contextmanager
    def _write(self) -> Iterator[Repository]:
        """One write transaction; an unreachable database becomes DatabaseUnavailableError
        (its driver message is logged, not shown to the client)."""
        try:
            with self._require_database().transaction() as session:
                yield Repository(session)
        except OperationalError as error:
            log.warning("database unreachable for a write: %s", error)
            raise DatabaseUnavailableError(UNREACHABLE) from error

    def create(self, user_id: int | None) -> int:
        """Create a user (a fresh id when none is given: allocated under a lock, so concurrent
        creations get distinct ids)."""
        try:
            with self._write() as repo:
                chosen = repo.next_user_id() if user_id is None else user_id
                if repo.user_exists(chosen):
                    raise UserExistsError(f"user {chosen} already exists")
                repo.add_user(chosen, "api")
        except IntegrityError as error:  # the same explicit id created concurrently
            raise UserExistsError(f"user {user_id} already exists") from error
        self._remember(chosen, {})
        return chosen

    def rate(self, engine: Engine, user_id: int, anime_id: int, rating: int) -> bool:
        """Add or change a rating; True when it was new."""
        engine.item_of(anime_id)  # UnknownAnimeError for anime outside the model's catalog
        with self._write() as repo:
            self._lock_user(repo, user_id)
            if not repo.anime_exists(anime_id):
                raise UnknownAnimeError(anime_id)
            created = repo.set_rating(user_id, anime_id, rating)
            current = dict(repo.user_ratings(user_id))
        self._remember(user_id, current)
        return created

    def give_feedback(
        self, engine: Engine, user_id: int, anime_id: int, kind: str, request_id: str | None
    ) -> bool:
        """Store a user's "clicked" or "not interested" for an anime; True when it is new (a
        repeat only updates its time)."""
        engine.item_of(anime_id)
        with self._write() as repo:
            self._lock_user(repo, user_id)
            if not repo.anime_exists(anime_id):
                raise UnknownAnimeError(anime_id)
            created = repo.set_feedback(user_id, anime_id, kind, request_id)
            if kind == NOT_INTERESTED:
                self._note_dismissed(repo, user_id)
        return created

    def withdraw_feedback(self, user_id: int, anime_id: int, kind: str) -> None:
        """Take back a "clicked" or "not interested" (the anime may be recommended again)."""
        with self._write() as repo:
            self._lock_user(repo, user_id)
            if not repo.delete_feedback(user_id, anime_id, kind):
                raise NoSuchRatingError(f"user {user_id} gave no {kind!r} for anime {anime_id}")
            if kind == NOT_INTERESTED:
                self._note_dismissed(repo, user_id)

    def _note_dismissed(self, repo: Repository, user_id: int) -> None:
        """Keep the user's dismissals as they stand in this write (for answers while the
        database is down)."""
        rows = repo.session.execute(_DISMISSED_OF, {"user_id": user_id}).scalars()
        self._recent_dismissed.put(user_id, tuple(int(anime_id) for anime_id in rows))

    def unrate(self, engine: Engine, user_id: int, anime_id: int) -> None:
        """Delete a rating."""
        with self._write() as repo:
            self._lock_user(repo, user_id)
            if not repo.delete_rating(user_id, anime_id):
                raise NoSuchRatingError(f"user {user_id} has not rated anime {anime_id}")
            current = dict(repo.user_ratings(user_id))
        self._remember(user_id, current)

    @staticmethod
    def _lock_user(repo: Repository, user_id: int) -> None:
        if not repo.lock_user(user_id):
            raise UnknownUserError(user_id)

    def reachable(self) -> bool:
        """Whether the database answers (True when there is none to reach)."""
        if self.database is None:
            return True
        try:
            with self.database.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            return True
        except OperationalError:
            return False


def _ratings_of(connection: Connection, user_id: int) -> dict[int, int] | None:
    """A user's ratings (None: no such user), read on a connection (no ORM session, no SQLite
    write lock): one query, a second only for a user without ratings."""
    rows = connection.execute(_RATINGS_OF, {"user_id": user_id}).all()
    if rows:
        return {int(anime_id): int(rating) for anime_id, rating in rows}
    return _none_if_absent(connection, user_id)


def _none_if_absent(connection: Connection, user_id: int) -> dict[int, int] | None:
    exists = connection.execute(_USER, {"user_id": user_id}).first() is not None
    return {} if exists else None


def _history_of(connection: Connection, user_id: int) -> tuple[dict[int, int] | None, list[int]]:
    """A user's ratings (None: no such user) and the anime they are not interested in, in one
    query (a second only for a user without either)."""
    ratings: dict[int, int] = {}
    dismissed: list[int] = []
    for anime_id, rating in connection.execute(_HISTORY_OF, {"user_id": user_id}):
        if rating == DISMISSED:
            dismissed.append(int(anime_id))
        else:
            ratings[int(anime_id)] = int(rating)
    if ratings or dismissed:
        return ratings, dismissed
    return _none_if_absent(connection, user_id), dismissed


def _stored_ranking(connection: Connection, user_id: int) -> StoredRanking | None:
    row = connection.execute(_STORED_RANKING, {"user_id": user_id}).first()
    if row is None:
        return None
    return StoredRanking(
        user_id,
        row.model_version,
        row.profile_key,
        row.anime_ids,
        row.scores,
        row.first_page_ratings,
    )


def _adopt_stored(connection: Connection, engine: Engine, user_id: int, profile: Profile) -> bool:
    """Hand the engine the profile's stored ranking (True when taken); none is read when the
    engine holds the ranking already."""
    if engine.rankings.has_deep_ranking(profile, PRECOMPUTED_STRATEGY):
        return False
    return adopt_stored(engine, profile, _stored_ranking(connection, user_id))
