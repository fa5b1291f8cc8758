"""The repository and the data load, on SQLite and on PostgreSQL (the same tests)."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from otaku.columns import Columns
from otaku.data.dataset import Dataset
from otaku.jobs.load import in_pool, load_dataset
from otaku.jobs.simulate import simulate_arrivals
from otaku.storage.database import Database, create_db_engine, migrate
from otaku.storage.models import (
    Anime,
    FutureRating,
    FutureUser,
    Rating,
    User,
)
from otaku.storage.repository import Repository
from tests.storage_backends import postgres_database

pytestmark = pytest.mark.integration


def _counts(database: Database) -> dict[str, int]:
    with database.transaction() as session:
        repo = Repository(session)
        tables = (Anime, User, Rating, FutureUser, FutureRating)
        return {table.__tablename__: repo.count(table) for table in tables}


def test_migrations_create_every_table_and_are_idempotent(database: Database) -> None:
    migrate(database.engine)  # a second time changes nothing
    tables = set(inspect(database.engine).get_table_names())
    expected = {"anime", "users", "ratings", "future_users", "future_ratings", "job_runs"}
    assert expected <= tables
    assert "user_preferences" not in tables  # dropped by migration 0003: nothing read it
    assert "alembic_version" in tables


def test_load_writes_everything_once(database: Database, small_dataset: Dataset) -> None:
    first = load_dataset(database, small_dataset, pool_share=0.2, seed=3)
    counts = _counts(database)
    assert counts["anime"] == small_dataset.n_items == first.anime
    assert counts["users"] + counts["future_users"] == small_dataset.n_users
    assert counts["ratings"] + counts["future_ratings"] == len(small_dataset.ratings)
    assert 0 < counts["future_users"] < small_dataset.n_users
    assert first.ratings_per_second > 0

    second = load_dataset(database, small_dataset, pool_share=0.2, seed=3)
    assert (second.anime, second.users, second.ratings, second.future_users) == (0, 0, 0, 0)
    assert _counts(database) == counts


@pytest.mark.parametrize("origin", ["dataset", "demo"])
def test_loaded_users_carry_their_origin(
    database: Database, small_dataset: Dataset, origin: str
) -> None:
    load_dataset(database, small_dataset, pool_share=0.0, seed=3, origin=origin)
    with database.transaction() as session:
        origins = set(session.scalars(select(User.origin)))
    assert origins == {origin}


def test_the_pool_is_a_deterministic_share() -> None:
    users = np.arange(1, 20_001)
    pooled = in_pool(users, 0.1, seed=42)
    assert 0.09 < pooled.mean() < 0.11
    assert np.array_equal(pooled, in_pool(users, 0.1, seed=42))
    assert not np.array_equal(pooled, in_pool(users, 0.1, seed=7))


def test_a_failed_load_writes_nothing(database: Database, small_dataset: Dataset) -> None:
    ratings = small_dataset.ratings.copy()
    ratings.loc[ratings.index[-1], Columns.rating] = 11  # the database's check rejects it
    broken = Dataset.construct(small_dataset.catalog, ratings)
    with pytest.raises(IntegrityError):
        load_dataset(database, broken, pool_share=0.0, seed=1)
    assert set(_counts(database).values()) == {0}


def test_ratings_are_set_changed_and_deleted(database: Database, small_dataset: Dataset) -> None:
    anime_id = int(small_dataset.catalog[Columns.anime_id].iloc[0])
    load_dataset(database, small_dataset.subset(np.zeros(len(small_dataset.ratings), bool)), 0, 1)
    with database.transaction() as session:
        repo = Repository(session)
        user_id = repo.next_user_id()
        repo.add_user(user_id, "api")
        assert repo.set_rating(user_id, anime_id, 7) is True
        assert repo.set_rating(user_id, anime_id, 9) is False
        assert repo.user_ratings(user_id) == [(anime_id, 9)]
    with database.transaction() as session:
        repo = Repository(session)
        assert repo.delete_rating(user_id, anime_id) is True
        assert repo.delete_rating(user_id, anime_id) is False
        assert repo.user_ratings(user_id) == []
        assert repo.next_user_id() == user_id + 1


def test_an_out_of_range_rating_rolls_the_whole_transaction_back(
    database: Database, small_dataset: Dataset
) -> None:
    anime_id = int(small_dataset.catalog[Columns.anime_id].iloc[0])
    load_dataset(database, small_dataset.subset(np.zeros(len(small_dataset.ratings), bool)), 0, 1)
    with pytest.raises(IntegrityError), database.transaction() as session:
        repo = Repository(session)
        repo.add_user(424242, "api")
        repo.set_rating(424242, anime_id, 0)
    with database.transaction() as session:
        assert not Repository(session).user_exists(424242)


def test_ratings_read_back_as_a_frame(database: Database, small_dataset: Dataset) -> None:
    load_dataset(database, small_dataset, pool_share=0.0, seed=1)
    with database.transaction() as session:
        frame = Repository(session).ratings_frame()
    expected = small_dataset.ratings[[Columns.user_id, Columns.anime_id, Columns.rating]]
    pd.testing.assert_frame_equal(
        frame.sort_values([Columns.user_id, Columns.anime_id]).reset_index(drop=True),
        expected.sort_values([Columns.user_id, Columns.anime_id])
        .reset_index(drop=True)
        .astype("int64"),
    )


def test_simulated_arrivals_move_users_with_their_ratings(
    database: Database, small_dataset: Dataset
) -> None:
    load_dataset(database, small_dataset, pool_share=0.5, seed=3)
    before = _counts(database)
    outcome = simulate_arrivals(database, seed=42)
    after = _counts(database)
    assert 10 <= len(outcome.user_ids) <= 25
    assert after["users"] == before["users"] + len(outcome.user_ids)
    assert after["future_users"] == before["future_users"] - len(outcome.user_ids)
    assert after["ratings"] == before["ratings"] + outcome.ratings
    assert after["future_ratings"] == before["future_ratings"] - outcome.ratings
    with database.transaction() as session:
        repo = Repository(session)
        moved = outcome.user_ids[0]
        expected = small_dataset.ratings[small_dataset.ratings[Columns.user_id] == moved]
        assert len(repo.user_ratings(moved)) == len(expected)
    again = simulate_arrivals(database, seed=42)
    assert not set(again.user_ids) & set(outcome.user_ids)  # the pool shrank, the draw moved on


def test_arrivals_from_an_empty_pool_move_nobody(
    database: Database, small_dataset: Dataset
) -> None:
    load_dataset(database, small_dataset, pool_share=0.0, seed=3)
    outcome = simulate_arrivals(database, seed=42)
    assert outcome.user_ids == [] and outcome.ratings == 0


def test_processes_migrating_at_once_all_succeed(tmp_path: Path) -> None:
    """API replicas and jobs start together: on PostgreSQL their migrations must not race
    (SQLite serialises writers by itself)."""
    urls = postgres_database()
    url = next(urls)
    processes_count = 6
    gate = tmp_path / "go"
    script = (  # import and connect first, then migrate together when the gate opens
        "import sys, time, pathlib\n"
        "from otaku.storage.database import create_db_engine, migrate\n"
        "engine = create_db_engine(sys.argv[1]); engine.connect().close()\n"
        "pathlib.Path(sys.argv[3]).touch()\n"
        "while not pathlib.Path(sys.argv[2]).exists(): time.sleep(0.001)\n"
        "migrate(engine)\n"
    )
    try:
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", script, url, str(gate), str(tmp_path / f"ready{i}")],
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(processes_count)
        ]
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("ready*"))) < processes_count:
            assert time.monotonic() < deadline, "the migrating processes did not start"
            time.sleep(0.05)
        gate.touch()
        errors = [process.communicate(timeout=120)[1] for process in processes]
        assert [process.returncode for process in processes] == [0] * processes_count, errors
        database = Database(create_db_engine(url))
        assert "job_runs" in inspect(database.engine).get_table_names()
        database.dispose()
    finally:
        for _ in urls:
            pass
