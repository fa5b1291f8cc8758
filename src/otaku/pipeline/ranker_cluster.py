"""The default strategy's ranker trained on a Dask cluster: the stage-one components go to
every worker once, each task draws one batch of users' candidates and features there (a
task's rows are whole users, so partitions are cut on query boundaries), and
``lightgbm.dask``'s ranker trains on the rows where they were made.

``lightgbm.dask`` has no early stopping: the rounds are chosen first in this process on
``rounds_sample_users`` users' rows (early-stopped on the validation users, as the local
path is) and recorded on the booster's attributes.
"""

import logging
from typing import TYPE_CHECKING

import lightgbm as lgb
import numpy as np

from otaku.cluster import Cluster, dask_params, lightgbm_machines, result_shapes, stacked
from otaku.pipeline.components import Components
from otaku.pipeline.ranker import RankerConfig, batch_rows, fit_ranker_locally, stacked_rows

if TYPE_CHECKING:
    from distributed import Client, Future

log = logging.getLogger(__name__)


def train_ranker_on_cluster(
    stage_one: Components,
    labels_by_user: dict[int, dict[int, int]],
    batches: list[np.ndarray],
    names: list[str],
    config: RankerConfig,
    cluster: Cluster,
) -> tuple[lgb.Booster, int, int]:
    """The ranker, trained by ``DaskLGBMRanker`` on candidates drawn on the workers; with
    the rounds chosen locally and on how many users' queries."""
    from lightgbm.dask import DaskLGBMRanker

    client = cluster.client
    shared = client.scatter(stage_one, broadcast=True)
    parts = [
        client.submit(batch_rows, shared, batch, _labels_of(batch, labels_by_user), pure=False)
        for batch in batches
    ]
    n_valid = max(1, int(len(parts) * config.validation_share))
    training, validation = parts[:-n_valid], parts[-n_valid:]
    rounds, sampled_users = choose_rounds(client, training, validation, names, config)
    shapes = result_shapes(client, training)  # (features, labels, query sizes) per batch
    kept = [(part, shape) for part, shape in zip(training, shapes, strict=True) if shape[1][0]]
    if not kept:
        raise ValueError("no user has a held-out like among the candidates: too little data")
    futures = [part for part, _ in kept]
    features, labels, groups = (
        stacked(futures, index, [shape[index] for _, shape in kept], dtype)
        for index, dtype in enumerate((np.float32, np.int64, np.int64))
    )
    ranker = DaskLGBMRanker(
        client=client,
        n_estimators=rounds,
        machines=lightgbm_machines(client, futures, cluster.lightgbm_port),
        **dask_params(config.lightgbm_params()),
    )
    ranker.fit(features, labels, group=groups, feature_name=names)
    booster = ranker.to_local().booster_
    client.cancel([*parts, shared])
    return booster, rounds, sampled_users


def choose_rounds(
    client: "Client",
    training: list["Future"],
    validation: list["Future"],
    names: list[str],
    config: RankerConfig,
) -> tuple[int, int]:
    """Rounds early-stopped locally on the first batches' rows (about
    ``rounds_sample_users`` users) and the validation batches; with how many users."""
    wanted = max(1, config.rounds_sample_users // config.batch_users)
    gathered = client.gather([*training[:wanted], *validation])
    features, labels, groups = stacked_rows(gathered)
    n_valid = sum(len(batch[2]) for batch in gathered[len(training[:wanted]) :])
    booster = fit_ranker_locally(
        features, labels, groups, names, config, "Ranker: choosing rounds locally", n_valid
    )
    rounds = int(booster.best_iteration or booster.num_trees())
    log.info("ranker rounds chosen locally: %d on %d queries", rounds, len(groups))
    return rounds, len(groups) - n_valid


def _labels_of(
    batch: np.ndarray, labels_by_user: dict[int, dict[int, int]]
) -> dict[int, dict[int, int]]:
    return {int(user): labels_by_user[int(user)] for user in batch if int(user) in labels_by_user}
