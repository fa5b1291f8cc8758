"""The evaluation command's engine: every strategy and baseline on one split, ranked through
the served engine (the same code path, filters and fold-in as the API), with per-user
metrics and paired bootstrap intervals against the default."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
from otaku.evaluation.significance import Interval, paired_bootstrap
from otaku.evaluation.split import EvaluationSplit, relevant_by_user, sets_by_user
from otaku.models.rating import DEFAULT_THREADS, rows
from otaku.pipeline.engine import Engine
from otaku.pipeline.sources import CandidateSource
from otaku.pipeline.strategies import STRATEGY_TYPES, SourceStrategy
from otaku.pipeline.training import TrainedModels
from otaku.progress import track

log = logging.getLogger(__name__)
DEFAULT = "default"


@dataclass
class RankingResult:
    """Mean ranking metrics of one model over the evaluated users, its per-user NDCG and the
    default's NDCG minus its own on the same users (paired bootstrap 95% interval)."""

    model: str
    kind: str
    users: int
    precision: float
    recall: float
    ndcg: float
    coverage: float
    reference_overlap: float | None = None
    default_minus_this: Interval | None = None
    ndcg_by_user: dict[int, float] = field(default_factory=dict)
    strategy: str = ""  # the strategy (or baseline source) that ranked this row


@dataclass
class EvaluationResult:
    """Everything the report shows."""

    ranking: list[RankingResult] = field(default_factory=list)
    rating: dict[str, float] = field(default_factory=dict)
    lightfm_own: dict[str, float] = field(default_factory=dict)
    tuning: dict[str, dict[str, Any]] = field(default_factory=dict)
    info: dict[str, object] = field(default_factory=dict)


def top_rated_watched(train: pd.DataFrame, users: np.ndarray, k: int) -> dict[int, set[int]]:
    """Each user's ``k`` highest-rated anime in their visible history."""
    visible = train[train[Columns.user_id].isin(users)]
    ordered = visible.sort_values(
        [Columns.user_id, Columns.rating, Columns.anime_id], ascending=[True, False, True]
    )
    return sets_by_user(ordered.groupby(Columns.user_id).head(k))


def evaluate_ranking(
    engine: Engine,
    strategy: str,
    kind: str,
    users: np.ndarray,
    relevant: dict[int, set[int]],
    k: int = 10,
    reference_targets: dict[int, set[int]] | None = None,
    label: str | None = None,
) -> RankingResult:
    """P/R/NDCG@k of one strategy over users with at least one relevant held-out anime, each
    answered by the engine exactly as the API answers ``GET /v1/users/{id}/recommendations``."""
    scored = [int(user) for user in users if relevant.get(int(user))]
    lists = [
        [
            item.anime.anime_id
            for item in engine.recommend_for_user(user, k, 0, None, strategy).items
        ]
        for user in track(scored, f"Evaluating {label or strategy}")
    ]
    ndcg = {u: ndcg_at_k(items, relevant[u], k) for u, items in zip(scored, lists, strict=True)}
    precision = [
        precision_at_k(items, relevant[u], k) for u, items in zip(scored, lists, strict=True)
    ]
    recall = [recall_at_k(items, relevant[u], k) for u, items in zip(scored, lists, strict=True)]
    overlap = None
    if reference_targets is not None:
        overlap = float(
            np.mean(
                [
                    len(
                        set(engine.unfiltered_ranking(u, strategy, k))
                        & reference_targets.get(u, set())
                    )
                    / k
                    for u in scored
                ]
            )
        )
    return RankingResult(
        label or strategy,
        kind,
        len(scored),
        float(np.mean(precision)) if scored else 0.0,
        float(np.mean(recall)) if scored else 0.0,
        float(np.mean(list(ndcg.values()))) if scored else 0.0,
        catalog_coverage(lists, engine.table.n_items),
        overlap,
        ndcg_by_user=ndcg,
        strategy=strategy,
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


def compare_with_default(results: list[RankingResult], seed: int) -> None:
    """Fill each row's paired interval of default's NDCG minus its own (on its users, which
    the default's full row covers)."""
    default = next(row for row in results if row.model == DEFAULT).ndcg_by_user
    for row in results:
        if row.strategy == DEFAULT or not row.ndcg_by_user:
            continue
        users = list(row.ndcg_by_user)
        first = np.array([default[u] for u in users])
        second = np.array([row.ndcg_by_user[u] for u in users])
        row.default_minus_this = paired_bootstrap(first, second, seed=seed)


def evaluate_all(
    trained: TrainedModels,
    split: EvaluationSplit,
    k: int = 10,
    seed_users: int | None = None,
    seed: int = 42,
    baselines: Mapping[str, CandidateSource] | None = None,
) -> EvaluationResult:
    """Every baseline (each candidate source ranking alone; tuned ones from ``baselines``)
    and every registered strategy, on the split's test users, through one served engine.

    A strategy with an evaluation cap (the slow seed) is asked about a seeded sample of test
    users (``seed_users`` overrides the cap, 0 = no cap); the default is then also reported
    on that sample.
    """
    result = EvaluationResult()
    engine = Engine(trained, {"version": "evaluation"}, threads=DEFAULT_THREADS)
    relevant = relevant_by_user(split.heldout)
    users = split.test_users
    targets = top_rated_watched(split.train.ratings, users, k)
    sources = {**trained.components.sources, **(baselines or {})}
    for name, source in sources.items():
        engine.rankings.add(SourceStrategy(source, engine.served.popular_order))
        result.ranking.append(evaluate_ranking(engine, name, "baseline", users, relevant, k))
    for name, strategy in STRATEGY_TYPES.items():
        cap = strategy.evaluation_users
        if cap is not None and seed_users is not None:
            cap = seed_users or None  # 0: every test user
        sample = users
        if cap is not None and cap < len(users):
            sample = np.sort(np.random.default_rng(seed).choice(users, cap, replace=False))
            result.ranking.append(
                evaluate_ranking(
                    engine,
                    DEFAULT,
                    "strategy",
                    sample,
                    relevant,
                    k,
                    targets,
                    f"default ({name}'s sample)",
                )
            )
        result.ranking.append(
            evaluate_ranking(engine, name, "strategy", sample, relevant, k, targets)
        )
    compare_with_default(result.ranking, seed)
    result.rating = evaluate_rating_model(trained, split)
    return result
