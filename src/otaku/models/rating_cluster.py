"""The rating model trained on a Dask cluster with ``lightgbm.dask``: the same sample, rows
and parameters as :meth:`RatingModel.fit`, but the feature rows are built on the workers and
each worker's LightGBM holds only its share of them.

``lightgbm.dask`` has no early stopping, so the number of rounds is chosen first in this
process, early-stopped on a seeded part of the sample, and recorded on the model
(``rounds_chosen_locally``, ``rounds_sample_ratings``).
"""

import math

import numpy as np

from otaku.cluster import Cluster, dask_params, lightgbm_machines, stacked
from otaku.data.dataset import Dataset
from otaku.data.sampling import users_within_budget
from otaku.models.rating import RatingModel, RatingSample, rows

CHUNK_ROWS = 100_000  # feature rows per task: ~180 MB of float32 at 450 features


def fit_on_cluster(
    model: RatingModel,
    data: Dataset,
    user_features: np.ndarray,
    item_vectors: np.ndarray,
    cluster: Cluster,
) -> RatingModel:
    """Fit ``model`` on the cluster (rounds chosen locally first); returns the model."""
    from lightgbm.dask import DaskLGBMRegressor

    sample = model.training_sample(data)
    rounds = choose_rounds(model, sample, user_features, item_vectors)
    train = sample.part(~sample.is_validation)
    client = cluster.client
    features, vectors = client.scatter([user_features, item_vectors], broadcast=True)
    width = user_features.shape[1] + item_vectors.shape[1]
    chunks = _chunks(len(train), len(client.nthreads()))
    parts = [
        client.submit(
            _feature_chunk,
            features,
            vectors,
            train.user_idx[chunk],
            train.item_idx[chunk],
            train.target[chunk],
            pure=False,
        )
        for chunk in chunks
    ]
    rows_x = stacked(parts, 0, [(len(chunk), width) for chunk in chunks], np.float32)
    rows_y = stacked(parts, 1, [(len(chunk),) for chunk in chunks], np.float32)
    params = dask_params(model.config.lightgbm_params())
    regressor = DaskLGBMRegressor(
        client=client,
        n_estimators=rounds,
        machines=lightgbm_machines(client, parts, cluster.lightgbm_port),
        **params,
    )
    regressor.fit(rows_x, rows_y)
    model.booster = regressor.to_local().booster_
    client.cancel([*parts, features, vectors])
    return model


def choose_rounds(
    model: RatingModel,
    sample: RatingSample,
    user_features: np.ndarray,
    item_vectors: np.ndarray,
) -> int:
    """Boosting rounds for the cluster: early-stopped on whole users of ``sample`` within
    ``rounds_sample_ratings`` (recorded on the model)."""
    users, counts = np.unique(sample.user_idx, return_counts=True)
    budget = model.config.rounds_sample_ratings
    chosen = users[users_within_budget(counts, budget, model.config.seed)]
    local = sample.part(np.isin(sample.user_idx, chosen))
    booster = model.train_locally(
        local, user_features, item_vectors, "Rating model: choosing rounds locally"
    )
    rounds = int(booster.best_iteration or booster.num_trees())
    model.rounds_chosen_locally, model.rounds_sample_ratings = rounds, len(local)
    return rounds


def _chunks(n_rows: int, n_workers: int) -> list[np.ndarray]:
    """Row positions split into tasks: at least two per worker, at most CHUNK_ROWS each."""
    count = max(2 * n_workers, math.ceil(n_rows / CHUNK_ROWS))
    return [chunk for chunk in np.array_split(np.arange(n_rows), count) if len(chunk)]


def _feature_chunk(
    user_features: np.ndarray,
    item_vectors: np.ndarray,
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    target: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Runs on a worker: one chunk's feature rows and targets."""
    return rows(user_features[user_idx], item_vectors[item_idx]), target
