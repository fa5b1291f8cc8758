"""The GitHub Actions workflow: valid by GitHub's workflow schema; tests on pull requests; on a
release, both images built from stages that exist and pushed."""

import re
from pathlib import Path
from typing import Any

import yaml

from tests.tools import run_checker

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def _workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(WORKFLOW.read_text(), Loader=yaml.BaseLoader)
    return loaded  # BaseLoader: the key `on` stays a string, not True


def test_workflow_matches_githubs_schema() -> None:
    run_checker("check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(WORKFLOW))


def test_pull_requests_run_the_readmes_test_command() -> None:
    workflow = _workflow()
    assert "pull_request" in workflow["on"]
    steps = workflow["jobs"]["test"]["steps"]
    assert any(step.get("run") == "make test" for step in steps)
    assert "make test" in (ROOT / "README.md").read_text()
    assert workflow["jobs"]["test"]["env"]["OTAKU_REQUIRE_TOOLS"] == "1"


def test_a_release_builds_and_pushes_both_images() -> None:
    workflow = _workflow()
    assert workflow["on"]["release"]["types"] == ["published"]
    image = workflow["jobs"]["image"]
    assert image["needs"] == "test" and "release" in image["if"]
    assert image["permissions"]["packages"] == "write"
    stages = set(re.findall(r"^FROM \S+ AS (\S+)", (ROOT / "Dockerfile").read_text(), re.M))
    targets = {entry["target"] for entry in image["strategy"]["matrix"]["include"]}
    assert targets == {"serve", "jobs"} and targets <= stages
    push = next(s for s in image["steps"] if s.get("uses", "").startswith("docker/build-push"))
    assert push["with"]["push"] == "true"
