"""Large PostgreSQL loads run with the ratings' keys set aside and rebuilt: the table ends as
it was defined, and a duplicate or dangling row still fails the whole transaction."""

from collections.abc import Iterator

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from otaku.data.dataset import Dataset
from otaku.jobs.load import load_dataset
from otaku.storage.bulk import _set_asides, worth_setting_aside
from otaku.storage.database import Database, create_db_engine, migrate
from otaku.storage.models import Rating, User
from otaku.storage.repository import Repository
from tests.storage_backends import postgres_database

pytestmark = pytest.mark.integration


@pytest.fixture
def postgres() -> Iterator[Database]:
    for url in postgres_database():
        database = Database(create_db_engine(url))
        migrate(database.engine)
        yield database
        database.engine.dispose()


def _definitions(database: Database) -> list[tuple[str, str]]:
    with database.transaction() as session:
        return [(item.name, item.create) for item in _set_asides(session, "ratings")]


def _rows(user_ids: list[int], anime_ids: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"user_id": user_ids, "anime_id": anime_ids, "rating": 8})


def test_a_large_load_rebuilds_the_keys_as_they_were(
    postgres: Database, small_dataset: Dataset
) -> None:
    before = _definitions(postgres)
    assert {name for name, _ in before} >= {"ratings_pkey"}
    assert any("FOREIGN KEY" in create for _, create in before)
    with postgres.transaction() as session:
        assert worth_setting_aside(session, "ratings", len(small_dataset.ratings))
    outcome = load_dataset(postgres, small_dataset, pool_share=0.0, seed=1)
    assert outcome.ratings == len(small_dataset.ratings)
    assert _definitions(postgres) == before


def test_a_large_load_leaves_the_planner_fresh_statistics(
    postgres: Database, small_dataset: Dataset
) -> None:
    load_dataset(postgres, small_dataset, pool_share=0.0, seed=1)
    with postgres.engine.connect() as connection:
        analysed = connection.execute(
            text("SELECT attname FROM pg_stats WHERE tablename = 'ratings'")
        ).scalars()
        assert "user_id" in set(analysed)
        # with them, one user's read is planned as the handful of rows it is
        plan = connection.execute(
            text("EXPLAIN (FORMAT JSON) SELECT * FROM ratings WHERE user_id = :user"),
            {"user": int(small_dataset.users.external_ids[0])},
        ).scalar_one()
    assert plan[0]["Plan"]["Plan Rows"] < len(small_dataset.ratings) / 20


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (_rows([1, 1], [20, 20]), "duplicate"),  # the primary key's rebuild finds it
        (_rows([1, 999], [20, 20]), "users"),  # the foreign key's rebuild finds it
    ],
)
def test_a_bad_row_in_a_large_load_changes_nothing(
    postgres: Database, small_dataset: Dataset, frame: pd.DataFrame, problem: str
) -> None:
    load_dataset(postgres, small_dataset.subset(small_dataset.ratings.index < 0), 0.0, seed=1)
    with postgres.transaction() as session:
        session.add(User(user_id=1, origin="test"))
    anime = int(small_dataset.items.external_ids[0])
    frame = frame.assign(anime_id=anime)
    before = _definitions(postgres)
    with pytest.raises(IntegrityError, match=problem), postgres.transaction() as session:
        Repository(session).bulk_insert_frame(Rating, frame)
    with postgres.transaction() as session:
        assert Repository(session).count(Rating) == 0
    assert _definitions(postgres) == before


def test_a_small_load_into_a_large_table_keeps_its_keys(postgres: Database) -> None:
    with postgres.transaction() as session:
        session.execute(text("CREATE TEMPORARY TABLE big (x int)"))
        session.execute(text("INSERT INTO big SELECT generate_series(1, 1000)"))
        session.execute(text("ANALYZE big"))
        assert not worth_setting_aside(session, "big", 100)
        assert worth_setting_aside(session, "big", 600)
