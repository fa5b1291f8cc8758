"""Fuzzing of the whole API with an API key set and a real SQLite database behind it:

* schema-driven (schemathesis over the OpenAPI spec): valid and invalid generated requests
  never produce a 5xx, and responses match the documented schemas;
* stateful (schemathesis over the spec's links): sequences such as create a user → rate →
  rate again → delete → recommend, after which the API reads back exactly the ratings the
  database holds;
* hostile JSON the schema cannot express: NaN, ±Infinity, 1e309, integers past 2^63, wrong
  types and long strings put anywhere in valid bodies.

Genres and types are enums in the spec (from the served model). The "positive data
acceptance" check is still left out: a schema-valid request can break a rule across fields
(year_from after year_to, an anime id the catalog lacks, the same anime rated twice) and get
a 422 naming it.
"""

import json
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import delete

from otaku.config import Settings
from otaku.data.dataset import Dataset
from otaku.jobs.load import load_dataset
from otaku.pipeline.engine import Engine
from otaku.service.app import create_app
from otaku.service.model import ServedModel
from otaku.storage.database import Database
from otaku.storage.models import ExperimentRecord, Feedback, Impression, Rating, User
from otaku.storage.repository import Repository

EXAMPLES_PER_OPERATION = 40
KEY = "fuzzing-key-not-a-placeholder"
AUTH = {"X-API-Key": KEY}
HOSTILE_NUMBERS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e309",
    "-1e309",
    "1E400",
    "1e-400",
    "-0.0",
    str(2**63),
    str(2**64 + 1),
    str(-(2**63) - 1),
    str(2**53),
    "7.0",
]
HOSTILE_VALUES = [*HOSTILE_NUMBERS, "true", '"7"', "null", "[]", "{}", json.dumps("x" * 5000)]


@pytest.fixture(scope="module")
def fuzzed(
    engine: Engine, small_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FastAPI, Database]]:
    settings = Settings(
        home=tmp_path_factory.mktemp("fuzz"), api_key=KEY, warm_users=0, experiment_poll_seconds=0
    )
    database = Database.from_settings(settings)
    load_dataset(database, small_dataset, pool_share=0.0, seed=1)
    app = create_app(settings, ServedModel(engine, "test", None, time.time()))
    with TestClient(app):  # runs the lifespan (thread limits, migrations)
        yield app, database
    database.dispose()


def _fuzz_settings(examples: int) -> Any:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases in every CI run
        suppress_health_check=list(HealthCheck),
    )


def test_no_generated_request_breaks_the_api(fuzzed: tuple[FastAPI, Database]) -> None:
    app, _ = fuzzed
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 13
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @_fuzz_settings(EXAMPLES_PER_OPERATION)
            def call(case: schemathesis.Case) -> None:
                response = case.call_and_validate(
                    headers=AUTH, excluded_checks=[positive_data_acceptance]
                )
                assert response.status_code < 500

            try:
                call()
            except Unsatisfiable:
                # an operation without parameters has no invalid request to generate
                assert mode is GenerationMode.NEGATIVE


def _reads_match_the_database(app: FastAPI, database: Database) -> None:
    """Every user's ratings as the API reads them are exactly those in the database."""
    with database.reading() as session:
        repo = Repository(session)
        stored = {user: sorted(repo.user_ratings(user)) for user in repo.ids(User.user_id)}
    with TestClient(app) as client:
        for user_id, ratings in stored.items():
            profile = client.get(f"/v1/users/{user_id}", headers=AUTH)
            assert profile.status_code == 200, profile.text
            read = sorted((r["anime"]["anime_id"], r["rating"]) for r in profile.json()["ratings"])
            assert read == ratings, user_id


def _restore(database: Database, ratings: pd.DataFrame) -> None:
    """Back to the loaded dataset: no API users, the original ratings and vectors."""
    with database.transaction() as session:
        for table in (ExperimentRecord, Impression, Feedback):
            session.execute(delete(table))
        session.execute(delete(User).where(User.origin == "api"))
        session.execute(delete(Rating))
        repo = Repository(session)
        repo.bulk_insert_frame(Rating, ratings)


def test_stateful_sequences_keep_the_api_whole(
    fuzzed: tuple[FastAPI, Database], engine: Engine
) -> None:
    app, database = fuzzed
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    catalog = [int(anime_id) for anime_id in engine.table.anime_ids[:50]]
    calls: list[tuple[str, int]] = []
    with database.transaction() as session:
        loaded = Repository(session).ratings_frame()

    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            _restore(database, loaded)  # each scenario starts from the same database

        def before_call(self, case: schemathesis.Case) -> None:
            # mostly real anime, so ratings are stored and not only refused with 404
            anime_id = (case.path_parameters or {}).get("anime_id")
            if isinstance(anime_id, int) and anime_id % 4:
                case.path_parameters["anime_id"] = catalog[anime_id % len(catalog)]

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": AUTH}

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            calls.append((case.operation.label, response.status_code))
            assert response.status_code < 500, (case.operation.label, response.text)

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

    Sequences.run(settings=_fuzz_settings(60))
    stored = {label for label, status in calls if status == 200 and label.startswith("PUT")}
    assert stored, "no rating was ever stored: the sequences did not reach the writes"
    _reads_match_the_database(app, database)


VALID_BODIES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "POST",
        "/v1/recommendations",
        {
            "preferences": {"Action": 1.0, "Drama": 0.5},
            "ratings": [{"anime_id": 1, "rating": 9}],
            "k": 10,
            "offset": 0,
            "filters": {"min_score": 7.5, "year_from": 1990, "types": ["TV"]},
        },
    ),
    ("POST", "/recommend/", {"user_input": 1, "user_preferences": {"Action": 0.5}}),
    ("POST", "/v1/users", {"user_id": 123}),
    ("PUT", "/v1/users/1/ratings/1", {"rating": 7}),
]
MARK = "@@hostile@@"


def _leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for key, child in value.items() for p in _leaf_paths(child, (*path, key))]
    if isinstance(value, list):
        return [p for i, child in enumerate(value) for p in _leaf_paths(child, (*path, i))]
    return [path]


def _with_mark(body: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return MARK
    copy = json.loads(json.dumps(body))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = MARK
    return copy


@st.composite
def hostile_requests(draw: st.DrawFn) -> tuple[str, str, str]:
    method, path, body = draw(st.sampled_from(VALID_BODIES))
    leaf = draw(st.sampled_from(_leaf_paths(body)))
    value = draw(st.sampled_from(HOSTILE_VALUES))
    text = json.dumps(_with_mark(body, leaf)).replace(json.dumps(MARK), value)
    return method, path, text


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_hostile_numbers_anywhere_are_client_errors(fuzzed: tuple[FastAPI, Database]) -> None:
    app, _ = fuzzed
    with TestClient(app, raise_server_exceptions=False) as client:

        @given(request=hostile_requests())
        @_fuzz_settings(300)
        def call(request: tuple[str, str, str]) -> None:
            method, path, text = request
            headers = {**AUTH, "Content-Type": "application/json"}
            response = client.request(method, path, content=text, headers=headers)
            assert response.status_code < 500, (text, response.text)
            _strict_json(response.text)  # the answer itself is valid JSON

        call()


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
@pytest.mark.parametrize(
    "template",
    [
        "/v1/users/1/recommendations?k={}",
        "/v1/users/1/recommendations?min_score={}",
        "/v1/users/{}/recommendations",
        "/v1/anime/{}/similar",
        "/v1/anime/1/similar?year_from={}",
        "/v1/anime/search?q=a&limit={}",
    ],
)
def test_hostile_numbers_in_paths_and_queries(
    fuzzed: tuple[FastAPI, Database], template: str, value: str
) -> None:
    app, _ = fuzzed
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get(template.format(value))
    assert response.status_code < 500, response.text
    _strict_json(response.text)
