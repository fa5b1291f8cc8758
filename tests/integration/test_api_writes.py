"""Writes through the API on a real database (SQLite and PostgreSQL): users, ratings, their
features, and recommendations that reflect a new rating at once."""

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from otaku.config import Settings
from otaku.data.dataset import Dataset
from otaku.features.user import features_from_history
from otaku.jobs.load import load_dataset
from otaku.pipeline.engine import Engine
from otaku.service.app import create_app
from otaku.service.model import ServedModel
from otaku.storage.database import Database

pytestmark = pytest.mark.integration
KEY = {"X-API-Key": "s3cret"}


@pytest.fixture
def client(
    database: Database, small_dataset: Dataset, engine: Engine, tmp_path: Path
) -> Iterator[TestClient]:
    load_dataset(database, small_dataset, pool_share=0.0, seed=1)
    url = database.engine.url.render_as_string(hide_password=False)
    settings = Settings(home=tmp_path, database_url=url, api_key="s3cret", warm_users=0)
    app = create_app(settings, ServedModel(engine, "test", None, time.time()))
    with TestClient(app) as test_client:
        yield test_client


def _recommended(client: TestClient, user_id: int) -> list[int]:
    response = client.get(f"/v1/users/{user_id}/recommendations", params={"k": 20})
    assert response.status_code == 200, response.text
    return [item["anime"]["anime_id"] for item in response.json()["items"]]


def test_writes_need_the_api_key_and_reads_do_not(client: TestClient) -> None:
    assert client.post("/v1/users", json={}).status_code == 401
    assert client.post("/v1/users", json={}, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get("/v1/genres").status_code == 200


def test_a_new_user_rates_and_gets_recommendations_at_once(
    client: TestClient, engine: Engine, database: Database
) -> None:
    created = client.post("/v1/users", json={}, headers=KEY)
    assert created.status_code == 201
    user_id = created.json()["user_id"]
    assert user_id == int(engine.known_user_ids.max()) + 1
    favourite = int(engine.table.anime_ids[0])
    stored = client.put(f"/v1/users/{user_id}/ratings/{favourite}", json={"rating": 9}, headers=KEY)
    assert stored.json() == {
        "user_id": user_id,
        "anime_id": favourite,
        "rating": 9,
        "created": True,
    }
    recommended = _recommended(client, user_id)
    assert len(recommended) == 20 and favourite not in recommended

    profile = client.get(f"/v1/users/{user_id}", headers=KEY).json()
    assert [(r["anime"]["anime_id"], r["rating"]) for r in profile["ratings"]] == [(favourite, 9)]
    expected = features_from_history(
        np.array([0]), np.array([9.0], np.float32), engine.parts.item_genres
    )
    assert profile["mean_rating"] == pytest.approx(9.0)
    shares = {engine.genres[g]: expected[g] for g in np.flatnonzero(expected[:-1])}
    assert profile["genre_profile"] == pytest.approx(shares, abs=1e-4)

    changed = client.put(
        f"/v1/users/{user_id}/ratings/{favourite}", json={"rating": 3}, headers=KEY
    )
    assert changed.json()["created"] is False
    assert client.delete(f"/v1/users/{user_id}/ratings/{favourite}", headers=KEY).status_code == 204
    assert client.delete(f"/v1/users/{user_id}/ratings/{favourite}", headers=KEY).status_code == 404
    assert client.get(f"/v1/users/{user_id}", headers=KEY).json()["ratings"] == []


def test_a_known_users_new_rating_changes_their_recommendations(
    client: TestClient, engine: Engine
) -> None:
    user_id = int(engine.known_user_ids[2])
    before = _recommended(client, user_id)
    top = before[0]
    response = client.put(f"/v1/users/{user_id}/ratings/{top}", json={"rating": 10}, headers=KEY)
    assert response.status_code == 200
    after = _recommended(client, user_id)
    assert top not in after
    assert after != before


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/users/{user}/ratings/{anime}", {"rating": 11}, 422),
        ("/v1/users/{user}/ratings/{anime}", {"rating": 0}, 422),
        ("/v1/users/{user}/ratings/{anime}", {"stars": 5}, 422),
        ("/v1/users/{user}/ratings/999999999", {"rating": 5}, 404),
        ("/v1/users/987654321/ratings/{anime}", {"rating": 5}, 404),
    ],
)
def test_bad_writes_are_refused_and_change_nothing(
    client: TestClient, engine: Engine, path: str, body: dict[str, int], status: int
) -> None:
    user_id = int(engine.known_user_ids[3])
    before = client.get(f"/v1/users/{user_id}", headers=KEY).json()
    target = path.format(user=user_id, anime=int(engine.table.anime_ids[5]))
    assert client.put(target, json=body, headers=KEY).status_code == status
    assert client.get(f"/v1/users/{user_id}", headers=KEY).json() == before


def test_creating_an_existing_user_is_a_conflict(client: TestClient, engine: Engine) -> None:
    existing = int(engine.known_user_ids[0])
    response = client.post("/v1/users", json={"user_id": existing}, headers=KEY)
    assert response.status_code == 409
