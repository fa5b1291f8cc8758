"""`otaku precompute`: every known user's default ranking (depth 100, no filters) computed with
the served model and written to the database in one transaction, so that the service answers
those users' unfiltered pages with a read instead of the candidate sources and the ranker."""

import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from otaku.pipeline.engine import Engine
from otaku.pipeline.precomputed import ComputedRankings, compute_rankings
from otaku.progress import track
from otaku.storage.database import Database
from otaku.storage.models import PrecomputedRanking
from otaku.storage.repository import Repository

if TYPE_CHECKING:
    from otaku.cluster import Cluster
    from otaku.jobs.precompute_cluster import ModelSource

USERS_PER_TASK = 500
_FORKED: dict[str, Engine] = {}  # the parent's engine, shared copy-on-write with forked workers


@dataclass(frozen=True)
class PrecomputeOutcome:
    """What a precompute run wrote."""

    users: int
    model_version: str
    seconds: float

    @property
    def users_per_second(self) -> float:
        """Users ranked and written per second."""
        return self.users / self.seconds if self.seconds > 0 else 0.0


def _rank_task(user_ids: np.ndarray) -> ComputedRankings:
    return rank_users(_FORKED["engine"], user_ids)


def rank_users(engine: Engine, user_ids: np.ndarray) -> ComputedRankings:
    """Users' rankings (ids, scores, profile keys) with one BLAS thread, as served."""
    from threadpoolctl import threadpool_limits

    # One BLAS/OpenMP thread per process, as the service ranks: a user's matrix products are
    # too small to split, and with worker processes the processes are the cores.
    with threadpool_limits(1):
        return compute_rankings(engine, user_ids)


def _ranked_tasks(
    engine: Engine, tasks: list[np.ndarray], processes: int
) -> Iterator[ComputedRankings]:
    """Each task's rankings, in task order: here, or in forked worker processes that share
    the loaded engine's arrays instead of loading the bundle again."""
    if processes <= 1:
        for user_ids in tasks:
            yield rank_users(engine, user_ids)
        return
    _FORKED["engine"] = engine
    try:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            yield from pool.imap(_rank_task, tasks)
    finally:
        _FORKED.clear()


def precompute_rankings(
    engine: Engine,
    database: Database,
    processes: int = 1,
    user_ids: np.ndarray | None = None,
    users_per_task: int = USERS_PER_TASK,
    cluster: "Cluster | None" = None,
    model_source: "ModelSource | None" = None,
) -> PrecomputeOutcome:
    """Rank every known user (or ``user_ids``) with ``engine``, ``users_per_task`` at a time
    in ``processes`` processes (or as tasks on ``cluster``'s workers, each loading the same
    model from ``model_source`` once), and replace the database's precomputed rankings with
    them in one transaction."""
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    started = time.perf_counter()
    users = np.asarray(engine.known_user_ids if user_ids is None else user_ids, dtype=np.int64)
    tasks = [users[i : i + users_per_task] for i in range(0, len(users), users_per_task)]
    if cluster is not None:
        if model_source is None:
            raise ValueError("ranking on a cluster needs the model's source for the workers")
        from otaku.jobs.precompute_cluster import ranked_on_cluster

        results_in_order = ranked_on_cluster(cluster, model_source, engine.version, tasks)
    else:
        results_in_order = _ranked_tasks(engine, tasks, processes)
    ranked = track(results_in_order, "Ranking users", total=len(tasks))
    results = list(ranked)  # compact arrays: 100 ids and scores per user
    computed_at = datetime.now(UTC)
    with database.transaction() as session:
        repo = Repository(session)
        repo.clear_rankings()
        for task_users, result in zip(tasks, results, strict=True):
            repo.bulk_insert(
                PrecomputedRanking, _rows(task_users, result, engine.version, computed_at)
            )
    return PrecomputeOutcome(len(users), engine.version, time.perf_counter() - started)


def _rows(
    user_ids: np.ndarray, computed: ComputedRankings, version: str, computed_at: datetime
) -> Iterator[dict[str, Any]]:
    rankings = zip(
        user_ids,
        computed.anime_ids,
        computed.scores,
        computed.first_page_ratings,
        computed.keys,
        strict=True,
    )
    for user_id, ids, values, first_page, key in rankings:
        shown = ids >= 0
        yield {
            "user_id": int(user_id),
            "model_version": version,
            "profile_key": key,
            "anime_ids": ids[shown].tolist(),
            "scores": values[shown].tolist(),
            "first_page_ratings": first_page[~np.isnan(first_page)].tolist(),
            "computed_at": computed_at,
        }
