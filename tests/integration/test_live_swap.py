"""A new champion is picked up without downtime: forced by POST /admin/reload and found by
polling the registry alias, while requests keep coming; none fails."""

import threading
import time

import httpx
import pytest

from otaku.config import Settings
from otaku.data.files import DataSources
from otaku.jobs.train import train_bundle
from otaku.pipeline.training import TrainConfig
from otaku.service.app import create_app
from otaku.storage.registry import promote
from tests.integration.conftest import BackgroundServer

pytestmark = pytest.mark.integration
KEY = {"X-API-Key": "k"}


@pytest.fixture(scope="module")
def two_versions(
    real_subset: DataSources, quick_config: TrainConfig, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    home = tmp_path_factory.mktemp("swap-home")
    settings = Settings(home=home, api_key="k", warm_users=0, reload_poll_seconds=0.5)
    train_bundle(settings, real_subset, quick_config, with_text=False)  # version 1, champion
    train_bundle(settings, real_subset, quick_config, with_text=False)  # version 2
    return settings


def _hammer(url: str, stop: threading.Event, statuses: list[int], versions: set[str]) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            response = client.post("/v1/recommendations", json={"preferences": {"Action": 1}})
            statuses.append(response.status_code)
            versions.add(response.json().get("model_version", "?"))


def _registry_version(url: str) -> str:
    return str(httpx.get(f"{url}/v1/model", timeout=30).json()["registry_version"])


def test_swaps_under_load_without_a_failed_request(two_versions: Settings) -> None:
    settings = two_versions
    app = create_app(settings)
    with BackgroundServer(app) as server:
        deadline = time.monotonic() + 120
        while httpx.get(f"{server.url}/readyz", timeout=30).status_code != 200:
            assert time.monotonic() < deadline, "the champion never loaded"
            time.sleep(0.2)
        assert _registry_version(server.url) == "1"
        stop = threading.Event()
        statuses: list[int] = []
        versions: set[str] = set()
        workers = [
            threading.Thread(target=_hammer, args=(server.url, stop, statuses, versions))
            for _ in range(4)
        ]
        for worker in workers:
            worker.start()
        try:
            time.sleep(1)
            promote(settings, "2")
            reloaded = httpx.post(f"{server.url}/admin/reload", headers=KEY, timeout=120)
            # the poller may have noticed the alias first; either way version 2 is served now
            assert reloaded.json()["registry_version"] == "2"
            assert reloaded.json()["previous_registry_version"] in {"1", "2"}
            assert _registry_version(server.url) == "2"
            time.sleep(1)
            promote(settings, "1")  # no call this time: the poller notices the alias moved
            deadline = time.monotonic() + 60
            while _registry_version(server.url) != "1":
                assert time.monotonic() < deadline, "the poller did not pick up the champion"
                time.sleep(0.2)
            time.sleep(1)
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=60)
    assert statuses and set(statuses) == {200}
    assert len(versions) == 2  # answers came from both models, none failed in between


def test_reload_needs_the_admin_key(two_versions: Settings) -> None:
    app = create_app(two_versions)
    with BackgroundServer(app) as server:
        assert httpx.post(f"{server.url}/admin/reload", timeout=30).status_code == 401
    open_settings = Settings(home=two_versions.home, warm_users=0, reload_poll_seconds=0)
    with BackgroundServer(create_app(open_settings)) as server:
        assert httpx.post(f"{server.url}/admin/reload", headers=KEY, timeout=30).status_code == 403


def test_an_experiment_arm_can_serve_another_registered_version(two_versions: Settings) -> None:
    from otaku.experiments.definition import ExperimentSpec, assign
    from otaku.storage.registry import champion_version, load_registered

    champion = champion_version(two_versions)
    other = "1" if champion == "2" else "2"
    bundles = {v: load_registered(two_versions, v) for v in ("1", "2")}
    versions = {v: bundle.version for v, bundle in bundles.items()}
    known = bundles[str(champion)].models.components.state.users.external_ids[:60]
    arms = [
        {"name": "champion", "strategy": "default", "share": 0.5},
        {"name": "other", "strategy": "default", "share": 0.5, "model_version": other},
    ]
    settings = two_versions.model_copy(update={"experiment_poll_seconds": 0})
    with BackgroundServer(create_app(settings)) as server:
        wait = time.monotonic() + 60
        while httpx.get(f"{server.url}/readyz", timeout=30).status_code != 200:
            assert time.monotonic() < wait
            time.sleep(0.2)
        missing = {"arms": [arms[0], {**arms[1], "model_version": "99"}]}
        refused = httpx.put(
            f"{server.url}/admin/experiments/v", json=missing, headers=KEY, timeout=30
        )
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "arms", "1", "model_version"]
        started = httpx.put(
            f"{server.url}/admin/experiments/v", json={"arms": arms}, headers=KEY, timeout=30
        )
        assert started.status_code == 201, started.text
        spec = ExperimentSpec.model_validate({"name": "v", "arms": arms})
        model = httpx.get(f"{server.url}/v1/model", timeout=30).json()
        seen = set()
        for user_id in (int(u) for u in known):
            page = httpx.get(f"{server.url}/v1/users/{user_id}/recommendations", timeout=60)
            assert page.status_code == 200, page.text
            body = page.json()
            arm = assign(spec, user_id).arm
            expected = versions[other] if arm == "other" else versions[str(champion)]
            assert (body["arm"], body["model_version"]) == (arm, expected)
            seen.add(arm)
        assert seen == {"champion", "other"}
        assert model["registry_version"] == champion
