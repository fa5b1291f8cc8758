"""Precomputed rankings (`otaku precompute`): written in one go, taken up by the service only
for the model and the exact profile they were computed for, and gone when the user rates."""

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from otaku.cli import app
from otaku.config import Settings, get_settings
from otaku.data.dataset import Dataset
from otaku.data.files import DataSources
from otaku.jobs.load import load_dataset
from otaku.jobs.precompute import precompute_rankings
from otaku.pipeline.bundle import Bundle
from otaku.pipeline.engine import Engine
from otaku.pipeline.filters import ItemFilter
from otaku.pipeline.pages import Page
from otaku.pipeline.precomputed import adopt_stored, answers_from_precomputed
from otaku.pipeline.rankings import RANKING_DEPTH
from otaku.pipeline.training import TrainedModels
from otaku.service.app import create_app
from otaku.service.model import ServedModel
from otaku.service.users import UserDirectory
from otaku.storage.database import Database, create_db_engine
from otaku.storage.models import PrecomputedRanking
from otaku.storage.registry import champion_version, load_registered

pytestmark = pytest.mark.integration


@pytest.fixture
def loaded(database: Database, small_dataset: Dataset, engine: Engine) -> Iterator[UserDirectory]:
    load_dataset(database, small_dataset, pool_share=0.0, seed=42)
    engine.clear_caches()
    yield UserDirectory(database)
    engine.clear_caches()  # the engine is shared: no adopted (or tampered) ranking outlives a test


def _answer(page: Page) -> list[tuple[int, float, float]]:
    return [(r.anime.anime_id, r.score, r.predicted_rating) for r in page.items]


def test_a_precomputed_page_is_the_page_the_engine_computes(
    loaded: UserDirectory, database: Database, engine: Engine
) -> None:
    users = engine.known_user_ids[:12]
    outcome = precompute_rankings(engine, database, user_ids=users)
    assert outcome.users == 12 and outcome.model_version == engine.version
    for user_id in users[:4]:
        profile = loaded.current(engine, int(user_id)).profile
        engine.clear_caches()
        computed = [engine.recommend_for_profile(profile, 10, offset) for offset in (0, 10)]
        engine.clear_caches()
        assert loaded.current(engine, int(user_id), precomputed_page=True).precomputed
        read = [engine.recommend_for_profile(profile, 10, offset) for offset in (0, 10)]
        assert engine.rankings.cache.misses == 0  # both pages came from the stored ranking
        # the first page's predicted ratings were stored too: only the second page's are made
        assert engine.predictions.page_cache.misses == 1
        assert [_answer(p) for p in read] == [_answer(p) for p in computed]
        stored = loaded.stored_ranking(int(user_id))
        assert stored is not None and len(stored.anime_ids) == RANKING_DEPTH
        assert stored.first_page_ratings is not None and len(stored.first_page_ratings) == 10


def test_only_unfiltered_default_pages_within_the_depth_ask_for_it(
    loaded: UserDirectory, database: Database, engine: Engine
) -> None:
    user_id = int(engine.known_user_ids[0])
    precompute_rankings(engine, database, user_ids=np.array([user_id]))
    assert not answers_from_precomputed("default", ItemFilter(types=("TV",)), 10)
    assert not answers_from_precomputed("default", ItemFilter(), 110)
    assert not answers_from_precomputed("seed", ItemFilter(), 10)
    assert answers_from_precomputed("default", ItemFilter(), 100)
    assert not loaded.current(engine, user_id).precomputed  # not asked for: not read
    assert loaded.current(engine, user_id, precomputed_page=True).precomputed
    # held already: no second read
    assert not loaded.current(engine, user_id, precomputed_page=True).precomputed


def test_a_rating_drops_the_row_and_a_stale_or_foreign_ranking_is_refused(
    loaded: UserDirectory, database: Database, engine: Engine
) -> None:
    user_id = int(engine.known_user_ids[1])
    precompute_rankings(engine, database, user_ids=np.array([user_id]))
    stored = loaded.stored_ranking(user_id)
    assert stored is not None
    before = loaded.current(engine, user_id).profile
    assert not adopt_stored(engine, before, replace(stored, model_version="another-model"))
    unrated = next(
        int(a) for a in engine.table.anime_ids if engine.item_of(int(a)) not in before.rated_items
    )
    loaded.rate(engine, user_id, unrated, 9)
    assert loaded.stored_ranking(user_id) is None  # the write took the row with it
    after = loaded.current(engine, user_id).profile
    assert not adopt_stored(engine, after, stored)  # computed for the old ratings
    engine.clear_caches()
    assert not loaded.current(engine, user_id, precomputed_page=True).precomputed


def test_a_new_run_replaces_every_row(
    loaded: UserDirectory, database: Database, engine: Engine
) -> None:
    first, second = engine.known_user_ids[:2].astype(int)
    precompute_rankings(engine, database, user_ids=np.array([first]))
    precompute_rankings(engine, database, user_ids=np.array([second]))
    assert loaded.stored_ranking(int(first)) is None
    assert loaded.stored_ranking(int(second)) is not None


def test_worker_processes_write_the_same_rankings(
    loaded: UserDirectory, database: Database, engine: Engine
) -> None:
    users = engine.known_user_ids[:30]
    precompute_rankings(engine, database, processes=1, user_ids=users)
    alone = [loaded.stored_ranking(int(u)) for u in users]
    precompute_rankings(engine, database, processes=2, user_ids=users, users_per_task=4)
    forked = [loaded.stored_ranking(int(u)) for u in users]
    assert [(s.anime_ids, s.scores, s.profile_key) for s in alone if s] == [
        (s.anime_ids, s.scores, s.profile_key) for s in forked if s
    ]
    assert all(forked)
    with pytest.raises(ValueError, match="processes"):
        precompute_rankings(engine, database, processes=0, user_ids=users)


def test_the_api_serves_the_stored_ranking_until_the_user_rates(
    loaded: UserDirectory, database: Database, engine: Engine, tmp_path: Path
) -> None:
    user_id = int(engine.known_user_ids[2])
    precompute_rankings(engine, database, user_ids=np.array([user_id]))
    # Reverse the stored order: an answer in that order can only come from the stored row.
    with database.transaction() as session:
        row = session.get(PrecomputedRanking, user_id)
        assert row is not None
        row.anime_ids = row.anime_ids[::-1]
        reversed_ids = list(row.anime_ids)
    url = database.engine.url.render_as_string(hide_password=False)
    settings = Settings(home=tmp_path, database_url=url, api_key="s3cret", warm_users=0)
    engine.clear_caches()
    app = create_app(settings, ServedModel(engine, "test", None, time.time()))
    with TestClient(app) as client:
        page = client.get(f"/v1/users/{user_id}/recommendations", params={"k": 10})
        assert page.status_code == 200, page.text
        assert [i["anime"]["anime_id"] for i in page.json()["items"]] == reversed_ids[:10]
        filtered = client.get(
            f"/v1/users/{user_id}/recommendations", params={"k": 10, "types": "TV"}
        )
        assert filtered.status_code == 200  # filtered pages are computed, never the stored row
        rated = client.put(
            f"/v1/users/{user_id}/ratings/{reversed_ids[0]}",
            json={"rating": 3},
            headers={"X-API-Key": "s3cret"},
        )
        assert rated.status_code in (200, 201), rated.text
        assert loaded.stored_ranking(user_id) is None
        again = client.get(f"/v1/users/{user_id}/recommendations", params={"k": 10})
        shown = [i["anime"]["anime_id"] for i in again.json()["items"]]
        assert shown != reversed_ids[:10] and reversed_ids[0] not in shown


def test_the_command_ranks_every_known_user_of_the_served_bundle(
    trained: TrainedModels, small_dataset: Dataset, tmp_path: Path
) -> None:
    bundle = Bundle(trained, {"version": "cli-v1"}).save(tmp_path / "bundle")
    url = f"sqlite:///{tmp_path / 'otaku.db'}"
    env = {"OTAKU_HOME": str(tmp_path), "OTAKU_DATABASE_URL": url, "OTAKU_PROGRESS": "0"}
    get_settings.cache_clear()
    missing = CliRunner().invoke(app, ["precompute"], env=env)
    assert missing.exit_code != 0 and "otaku train" in missing.output  # no model: says so
    env["OTAKU_BUNDLE_PATH"] = str(bundle)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["precompute", "--processes", "2"], env=env)
    assert result.exit_code == 0, result.output
    assert f"precomputed {small_dataset.n_users:,} users' rankings with model cli-v1" in (
        " ".join(result.output.split())
    )
    get_settings.cache_clear()
    directory = UserDirectory(Database(create_db_engine(url)))
    stored = directory.stored_ranking(int(small_dataset.users.external_ids[-1]))
    assert stored is not None and stored.model_version == "cli-v1"


def test_a_promoting_retrain_precomputes_with_the_new_champion(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'otaku.db'}"
    env = {"OTAKU_HOME": str(tmp_path), "OTAKU_DATABASE_URL": url, "OTAKU_PROGRESS": "0"}
    get_settings.cache_clear()
    database = Database.from_settings(Settings(home=tmp_path, database_url=url))
    load_dataset(database, DataSources(demo_users=300).load(), pool_share=0.0, seed=3)
    result = CliRunner().invoke(app, ["retrain", "--quick", "--no-text"], env=env)
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "no champion yet" in result.output  # the first retrain is promoted
    champion = champion_version(Settings(home=tmp_path, database_url=url))
    with database.transaction() as session:
        versions = {row.model_version for row in session.query(PrecomputedRanking)}
        count = session.query(PrecomputedRanking).count()
    assert count > 200 and len(versions) == 1
    assert versions == {load_registered(Settings(home=tmp_path), str(champion)).version}


def test_a_user_only_the_model_knows_is_answered_from_the_stored_ranking(
    database: Database, engine: Engine
) -> None:
    """A database without the trained users (the model trained from files): their stored
    rankings are still read, for the profile as trained."""
    user_id = int(engine.known_user_ids[2])
    engine.clear_caches()
    precompute_rankings(engine, database, user_ids=np.array([user_id]))
    directory = UserDirectory(database)
    assert directory.current_ratings(user_id) is None  # not in this database
    current = directory.current(engine, user_id, precomputed_page=True)
    assert current.precomputed and current.degraded is None
    engine.clear_caches()
