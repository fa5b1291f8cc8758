"""The LightGBM rating model: predicts a user's 1..10 rating of an anime from
user features ⊕ LightFM item embedding ⊕ synopsis embedding (the reference's inputs)."""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from otaku.columns import RATING_MAX, RATING_MIN
from otaku.data.dataset import Dataset
from otaku.data.sampling import users_within_budget
from otaku.models.base import NotFittedError
from otaku.progress import StepBar


@dataclass(frozen=True)
class RatingModelConfig:
    """LightGBM parameters (the reference's by default) and the training budget.

    ``max_ratings`` bounds the training rows: with more ratings than that, a seeded sample of
    whole user histories within the budget trains the model (None: every rating, as the
    reference did on its 13k-user slice). Rows are built in batches (:class:`FeatureRows`),
    never as one ratings x features matrix.
    """

    num_boost_round: int = 2000
    learning_rate: float = 0.01
    max_depth: int = 8
    num_leaves: int = 255
    colsample_bytree: float = 0.8
    subsample: float = 0.8
    max_bin: int = 255
    early_stopping_rounds: int = 20
    validation_user_share: float = 0.1
    seed: int = 42
    num_threads: int = max(1, os.cpu_count() or 1)
    max_ratings: int | None = None
    rounds_sample_ratings: int = 200_000  # on a cluster: rows the rounds are chosen on

    def lightgbm_params(self) -> dict[str, Any]:
        """Parameters in LightGBM's vocabulary."""
        return {
            "objective": "regression",
            "learning_rate": self.learning_rate,
            "max_depth": self.max_depth,
            "num_leaves": self.num_leaves,
            "colsample_bytree": self.colsample_bytree,
            "subsample": self.subsample,
            "subsample_freq": 1,
            "max_bin": self.max_bin,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "verbosity": -1,
        }


class RatingModel:
    """LightGBM regression on (user features, item vectors); fit returns self."""

    def __init__(self, config: RatingModelConfig | None = None) -> None:
        self.config = config or RatingModelConfig()
        self.booster: lgb.Booster | None = None
        self.rounds_chosen_locally: int | None = None  # set when trained on a cluster
        self.rounds_sample_ratings: int | None = None

    def fit(
        self, data: Dataset, user_features: np.ndarray, item_vectors: np.ndarray
    ) -> "RatingModel":
        """Train on the ratings of ``data`` (or of a user sample within ``max_ratings``);
        validation users drive early stopping."""
        sample = self.training_sample(data)
        self.booster = self.train_locally(sample, user_features, item_vectors)
        return self

    def training_sample(self, data: Dataset) -> "RatingSample":
        """The (user, item, rating) rows the model trains on: every rating, or those of a
        seeded sample of whole users within ``max_ratings``; a seeded share of the users
        validates (records ``trained_users`` and ``trained_ratings``)."""
        rng = np.random.default_rng(self.config.seed)
        matrix = data.rating_matrix
        counts = np.diff(matrix.indptr)
        users = users_within_budget(counts, self.config.max_ratings, self.config.seed)
        sample = matrix[users]
        user_idx = np.repeat(users, np.diff(sample.indptr))
        target = sample.data.astype(np.float32)
        self.trained_users, self.trained_ratings = len(users), len(target)
        is_validation = (rng.random(data.n_users) < self.config.validation_user_share)[user_idx]
        return RatingSample(user_idx, sample.indices, target, is_validation)

    def train_locally(
        self,
        sample: "RatingSample",
        user_features: np.ndarray,
        item_vectors: np.ndarray,
        title: str = "Rating model (LightGBM rounds)",
    ) -> lgb.Booster:
        """A booster trained in this process on ``sample``, early-stopped on its validation
        users (rows built batch by batch through :class:`FeatureRows`)."""
        train_rows, valid_rows = (
            sample.part(~sample.is_validation),
            sample.part(sample.is_validation),
        )
        train = lgb.Dataset(
            FeatureRows(user_features, item_vectors, train_rows.user_idx, train_rows.item_idx),
            train_rows.target,
            free_raw_data=True,
        )
        valid = lgb.Dataset(
            FeatureRows(user_features, item_vectors, valid_rows.user_idx, valid_rows.item_idx),
            valid_rows.target,
            reference=train,
        )
        total = self.config.num_boost_round
        with StepBar(title, total) as bar:
            return lgb.train(
                self.config.lightgbm_params(),
                train,
                num_boost_round=total,
                valid_sets=[valid],
                callbacks=[
                    lgb.early_stopping(self.config.early_stopping_rounds, verbose=False),
                    lambda _env: bar.advance(),
                ],
            )

    @property
    def n_trees(self) -> int:
        """Number of boosting rounds kept (best iteration)."""
        return (
            0
            if self.booster is None
            else int(self.booster.best_iteration or self.booster.num_trees())
        )

    def predict(self, features: np.ndarray, num_threads: int | None = None) -> np.ndarray:
        """Predicted ratings for feature rows built with :func:`rows`."""
        if self.booster is None:
            raise NotFittedError("RatingModel is not fitted: call fit() first")
        return predict_best(self.booster, features, num_threads)


@dataclass(frozen=True)
class RatingSample:
    """Training rows of the rating model: (user, item, rating) and which rows validate."""

    user_idx: np.ndarray
    item_idx: np.ndarray
    target: np.ndarray
    is_validation: np.ndarray

    def part(self, mask: np.ndarray) -> "RatingSample":
        """The rows where ``mask`` is true."""
        return RatingSample(
            self.user_idx[mask], self.item_idx[mask], self.target[mask], self.is_validation[mask]
        )

    def __len__(self) -> int:
        return len(self.target)


class FeatureRows(lgb.Sequence):
    """Rating-model input rows (user features ⊕ item vectors) for (user, item) pairs, built
    batch by batch when LightGBM reads them: memory grows with the batch, not the ratings."""

    batch_size = 16_384

    def __init__(
        self,
        user_features: np.ndarray,
        item_vectors: np.ndarray,
        user_idx: np.ndarray,
        item_idx: np.ndarray,
    ) -> None:
        self.user_features = user_features
        self.item_vectors = item_vectors
        self.user_idx = user_idx
        self.item_idx = item_idx

    def __len__(self) -> int:
        return len(self.user_idx)

    def __getitem__(self, index: int | slice | list[int]) -> np.ndarray:
        """One row (an int: LightGBM's sampling for bins, which wants float64) or a 2-D
        float32 batch (slice or list)."""
        users, items = self.user_idx[index], self.item_idx[index]
        if np.ndim(users) == 0:
            row = rows(self.user_features[users], self.item_vectors[items][None, :])[0]
            return row.astype(np.float64)
        return rows(self.user_features[users], self.item_vectors[items])


class ThreadCountGate:
    """Lets LightGBM predictions run together only when they use the same thread count.

    LightGBM keeps one process-wide thread count: every prediction sets it from its
    ``num_threads``, and predictions in flight read it to size their per-thread buffers, so
    two threads predicting with different counts corrupt memory (a served process crashed
    so; LightGBM 4.7). A prediction with another count than those running waits for them.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._count = 0
        self._running = 0

    @contextmanager
    def using(self, threads: int) -> Iterator[None]:
        """Hold a place for one prediction with ``threads`` threads."""
        with self._changed:
            while self._running and self._count != threads:
                self._changed.wait()
            self._count = threads
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                if not self._running:
                    self._changed.notify_all()


PREDICTION_GATE = ThreadCountGate()
DEFAULT_THREADS = max(1, os.cpu_count() or 1)


def predict_best(
    booster: lgb.Booster, features: np.ndarray, num_threads: int | None = None
) -> np.ndarray:
    """Predictions of a booster at its best (early-stopped) iteration, as float32.

    ``num_threads`` (default: every core) is passed explicitly, through the
    :data:`PREDICTION_GATE`; 1 suits small batches under concurrency (the served engine uses
    1 for every prediction, so its predictions never wait for each other).
    """
    best = booster.best_iteration or None
    threads = num_threads or DEFAULT_THREADS
    with PREDICTION_GATE.using(threads):
        predicted = booster.predict(features, num_iteration=best, num_threads=threads)
    return np.asarray(predicted, dtype=np.float32)


def on_rating_scale(predicted: np.ndarray) -> np.ndarray:
    """Predictions clipped to the rating scale: a regressor strays just past its ends (10.11
    was seen), and a predicted rating the scale cannot hold is a wrong answer."""
    return np.clip(predicted, RATING_MIN, RATING_MAX)


def rows(user_features: np.ndarray, item_vectors: np.ndarray) -> np.ndarray:
    """Model input rows: user features ⊕ item vectors (either side may be a single row)."""
    if user_features.ndim == 1:
        user_features = np.broadcast_to(user_features, (len(item_vectors), len(user_features)))
    return np.hstack([user_features, item_vectors]).astype(np.float32, copy=False)
