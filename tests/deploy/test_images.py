"""The images built and run (podman, runc): ``otaku init`` in the jobs image trains the demo
into a volume, the serve image serves it as the non-root user with a passing HEALTHCHECK, and
the API, a UI container beside it and ``/metrics`` answer from the running containers."""

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.deploy.podman import (
    JOBS_IMAGE,
    SERVE_IMAGE,
    build_images,
    container_logs,
    free_port,
    inspect,
    podman,
    wait_for,
)

pytestmark = pytest.mark.integration

API_KEY = "container-test-key"


@pytest.fixture(scope="module")
def home_volume() -> Iterator[str]:
    """A volume holding a database and a registry with a champion: ``otaku init`` on the demo,
    run in the jobs image as the image's user."""
    build_images("serve", "jobs")
    volume = f"otaku-test-{uuid.uuid4().hex[:8]}"
    podman("volume", "create", volume)
    try:
        podman(
            "run", "--rm", "--network", "host", "-v", f"{volume}:/var/lib/otaku",
            JOBS_IMAGE, "otaku", "init", timeout=1200,
        )  # fmt: skip
        yield volume
    finally:
        podman("volume", "rm", "--force", volume, check=False)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def api(home_volume: str) -> Iterator[tuple[str, str]]:
    """``otaku serve`` in the serve image on the volume: (its URL, the container's name)."""
    port = free_port()
    name = f"otaku-api-{uuid.uuid4().hex[:8]}"
    podman(
        "run", "-d", "--name", name, "--network", "host",
        "-v", f"{home_volume}:/var/lib/otaku",
        "-e", f"OTAKU_API_PORT={port}", "-e", f"OTAKU_API_KEY={API_KEY}",
        "-e", f"OTAKU_HEALTHCHECK_URL=http://127.0.0.1:{port}/healthz",
        SERVE_IMAGE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{url}/readyz"), 180, "the API was not ready", logs=name)
        yield url, name
    finally:
        podman("rm", "--force", name, check=False)


def test_serve_image_runs_as_the_unprivileged_user_with_a_passing_healthcheck(
    api: tuple[str, str],
) -> None:
    _, name = api
    assert podman("exec", name, "id", "-u").strip() == "10001"
    assert inspect("container", name)["Config"]["User"] == "10001:10001"
    healthcheck = inspect("image", SERVE_IMAGE)["Healthcheck"]["Test"]
    assert "OTAKU_HEALTHCHECK_URL" in " ".join(healthcheck)
    # the image's own HEALTHCHECK command, run by podman inside the container
    podman("healthcheck", "run", name)
    assert inspect("container", name)["State"]["Health"]["Status"] == "healthy"


def test_serve_image_answers_the_four_questions_and_metrics(api: tuple[str, str]) -> None:
    url, name = api
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/readyz").status_code == 200
        known = client.get("/v1/users/1/recommendations", params={"k": 5})
        assert known.status_code == 200, known.text
        assert len(known.json()["items"]) == 5
        new = client.post("/v1/recommendations", json={"preferences": {"Action": 1}})
        assert new.status_code == 200, new.text
        assert new.json()["items"]
        found = client.get("/v1/anime/search", params={"q": "Cowboy Bebop"}).json()["results"]
        assert found and found[0]["anime"]["anime_id"] == 1
        similar = client.get("/v1/anime/1/similar", params={"k": 3})
        assert similar.status_code == 200 and len(similar.json()["items"]) == 3
        metrics = client.get("/metrics").text
        counted = [line for line in metrics.splitlines() if "otaku_http_requests_total{" in line]
        assert any('route="/v1/users/{user_id}/recommendations"' in line for line in counted)
    assert "Traceback" not in container_logs(name, lines=500)


def test_ui_container_renders_pages_from_the_api(api: tuple[str, str]) -> None:
    api_url, _ = api
    port = free_port()
    name = f"otaku-ui-{uuid.uuid4().hex[:8]}"
    podman(
        "run", "-d", "--name", name, "--network", "host",
        "-e", f"OTAKU_UI_PORT={port}", "-e", f"OTAKU_UI_API_URL={api_url}",
        "-e", f"OTAKU_API_KEY={API_KEY}",
        "-e", f"OTAKU_HEALTHCHECK_URL=http://127.0.0.1:{port}/healthz",
        SERVE_IMAGE, "otaku", "ui",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{url}/healthz"), 60, "the UI did not start", logs=name)
        home = httpx.get(url, timeout=30)
        assert home.status_code == 200 and "My Otaku Friend" in home.text
        user_page = httpx.get(f"{url}/users/1", timeout=30, follow_redirects=True)
        assert user_page.status_code == 200, user_page.text[:500]
        podman("healthcheck", "run", name)
    finally:
        podman("rm", "--force", name, check=False)
