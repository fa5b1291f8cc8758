"""The stack from images built here, started with podman-compose (deploy/podman/compose.yml):
PostgreSQL (a Debian-based image of ours), MLflow, ``init``, the API, the UI and Prometheus,
on the host's network. The API runs on the stack's PostgreSQL and its MLflow registry, and
Prometheus scrapes it."""

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.deploy.podman import (
    ROOT,
    build_images,
    container_logs,
    podman,
    podman_environment,
    wait_for,
)
from tests.tools import require_tool

pytestmark = pytest.mark.integration

COMPOSE_FILE = ROOT / "deploy" / "podman" / "compose.yml"
API = "http://127.0.0.1:58000"
UI = "http://127.0.0.1:58501"
PROMETHEUS = "http://127.0.0.1:59090"
DATABASE = "postgresql://otaku:otaku@127.0.0.1:55432/otaku"


def _compose(project: str, *arguments: str, timeout: float = 900) -> str:
    require_tool("podman", "Debian packages podman runc; make test installs them")
    program = Path(sys.executable).parent / "podman-compose"
    environment = {**podman_environment(), "OTAKU_API_KEY": "stack-test-key"}
    done = subprocess.run(
        [str(program), "-p", project, "-f", str(COMPOSE_FILE), *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=environment,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def stack() -> Iterator[str]:
    """The stack, up until the API is ready (its project name)."""
    build_images("serve", "jobs", "mlflow", "postgres", "prometheus")
    project = f"otakustack{uuid.uuid4().hex[:6]}"
    _compose(project, "up", "-d")
    try:
        wait_for(lambda: _ok(f"{API}/readyz"), 900, "the stack's API was not ready",
                 logs=f"{project}_init_1")  # fmt: skip
        yield project
    except BaseException:
        for service in ("postgres", "mlflow", "init", "api"):
            sys.stderr.write(container_logs(f"{project}_{service}_1", lines=40))
        raise
    finally:
        _compose(project, "down", "-v", "-t", "5")
        podman("pod", "rm", "--force", f"pod_{project}", check=False)


def test_api_serves_from_the_stacks_postgresql_and_registry(stack: str) -> None:
    with httpx.Client(base_url=API, timeout=30) as client:
        model = client.get("/v1/model").json()
        known = client.get("/v1/users/1/recommendations", params={"k": 5})
        assert known.status_code == 200, known.text
        created = client.post("/v1/users", json={}, headers={"X-API-Key": "stack-test-key"})
        assert created.status_code == 201, created.text
        user_id = created.json()["user_id"]
    # the new user is a row in the stack's own PostgreSQL, not on this host's server
    with psycopg.connect(DATABASE) as connection:
        found = connection.execute("SELECT count(*) FROM users WHERE user_id = %s", (user_id,))
        assert found.fetchone() == (1,)
        ratings = connection.execute("SELECT count(*) FROM ratings").fetchone()
        assert ratings is not None and ratings[0] > 10_000  # the demo loaded by init
    # the served model is the champion of the stack's MLflow registry
    registered = httpx.get(
        "http://127.0.0.1:55000/api/2.0/mlflow/registered-models/search", timeout=30
    ).json()["registered_models"]
    champions = [
        alias["version"]
        for entry in registered
        for alias in entry.get("aliases", [])
        if alias["alias"] == "champion"
    ]
    assert model["registry_version"] in champions, (model, registered)


def test_ui_answers_through_the_stacks_api(stack: str) -> None:
    wait_for(lambda: _ok(f"{UI}/healthz"), 60, "the UI did not start", logs=f"{stack}_ui_1")
    page = httpx.get(f"{UI}/users/1", timeout=30, follow_redirects=True)
    assert page.status_code == 200 and "My Otaku Friend" in page.text


def test_prometheus_scrapes_the_api(stack: str) -> None:
    def api_target_up() -> bool:
        try:
            answer = httpx.get(
                f"{PROMETHEUS}/api/v1/query", params={"query": 'up{job="otaku-api"}'}, timeout=5
            ).json()
        except httpx.HTTPError:
            return False
        return any(row["value"][1] == "1" for row in answer["data"]["result"])

    wait_for(api_target_up, 90, "Prometheus did not scrape the API", logs=f"{stack}_prometheus_1")
    requests = httpx.get(
        f"{PROMETHEUS}/api/v1/query", params={"query": "otaku_http_requests_total"}, timeout=5
    ).json()
    assert requests["data"]["result"], requests
