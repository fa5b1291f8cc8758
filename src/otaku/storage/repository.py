"""Reads and writes of users, ratings, preferences, the catalog and the future-user pool.

One :class:`Repository` wraps one session (one transaction, see
:meth:`otaku.storage.database.Database.transaction`). Bulk inserts use PostgreSQL's COPY
when the database is PostgreSQL, and multi-row INSERTs elsewhere.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from otaku.columns import ID_MAX, Columns
from otaku.storage.bulk import keys_set_aside, worth_setting_aside
from otaku.storage.models import (
    NOT_INTERESTED,
    Anime,
    Base,
    Feedback,
    FutureUser,
    PrecomputedRanking,
    Rating,
    User,
    utc_now,
)

CHUNK_ROWS = 50_000
# Held (transaction-scoped) while a new user id is chosen and inserted on PostgreSQL, so two
# creations never pick the same id; SQLite write transactions are serialised already.
USER_ID_ALLOCATION_LOCK = 0x07A4_0001


class UserIdsExhaustedError(RuntimeError):
    """No id above the largest one in use is left in the id range."""


class Repository:
    """Data access over one session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # ----- reads ---------------------------------------------------------------------------
    def count(self, table: type[Base]) -> int:
        """Rows in a table."""
        return int(self.session.scalar(select(func.count()).select_from(table)) or 0)

    def ids(self, column: Any) -> set[int]:
        """Every value of an id column."""
        return {int(value) for value in self.session.scalars(select(column))}

    def user_exists(self, user_id: int) -> bool:
        """Whether a live user has this id."""
        return self.session.get(User, user_id) is not None

    def lock_user(self, user_id: int) -> bool:
        """Whether a live user has this id; their row stays locked until the transaction ends
        (``FOR UPDATE`` on PostgreSQL), so writes for one user run one at a time."""
        locked = select(User.user_id).where(User.user_id == user_id).with_for_update()
        return self.session.execute(locked).first() is not None

    def anime_exists(self, anime_id: int) -> bool:
        """Whether the catalog holds this anime."""
        return self.session.get(Anime, anime_id) is not None

    def user_ratings(self, user_id: int) -> list[tuple[int, int]]:
        """A live user's (anime id, rating) pairs."""
        rows = self.session.execute(
            select(Rating.anime_id, Rating.rating).where(Rating.user_id == user_id)
        )
        return [(int(anime_id), int(rating)) for anime_id, rating in rows]

    def ratings_frame(self, user_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """Every live rating (or those of ``user_ids``) as a frame (user_id, anime_id, rating)."""
        query = select(Rating.user_id, Rating.anime_id, Rating.rating)
        if user_ids is not None:
            query = query.where(Rating.user_id.in_([int(user) for user in user_ids]))
        rows = self.session.execute(query)
        frame = pd.DataFrame(
            rows.all(), columns=[Columns.user_id, Columns.anime_id, Columns.rating]
        )
        return frame.astype("int64")

    def catalog_frame(self) -> tuple[pd.DataFrame, pd.Series]:
        """The catalog in the shape the loaders produce, and the synopses by anime id."""
        rows = self.session.scalars(select(Anime).order_by(Anime.anime_id)).all()
        records = []
        for anime in rows:
            record: dict[str, Any] = {
                Columns.anime_id: anime.anime_id,
                Columns.name: anime.name,
                Columns.english_name: anime.english_name or "",
                Columns.japanese_name: anime.japanese_name or "",
                Columns.type: anime.type or "",
                Columns.source: anime.source or "",
                Columns.age_rating: anime.age_rating or "",
                Columns.genres: list(anime.genres),
                Columns.start_year: float("nan") if anime.start_year is None else anime.start_year,
            }
            record.update({k: float("nan") if v is None else v for k, v in anime.numbers.items()})
            records.append(record)
        catalog = pd.DataFrame(records)
        synopses = pd.Series(
            [anime.synopsis or "" for anime in rows], index=[anime.anime_id for anime in rows]
        )
        return catalog, synopses

    # ----- writes --------------------------------------------------------------------------
    def next_user_id(self) -> int:
        """An id no live or future user has: one above the largest in use. Concurrent callers
        wait for each other (until the caller's transaction ends), so each gets its own."""
        if self.session.get_bind().dialect.name == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            self.session.execute(lock, {"key": USER_ID_ALLOCATION_LOCK})
        live = self.session.scalar(select(func.max(User.user_id))) or 0
        future = self.session.scalar(select(func.max(FutureUser.user_id))) or 0
        chosen = int(max(live, future)) + 1
        if chosen > ID_MAX:
            raise UserIdsExhaustedError(
                f"no user id above {chosen - 1} is left (ids go up to {ID_MAX}); "
                "create the user with an explicit user_id"
            )
        return chosen

    def add_user(self, user_id: int, origin: str) -> None:
        """Create a live user."""
        self.session.add(User(user_id=user_id, origin=origin, created_at=utc_now()))
        self.session.flush()

    def set_rating(self, user_id: int, anime_id: int, rating: int) -> bool:
        """Add or change a rating (the user's precomputed ranking goes with it); True when it
        was new."""
        self.forget_ranking(user_id)
        existing = self.session.get(Rating, (user_id, anime_id))
        if existing is None:
            self.session.add(
                Rating(user_id=user_id, anime_id=anime_id, rating=rating, updated_at=utc_now())
            )
            self.session.flush()
            return True
        existing.rating = rating
        existing.updated_at = utc_now()
        self.session.flush()
        return False

    def delete_rating(self, user_id: int, anime_id: int) -> bool:
        """Remove a rating (the user's precomputed ranking goes with it); True when there was
        one."""
        self.forget_ranking(user_id)
        result = self.session.execute(
            delete(Rating).where(Rating.user_id == user_id, Rating.anime_id == anime_id)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # ----- feedback ----------------------------------------------------------------------
    def set_feedback(self, user_id: int, anime_id: int, kind: str, request_id: str | None) -> bool:
        """Store a "clicked" or "not interested" (a repeat updates its time); True when new.
        A dismissal changes what the user may be shown: their precomputed ranking goes."""
        if kind == NOT_INTERESTED:
            self.forget_ranking(user_id)
        existing = self.session.get(Feedback, (user_id, anime_id, kind))
        if existing is None:
            self.session.add(
                Feedback(
                    user_id=user_id,
                    anime_id=anime_id,
                    kind=kind,
                    request_id=request_id,
                    created_at=utc_now(),
                )
            )
            self.session.flush()
            return True
        existing.created_at = utc_now()
        existing.request_id = request_id
        self.session.flush()
        return False

    def delete_feedback(self, user_id: int, anime_id: int, kind: str) -> bool:
        """Take back a feedback; True when there was one."""
        result = self.session.execute(
            delete(Feedback).where(
                Feedback.user_id == user_id, Feedback.anime_id == anime_id, Feedback.kind == kind
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # ----- precomputed rankings ----------------------------------------------------------
    def forget_ranking(self, user_id: int) -> None:
        """Drop a user's precomputed ranking (their ratings are changing)."""
        self.session.execute(
            delete(PrecomputedRanking).where(PrecomputedRanking.user_id == user_id)
        )

    def clear_rankings(self) -> None:
        """Drop every precomputed ranking (a new set is about to be written)."""
        self.session.execute(delete(PrecomputedRanking))

    # ----- bulk ----------------------------------------------------------------------------
    def bulk_insert(self, table: type[Base], rows: Iterable[dict[str, Any]]) -> int:
        """Insert many rows in chunks (COPY on PostgreSQL); returns how many."""
        rows = list(rows)
        if not rows:
            return 0
        if self.session.get_bind().dialect.name == "postgresql":
            return self._copy(table, rows)
        for start in range(0, len(rows), CHUNK_ROWS):
            self.session.execute(insert(table), rows[start : start + CHUNK_ROWS])
        return len(rows)

    def bulk_insert_frame(
        self, table: type[Base], frame: pd.DataFrame, progress: Callable[[], None] | None = None
    ) -> int:
        """Insert a frame of plain columns (no JSON) in chunks, calling ``progress`` after each.

        On PostgreSQL it is one COPY fed chunk by chunk as CSV, so the server parses and checks
        rows while the next chunk is formatted; a load as large as half the table or more runs
        with the table's keys and indexes set aside and rebuilt after it, then analysed
        (:mod:`otaku.storage.bulk`; only for tables no foreign key points at).
        """
        chunks = [frame.iloc[i : i + CHUNK_ROWS] for i in range(0, len(frame), CHUNK_ROWS)]
        if self.session.get_bind().dialect.name != "postgresql":
            for chunk in chunks:
                records = [{str(k): v for k, v in row.items()} for row in chunk.to_dict("records")]
                self.bulk_insert(table, records)
                if progress:
                    progress()
            return len(frame)
        name = table.__tablename__
        large = len(frame) > 0 and worth_setting_aside(self.session, name, len(frame))
        columns = [str(column) for column in frame.columns]
        with (
            keys_set_aside(self.session, name) if large else nullcontext(),
            self._copy_into(table, columns, "csv") as copy,
        ):
            for chunk in chunks:
                copy.write(chunk.to_csv(header=False, index=False))
                if progress:
                    progress()
        if large:
            # Fresh planner statistics, in the same transaction: until autovacuum gets to a
            # freshly loaded table the planner guesses ~0.5% of it per user and picks a bitmap
            # scan plus JIT compilation (46 ms per user read at 57M rows, 1.6 ms analysed).
            self.session.execute(text(f'ANALYZE "{name}"'))
        return len(frame)

    def _copy(self, table: type[Base], rows: list[dict[str, Any]]) -> int:
        import json

        columns = list(rows[0])
        column_types = {column.name: column.type for column in table.__table__.columns}
        json_columns = {name for name in columns if type(column_types[name]).__name__ == "JSON"}
        with self._copy_into(table, columns, "text") as copy:
            for row in rows:
                copy.write_row(
                    [json.dumps(row[c]) if c in json_columns else row[c] for c in columns]
                )
        return len(rows)

    @contextmanager
    def _copy_into(self, table: type[Base], columns: list[str], data_format: str) -> Iterator[Any]:
        """A PostgreSQL COPY into ``table`` in this transaction; a constraint violation raises
        SQLAlchemy's IntegrityError, as the INSERT path does (one error type whatever the
        backend)."""
        import psycopg

        names = ", ".join(f'"{name}"' for name in columns)
        statement = f"COPY {table.__tablename__} ({names}) FROM STDIN WITH (FORMAT {data_format})"
        driver = self.session.connection().connection.driver_connection
        assert driver is not None
        try:
            with driver.cursor() as cursor, cursor.copy(statement) as copy:
                yield copy
        except psycopg.errors.IntegrityError as error:
            raise IntegrityError(statement, None, error) from error
