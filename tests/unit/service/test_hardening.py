"""A hostile client's inputs, each one a reproduction of a defect found by fuzzing and by hand
(issue "Hardening the API"): every one answered with a clear 4xx (never a 500), bounded, and
without echoing more than a short excerpt of the input. In process, over the quick engine and
a real SQLite database, with an API key set."""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from otaku.columns import ID_MAX
from otaku.config import Settings
from otaku.data.dataset import Dataset
from otaku.jobs.load import load_dataset
from otaku.pipeline.engine import Engine
from otaku.service.app import REQUEST_ID_HEADER, create_app
from otaku.service.model import ServedModel
from otaku.storage.database import Database

KEY = "a-long-enough-test-key"
AUTH = {"X-API-Key": KEY}
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e309", "-1e309"]


@pytest.fixture(scope="module")
def client(
    engine: Engine, small_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("home")
    settings = Settings(home=home, api_key=KEY, warm_users=0, max_body_bytes=64 * 1024)
    load_dataset(Database.from_settings(settings), small_dataset, pool_share=0.0, seed=1)
    app = create_app(settings, ServedModel(engine, "test", None, time.time()))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _post_raw(client: TestClient, path: str, text: str, **headers: str) -> Any:
    return client.post(path, content=text, headers={"Content-Type": "application/json", **headers})


@pytest.mark.parametrize("number", NON_FINITE)
@pytest.mark.parametrize(
    ("path", "template", "field"),
    [
        ("/v1/recommendations", '{"preferences": {"Action": %s}}', "preferences"),
        ("/v1/recommendations", '{"ratings": [{"anime_id": 1, "rating": %s}]}', "ratings"),
        ("/v1/recommendations", '{"filters": {"min_score": %s}}', "filters"),
        ("/v1/recommendations", '{"k": %s}', "k"),
        (
            "/recommend/",
            '{"user_input": 1, "user_preferences": {"Action": %s}}',
            "user_preferences",
        ),
        ("/recommend/", '{"user_input": %s}', "user_input"),
    ],
)
def test_non_finite_numbers_are_422_naming_the_field(
    client: TestClient, path: str, template: str, field: str, number: str
) -> None:
    response = _post_raw(client, path, template % number)
    assert response.status_code == 422, response.text
    body = json.loads(response.text)  # strict JSON: no NaN in the answer either
    assert field in body["detail"][0]["loc"]
    assert body["request_id"] == response.headers[REQUEST_ID_HEADER]


@pytest.mark.parametrize("user_input", [2**63, 2**64, -1, ID_MAX + 1])
def test_reference_route_refuses_ids_outside_the_range(client: TestClient, user_input: int) -> None:
    response = _post_raw(client, "/recommend/", json.dumps({"user_input": user_input}))
    assert response.status_code == 422, response.text
    as_text = client.post("/recommend/", json={"user_input": str(user_input)})
    # digits are an id (out of range: 422); "-1" is not digits, so it is a title (404)
    assert as_text.status_code == (404 if user_input < 0 else 422), as_text.text


def test_reference_route_takes_unicode_digits_as_a_title(client: TestClient) -> None:
    response = client.post("/recommend/", json={"user_input": "²³"})
    assert response.status_code == 404  # "did you mean", not int("²") failing
    assert "suggestions" in response.json()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/users", {}),
        ("PUT", "/v1/users/1/ratings/1", {"rating": 5}),
        ("DELETE", "/v1/users/1/ratings/1", None),
        ("POST", "/admin/reload", None),
        ("GET", "/v1/users/1", None),
    ],
)
@pytest.mark.parametrize("key", [b"\xff\xfe", "clé".encode(), b"\xe2\x82\xac" * 40])
def test_a_non_ascii_key_is_simply_a_wrong_key(
    client: TestClient, method: str, path: str, body: Any, key: bytes
) -> None:
    response = client.request(method, path, json=body, headers={b"X-API-Key": key})
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("rating", [True, "7", 7.0, 7.5, None, [7]])
def test_writes_take_strict_types(client: TestClient, engine: Engine, rating: Any) -> None:
    user_id = int(engine.known_user_ids[0])
    anime_id = int(engine.table.anime_ids[0])
    response = client.put(
        f"/v1/users/{user_id}/ratings/{anime_id}", json={"rating": rating}, headers=AUTH
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "rating"]


@pytest.mark.parametrize("body", [{"user_id": "5"}, {"user_id": 5.0}, {"user_id": True}])
def test_user_ids_in_bodies_are_strict(client: TestClient, body: dict[str, Any]) -> None:
    assert client.post("/v1/users", json=body, headers=AUTH).status_code == 422


def test_one_id_range_for_every_id(client: TestClient) -> None:
    too_big = client.post("/v1/users", json={"user_id": 2**62}, headers=AUTH)
    assert too_big.status_code == 422
    assert too_big.json()["detail"][0]["ctx"] == {"le": ID_MAX}
    assert client.post("/v1/users", json={"user_id": ID_MAX}, headers=AUTH).status_code == 201
    for path in (f"/v1/users/{ID_MAX}", f"/v1/users/{ID_MAX}/recommendations"):
        assert client.get(path, headers=AUTH).status_code == 200, path  # stored ⇒ routable
    assert client.get(f"/v1/users/{ID_MAX + 1}/recommendations").status_code == 422
    exhausted = client.post("/v1/users", json={}, headers=AUTH)
    assert exhausted.status_code == 409  # never an id outside the range
    assert "explicit user_id" in exhausted.json()["detail"]


def test_oversized_bodies_are_413_before_being_read(client: TestClient) -> None:
    big = json.dumps({"preferences": {"Action": 1}, "pad": "x" * 100_000})
    response = _post_raw(client, "/v1/recommendations", big)
    assert response.status_code == 413
    assert "65536 bytes" in response.json()["detail"] and response.json()["request_id"]


def test_oversized_chunked_bodies_are_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"preferences": {"Action": 1}, "pad": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    response = client.post(
        "/v1/recommendations", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_a_422_echoes_only_short_excerpts(client: TestClient) -> None:
    ratings = [{"anime_id": i, "rating": 5} for i in range(1500)]  # over the 1000 cap
    body = {"ratings": ratings, "filters": {"types": ["x" * 5000]}}
    text = json.dumps(body)
    assert len(text) < 64 * 1024
    response = _post_raw(client, "/v1/recommendations", text)
    assert response.status_code == 422
    assert len(response.content) < 2_000, len(response.content)
    inputs = [error.get("input") for error in response.json()["detail"]]
    assert "an array of 1500 item(s)" in inputs


@pytest.mark.parametrize(
    "body",
    [
        {"filters": {"include_genres": ["Action"] * 51}},
        {"preferences": {f"Genre{i}": 1 for i in range(101)}},
        {"filters": {"types": ["y" * 65]}},
    ],
)
def test_lists_and_names_are_capped(client: TestClient, body: dict[str, Any]) -> None:
    assert client.post("/v1/recommendations", json=body).status_code == 422


def test_unexpected_errors_are_500_with_the_request_id(client: TestClient) -> None:
    app = client.app
    assert hasattr(app, "add_api_route")

    def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test-only/broken", broken)
    response = client.get("/test-only/broken", headers={REQUEST_ID_HEADER: "trace-me"})
    assert response.status_code == 500
    assert response.json()["request_id"] == "trace-me"
    assert response.headers[REQUEST_ID_HEADER] == "trace-me"
    assert "a bug" not in response.text


def test_options_and_405_list_every_method_of_a_path(client: TestClient) -> None:
    options = client.options("/v1/users/1/ratings/2")
    assert options.status_code == 204
    assert {"PUT", "DELETE", "OPTIONS"} <= set(options.headers["Allow"].split(", "))
    wrong = client.patch("/v1/users/1/ratings/2", json={})
    assert wrong.status_code == 405
    assert {"PUT", "DELETE"} <= set(wrong.headers["Allow"].split(", "))


def test_openapi_has_integer_bounds_and_the_models_vocabularies(
    client: TestClient, engine: Engine
) -> None:
    document = client.get("/openapi.json").json()
    rating = document["components"]["schemas"]["RatingValue"]["properties"]["rating"]
    assert (rating["minimum"], rating["maximum"]) == (1, 10)
    assert isinstance(rating["maximum"], int)
    filters = document["components"]["schemas"]["BodyFilters"]["properties"]
    assert filters["include_genres"]["items"]["enum"] == engine.genres
    assert set(filters["types"]["items"]["enum"]) == set(engine.table.type_names)
    preferences = document["components"]["schemas"]["NewUserRequest"]["properties"]["preferences"]
    assert preferences["propertyNames"]["enum"] == engine.genres
    parameters = document["paths"]["/v1/users/{user_id}/recommendations"]["get"]["parameters"]
    genres = next(p for p in parameters if p["name"] == "exclude_genres")
    assert genres["schema"]["items"]["enum"] == engine.genres


def test_predicted_ratings_stay_on_the_scale(client: TestClient, engine: Engine) -> None:
    favourites = [int(anime_id) for anime_id in engine.table.anime_ids[:20]]
    bodies: list[dict[str, Any]] = [
        {"ratings": [{"anime_id": a, "rating": 10} for a in favourites], "k": 100},
        {"ratings": [{"anime_id": a, "rating": 1} for a in favourites], "k": 100},
        {"k": 100},
    ]
    for body in bodies:
        items = client.post("/v1/recommendations", json=body).json()["items"]
        assert all(1 <= item["predicted_rating"] <= 10 for item in items)
    similar = client.get(f"/v1/anime/{favourites[0]}/similar", params={"k": 100}).json()
    assert all(1 <= item["predicted_rating"] <= 10 for item in similar["items"])


def test_a_rating_history_is_private_behind_the_key(client: TestClient, engine: Engine) -> None:
    user_id = int(engine.known_user_ids[2])
    assert client.get(f"/v1/users/{user_id}").status_code == 401
    assert client.get(f"/v1/users/{user_id}", headers=AUTH).status_code == 200
    assert client.post("/recommend/", json={"user_input": user_id}).status_code == 401
    assert client.post("/recommend/", json={"user_input": user_id}, headers=AUTH).status_code == 200
    # recommendations reveal no history: open to anyone
    assert client.get(f"/v1/users/{user_id}/recommendations").status_code == 200


def test_history_can_be_made_public(engine: Engine, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, api_key=KEY, private_history=False, warm_users=0)
    app = create_app(settings, ServedModel(engine, "test", None, time.time()))
    with TestClient(app) as open_client:
        response = open_client.get(f"/v1/users/{int(engine.known_user_ids[2])}")
    assert response.status_code == 200
