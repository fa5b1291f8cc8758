"""The database goes down and comes back: readiness fails, writes answer 503, reads keep
working from the loaded model, and the service recovers by itself.

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
from otaku.storage.database import Database
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
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "database" in ready.json()["detail"]
        write = client.put(rate, json={"rating": 6}, headers=KEY)
        assert write.status_code == 503
        assert "unreachable" in write.json()["detail"]
        reads = client.get(f"/v1/users/{user_id}/recommendations")
        assert reads.status_code == 200 and len(reads.json()["items"]) == 10
        new_user = client.post("/v1/recommendations", json={"preferences": {"Action": 1}})
        assert new_user.status_code == 200

        own_postgres.start()
        _wait_for(lambda: client.get("/readyz").status_code == 200)
        assert client.put(rate, json={"rating": 6}, headers=KEY).json()["created"] is False
        profile = client.get(f"/v1/users/{user_id}").json()
        assert (anime_id, 6) in {(r["anime"]["anime_id"], r["rating"]) for r in profile["ratings"]}
