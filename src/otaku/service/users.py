"""Users as the service sees them: their current ratings live in the database; every write
updates the stored feature vector in the same transaction, and the next recommendation folds
the new ratings in (no retraining).

When the database cannot be reached, reads fall back to what the loaded model knows, and
writes fail with :class:`DatabaseUnavailableError` (503): nothing is half-written.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError, OperationalError

from otaku.pipeline.engine import Engine, Profile, UnknownAnimeError, UnknownUserError
from otaku.storage.database import Database
from otaku.storage.models import Rating, User
from otaku.storage.preferences import refresh_preferences
from otaku.storage.repository import Repository

log = logging.getLogger(__name__)


_RATINGS_OF = select(Rating.anime_id, Rating.rating).where(Rating.user_id == bindparam("user_id"))
_USER = select(User.user_id).where(User.user_id == bindparam("user_id"))


class DatabaseUnavailableError(RuntimeError):
    """The database cannot be reached right now."""


class UserExistsError(ValueError):
    """A user with that id already exists."""


class NoSuchRatingError(LookupError):
    """The user has not rated that anime."""


class UserDirectory:
    """Reads and writes users' ratings (the database is optional: without one, the model's
    training data is all there is)."""

    def __init__(self, database: Database | None) -> None:
        self.database = database

    def _require_database(self) -> Database:
        if self.database is None:
            raise DatabaseUnavailableError("no database is configured: writes are disabled")
        return self.database

    def profile(self, engine: Engine, user_id: int) -> Profile:
        """The user's current profile; unknown everywhere → :class:`UnknownUserError`."""
        if self.database is not None:
            try:
                ratings = self._current_ratings(user_id)
            except OperationalError as error:
                log.warning("database unreachable, answering from the model: %s", error)
                return engine.known_profile(user_id)
            if ratings is not None:
                return engine.profile_from_ratings(user_id, ratings)
        return engine.known_profile(user_id)

    def _current_ratings(self, user_id: int) -> dict[int, int] | None:
        """The user's ratings (None when the user is not in the database): one query on the
        request path, a second only for a user without ratings."""
        assert self.database is not None
        with self.database.engine.connect() as connection:
            rows = connection.execute(_RATINGS_OF, {"user_id": user_id}).all()
            if rows:
                return {int(anime_id): int(rating) for anime_id, rating in rows}
            exists = connection.execute(_USER, {"user_id": user_id}).first() is not None
        return {} if exists else None

    @contextmanager
    def _write(self) -> Iterator[Repository]:
        """One write transaction; an unreachable database becomes DatabaseUnavailableError."""
        try:
            with self._require_database().transaction() as session:
                yield Repository(session)
        except OperationalError as error:
            raise DatabaseUnavailableError(f"the database is unreachable: {error}") from error

    def create(self, user_id: int | None) -> int:
        """Create a user (a fresh id when none is given)."""
        try:
            with self._write() as repo:
                chosen = repo.next_user_id() if user_id is None else user_id
                if repo.user_exists(chosen):
                    raise UserExistsError(f"user {chosen} already exists")
                repo.add_user(chosen, "api")
                return chosen
        except IntegrityError as error:  # created concurrently, or held in the future pool
            raise UserExistsError(f"user {user_id} already exists") from error

    def rate(self, engine: Engine, user_id: int, anime_id: int, rating: int) -> bool:
        """Add or change a rating and refresh the user's features; True when it was new."""
        engine.item_of(anime_id)  # UnknownAnimeError for anime outside the model's catalog
        with self._write() as repo:
            self._check_user(repo, user_id)
            if not repo.anime_exists(anime_id):
                raise UnknownAnimeError(anime_id)
            created = repo.set_rating(user_id, anime_id, rating)
            refresh_preferences(repo, [user_id])
            return created

    def unrate(self, engine: Engine, user_id: int, anime_id: int) -> None:
        """Delete a rating and refresh the user's features."""
        with self._write() as repo:
            self._check_user(repo, user_id)
            if not repo.delete_rating(user_id, anime_id):
                raise NoSuchRatingError(f"user {user_id} has not rated anime {anime_id}")
            refresh_preferences(repo, [user_id])

    @staticmethod
    def _check_user(repo: Repository, user_id: int) -> None:
        if not repo.user_exists(user_id):
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
