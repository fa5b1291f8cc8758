"""Baseline tuning: every grid point is tried on a validation split of the training data and
the best is chosen; kinds without a grid are left as configured."""

from dataclasses import replace
from typing import Any

from otaku.data.dataset import Dataset
from otaku.evaluation.tuning import grid_points, tune_sources
from otaku.pipeline.sources.config import DEFAULT_SOURCES


def test_grid_points_are_every_combination() -> None:
    points = grid_points({"a": [1, 2], "b": ["x", "y", "z"]})
    assert len(points) == 6 and {"a": 2, "b": "z"} in points


def test_tuning_tries_every_point_and_keeps_the_best(small_dataset: Dataset) -> None:
    specs = [
        replace(s, params={**s.params, "min_item_ratings": 1}) if s.kind == "ease" else s
        for s in DEFAULT_SOURCES
    ]
    grids: dict[str, dict[str, list[Any]]] = {
        "ease": {"regularization": [1.0, 100.0, 10_000.0]},
        "itemknn": {"neighbours": [2, 50]},
    }
    tuned = tune_sources(small_dataset, specs, grids, seed=5)
    assert set(tuned) == {"ease", "ease_liked", "itemknn"}  # no grid for ials, lightfm, ...
    for name, choice in tuned.items():
        assert len(choice.tried) == len(grid_points(grids[choice.spec.kind]))
        best = max(choice.tried, key=lambda point: point["ndcg"])
        assert choice.validation_ndcg == best["ndcg"]
        for key, value in best.items():
            if key != "ndcg":
                assert choice.spec.params[key] == value, name
        assert 0.0 <= choice.validation_ndcg <= 1.0
    assert tuned["ease"].spec.params["min_item_ratings"] == 1  # untouched params are kept
