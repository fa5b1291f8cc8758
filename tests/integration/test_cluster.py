"""Training through the Dask path on a real LocalCluster (2 worker processes, 2 threads each):
the demo end to end from the command line, the bundle answering all four questions, quality
against the in-process path on the same data, and reading rating files on the workers."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from otaku.cli import app
from otaku.cluster import Cluster, ClusterError, check_workers, connected, lightgbm_machines
from otaku.config import get_settings
from otaku.data import distributed
from otaku.data.distributed import load_rating_files_on_cluster
from otaku.data.files import DataSources
from otaku.data.sources import load_rating_files
from otaku.data.validation import DataValidationError
from otaku.jobs.holdout import fixed_split
from otaku.jobs.retrain import compare
from otaku.pipeline.bundle import Bundle
from otaku.pipeline.engine import Engine
from otaku.pipeline.profiles import NewUser

pytestmark = pytest.mark.integration

DEMO_USERS = 1000
# On the demo's held-out ratings (196 test users, whole-catalog rankings) the default NDCG@10
# is about 0.04 either way (seen: local 0.041, cluster 0.037); its standard error is about
# 0.005. The shared real data's figure (README) is the one held to the 0.01.
NDCG_TOLERANCE = 0.02


@pytest.fixture
def cluster(scheduler: str) -> Iterator[Cluster]:
    with connected(scheduler, lightgbm_port=12460) as connection:
        yield connection


def _train(home: Path, *options: str) -> Bundle:
    env = {"OTAKU_HOME": str(home), "OTAKU_PROGRESS": "0"}
    get_settings.cache_clear()
    arguments = ["train", "--demo", "--demo-users", str(DEMO_USERS), "--quick", "--no-text"]
    result = CliRunner().invoke(app, [*arguments, "--no-register", *options], env=env)
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    (directory,) = (home / "bundles").iterdir()
    return Bundle.load(directory)


@pytest.fixture(scope="module")
def bundles(scheduler: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Bundle, Bundle]:
    """The demo trained through the cluster path and in-process, on the same data."""
    on_cluster = _train(tmp_path_factory.mktemp("cluster"), "--cluster", scheduler)
    local = _train(tmp_path_factory.mktemp("local"))
    return on_cluster, local


def test_the_demo_trains_on_the_cluster_with_rounds_chosen_locally(
    bundles: tuple[Bundle, Bundle],
) -> None:
    on_cluster, local = bundles
    meta = on_cluster.metadata
    assert meta["cluster"]["workers"] == 2 and meta["cluster"]["threads_per_worker"] == [2, 2]
    metrics = meta["metrics"]
    # lightgbm.dask trained exactly the rounds chosen on the local sample
    assert metrics["ranker_trees"] == metrics["ranker_rounds_chosen_locally"] >= 1
    assert metrics["rating_trees"] == metrics["rating_rounds_chosen_locally"] >= 1
    # the demo's 57k ratings fit in the 200k-rating sample the rounds are chosen on
    assert 0 < metrics["rating_rounds_sample_ratings"] <= meta["samples"]["rating_model_ratings"]
    assert (
        "cluster" not in local.metadata
        and "ranker_rounds_chosen_locally" not in (local.metadata["metrics"])
    )
    assert on_cluster.metadata["data_hash"] == local.metadata["data_hash"]


def test_the_cluster_bundle_answers_all_four_questions(bundles: tuple[Bundle, Bundle]) -> None:
    engine = Engine(bundles[0].models, bundles[0].metadata)
    user = int(engine.known_user_ids[0])
    known = engine.recommend_for_user(user, k=10)
    watched = {anime_id for anime_id, _ in _history(engine, user)}
    assert len(known.items) == 10 and not watched & {i.anime.anime_id for i in known.items}
    genre = engine.genres[0]
    liked = int(engine.anime_id_of(0))
    for new_user in (NewUser(), NewUser(preferences={genre: 1.0}), NewUser(ratings={liked: 9})):
        page = engine.recommend_for_new_user(new_user, k=10)
        assert len(page.items) == 10
    similar = engine.similar(liked, k=5)
    assert len(similar.items) == 5 and liked not in {i.anime.anime_id for i in similar.items}


def _history(engine: Engine, user: int) -> list[tuple[int, int]]:
    return [(info.anime_id, rating) for info, rating in engine.history(user)]


def test_the_cluster_bundle_ranks_as_well_as_the_local_one(
    bundles: tuple[Bundle, Bundle],
) -> None:
    on_cluster, local = bundles
    data = DataSources(demo_users=DEMO_USERS).load()
    _, split = fixed_split(data, get_settings().seed)
    comparison, _, _ = compare(local, "local", on_cluster, split, 1.0, 42)
    assert comparison.challenger_ndcg > 0.02  # held-out likes are found in its top 10
    assert abs(comparison.challenger_ndcg - comparison.champion_ndcg) <= NDCG_TOLERANCE, comparison


def test_lightgbm_ports_are_pinned_per_worker_of_a_host(cluster: Cluster) -> None:
    import socket

    client = cluster.client
    parts = [client.submit(np.arange, n, workers=[w]) for n, w in enumerate(client.nthreads(), 1)]
    assert lightgbm_machines(client, parts, 12460) == "127.0.0.1:12460,127.0.0.1:12461"
    with socket.socket() as taken:  # a port in use is skipped, the range stays the same
        taken.bind(("", 12460))
        taken.listen()
        assert lightgbm_machines(client, parts, 12460) == "127.0.0.1:12461,127.0.0.1:12462"


def test_a_worker_with_one_thread_is_refused_by_name() -> None:
    with pytest.raises(ClusterError, match=r"tcp://10\.0\.0\.2:1.*fewer than 2 threads"):
        check_workers({"tcp://10.0.0.1:1": 2, "tcp://10.0.0.2:1": 1})
    with pytest.raises(ClusterError, match="no workers"):
        check_workers({})


def test_an_unreachable_scheduler_ends_the_command_with_a_clear_error(tmp_path: Path) -> None:
    env = {"OTAKU_HOME": str(tmp_path), "OTAKU_DASK_SCHEDULER": "tcp://127.0.0.1:9"}
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["train", "--demo", "--quick", "--no-text"], env=env)
    get_settings.cache_clear()
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in " ".join(result.output.split())
    assert not (tmp_path / "bundles").exists()


def _rating_file(path: Path, n_users: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(n_users), 20),
            "anime_id": np.tile(np.arange(1, 21), n_users),
            "rating": rng.integers(1, 11, 20 * n_users),
        }
    )
    frame.to_csv(path, index=False)
    return frame


def test_rating_files_read_on_the_workers_equal_the_local_read(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(distributed, "BLOCK_BYTES", 20_000)  # many blocks, several per worker
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    _rating_file(first, 300)
    _rating_file(second, 40).assign(rating=1).to_csv(second, index=False)  # re-ratings
    paths = [first, second]
    on_cluster = load_rating_files_on_cluster(cluster.client, paths)
    pd.testing.assert_frame_equal(on_cluster, load_rating_files(paths))
    assert len(on_cluster) == 6000 and on_cluster["rating"].iloc[-1] == 1


def test_a_bad_value_in_a_later_block_is_named_by_its_row_in_the_whole_file(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(distributed, "BLOCK_BYTES", 20_000)
    path = tmp_path / "ratings.csv"
    frame = _rating_file(path, 300)
    frame["rating"] = frame["rating"].astype(str)
    frame.loc[4321, "rating"] = "eleven"
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError) as raised:
        load_rating_files_on_cluster(cluster.client, [path])
    with pytest.raises(DataValidationError) as locally:
        load_rating_files([path])
    assert raised.value.row == locally.value.row == 4322 and raised.value.column == "rating"
    assert "'eleven'" in str(raised.value)


def test_a_file_the_workers_cannot_see_is_read_here_with_the_same_errors(
    cluster: Cluster, tmp_path: Path
) -> None:
    missing = tmp_path / "elsewhere.csv"  # on no worker's disk (nor on this one)
    with pytest.raises(DataValidationError, match="file not found"):
        load_rating_files_on_cluster(cluster.client, [missing])
    present = tmp_path / "here.csv"
    expected = _rating_file(present, 5)
    frame = load_rating_files_on_cluster(cluster.client, [present])
    assert frame["rating"].tolist() == expected["rating"].tolist()
