"""The API over real HTTP (uvicorn): concurrent requests get exactly the answers serial
requests get."""

import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from otaku.config import Settings
from otaku.pipeline.engine import Engine
from otaku.service.app import create_app
from otaku.service.model import ServedModel
from tests.integration.conftest import BackgroundServer

pytestmark = pytest.mark.integration

Request = tuple[str, str, dict[str, Any] | None]


def _mixed_requests(engine: Engine) -> list[Request]:
    users = [int(user) for user in engine.known_user_ids[:12]]
    anime = [int(anime_id) for anime_id in engine.table.anime_ids[:8]]
    requests: list[Request] = []
    for user in users:
        requests.append(("GET", f"/v1/users/{user}/recommendations?k=10", None))
        requests.append(("GET", f"/v1/users/{user}/recommendations?k=5&strategy=seed", None))
    for anime_id in anime:
        requests.append(("GET", f"/v1/anime/{anime_id}/similar?k=10", None))
        body = {"ratings": [{"anime_id": anime_id, "rating": 9}], "k": 10}
        requests.append(("POST", "/v1/recommendations", body))
    requests.append(("POST", "/v1/recommendations", {"preferences": {"Action": 1, "Drama": 0.5}}))
    requests.append(("GET", f"/v1/anime/search?q={engine.table.names[0][:4]}", None))
    requests.append(("GET", "/v1/users/987654321/recommendations", None))
    return requests


def _call(client: httpx.Client, request: Request) -> tuple[int, Any]:
    method, path, body = request
    response = client.request(method, path, json=body)
    answer = response.json()
    answer.pop("request_id", None)  # differs by design
    return response.status_code, answer


def test_concurrent_answers_equal_serial_answers(engine: Engine, tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path), ServedModel(engine, "test", None, time.time()))
    requests = _mixed_requests(engine)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        serial = {index: _call(client, request) for index, request in enumerate(requests)}
        order = [index for index in range(len(requests)) for _ in range(3)]
        random.Random(7).shuffle(order)
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda index: _call(client, requests[index]), order))
    assert {status for status, _ in serial.values()} == {200, 404}
    for index, answer in zip(order, answers, strict=True):
        assert answer == serial[index], requests[index]
