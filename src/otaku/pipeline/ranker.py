"""Training the default strategy's ranker: a LightGBM ranking model (listwise XE-NDCG
objective) over the candidate sources' features, trained to rank held-out likes.

Training is two-stage so the ranker never sees scores computed with its own labels: the
candidate sources are refitted on the training data minus 20% of each sampled user's ratings,
and the ranker learns to put those held-out likes first.
"""

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np

from otaku.columns import LIKED_THRESHOLD, Columns
from otaku.data.dataset import Dataset
from otaku.pipeline.candidates import candidate_features, feature_names
from otaku.pipeline.components import Components, ComponentsConfig, fit_components
from otaku.pipeline.sources import known_context
from otaku.progress import StepBar, track

if TYPE_CHECKING:
    from otaku.cluster import Cluster

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RankerConfig:
    """Ranker settings and how its training data is drawn."""

    holdout_share: float = 0.2
    min_user_ratings: int = 5
    max_users: int = 3000
    validation_share: float = 0.1
    num_boost_round: int = 400
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 50
    early_stopping_rounds: int = 30
    batch_users: int = 64
    rounds_sample_users: int = 1000  # on a cluster: users whose rows choose the rounds
    seed: int = 42
    num_threads: int = max(1, os.cpu_count() or 1)

    def lightgbm_params(self) -> dict[str, Any]:
        """Parameters in LightGBM's vocabulary."""
        return {
            "objective": "rank_xendcg",
            "metric": "ndcg",
            "eval_at": [10],
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": 0.9,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "verbosity": -1,
        }


def relevance(ratings: np.ndarray) -> np.ndarray:
    """Binary relevance of held-out ratings (1 for a like, rating >= 7), as the metric uses.

    Graded gains (rating - 6) were tried and ranked worse on NDCG@10 with binary relevance.
    """
    return (ratings >= LIKED_THRESHOLD).astype(int)


def _holdout(data: Dataset, config: RankerConfig) -> tuple[np.ndarray, np.ndarray]:
    """Mask of held-out rating rows, and the users they belong to."""
    rng = np.random.default_rng(config.seed)
    user_idx = data.ratings[Columns.user_idx].to_numpy()
    counts = np.bincount(user_idx, minlength=data.n_users)
    eligible = np.flatnonzero(counts >= config.min_user_ratings)
    chosen = rng.permutation(eligible)[: config.max_users]
    selected = np.zeros(data.n_users, dtype=bool)
    selected[chosen] = True
    held = selected[user_idx] & (rng.random(len(user_idx)) < config.holdout_share)
    return held, np.sort(chosen)


def held_out_labels(data: Dataset, held: np.ndarray) -> dict[int, dict[int, int]]:
    """Each sampled user's held-out items and their relevance."""
    held_rows = data.ratings[held]
    labels_by_user: dict[int, dict[int, int]] = {}
    for user, item, grade in zip(
        held_rows[Columns.user_idx].to_numpy(),
        held_rows[Columns.item_idx].to_numpy(),
        relevance(held_rows[Columns.rating].to_numpy()),
        strict=True,
    ):
        labels_by_user.setdefault(int(user), {})[int(item)] = int(grade)
    return labels_by_user


def user_batches(users: np.ndarray, config: RankerConfig) -> list[np.ndarray]:
    """The sampled users in batches of ``batch_users`` (candidates are drawn per batch)."""
    return [users[i : i + config.batch_users] for i in range(0, len(users), config.batch_users)]


def batch_rows(
    parts: Components, batch: np.ndarray, labels_by_user: dict[int, dict[int, int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate features, relevance labels and query sizes of one batch of users (users
    with no held-out like among their candidates are left out: they teach nothing)."""
    context = known_context(parts.sources, parts.ratings, parts.user_features, batch)
    allowed = np.asarray(context.seen.todense()) == 0  # never a user's own history
    candidates, rows = candidate_features(
        parts.sources, parts.item_numbers, parts.item_genres, context, allowed
    )
    features, labels, groups = [], [], []
    for user, chosen, matrix in zip(batch, candidates, rows, strict=True):
        truth = labels_by_user.get(int(user), {})
        grades = np.array([truth.get(int(item), 0) for item in chosen])
        if grades.max(initial=0) == 0:
            continue
        features.append(matrix)
        labels.append(grades)
        groups.append(len(chosen))
    width = len(feature_names(list(parts.sources)))
    if not features:
        return np.empty((0, width), np.float32), np.empty(0, int), np.empty(0, int)
    return np.vstack(features), np.concatenate(labels), np.asarray(groups)


def _training_rows(
    parts: Components, data: Dataset, held: np.ndarray, users: np.ndarray, config: RankerConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels_by_user = held_out_labels(data, held)
    batches = [
        batch_rows(parts, batch, labels_by_user)
        for batch in track(user_batches(users, config), "Ranker training candidates")
    ]
    return stacked_rows(batches)


def stacked_rows(
    batches: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batches' rows as one training set (raises when no user has a held-out like)."""
    kept = [batch for batch in batches if len(batch[2])]
    if not kept:
        raise ValueError("no user has a held-out like among the candidates: too little data")
    features, labels, groups = zip(*kept, strict=True)
    return np.vstack(features), np.concatenate(labels), np.concatenate(groups)


def fit_ranker_locally(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    names: list[str],
    config: RankerConfig,
    title: str = "Ranker (boosting rounds)",
    n_valid: int | None = None,
) -> lgb.Booster:
    """A ranker trained in this process, early-stopped on the last ``n_valid`` queries
    (default: the last ``validation_share`` of them)."""
    boundaries = np.concatenate([[0], np.cumsum(groups)])
    if not n_valid:
        n_valid = max(1, int(len(groups) * config.validation_share))
    split = boundaries[len(groups) - n_valid]
    train = lgb.Dataset(
        features[:split], labels[:split], group=groups[:-n_valid], feature_name=names
    )
    valid = lgb.Dataset(features[split:], labels[split:], group=groups[-n_valid:], reference=train)
    with StepBar(title, config.num_boost_round) as bar:
        return lgb.train(
            config.lightgbm_params(),
            train,
            num_boost_round=config.num_boost_round,
            valid_sets=[valid],
            callbacks=[
                lgb.early_stopping(config.early_stopping_rounds, verbose=False),
                lambda _env: bar.advance(),
            ],
        )


def train_ranker(
    data: Dataset,
    components_config: ComponentsConfig,
    text_embeddings: np.ndarray,
    config: RankerConfig,
    cluster: "Cluster | None" = None,
    facts: dict[str, Any] | None = None,
) -> lgb.Booster:
    """Fit stage-1 sources on data minus held-out ratings, then the ranker on their candidates
    (on ``cluster``: candidates drawn on the workers, the ranker trained by lightgbm.dask,
    with the rounds chosen locally recorded in ``facts``)."""
    held, users = _holdout(data, config)
    stage_one = fit_components(
        data.subset(~held), components_config, text_embeddings, with_rating_model=False
    )
    names = feature_names(list(stage_one.sources))
    if cluster is not None:
        from otaku.pipeline.ranker_cluster import train_ranker_on_cluster

        batches = user_batches(users, config)
        booster, rounds, sampled = train_ranker_on_cluster(
            stage_one, held_out_labels(data, held), batches, names, config, cluster
        )
        if facts is not None:
            facts.update(ranker_rounds_chosen_locally=rounds, ranker_rounds_sample_users=sampled)
        return booster
    features, labels, groups = _training_rows(stage_one, data, held, users, config)
    return fit_ranker_locally(features, labels, groups, names, config)
