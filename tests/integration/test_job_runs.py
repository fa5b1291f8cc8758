"""Every batch-job run is recorded (SQLite and PostgreSQL), and the service exports the record
as ``otaku_job_runs`` / ``otaku_job_last_run_timestamp_seconds``."""

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from otaku.config import Settings
from otaku.jobs.runs import recorded_run, run_summaries
from otaku.pipeline.engine import Engine
from otaku.service.app import create_app
from otaku.service.model import ServedModel
from otaku.storage.database import Database
from otaku.storage.models import JobRun

pytestmark = pytest.mark.integration


def test_runs_are_recorded_with_their_outcome(database: Database) -> None:
    before = datetime.now(UTC)
    with recorded_run(database, "retrain") as run:
        run.outcome, run.detail = "promoted", "version 2"
    with recorded_run(database, "retrain") as run:
        run.outcome = "kept"
    with pytest.raises(RuntimeError, match="out of memory"), recorded_run(database, "retrain"):
        raise RuntimeError("out of memory")
    with recorded_run(database, "simulate-users"):
        pass
    summaries = {(s.job, s.outcome): s for s in run_summaries(database)}
    assert {key: s.runs for key, s in summaries.items()} == {
        ("retrain", "promoted"): 1,
        ("retrain", "kept"): 1,
        ("retrain", "failed"): 1,
        ("simulate-users", "done"): 1,
    }
    assert all(s.last_started >= before.replace(microsecond=0) for s in summaries.values())
    with database.transaction() as session:
        failed = session.query(JobRun).filter_by(outcome="failed").one()
        assert failed.detail == "RuntimeError: out of memory"
        assert failed.finished_at is not None


def test_the_service_exports_job_runs(database: Database, engine: Engine, tmp_path: Path) -> None:
    with recorded_run(database, "retrain") as run:
        run.outcome = "kept"
    url = database.engine.url.render_as_string(hide_password=False)
    settings = Settings(home=tmp_path, database_url=url, warm_users=0)
    app = create_app(settings, ServedModel(engine, "test", None, time.time()))
    with TestClient(app) as client:
        text = client.get("/metrics").text
    assert 'otaku_job_runs{job="retrain",outcome="kept"} 1.0' in text
    assert 'otaku_job_last_run_timestamp_seconds{job="retrain",outcome="kept"}' in text
