"""The MLflow artifact registry: log a bundle, register it, load a version or alias back."""

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otaku.config import Settings
from otaku.pipeline.bundle import Bundle
from otaku.storage.database import ALEMBIC_LOCK

log = logging.getLogger(__name__)
CHAMPION = "champion"
BUNDLE_ARTIFACT = "bundle"


@dataclass(frozen=True)
class RegisteredBundle:
    """Where a logged bundle went."""

    run_id: str
    model_name: str
    version: str
    is_champion: bool


def _client(settings: Settings) -> Any:
    import mlflow
    from mlflow.tracking import MlflowClient

    settings.home.mkdir(parents=True, exist_ok=True)
    # Opening an MLflow SQLite store may run MLflow's Alembic migrations: never at the same
    # time as ours (see ALEMBIC_LOCK). Both stores are opened here, inside the lock.
    with ALEMBIC_LOCK:
        mlflow.set_tracking_uri(settings.tracking_uri)
        client = MlflowClient(tracking_uri=settings.tracking_uri)
        client.search_registered_models(max_results=1)
    return client


def _experiment_id(client: Any, settings: Settings) -> str:
    experiment = client.get_experiment_by_name(settings.mlflow_experiment)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = None if settings.mlflow_tracking_uri else settings.artifact_location
    return str(client.create_experiment(settings.mlflow_experiment, artifact_location=location))


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = value


def log_bundle(
    settings: Settings,
    bundle_dir: Path,
    bundle: Bundle,
    make_champion_if_none: bool = True,
    extra_metrics: dict[str, float] | None = None,
    extra_artifacts: list[Path] | None = None,
) -> RegisteredBundle:
    """Log the bundle's parameters, metrics and files to MLflow and register a model version.

    The first registered version becomes the ``champion``; later ones are promoted by retrain.
    """
    client = _client(settings)
    experiment_id = _experiment_id(client, settings)
    run = client.create_run(experiment_id, run_name=f"train-{bundle.version}")
    run_id = run.info.run_id
    try:
        params: dict[str, Any] = {}
        _flatten("", bundle.metadata.get("params", {}), params)
        for key, value in list(params.items())[:100]:
            client.log_param(run_id, key, str(value)[:500])
        metrics: dict[str, Any] = {}
        _flatten("", bundle.metadata.get("metrics", {}), metrics)
        for key, value in metrics.items():
            if isinstance(value, int | float):
                client.log_metric(run_id, key, float(value))
        for key, value in (extra_metrics or {}).items():
            client.log_metric(run_id, key, value)
        for path in extra_artifacts or []:
            client.log_artifact(run_id, str(path))
        client.set_tag(run_id, "data_hash", bundle.metadata.get("data_hash", ""))
        client.set_tag(run_id, "bundle_version", bundle.version)
        client.log_artifacts(run_id, str(bundle_dir), BUNDLE_ARTIFACT)
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    return _register(client, settings, run_id, make_champion_if_none)


def _register(
    client: Any, settings: Settings, run_id: str, make_champion: bool
) -> RegisteredBundle:
    from mlflow.exceptions import MlflowException

    name = settings.registered_model
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    source = f"{client.get_run(run_id).info.artifact_uri}/{BUNDLE_ARTIFACT}"
    version = client.create_model_version(name, source, run_id=run_id)
    champion = False
    if make_champion and champion_version(settings) is None:
        client.set_registered_model_alias(name, CHAMPION, version.version)
        champion = True
    return RegisteredBundle(run_id, name, str(version.version), champion)


def promote(settings: Settings, version: str) -> None:
    """Point the ``champion`` alias at ``version`` (the served model changes with it)."""
    _client(settings).set_registered_model_alias(settings.registered_model, CHAMPION, version)


def champion_version(settings: Settings) -> str | None:
    """The registered version the ``champion`` alias names, if any."""
    from mlflow.exceptions import MlflowException

    client = _client(settings)
    try:
        return str(client.get_model_version_by_alias(settings.registered_model, CHAMPION).version)
    except MlflowException:
        return None


def version_exists(settings: Settings, version: str) -> bool:
    """Whether the registered model has this version."""
    from mlflow.exceptions import MlflowException

    try:
        _client(settings).get_model_version(settings.registered_model, version)
        return True
    except MlflowException:
        return False


def load_registered(settings: Settings, version_or_alias: str = CHAMPION) -> Bundle:
    """Download a registered bundle (a version number or an alias) and load it."""
    import mlflow

    client = _client(settings)
    name = settings.registered_model
    if version_or_alias.isdigit():
        version = client.get_model_version(name, version_or_alias)
    else:
        version = client.get_model_version_by_alias(name, version_or_alias)
    with tempfile.TemporaryDirectory(prefix="otaku-bundle-") as target:
        local = mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=target)
        return Bundle.load(Path(local))  # read fully into memory: the download can go
