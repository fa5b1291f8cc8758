"""The Kubernetes manifests: rendered by kustomize, every object validated offline against the
Kubernetes JSON schemas (kubernetes-validate) or, for the Prometheus Operator's kinds, against
schemas of the fields we use; then what an operator relies on, checked object by object."""

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from otaku.config import Settings
from otaku.jobs.scheduler import JOBS
from tests.deploy.dask_crd import CRD_FILES, validate_operator_object
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.32"
CRD_SCHEMAS = {
    "ServiceMonitor": Path(__file__).parent / "schemas" / "servicemonitor.json",
    "PrometheusRule": Path(__file__).parent / "schemas" / "prometheusrule.json",
}
Object = dict[str, Any]


@pytest.fixture(scope="module")
def objects() -> list[Object]:
    kubectl = require_tool("kubectl", "kubectl ships kustomize: `kubectl kustomize`")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def _one(objects: list[Object], kind: str, name: str) -> Object:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def _pod_specs(objects: list[Object]) -> dict[str, Object]:
    specs: dict[str, Object] = {}
    for o in objects:
        if o["kind"] in ("Deployment", "Job"):
            specs[o["metadata"]["name"]] = o["spec"]["template"]["spec"]
        elif o["kind"] == "CronJob":
            specs[o["metadata"]["name"]] = o["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif o["kind"] == "DaskCluster":
            for part in ("scheduler", "worker"):
                specs[f"{o['metadata']['name']}-{part}"] = o["spec"][part]["spec"]
    return specs


def test_every_object_matches_its_schema(objects: list[Object]) -> None:
    assert len(objects) >= 12
    for o in objects:
        if o["kind"] in CRD_SCHEMAS:
            schema = json.loads(CRD_SCHEMAS[o["kind"]].read_text())
            jsonschema.validate(o, schema)
        elif o["kind"] in CRD_FILES:
            validate_operator_object(o, KUBERNETES_VERSION)
        else:
            kubernetes_validate.validate(o, KUBERNETES_VERSION, strict=True)


def test_a_schema_violation_is_caught() -> None:
    broken = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": "two", "selector": {}, "template": {}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_everything_lives_in_the_otaku_namespace(objects: list[Object]) -> None:
    kinds = {o["kind"] for o in objects}
    assert {
        "Namespace",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "ConfigMap",
        "Secret",
        "CronJob",
        "ServiceMonitor",
        "PrometheusRule",
    } <= kinds
    for o in objects:
        if o["kind"] != "Namespace":
            assert o["metadata"]["namespace"] == "otaku", o["metadata"]["name"]


def test_the_api_deployment_is_highly_available_and_probed(objects: list[Object]) -> None:
    api = _one(objects, "Deployment", "otaku-api")
    assert api["spec"]["replicas"] >= 2
    strategy = api["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    service = _one(objects, "Service", "otaku-api")
    assert service["spec"]["type"] == "LoadBalancer"
    assert (
        service["spec"]["selector"].items() <= api["spec"]["template"]["metadata"]["labels"].items()
    )
    hpa = _one(objects, "HorizontalPodAutoscaler", "otaku-api")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "otaku-api"
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > 2


def test_every_container_is_bounded_and_runs_as_non_root(objects: list[Object]) -> None:
    for name, spec in _pod_specs(objects).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in spec["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert {"cpu", "memory"} <= set(resources["limits"]), name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["image"].startswith("ghcr.io/"), name


def test_cronjobs_run_the_schedulers_jobs_at_its_times(objects: list[Object]) -> None:
    for job in JOBS:
        cronjob = _one(objects, "CronJob", f"otaku-{job.name}")
        assert cronjob["spec"]["schedule"] == job.cron
        assert cronjob["spec"]["timeZone"] == "Etc/UTC"
        assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
        (container,) = _pod_specs(objects)[f"otaku-{job.name}"]["containers"]
        assert tuple(container["args"]) == job.command


def test_configuration_names_real_settings_and_resolves(objects: list[Object]) -> None:
    config = _one(objects, "ConfigMap", "otaku-config")["data"]
    secret = _one(objects, "Secret", "otaku-secrets")["stringData"]
    fields = {f"OTAKU_{name.upper()}" for name in Settings.model_fields}
    assert set(config) | set(secret) <= fields, (set(config) | set(secret)) - fields
    assert all("REPLACE_ME" in value for value in secret.values()), "a template, not secrets"
    for name, spec in _pod_specs(objects).items():
        for container in spec["containers"]:
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    assert ref["configMapKeyRef"]["key"] in config, name
                if "secretKeyRef" in ref:
                    assert ref["secretKeyRef"]["key"] in secret, name
                assert variable["name"] in fields, f"{name}: {variable['name']}"


def test_monitoring_scrapes_the_api_and_carries_the_alert_rules(objects: list[Object]) -> None:
    monitor = _one(objects, "ServiceMonitor", "otaku-api")
    service = _one(objects, "Service", "otaku-api")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    ports = {port["name"] for port in service["spec"]["ports"]}
    assert {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]} <= ports
    rules = _one(objects, "PrometheusRule", "otaku-alerts")
    source = yaml.safe_load((ROOT / "deploy/prometheus/rules/otaku-alerts.yml").read_text())
    assert rules["spec"] == source, "deploy/k8s/monitoring.yaml differs from the rules file"


def test_the_dask_cluster_matches_the_operators_crd_and_typos_are_caught(
    objects: list[Object],
) -> None:
    cluster = _one(objects, "DaskCluster", "otaku-dask")
    validate_operator_object(cluster, KUBERNETES_VERSION)
    paths: list[tuple[tuple[str | int, ...], Object]] = [
        (("spec",), {"wrokers": 2}),  # a field the CRD does not have (pruned by the server)
        (("spec", "worker"), {"replicas": "two"}),
        (("spec", "worker", "spec", "containers", 0), {"imagePullPolicy": 1}),  # PodSpec
    ]
    for path, bad in paths:
        broken = copy.deepcopy(cluster)
        target: Any = broken
        for key in path:
            target = target[key]
        target.update(bad)
        with pytest.raises(jsonschema.ValidationError):
            validate_operator_object(broken, KUBERNETES_VERSION)


def test_dask_workers_can_train_and_the_jobs_use_the_cluster(objects: list[Object]) -> None:
    cluster = _one(objects, "DaskCluster", "otaku-dask")
    (worker,) = cluster["spec"]["worker"]["spec"]["containers"]
    args = worker["args"]
    assert int(args[args.index("--nthreads") + 1]) >= 2  # lightgbm.dask needs two threads
    assert worker["image"] == _pod_specs(objects)["otaku-retrain"]["containers"][0]["image"]
    assert _config_maps(worker) == {"otaku-config"}  # workers find the registry as jobs do
    scheduler = _one(objects, "ConfigMap", "otaku-config")["data"]["OTAKU_DASK_SCHEDULER"]
    name, namespace = cluster["metadata"]["name"], cluster["metadata"]["namespace"]
    ports = cluster["spec"]["scheduler"]["service"]["ports"]
    comm = next(port["port"] for port in ports if port["name"] == "tcp-comm")
    assert scheduler == f"tcp://{name}-scheduler.{namespace}.svc.cluster.local:{comm}"
    for job in ("otaku-retrain", "otaku-precompute"):
        (container,) = _pod_specs(objects)[job]["containers"]
        assert _config_maps(container) == {"otaku-config"}


def _config_maps(container: Object) -> set[str]:
    return {ref["configMapRef"]["name"] for ref in container["envFrom"] if "configMapRef" in ref}
