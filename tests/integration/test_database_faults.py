"""The database goes down and comes back: the service stays ready (reads go on), writes answer
503 without the driver's details, every read either uses the newest ratings this server knows
and says it is degraded, or answers 503 — never a confident wrong answer — and the service
recovers by itself.

The test runs a PostgreSQL instance of its own (initdb + pg_ctl in a temporary folder, as the
``postgres`` system user), so stopping it disturbs nobody.
"""

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from otaku.config import Settings
from otaku.data.dataset import Dataset
from otaku.jobs.load import load_dataset
from otaku.pipeline.engine import Engine
from otaku.service.app import create_app
from otaku.service.model import ServedModel
from otaku.service.users import RECENT_FALLBACK, TRAINED_FALLBACK
from otaku.storage.database import Database
from otaku.storage.repository import Repository
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration
KEY = {"X-API-Key": "k"}


def _postgres_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not versions or shutil.which("runuser") is None:
        pytest.skip("PostgreSQL server binaries (or runuser) are not installed")
    return versions[-1].parent


class OwnPostgres:
    """A throwaway PostgreSQL server on a free port."""

    def __init__(self, folder: Path) -> None:
        self.bin = _postgres_bin()
        self.data = folder / "data"
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(folder, "postgres")
        self._as_postgres("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres")

    def _as_postgres(self, tool: str, *args: str) -> None:
        command = ["runuser", "-u", "postgres", "--", str(self.bin / tool), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        log = str(self.data.parent / "server.log")  # the server must not hold our pipes
        self._as_postgres("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    # pytest's temporary folders are private to root; the server runs as ``postgres``
    folder = Path(tempfile.mkdtemp(prefix="otaku-pg-"))
    folder.chmod(0o755)
    server = OwnPostgres(folder / "cluster")
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()  # unless the test left it stopped
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for(condition: object, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def test_database_down_then_back(
    own_postgres: OwnPostgres, small_dataset: Dataset, engine: Engine, tmp_path: Path
) -> None:
    database = Database.from_settings(Settings(home=tmp_path, database_url=own_postgres.url))
    load_dataset(database, small_dataset, pool_share=0.0, seed=1)
    database.dispose()
    settings = Settings(home=tmp_path, database_url=own_postgres.url, api_key="k", warm_users=0)
    app = create_app(settings, ServedModel(engine, "test", None, time.time()))
    user_id = int(engine.known_user_ids[1])
    anime_id = int(engine.table.anime_ids[7])
    rate = f"/v1/users/{user_id}/ratings/{anime_id}"
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        assert client.put(rate, json={"rating": 8}, headers=KEY).status_code == 200

        own_postgres.stop()
        assert client.get("/readyz").status_code == 200  # readiness = a model is loaded
        assert client.get("/healthz").json() == {"status": "alive", "database": "down"}
        assert "otaku_database_up 0.0" in client.get("/metrics").text
        write = client.put(rate, json={"rating": 6}, headers=KEY)
        assert write.status_code == 503
        assert "database is unavailable" in write.json()["detail"]
        for secret in ("psycopg", "127.0.0.1", str(own_postgres.port), "sqlalche", "postgres"):
            assert secret not in write.text.lower(), write.text
        reads = client.get(f"/v1/users/{user_id}/recommendations")
        assert reads.status_code == 200 and len(reads.json()["items"]) == 10
        assert reads.json()["degraded"]
        new_user = client.post("/v1/recommendations", json={"preferences": {"Action": 1}})
        assert new_user.status_code == 200 and new_user.json()["degraded"] is None

        own_postgres.start()
        _wait_for(lambda: client.get("/healthz").json()["database"] == "up")
        assert client.put(rate, json={"rating": 6}, headers=KEY).json()["created"] is False
        profile = client.get(f"/v1/users/{user_id}", headers=KEY).json()
        assert (anime_id, 6) in {(r["anime"]["anime_id"], r["rating"]) for r in profile["ratings"]}


def _rate(client: TestClient, user_id: int, anime_id: int, rating: int) -> int:
    path = f"/v1/users/{user_id}/ratings/{anime_id}"
    return client.put(path, json={"rating": rating}, headers=KEY).status_code


def _recommended(client: TestClient, user_id: int) -> tuple[int, list[int], str | None]:
    response = client.get(f"/v1/users/{user_id}/recommendations", params={"k": 100})
    if response.status_code != 200:
        return response.status_code, [], response.json()["detail"]
    body = response.json()
    return 200, [item["anime"]["anime_id"] for item in body["items"]], body["degraded"]


def test_no_confident_wrong_answer_while_the_database_is_down(
    own_postgres: OwnPostgres, small_dataset: Dataset, engine: Engine, tmp_path: Path
) -> None:
    database = Database.from_settings(Settings(home=tmp_path, database_url=own_postgres.url))
    load_dataset(database, small_dataset, pool_share=0.0, seed=1)
    settings = Settings(home=tmp_path, database_url=own_postgres.url, api_key="k", warm_users=0)
    app = create_app(settings, ServedModel(engine, "test", None, time.time()))
    dataset_user, untouched_user = (int(user) for user in engine.known_user_ids[5:7])
    with TestClient(app) as client:
        # a dataset user rates the anime the model would recommend them first
        _, before, _ = _recommended(client, dataset_user)
        top = before[0]
        assert (
            client.put(
                f"/v1/users/{dataset_user}/ratings/{top}", json={"rating": 9}, headers=KEY
            ).status_code
            == 200
        )
        # a user created through the API, with two ratings
        api_user = client.post("/v1/users", json={}, headers=KEY).json()["user_id"]
        rated = [int(a) for a in engine.table.anime_ids[:2]]
        for anime_id in rated:
            assert (
                client.put(
                    f"/v1/users/{api_user}/ratings/{anime_id}", json={"rating": 8}, headers=KEY
                ).status_code
                == 200
            )
        # not interested: the dataset user in their next pick, the untouched user in their top
        # (asked of the engine: the untouched user's ratings are never read or written here)
        dismissed = before[1]
        untouched_top = engine.recommend_for_user(untouched_user).items[0].anime.anime_id
        for user_id, anime_id in ((dataset_user, dismissed), (untouched_user, untouched_top)):
            body = {"anime_id": anime_id, "kind": "not_interested"}
            stored = client.post(f"/v1/users/{user_id}/feedback", json=body, headers=KEY)
            assert stored.status_code == 200
        # a user another replica created: this server never saw them
        with database.transaction() as session:
            Repository(session).add_user(999_001, "api")
        database.dispose()

        own_postgres.stop()
        status, items, degraded = _recommended(client, dataset_user)
        assert status == 200 and degraded == RECENT_FALLBACK
        assert top not in items and dismissed not in items  # rated, and not interested
        status, items, degraded = _recommended(client, api_user)
        assert status == 200 and not set(rated) & set(items) and degraded == RECENT_FALLBACK
        status, items, degraded = _recommended(client, untouched_user)
        assert status == 200 and degraded == TRAINED_FALLBACK and untouched_top not in items
        status, _, detail = _recommended(client, 999_001)
        assert status == 503 and "database is unavailable" in str(detail)
        profile = client.get(f"/v1/users/{api_user}", headers=KEY).json()
        assert {r["anime"]["anime_id"] for r in profile["ratings"]} == set(rated)
        assert profile["degraded"] == RECENT_FALLBACK

        own_postgres.start()
        _wait_for(lambda: client.get("/healthz").json()["database"] == "up")
        assert _recommended(client, 999_001)[0] == 200
        status, items, degraded = _recommended(client, dataset_user)
        assert status == 200 and top not in items and degraded is None
