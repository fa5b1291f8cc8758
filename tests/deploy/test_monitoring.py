"""Monitoring: the alert rules pass promtool's check and unit tests; a real Prometheus scrapes a
running API, loads the rules, and answers every dashboard and alert expression."""

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from otaku.config import Settings
from otaku.pipeline.engine import Engine
from otaku.service.app import create_app
from otaku.service.model import ServedModel
from tests.integration.conftest import BackgroundServer, free_port
from tests.tools import require_tool

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "rules" / "otaku-alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "otaku.json"
PROMTOOL_HINT = "Debian package prometheus; make test installs it"


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def _alert_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_alert_rules_pass_promtool_check_and_unit_tests() -> None:
    promtool = require_tool("promtool", PROMTOOL_HINT)
    for command in (["check", "rules", RULES.name], ["test", "rules", "otaku-alerts.test.yml"]):
        done = subprocess.run(
            [promtool, *command], cwd=RULES.parent, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_alerts_the_issue_asks_for_exist() -> None:
    names = {
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
    }
    assert {
        "OtakuHighErrorRate",
        "OtakuHighP99Latency",
        "OtakuModelStale",
        "OtakuPodRestarts",
    } <= names


def test_dashboard_shows_what_operators_need() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {
        "Request rate by route",
        "Latency p50 by route",
        "Latency p99 by route",
        "Error rate",
        "Model version",
        "Recommendation stage latency p99",
        "Retrain outcomes",
    } <= titles
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


class Prometheus:
    """A real Prometheus server scraping ``target`` every second, with our alert rules."""

    def __init__(self, target: str, folder: Path) -> None:
        self.binary = require_tool("prometheus", PROMTOOL_HINT)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {"job_name": "otaku-api", "static_configs": [{"targets": [target]}]}
            ],
        }
        self.config = folder / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config))
        self.folder = folder

    def __enter__(self) -> "Prometheus":
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.folder / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "prometheus.log").open("w"),
        )
        return self

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def query(self, expr: str) -> dict[str, Any]:
        """The API's answer to an instant query (raises on a PromQL error)."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        answer: dict[str, Any] = response.json()
        assert answer["status"] == "success", (expr, answer)
        return answer

    def wait_for(self, expr: str, seconds: float = 60) -> list[dict[str, Any]]:
        """The first non-empty result of ``expr``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                result: list[dict[str, Any]] = self.query(expr)["data"]["result"]
                if result:
                    return result
            except httpx.TransportError:
                pass  # still starting
            time.sleep(0.5)
        log = (self.folder / "prometheus.log").read_text()[-2000:]
        raise AssertionError(f"{expr} returned nothing within {seconds} s\n{log}")


@pytest.fixture
def api(engine: Engine, tmp_path: Path) -> Iterator[BackgroundServer]:
    settings = Settings(home=tmp_path, warm_users=0)
    app = create_app(settings, ServedModel(engine, "test", "7", time.time()))
    with BackgroundServer(app) as server:
        yield server


@pytest.mark.integration
def test_prometheus_scrapes_the_api_and_answers_every_expression(
    api: BackgroundServer, engine: Engine, tmp_path: Path
) -> None:
    user = int(engine.known_user_ids[0])
    with Prometheus(f"127.0.0.1:{api.port}", tmp_path) as prometheus:
        for _ in range(5):
            assert httpx.get(f"{api.url}/v1/users/{user}/recommendations").status_code == 200
        route = "/v1/users/{user_id}/recommendations"
        found = prometheus.wait_for(
            f'otaku_http_requests_total{{route="{route}",status="200"}} >= 5'
        )
        assert float(found[0]["value"][1]) == 5
        info = prometheus.wait_for('otaku_model_info{version="test-quick"}')
        assert info[0]["metric"]["registry_version"] == "7"
        prometheus.wait_for("otaku_recommendation_stage_seconds_count")
        for expr in _dashboard_exprs() + _alert_exprs():
            prometheus.query(expr)  # a PromQL error fails here
        rules = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        loaded = [rule for group in rules for rule in group["rules"]]
        assert len(loaded) == len(_alert_exprs())
        assert all(rule["health"] != "err" for rule in loaded), loaded


def test_every_metric_the_dashboard_and_alerts_use_is_exported(
    api: BackgroundServer, engine: Engine
) -> None:
    httpx.get(f"{api.url}/v1/users/{int(engine.known_user_ids[0])}/recommendations")
    exposition = httpx.get(f"{api.url}/metrics").text
    samples = re.findall(r"^([a-z_]+)(?:\{| )", exposition, flags=re.MULTILINE)
    families = re.findall(r"^# TYPE ([a-z_]+) ", exposition, flags=re.MULTILINE)
    exported = set(samples) | set(families)  # a family with no samples yet still has a TYPE
    used = set(re.findall(r"\b((?:otaku|process)_[a-z_]+)", " ".join(_dashboard_exprs())))
    used |= set(re.findall(r"\b((?:otaku|process)_[a-z_]+)", " ".join(_alert_exprs())))
    assert used <= exported, used - exported
