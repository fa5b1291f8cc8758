"""Concurrent writes with real threads against a real server (uvicorn) on SQLite and on
PostgreSQL: a double-clicked "Rate", a rating changed and deleted at once, many users created
at once. Every write succeeds (or gets its documented 404), none is a 500, and what the
database holds afterwards is consistent: the stored feature vector matches the ratings."""

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from otaku.config import Settings
from otaku.data.dataset import Dataset
from otaku.jobs.load import load_dataset
from otaku.pipeline.engine import Engine
from otaku.service.app import REQUEST_ID_HEADER, create_app
from otaku.service.model import ServedModel
from otaku.storage.database import Database
from otaku.storage.repository import Repository
from tests.integration.conftest import BackgroundServer

pytestmark = pytest.mark.integration
KEY = {"X-API-Key": "concurrency-test-key"}
THREADS = 8
ROUNDS = 10


@dataclass
class Served:
    url: str
    database: Database
    app: FastAPI


@pytest.fixture
def served(
    database: Database, small_dataset: Dataset, engine: Engine, tmp_path: Path
) -> Iterator[Served]:
    load_dataset(database, small_dataset, pool_share=0.0, seed=1)
    url = database.engine.url.render_as_string(hide_password=False)
    settings = Settings(
        home=tmp_path, database_url=url, api_key=KEY["X-API-Key"], warm_users=0, request_threads=8
    )
    app = create_app(settings, ServedModel(engine, "test", None, time.time()))
    with BackgroundServer(app) as server:
        yield Served(server.url, database, app)


def _at_once(count: int, call: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """``count`` calls released together from ``count`` threads."""
    barrier = threading.Barrier(count)

    def run(index: int) -> httpx.Response:
        barrier.wait()
        return call(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def _reads_match_the_database(client: httpx.Client, database: Database, user_id: int) -> None:
    """What the API says the user rated is exactly what the database holds."""
    with database.reading() as session:
        stored = sorted(Repository(session).user_ratings(user_id))
    profile = client.get(f"/v1/users/{user_id}").json()
    read = sorted((r["anime"]["anime_id"], r["rating"]) for r in profile["ratings"])
    assert read == stored


def test_one_user_rates_many_anime_at_once(served: Served, engine: Engine) -> None:
    user_id = int(engine.known_user_ids[3])
    anime = [int(a) for a in engine.table.anime_ids[100 : 100 + THREADS * ROUNDS]]
    with httpx.Client(base_url=served.url, timeout=60, headers=KEY) as client:
        statuses = []
        for round_ in range(ROUNDS):
            batch = anime[round_ * THREADS : (round_ + 1) * THREADS]
            answers = _at_once(
                THREADS,
                lambda i, batch=batch: client.put(  # type: ignore[misc]
                    f"/v1/users/{user_id}/ratings/{batch[i]}", json={"rating": 1 + i % 10}
                ),
            )
            statuses += [answer.status_code for answer in answers]
        assert statuses == [200] * len(anime)
        profile = client.get(f"/v1/users/{user_id}").json()
        _reads_match_the_database(client, served.database, user_id)
    rated = {entry["anime"]["anime_id"] for entry in profile["ratings"]}
    assert set(anime) <= rated


def test_a_rating_changed_and_deleted_at_once(served: Served, engine: Engine) -> None:
    user_id = int(engine.known_user_ids[4])
    anime_id = int(engine.table.anime_ids[250])
    path = f"/v1/users/{user_id}/ratings/{anime_id}"
    statuses: list[int] = []
    with httpx.Client(base_url=served.url, timeout=60, headers=KEY) as client:
        for _ in range(ROUNDS):
            answers = _at_once(
                THREADS,
                lambda i: client.put(path, json={"rating": 7}) if i % 2 else client.delete(path),
            )
            statuses += [answer.status_code for answer in answers]
        final = client.get(f"/v1/users/{user_id}").json()
        _reads_match_the_database(client, served.database, user_id)
    assert set(statuses) <= {200, 204, 404}, statuses  # 404: the rating was already deleted
    assert statuses.count(200) == THREADS * ROUNDS // 2  # every PUT succeeded
    final_rating = [r["rating"] for r in final["ratings"] if r["anime"]["anime_id"] == anime_id]
    assert final_rating in ([], [7])


def test_users_created_at_once_get_distinct_ids(served: Served) -> None:
    count = 40
    with httpx.Client(base_url=served.url, timeout=60, headers=KEY) as client:
        answers = _at_once(count, lambda _: client.post("/v1/users", json={}))
    assert [answer.status_code for answer in answers] == [201] * count, answers[0].text
    ids = [answer.json()["user_id"] for answer in answers]
    assert len(set(ids)) == count


def test_the_same_explicit_id_created_at_once_is_one_201_and_409s(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=60, headers=KEY) as client:
        answers = _at_once(THREADS, lambda _: client.post("/v1/users", json={"user_id": 777_777}))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * (THREADS - 1)
    assert all("777777" in a.json()["detail"] for a in answers if a.status_code == 409)


def test_a_500_keeps_the_connection_and_names_the_request(served: Served) -> None:
    def broken() -> None:
        raise RuntimeError("a bug")

    served.app.add_api_route("/test-only/broken", broken)
    with httpx.Client(base_url=served.url, timeout=30) as client:
        for round_ in range(20):  # one keep-alive connection throughout
            failed = client.get("/test-only/broken")
            assert failed.status_code == 500
            assert failed.json()["request_id"] == failed.headers[REQUEST_ID_HEADER]
            assert client.get("/v1/genres").status_code == 200, round_
