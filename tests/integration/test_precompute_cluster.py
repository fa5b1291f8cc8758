"""`otaku precompute --cluster`: users ranked as tasks on a real Dask LocalCluster's workers,
each loading the served model once; the stored rankings equal the in-process ones."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from otaku.cli import app
from otaku.cluster import connected
from otaku.config import Settings, get_settings
from otaku.jobs.precompute import precompute_rankings
from otaku.jobs.precompute_cluster import ModelSource, WrongModelError, ranked_on_cluster
from otaku.pipeline.bundle import Bundle
from otaku.pipeline.engine import Engine
from otaku.pipeline.training import TrainedModels
from otaku.storage.database import Database, create_db_engine
from otaku.storage.models import PrecomputedRanking

pytestmark = pytest.mark.integration


def _stored(url: str) -> dict[int, tuple[str, list[int], list[float], str]]:
    database = Database(create_db_engine(url))
    with database.reading() as session:
        return {
            row.user_id: (row.model_version, row.anime_ids, row.scores, row.profile_key)
            for row in session.query(PrecomputedRanking)
        }


def test_rankings_made_on_the_cluster_equal_those_made_here(
    scheduler: str, trained: TrainedModels, tmp_path: Path
) -> None:
    directory = Bundle(trained, {"version": "cluster-v1"}).save(tmp_path / "bundle")
    cluster_url = f"sqlite:///{tmp_path / 'cluster.db'}"
    env = {
        "OTAKU_HOME": str(tmp_path),
        "OTAKU_DATABASE_URL": cluster_url,
        "OTAKU_BUNDLE_PATH": str(directory),
        "OTAKU_PROGRESS": "0",
    }
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["precompute", "--cluster", scheduler], env=env)
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    local_url = f"sqlite:///{tmp_path / 'local.db'}"
    engine = Engine(Bundle.load(directory).models, {"version": "cluster-v1"})
    local = Database.from_settings(Settings(home=tmp_path, database_url=local_url))
    precompute_rankings(engine, local, users_per_task=37)
    on_cluster, here = _stored(cluster_url), _stored(local_url)
    assert len(on_cluster) == len(engine.known_user_ids) and on_cluster == here
    assert {version for version, *_ in on_cluster.values()} == {"cluster-v1"}


def test_a_worker_that_loads_another_model_fails_the_run(
    scheduler: str, trained: TrainedModels, tmp_path: Path
) -> None:
    directory = Bundle(trained, {"version": "on-disk"}).save(tmp_path / "bundle")
    source = ModelSource.of(Settings(home=tmp_path, bundle_path=directory), None)
    users = Engine(trained, {"version": "x"}).known_user_ids[:5]
    with connected(scheduler) as cluster, pytest.raises(WrongModelError, match="on-disk"):
        list(ranked_on_cluster(cluster, source, "what-the-command-loaded", [users]))
