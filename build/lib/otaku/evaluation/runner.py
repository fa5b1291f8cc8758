"""The evaluation command's engine: every strategy and baseline on one split, one run."""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from otaku.columns import Columns
from otaku.evaluation.metrics import (
    catalog_coverage,
    mean_absolute_error,
    median_absolute_error,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)
from otaku.evaluation.split import EvaluationSplit
from otaku.models.base import Recommender
from otaku.models.rating import rows
from otaku.pipeline.seed import LIKED_THRESHOLD
from otaku.pipeline.training import TrainedModels
from otaku.progress import track

log = logging.getLogger(__name__)
BATCH_USERS = 64


@dataclass
class RankingResult:
    """Mean ranking metrics of one model over the evaluated users."""

    model: str
    kind: str
    users: int
    precision: float
    recall: float
    ndcg: float
    coverage: float
    reference_overlap: float | None = None


@dataclass
class EvaluationResult:
    """Everything the report shows."""

    ranking: list[RankingResult] = field(default_factory=list)
    rating: dict[str, float] = field(default_factory=dict)
    lightfm_own: dict[str, float] = field(default_factory=dict)
    info: dict[str, object] = field(default_factory=dict)


def relevant_by_user(heldout: pd.DataFrame) -> dict[int, set[int]]:
    """Held-out anime each test user rated >= 7 (the protocol's relevant set)."""
    liked = heldout[heldout[Columns.rating] >= LIKED_THRESHOLD]
    return _sets_by_user(liked)


def top_rated_watched(train: pd.DataFrame, users: np.ndarray, k: int) -> dict[int, set[int]]:
    """Each user's ``k`` highest-rated anime in their visible history."""
    visible = train[train[Columns.user_id].isin(users)]
    ordered = visible.sort_values(
        [Columns.user_id, Columns.rating, Columns.anime_id], ascending=[True, False, True]
    )
    top = ordered.groupby(Columns.user_id).head(k)
    return _sets_by_user(top)


def _sets_by_user(frame: pd.DataFrame) -> dict[int, set[int]]:
    users = frame[Columns.user_id].to_numpy(np.int64)
    anime = frame[Columns.anime_id].to_numpy(np.int64)
    sets: dict[int, set[int]] = {}
    for user, item in zip(users.tolist(), anime.tolist(), strict=True):
        sets.setdefault(user, set()).add(item)
    return sets


def _recommend_all(
    model: Recommender, users: np.ndarray, k: int, filter_watched: bool, label: str
) -> list[list[int]]:
    batches = [users[i : i + BATCH_USERS] for i in range(0, len(users), BATCH_USERS)]
    lists: list[list[int]] = []
    for batch in track(batches, label):
        items, _ = model.recommend(batch, k=k, filter_watched=filter_watched)
        lists.extend(items.tolist())
    return lists


def evaluate_ranking(
    name: str,
    kind: str,
    model: Recommender,
    users: np.ndarray,
    relevant: dict[int, set[int]],
    n_items: int,
    k: int = 10,
    reference_targets: dict[int, set[int]] | None = None,
) -> RankingResult:
    """P/R/NDCG@k over users with at least one relevant held-out anime, plus coverage."""
    scored = np.array([user for user in users if relevant.get(int(user))])
    lists = _recommend_all(model, scored, k, True, f"Evaluating {name}")
    metric: Callable[[list[int], set[int], int], float]
    means = {}
    for key, metric in (("p", precision_at_k), ("r", recall_at_k), ("n", ndcg_at_k)):
        means[key] = float(
            np.mean(
                [
                    metric(items, relevant[int(user)], k)
                    for user, items in zip(scored, lists, strict=True)
                ]
            )
        )
    overlap = None
    if reference_targets is not None:
        unfiltered = _recommend_all(model, scored, k, False, f"Reference protocol {name}")
        overlap = float(
            np.mean(
                [
                    len(set(items) & reference_targets.get(int(user), set())) / k
                    for user, items in zip(scored, unfiltered, strict=True)
                ]
            )
        )
    return RankingResult(
        name,
        kind,
        len(scored),
        means["p"],
        means["r"],
        means["n"],
        catalog_coverage(lists, n_items),
        overlap,
    )


def evaluate_rating_model(trained: TrainedModels, split: EvaluationSplit) -> dict[str, float]:
    """MAE and median absolute error of the rating model on the held-out test ratings."""
    parts = trained.components
    if parts.rating_model is None:
        return {}
    heldout = split.heldout
    user_idx = heldout[Columns.user_idx].to_numpy()
    item_idx = heldout[Columns.item_idx].to_numpy()
    predicted = parts.rating_model.predict(
        rows(parts.user_features[user_idx], parts.item_vectors[item_idx])
    )
    actual = heldout[Columns.rating].to_numpy(np.float32)
    return {
        "mae": mean_absolute_error(predicted, actual),
        "median_ae": median_absolute_error(predicted, actual),
        "ratings": float(len(actual)),
        "trees": float(parts.rating_model.n_trees),
    }


def evaluate_all(
    trained: TrainedModels,
    split: EvaluationSplit,
    k: int = 10,
    seed_users: int | None = None,
    seed: int = 42,
) -> EvaluationResult:
    """Every baseline and strategy on the split's test users.

    ``seed_users`` limits the (slow, 17k predictions per user) seed strategy to a seeded
    sample of test users; the default strategy is then also reported on that same sample.
    """
    result = EvaluationResult()
    relevant = relevant_by_user(split.heldout)
    users = split.test_users
    n_items = split.train.n_items
    targets = top_rated_watched(split.train.ratings, users, k)
    for name, model in trained.baselines().items():
        result.ranking.append(
            evaluate_ranking(name, "baseline", model, users, relevant, n_items, k)
        )
    strategies = trained.strategies()
    result.ranking.append(
        evaluate_ranking(
            "default", "strategy", strategies["default"], users, relevant, n_items, k, targets
        )
    )
    seed_sample = users
    if seed_users is not None and seed_users < len(users):
        seed_sample = np.sort(np.random.default_rng(seed).choice(users, seed_users, replace=False))
        result.ranking.append(
            evaluate_ranking(
                "default (seed's sample)",
                "strategy",
                strategies["default"],
                seed_sample,
                relevant,
                n_items,
                k,
                targets,
            )
        )
    result.ranking.append(
        evaluate_ranking(
            "seed", "strategy", strategies["seed"], seed_sample, relevant, n_items, k, targets
        )
    )
    result.rating = evaluate_rating_model(trained, split)
    return result
