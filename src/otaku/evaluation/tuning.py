"""Baselines tuned as carefully as the default: a grid per source kind, scored by NDCG@10 on a
validation split carved from the training users only (the test users' held-out ratings are
never seen), ranked by the same strategy code the evaluation and the service use."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import product
from typing import Any

import numpy as np

from otaku.data.dataset import Dataset
from otaku.evaluation.metrics import ndcg_at_k
from otaku.evaluation.split import relevant_by_user, split_users
from otaku.pipeline.pages import Stopwatch
from otaku.pipeline.sources import FitInputs, SourceSpec, create_source, known_context
from otaku.pipeline.strategies import SourceStrategy
from otaku.progress import track

# Each grid: parameter -> values tried (every combination). iALS's includes the settings the
# literature recommends for explicit-rating data turned implicit (many factors, strong
# regularisation, small alpha); LightFM is not tuned here (its settings are the reference's).
GRIDS: dict[str, dict[str, list[Any]]] = {
    "ials": {
        "factors": [64, 256],
        "regularization": [0.05, 5.0, 20.0, 50.0],
        "alpha": [1.0, 2.0, 10.0],
    },
    "ease": {"regularization": [50.0, 100.0, 300.0, 1000.0, 3000.0]},
    "itemknn": {"neighbours": [25, 50, 100, 200, 400]},
}
QUICK_GRIDS: dict[str, dict[str, list[Any]]] = {
    "ials": {"factors": [16, 64], "regularization": [0.05, 20.0], "alpha": [2.0]},
    "ease": {"regularization": [100.0, 1000.0]},
    "itemknn": {"neighbours": [50, 200]},
}


@dataclass
class Tuned:
    """The best parameters of one baseline and every grid point's validation NDCG@10."""

    spec: SourceSpec
    validation_ndcg: float
    tried: list[dict[str, Any]] = field(default_factory=list)


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of a grid's values."""
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in product(*grid.values())]


def _validation_ndcg(
    spec: SourceSpec,
    train: Dataset,
    users: np.ndarray,
    liked: dict[int, set[int]],
    seed: int,
    k: int,
) -> float:
    source = create_source(spec)
    source.fit(FitInputs(train, np.zeros((train.n_items, 1), np.float32), None, seed))
    context = known_context(
        {spec.name: source}, train.rating_matrix, np.zeros((train.n_users, 1)), users
    )
    allowed = np.asarray(context.seen.todense()) == 0
    popular = np.argsort(-train.item_counts, kind="stable")
    rankings = SourceStrategy(source, popular).rank(context, allowed, k, Stopwatch())
    return float(
        np.mean(
            [
                ndcg_at_k(items.tolist(), liked[int(u)], k)
                for u, (items, _) in zip(users, rankings, strict=True)
            ]
        )
    )


def tune_sources(
    data: Dataset,
    specs: Sequence[SourceSpec],
    grids: Mapping[str, Mapping[str, Sequence[Any]]] = GRIDS,
    seed: int = 42,
    k: int = 10,
) -> dict[str, Tuned]:
    """For each spec whose kind has a grid: the parameters with the best validation NDCG@k
    (``data`` is the evaluation's training part; validation users are drawn from it)."""
    split = split_users(data, seed=seed + 1)
    liked_by_id = relevant_by_user(split.heldout)
    users_by_id = [u for u in split.test_users if liked_by_id.get(int(u))]
    users = split.train.users.to_internal(np.asarray(users_by_id))
    liked = {
        int(i): {
            int(x) for x in split.train.items.to_internal(np.asarray(sorted(liked_by_id[int(u)])))
        }
        for i, u in zip(users, users_by_id, strict=True)
    }
    tuned = {}
    for spec in specs:
        if spec.kind not in grids:
            continue
        tried = []
        for params in track(grid_points(grids[spec.kind]), f"Tuning {spec.name}"):
            candidate = replace(spec, params={**spec.params, **params})
            score = _validation_ndcg(candidate, split.train, users, liked, seed, k)
            tried.append({**params, "ndcg": score})
        best = max(tried, key=lambda point: point["ndcg"])
        params = {key: value for key, value in best.items() if key != "ndcg"}
        tuned[spec.name] = Tuned(
            replace(spec, params={**spec.params, **params}), best["ndcg"], tried
        )
    return tuned
