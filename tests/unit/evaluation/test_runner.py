"""The evaluation ranks through the served engine: its per-user lists are the API's pages, every
configured source is a baseline, and each row carries a paired interval against the default."""

import numpy as np
import pytest

from otaku.data.dataset import Dataset
from otaku.evaluation.metrics import ndcg_at_k
from otaku.evaluation.runner import EvaluationResult, evaluate_all
from otaku.evaluation.split import EvaluationSplit, relevant_by_user, split_users
from otaku.pipeline.components import text_embeddings_for
from otaku.pipeline.engine import Engine
from otaku.pipeline.training import TrainConfig, TrainedModels, fit_all


@pytest.fixture(scope="module")
def split(small_dataset: Dataset) -> EvaluationSplit:
    return split_users(small_dataset, seed=3)


@pytest.fixture(scope="module")
def split_models(split: EvaluationSplit, quick_config: TrainConfig) -> TrainedModels:
    return fit_all(split.train, quick_config, text_embeddings_for(split.train, None, None))


@pytest.fixture(scope="module")
def result(split: EvaluationSplit, split_models: TrainedModels) -> EvaluationResult:
    return evaluate_all(split_models, split, k=10, seed_users=6, seed=1)


def test_every_source_is_a_baseline_and_every_strategy_is_evaluated(
    result: EvaluationResult, split_models: TrainedModels
) -> None:
    rows = {row.model: row for row in result.ranking}
    assert set(split_models.components.sources) <= set(rows)
    assert {"default", "seed", "default (seed's sample)"} <= set(rows)
    assert rows["seed"].users == rows["default (seed's sample)"].users == 6
    assert set(rows["seed"].ndcg_by_user) == set(rows["default (seed's sample)"].ndcg_by_user)
    for row in result.ranking:
        assert row.ndcg == pytest.approx(np.mean(list(row.ndcg_by_user.values())))
        if row.model.startswith("default"):
            assert row.default_minus_this is None
        else:
            interval = row.default_minus_this
            assert interval is not None and interval.low <= interval.mean <= interval.high
            default = rows["default"].ndcg_by_user
            expected = np.mean([default[u] - v for u, v in row.ndcg_by_user.items()])
            assert interval.mean == pytest.approx(expected)


def test_the_evaluated_lists_are_the_served_pages(
    result: EvaluationResult, split: EvaluationSplit, split_models: TrainedModels
) -> None:
    engine = Engine(split_models, {"version": "served"})
    relevant = relevant_by_user(split.heldout)
    rows = {row.model: row for row in result.ranking}
    for strategy in ("default", "seed"):
        for user, ndcg in list(rows[strategy].ndcg_by_user.items())[:5]:
            page = engine.recommend_for_user(user, k=10, strategy=strategy)
            served = [item.anime.anime_id for item in page.items]
            assert ndcg_at_k(served, relevant[user], 10) == pytest.approx(ndcg)
