"""Every route of the REST API and its errors, in process, over the quick engine."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from otaku.config import Settings
from otaku.pipeline.engine import Engine
from otaku.service.app import REQUEST_ID_HEADER, create_app
from otaku.service.model import ServedModel


@pytest.fixture(scope="module")
def client(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path_factory.mktemp("home"))
    app = create_app(settings, ServedModel(engine, "test", None, time.time()))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def user_id(engine: Engine) -> int:
    return int(engine.known_user_ids[0])


def test_known_user_recommendations(client: TestClient, engine: Engine, user_id: int) -> None:
    response = client.get(f"/v1/users/{user_id}/recommendations", params={"k": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["strategy"] == "default"
    assert body["model_version"] == engine.version
    assert [item["rank"] for item in body["items"]] == [1, 2, 3, 4, 5]
    rated = {info.anime_id for info, _ in engine.history(user_id)}
    for item in body["items"]:
        assert item["anime"]["anime_id"] not in rated
        assert 0 < item["predicted_rating"] < 11
        assert item["explanation"]
        assert {"name", "type", "episodes", "mal_score", "genres"} <= set(item["anime"])


def test_paging_filters_and_strategy_as_query_parameters(client: TestClient, user_id: int) -> None:
    params: dict[str, Any] = {
        "k": 3,
        "offset": 2,
        "strategy": "seed",
        "types": ["TV", "Movie"],
        "exclude_genres": "Romance",
        "min_score": 7,
    }
    response = client.get(f"/v1/users/{user_id}/recommendations", params=params)
    assert response.status_code == 200
    body = response.json()
    assert body["strategy"] == "seed"
    assert [item["rank"] for item in body["items"]] == [3, 4, 5]
    for item in body["items"]:
        assert item["anime"]["type"] in {"TV", "Movie"}
        assert "Romance" not in item["anime"]["genres"]


def test_unknown_user_points_to_the_new_user_endpoint(client: TestClient) -> None:
    response = client.get("/v1/users/987654321/recommendations")
    assert response.status_code == 404
    assert response.json()["new_user_endpoint"] == "POST /v1/recommendations"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"k": 0}, "k"),
        ({"k": 101}, "k"),
        ({"offset": -1}, "offset"),
        ({"strategy": "magic"}, "strategy"),
        ({"min_score": "high"}, "min_score"),
        ({"include_genres": "Cooking"}, "include_genres"),
        ({"types": "Cartoon"}, "types"),
        ({"year_from": 2010, "year_to": 2000}, "year_from"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_query_values_are_422_naming_the_field(
    client: TestClient, user_id: int, params: dict[str, Any], field: str
) -> None:
    response = client.get(f"/v1/users/{user_id}/recommendations", params=params)
    assert response.status_code == 422, response.text
    assert any(field in error["loc"] for error in response.json()["detail"])


def test_user_profile(client: TestClient, engine: Engine, user_id: int) -> None:
    body = client.get(f"/v1/users/{user_id}").json()
    assert len(body["ratings"]) == len(engine.history(user_id))
    ratings = [entry["rating"] for entry in body["ratings"]]
    assert ratings == sorted(ratings, reverse=True)
    assert sum(body["genre_profile"].values()) > 0
    assert client.get("/v1/users/987654321").status_code == 404


def test_new_user_with_preferences(client: TestClient) -> None:
    body = {"preferences": {"Action": 1, "Romance": 0.4}, "k": 4}
    response = client.post("/v1/recommendations", json=body)
    assert response.status_code == 200
    for item in response.json()["items"]:
        assert set(item["anime"]["genres"]) & {"Action", "Romance"}
        assert item["explanation"].startswith("matches your genres")


def test_new_user_with_ratings(client: TestClient, engine: Engine) -> None:
    rated = [int(anime_id) for anime_id in engine.table.anime_ids[:3]]
    body = {"ratings": [{"anime_id": a, "rating": 9} for a in rated], "k": 10}
    response = client.post("/v1/recommendations", json=body)
    assert response.status_code == 200
    assert not {item["anime"]["anime_id"] for item in response.json()["items"]} & set(rated)


def test_new_user_with_nothing(client: TestClient) -> None:
    response = client.post("/v1/recommendations", json={})
    assert response.status_code == 200
    assert len(response.json()["items"]) == 10


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"ratings": [{"anime_id": 1, "rating": 11}]}, ["body", "ratings", 0, "rating"]),
        ({"ratings": [{"anime_id": 1, "rating": 0}]}, ["body", "ratings", 0, "rating"]),
        ({"ratings": [{"anime_id": 1}]}, ["body", "ratings", 0, "rating"]),
        ({"ratings": [{"anime_id": -3, "rating": 5}]}, ["body", "ratings", 0, "anime_id"]),
        ({"ratings": [{"anime_id": 3, "rating": 5}]}, ["ratings", "3"]),
        ({"preferences": {"Cooking": 1}}, ["preferences", "Cooking"]),
        ({"preferences": {"Action": 2}}, ["body", "preferences", "Action"]),
        ({"k": 500}, ["body", "k"]),
        ({"prefs": {"Action": 1}}, ["body", "prefs"]),
    ],
)
def test_bad_new_user_bodies_are_422_naming_the_field(
    client: TestClient, body: dict[str, object], loc: list[object]
) -> None:
    response = client.post("/v1/recommendations", json=body)
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [loc]


def test_duplicate_ratings_are_rejected(client: TestClient) -> None:
    body = {"ratings": [{"anime_id": 1, "rating": 5}, {"anime_id": 1, "rating": 6}]}
    response = client.post("/v1/recommendations", json=body)
    assert response.status_code == 422
    assert "more than once" in response.text


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/v1/recommendations", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_anime_detail_and_similar(client: TestClient, engine: Engine) -> None:
    anime_id = int(engine.table.anime_ids[0])
    detail = client.get(f"/v1/anime/{anime_id}").json()
    assert detail["name"] == engine.table.names[0]
    similar = client.get(f"/v1/anime/{anime_id}/similar", params={"k": 5}).json()
    assert similar["query"]["anime_id"] == anime_id
    assert len(similar["items"]) == 5
    assert anime_id not in {item["anime"]["anime_id"] for item in similar["items"]}
    assert client.get("/v1/anime/999999999").status_code == 404
    assert client.get("/v1/anime/999999999/similar").status_code == 404
    assert client.get("/v1/anime/abc").status_code == 422


def test_similar_by_title_forgives_typos_and_suggests(client: TestClient, engine: Engine) -> None:
    name = engine.table.names[0]
    typo = name[:-1] + name[-1] * 2
    body = client.get("/v1/anime/similar", params={"title": typo.upper()}).json()
    assert body["query"]["name"] == name
    assert body["exact_match"] is False
    missing = client.get("/v1/anime/similar", params={"title": "Qwxz Plorb"})
    assert missing.status_code == 404
    assert missing.json()["suggestions"]


def test_search_and_genres(client: TestClient, engine: Engine) -> None:
    name = engine.table.names[0]
    results = client.get("/v1/anime/search", params={"q": name.lower()}).json()["results"]
    assert results[0]["anime"]["name"] == name
    assert results[0]["exact"] is True
    assert client.get("/v1/anime/search", params={"q": ""}).status_code == 422
    assert client.get("/v1/genres").json()["genres"] == engine.genres


def test_compat_endpoint_known_user(client: TestClient, engine: Engine, user_id: int) -> None:
    body = client.post("/recommend/", json={"user_input": user_id}).json()
    assert len(body["watched"]) == len(engine.history(user_id))
    assert len(body["recommendations"]) == 10
    watched = {entry["anime_id"] for entry in body["watched"]}
    assert not watched & {entry["anime_id"] for entry in body["recommendations"]}


def test_compat_endpoint_new_user_and_title(client: TestClient, engine: Engine) -> None:
    body = client.post(
        "/recommend/", json={"user_input": 987654321, "user_preferences": {"Action": 1}}
    ).json()
    assert body["watched"] == []
    assert all("Action" in entry["genres"] for entry in body["recommendations"])
    by_title = client.post("/recommend/", json={"user_input": engine.table.names[0]})
    assert by_title.status_code == 200
    assert client.post("/recommend/", json={"user_preferences": {}}).status_code == 422


def test_operations_routes_and_request_ids(client: TestClient, engine: Engine) -> None:
    assert client.get("/healthz").json() == {"status": "alive", "database": "up"}
    assert client.get("/readyz").json()["model_version"] == engine.version
    response = client.get("/v1/genres", headers={REQUEST_ID_HEADER: "abc-123"})
    assert response.headers[REQUEST_ID_HEADER] == "abc-123"
    assert len(client.get("/v1/genres").headers[REQUEST_ID_HEADER]) == 32
    assert client.get("/openapi.json").json()["info"]["title"] == "My Otaku Friend"


def test_metrics_count_routes_statuses_and_stages(client: TestClient, user_id: int) -> None:
    client.get(f"/v1/users/{user_id}/recommendations")
    client.get("/v1/users/987654321/recommendations")
    text = client.get("/metrics").text
    route = 'route="/v1/users/{user_id}/recommendations"'
    assert f'otaku_http_requests_total{{method="GET",{route},status="200"}}' in text
    assert f'otaku_http_requests_total{{method="GET",{route},status="404"}}' in text
    assert "otaku_http_request_duration_seconds_bucket" in text
    assert 'otaku_recommendation_stage_seconds_count{stage="rank",strategy="default"}' in text
    assert f'otaku_http_errors_total{{kind="not_found",{route}}}' in text
    assert 'otaku_model_info{data=""' in text


def test_without_a_champion_the_service_is_alive_but_not_ready(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path))
    with TestClient(app) as test_client:
        deadline = time.monotonic() + 60
        while app.state.holder.problem == "the model is loading" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert test_client.get("/healthz").status_code == 200
        ready = test_client.get("/readyz")
        assert ready.status_code == 503
        assert "otaku train" in ready.json()["detail"]
        answer = test_client.get("/v1/genres")
        assert answer.status_code == 503
        assert "no model" in answer.json()["detail"]


def test_with_warm_up_off_the_warm_up_is_done_at_once(engine: Engine, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, warm_users=0)
    app = create_app(settings, ServedModel(engine, "no-warm-up", None, time.time()))
    with TestClient(app) as test_client:
        deadline = time.monotonic() + 10
        while not (model := test_client.get("/v1/model").json())["warm_up_done"]:
            assert time.monotonic() < deadline, model  # it said "not done" for ever
            time.sleep(0.05)
    assert model["warmed_users"] == 0


def test_known_users_are_warmed_in_the_background(client: TestClient, engine: Engine) -> None:
    deadline = time.monotonic() + 120
    while not (model := client.get("/v1/model").json())["warm_up_done"]:
        assert time.monotonic() < deadline, model
        time.sleep(0.2)
    assert model["warmed_users"] == len(engine.known_user_ids)
    assert "otaku_model_warmed_users " in client.get("/metrics").text
    hits = engine.cache_stats()["ranking_hits"]
    client.get(f"/v1/users/{int(engine.known_user_ids[-1])}/recommendations")
    assert engine.cache_stats()["ranking_hits"] == hits + 1
