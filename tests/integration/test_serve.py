"""`otaku serve` as a user runs it: a real process serving the registry's champion."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from otaku.config import Settings
from otaku.data.files import DataSources
from otaku.jobs.train import train_bundle
from otaku.pipeline.training import TrainConfig
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def champion_home(
    real_subset: DataSources, quick_config: TrainConfig, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    home = tmp_path_factory.mktemp("served-home")
    outcome = train_bundle(Settings(home=home), real_subset, quick_config)
    assert outcome.registered is not None and outcome.registered.is_champion
    return home


@pytest.fixture(scope="module")
def server(champion_home: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {**os.environ, "OTAKU_HOME": str(champion_home), "OTAKU_PROGRESS": "0"}
    command = [sys.executable, "-m", "otaku.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail("otaku serve was not ready within 120 s")
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serves_the_champion_over_http(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, _ = server
    model = httpx.get(f"{url}/v1/model").json()
    assert model["registry_version"] == "1"
    assert model["source"] == "registry:otaku-recommender/1"
    body = httpx.post(f"{url}/v1/recommendations", json={"preferences": {"Action": 1}}).json()
    assert len(body["items"]) == 10
    metrics = httpx.get(f"{url}/metrics").text
    assert "otaku_model_info{" in metrics and 'registry_version="1"' in metrics
    docs = httpx.get(f"{url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_the_serving_process_has_no_torch(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    _, process = server
    maps = Path(f"/proc/{process.pid}/maps").read_text()
    assert "libtorch" not in maps
    status = Path(f"/proc/{process.pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    assert rss_kb < 1_500_000


def test_up_starts_the_api_and_the_ui_and_prints_their_urls(
    champion_home: Path, tmp_path: Path
) -> None:
    api_port, ui_port = free_port(), free_port()
    env = {
        **os.environ,
        "OTAKU_HOME": str(champion_home),
        "OTAKU_DATABASE_URL": f"sqlite:///{tmp_path / 'up.db'}",
        "OTAKU_UI_PORT": str(ui_port),
        "OTAKU_PROGRESS": "0",
        "OTAKU_LOG_JSON": "false",
    }
    command = [sys.executable, "-m", "otaku.cli", "up", "--port", str(api_port)]
    log = tmp_path / "up.log"
    with log.open("w") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    ui = f"http://127.0.0.1:{ui_port}"
    try:
        deadline = time.monotonic() + 180
        page = None
        while time.monotonic() < deadline and page is None:
            assert process.poll() is None, log.read_text()
            try:
                answer = httpx.get(f"{ui}/new", params={"go": "1", "w:Action": "1"}, timeout=10)
                page = answer if answer.status_code == 200 else None
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        assert page is not None, log.read_text()
        assert page.text.count('class="result"') == 10
        printed = log.read_text()
        assert f"web UI: {ui}" in printed and f"http://127.0.0.1:{api_port}" in printed
        assert "empty database: loading the demo dataset" in printed  # champion: no training
        assert "no champion model yet" not in printed
    finally:
        process.terminate()
        process.wait(timeout=30)
    with pytest.raises(httpx.TransportError):  # the UI went with it
        httpx.get(f"{ui}/healthz", timeout=2)
