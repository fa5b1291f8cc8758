"""What a newly loaded model warms: the users who asked lately, then the most active; and the
summary of every catalog anime before the first page."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from otaku.config import Settings
from otaku.pipeline.bundle import Bundle
from otaku.pipeline.cache import LruCache
from otaku.pipeline.engine import Engine
from otaku.pipeline.training import TrainedModels
from otaku.service import model, schemas
from otaku.service.app import create_app
from otaku.service.model import ServedModel, load_model_to_serve, warm_order


@pytest.fixture(scope="module")
def client(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path_factory.mktemp("home"), warm_users=0)
    app = create_app(settings, ServedModel(engine, "test", None, time.time()))
    with TestClient(app) as test_client:
        yield test_client


def test_users_who_asked_lately_come_first_then_the_most_active(engine: Engine) -> None:
    active = engine.most_active_users(5).tolist()
    quiet = int(engine.known_user_ids[-1])
    unknown = int(engine.known_user_ids.max()) + 1000
    order = warm_order(engine, 5, [quiet, unknown, active[1], quiet])
    assert order[:2] == [quiet, active[1]] and len(order) == 5
    assert order[2:] == [user for user in active if user not in (quiet, active[1])][:3]
    assert unknown not in order


def test_the_warm_up_never_outgrows_the_ranking_cache(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model, "RANKING_CACHE_SIZE", 3)
    assert len(warm_order(engine, 1_000_000)) == 3
    assert warm_order(engine, 0) == []


def test_the_newest_keys_come_first() -> None:
    cache: LruCache[int, bool] = LruCache(3)
    for key in (1, 2, 3, 4):
        cache.put(key, True)
    cache.get(2)
    assert cache.newest(10) == [2, 4, 3]
    assert cache.newest(1) == [2]


def test_a_request_marks_its_user_as_asking_lately(client: TestClient, engine: Engine) -> None:
    user = int(engine.known_user_ids[3])
    assert client.get(f"/v1/users/{user}/recommendations").status_code == 200
    directory = client.app.state.users  # type: ignore[attr-defined]
    assert directory.asked.newest(1) == [user]


def test_a_model_loaded_to_serve_has_every_anime_summary_ready_before_a_page(
    trained: TrainedModels, tmp_path: Path
) -> None:
    directory = Bundle(trained, {"version": "summaries"}).save(tmp_path / "bundle")
    schemas._summary.cache_clear()
    served = load_model_to_serve(Settings(home=tmp_path, bundle_path=directory))
    n_items = len(served.engine.table.anime_ids)
    assert schemas._summary.cache_info().currsize == n_items
    user = int(served.engine.known_user_ids[0])
    page = served.engine.recommend_for_user(user, k=10)
    before = schemas._summary.cache_info()
    built = schemas.RecommendationPage.of(page, 10, "summaries")
    assert len(built.items) == 10
    assert schemas._summary.cache_info().misses == before.misses  # nothing built on the page


def test_summaries_are_prepared_no_further_than_the_cache_keeps(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schemas, "SUMMARY_CACHE_SIZE", 3)
    infos = (engine.table.info(item) for item in range(10))
    assert schemas.prepare_summaries(infos) == 3
