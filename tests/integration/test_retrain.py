"""Weekly retraining on the database: challenger vs champion, MLflow logging, promotion, and a
retrain killed midway that leaves the champion alone."""

import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from otaku.config import Settings
from otaku.data.files import DataSources
from otaku.jobs.load import load_dataset
from otaku.jobs.retrain import retrain
from otaku.jobs.runs import run_summaries
from otaku.models.rating import RatingModelConfig
from otaku.pipeline.training import TrainConfig
from otaku.storage.database import Database
from otaku.storage.registry import champion_version, load_registered, log_bundle, promote

pytestmark = pytest.mark.integration


@pytest.fixture
def loaded_settings(real_subset: DataSources, tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    load_dataset(Database.from_settings(settings), real_subset.load(), pool_share=0.1, seed=1)
    return settings


def _versions(settings: Settings) -> list[str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)
    found = client.search_model_versions(f"name='{settings.registered_model}'")
    return sorted(str(version.version) for version in found)


def test_retrain_compares_logs_and_promotes_by_the_rule(
    loaded_settings: Settings, quick_config: TrainConfig
) -> None:
    database = Database.from_settings(loaded_settings)
    first = retrain(loaded_settings, database, quick_config, with_text=False)
    assert first.comparison.promote and first.comparison.reason == "no champion yet"
    assert champion_version(loaded_settings) == first.registered_version

    second = retrain(loaded_settings, database, quick_config, with_text=False)
    result = second.comparison
    assert result.champion_version == first.registered_version
    assert result.held_out_ratings > 100 and result.test_users > 5
    assert 0.0 <= result.p_value <= 1.0 and not math.isnan(result.challenger_ndcg)
    expected = second.registered_version if result.promote else first.registered_version
    assert champion_version(loaded_settings) == expected
    if result.p_value >= 0.05:
        assert result.promote or "NDCG@10 would drop" in result.reason

    from mlflow.tracking import MlflowClient

    client = MlflowClient(loaded_settings.tracking_uri)
    version = client.get_model_version(loaded_settings.registered_model, second.registered_version)
    assert version.run_id is not None
    run = client.get_run(version.run_id)
    assert "retrain.p_value" in run.data.metrics
    assert run.data.tags["data_hash"] == second.bundle.metadata["data_hash"]
    artifacts = {artifact.path for artifact in client.list_artifacts(version.run_id)}
    assert "bootstrap_median_ae.png" in artifacts


def test_a_challenger_made_worse_on_purpose_is_kept(
    loaded_settings: Settings, quick_config: TrainConfig
) -> None:
    database = Database.from_settings(loaded_settings)
    first = retrain(loaded_settings, database, quick_config, with_text=False)
    # one tree of two leaves at a tiny learning rate: it predicts about the mean rating
    crippled = replace(
        quick_config,
        components=replace(
            quick_config.components,
            rating=RatingModelConfig(num_boost_round=1, learning_rate=0.001, num_leaves=2),
        ),
    )
    second = retrain(loaded_settings, database, crippled, with_text=False)
    result = second.comparison
    assert not result.promote, result.reason
    assert result.reason.startswith("significantly worse median absolute error"), result.reason
    assert result.challenger_median_ae > result.champion_median_ae
    assert result.p_value < 0.05
    assert champion_version(loaded_settings) == first.registered_version


def test_a_champion_that_may_have_seen_the_hold_out_is_not_compared(
    loaded_settings: Settings, quick_config: TrainConfig, tmp_path: Path
) -> None:
    database = Database.from_settings(loaded_settings)
    retrain(loaded_settings, database, quick_config, with_text=False)
    # a champion from before hold-outs: its bundle records none
    older = load_registered(loaded_settings)
    assert older.metadata["holdout"]["held_out_ratings"] > 0
    del older.metadata["holdout"]
    older.metadata["version"] = "older-champion"
    directory = older.save(tmp_path / "older-champion")
    registered = log_bundle(loaded_settings, directory, older, make_champion_if_none=False)
    promote(loaded_settings, registered.version)

    challenger = retrain(loaded_settings, database, quick_config, with_text=False)
    result = challenger.comparison
    assert result.refused and not result.promote
    assert "records no hold-out" in result.reason and "otaku promote" in result.reason
    assert champion_version(loaded_settings) == registered.version
    assert challenger.bundle.metadata["retrain"]["refused"] is True


def test_a_killed_retrain_leaves_the_champion_and_registry_alone(
    loaded_settings: Settings, quick_config: TrainConfig
) -> None:
    database = Database.from_settings(loaded_settings)
    first = retrain(loaded_settings, database, quick_config, with_text=False)
    versions = _versions(loaded_settings)
    env = {
        **os.environ,
        "OTAKU_HOME": str(loaded_settings.home),
        "OTAKU_DATABASE_URL": str(loaded_settings.database_url),
        "OTAKU_PROGRESS": "0",
    }
    # the reference preset's 50 LightFM epochs and 2000 rounds: the kill lands while it trains
    command = [sys.executable, "-m", "otaku.cli", "retrain", "--no-text", "--preset", "reference"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not run_summaries(database):  # its run is recorded when it starts
        assert process.poll() is None and time.monotonic() < deadline, "the retrain never started"
        time.sleep(0.2)
    time.sleep(2)  # reading the snapshot and training: well before anything is registered
    assert process.poll() is None, "the retrain finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert champion_version(loaded_settings) == first.registered_version
    assert _versions(loaded_settings) == versions
    # the run's record says it started and never finished (the operator's "running" alert)
    assert [(s.job, s.outcome, s.runs) for s in run_summaries(database)] == [
        ("retrain", "running", 1)
    ]
